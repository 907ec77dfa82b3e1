/**
 * The test networks' one-way delay (NFQUEUE to the test kit's delay program): what it adds to a
 * round trip, that it keeps the order of what it holds, and that it goes when set back to 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { TestNetwork, teardown } from '@parley/testkit';

/** A client in `namespace` sends `count` numbered datagrams to `to`, 2 ms apart: the round trips and the order of the echoes. */
function probe(namespace: string, to: { host: string; port: number }, count: number): Promise<{ rtts: number[]; order: number[] }> {
  const script = `
    const socket = require('node:dgram').createSocket('udp4');
    const sent = new Map(), rtts = [], order = [];
    socket.on('message', (m) => { const n = m.readUInt32BE(0); order.push(n); rtts.push(performance.now() - sent.get(n)); });
    let n = 0;
    const timer = setInterval(() => {
      const b = Buffer.alloc(100); b.writeUInt32BE(n); sent.set(n, performance.now());
      socket.send(b, ${to.port}, '${to.host}');
      if (++n === ${count}) { clearInterval(timer); setTimeout(() => { console.log(JSON.stringify({ rtts, order })); process.exit(0); }, 1000); }
    }, 2);`;
  const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve) => child.once('exit', () => resolve(JSON.parse(out) as { rtts: number[]; order: number[] })));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

test('a delayed test link: 50 ms each way adds 100 ms to the round trip, keeps the order, and goes when set to 0', async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const host = network.addHost();
  const echo = createSocket('udp4');
  closeLater(() => echo.close());
  echo.on('message', (message, from) => echo.send(message, from.port, from.address));
  await new Promise<void>((resolve) => echo.bind(0, network.serverIp, resolve));
  const to = { host: network.serverIp, port: echo.address().port };

  const plain = await probe(host.namespace, to, 200);
  await host.delayDownlink(50);
  await host.delayUplink(50);
  const delayed = await probe(host.namespace, to, 200);
  await host.delayDownlink(0);
  await host.delayUplink(0);
  const after = await probe(host.namespace, to, 200);

  t.diagnostic(
    `round trip, median: ${median(plain.rtts).toFixed(1)} ms plain, ${median(delayed.rtts).toFixed(1)} ms delayed, ${median(after.rtts).toFixed(1)} ms after`,
  );
  assert.equal(delayed.order.length, 200, 'nothing is lost');
  assert.deepEqual(
    delayed.order,
    [...delayed.order].sort((a, b) => a - b),
    'the echoes come back in the order sent',
  );
  const added = median(delayed.rtts) - median(plain.rtts);
  assert.ok(added >= 99 && added < 115, `the delays add ${added.toFixed(1)} ms to the round trip`);
  assert.ok(Math.min(...delayed.rtts) >= 100, 'no packet overtakes its delay');
  assert.ok(median(after.rtts) < median(plain.rtts) + 5, 'set back to 0, the delay is gone');
});
