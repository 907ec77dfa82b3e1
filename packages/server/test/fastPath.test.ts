/**
 * The forwarding path's sending: the native addon's batches (a turn of the event loop's datagrams,
 * each destination's runs of one size as one UDP GSO message) deliver what Node's own sends
 * deliver, byte for byte and in order; a socket closed before its batch leaves sends nothing.
 * Sealing is compared in mediaPlane.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { ipv4Number } from '../src/media/fastpath/datagramBatch.js';
import { openFastPath, type FastPathKind } from '../src/media/fastpath/fastPath.js';

const bound = (): Promise<Socket> =>
  new Promise((resolve) => {
    // Room for a whole turn's datagrams: a receiver's overflow would look like a lost send.
    const socket = createSocket({ type: 'udp4', recvBufferSize: 8 * 1024 * 1024 });
    socket.bind(0, '127.0.0.1', () => resolve(socket));
  });

/** Receivers enough that a turn's datagrams fit their buffers (nothing is read until the turn ends). */
const RECEIVERS = 10;

/** What `datagrams`, sent in one turn on `path`, deliver to each receiver (the i-th datagram to receiver `to(i)`, i mod RECEIVERS by default). */
async function deliver(path: FastPathKind, datagrams: Buffer[], to = (i: number): number => i % RECEIVERS): Promise<Buffer[][]> {
  const { fastPath } = openFastPath(path);
  assert.equal(fastPath.kind, path, 'the native addon is built by npm install (build-essential)');
  const sender = await bound();
  const receivers = await Promise.all(Array.from({ length: RECEIVERS }, bound));
  try {
    const received: Buffer[][] = receivers.map(() => []);
    const all = new Promise<void>((resolve) => {
      let left = datagrams.length;
      receivers.forEach((receiver, i) =>
        receiver.on('message', (data) => {
          received[i]!.push(data);
          if (--left === 0) resolve();
        }),
      );
    });
    datagrams.forEach((datagram, i) => {
      const { port } = receivers[to(i)]!.address();
      fastPath.send(sender, datagram, ipv4Number('127.0.0.1'), '127.0.0.1', port);
    });
    await all;
    return received;
  } finally {
    for (const socket of [sender, ...receivers]) socket.close();
  }
}

test(
  'a turn’s datagrams sent in one native batch arrive as Node’s own sends deliver them: every byte, in order per receiver',
  { timeout: 20_000 },
  async () => {
    // Sizes from empty to a full MTU, more of them than one batch holds.
    const datagrams = Array.from({ length: 1100 }, (_, i) => randomBytes((i * 7) % 1201));
    const native = await deliver('native', datagrams);
    const typeScript = await deliver('typescript', datagrams);
    assert.deepEqual(native, typeScript);
    assert.deepEqual(
      native[0],
      datagrams.filter((_, i) => i % RECEIVERS === 0),
    );
  },
);

test('frames to each receiver (runs of one size, a shorter last, more than a GSO message holds) arrive whole and in order as one batch sends them', async () => {
  // Per receiver: frames of 1 to 70 packets of 1,136 bytes and a shorter last, interleaved as a fanout sends them, with audio between.
  const datagrams: Buffer[] = [];
  const receiverOf: number[] = [];
  for (let frame = 0; frame < 6; frame++) {
    const packets = [1, 4, 70, 2, 5, 3][frame]!;
    for (let packet = 0; packet < packets; packet++) {
      for (let receiver = 0; receiver < RECEIVERS; receiver++) {
        const last = packet === packets - 1;
        datagrams.push(randomBytes(last ? 300 + receiver : 1136));
        receiverOf.push(receiver);
        if (packet === 1 && receiver % 3 === 0) {
          datagrams.push(randomBytes(90)); // audio
          receiverOf.push(receiver);
        }
      }
    }
  }
  const native = await deliver('native', datagrams, (i) => receiverOf[i]!);
  assert.equal(openFastPath('native').fastPath.gso, true, 'the kernel took the GSO messages (Linux 4.18+)');
  const typeScript = await deliver('typescript', datagrams, (i) => receiverOf[i]!);
  assert.deepEqual(native, typeScript);
  assert.deepEqual(
    native[3],
    datagrams.filter((_, i) => receiverOf[i] === 3),
  );
});

test('a socket closed before its batch leaves sends nothing, and the next socket’s batch is not affected', async () => {
  const { fastPath } = openFastPath('native');
  const [sender, receiver] = await Promise.all([bound(), bound()]);
  const got: Buffer[] = [];
  receiver.on('message', (data) => got.push(data));
  const { port } = receiver.address();
  fastPath.send(sender, Buffer.from('lost'), ipv4Number('127.0.0.1'), '127.0.0.1', port);
  sender.close();
  const other = await bound();
  fastPath.send(other, Buffer.from('kept'), ipv4Number('127.0.0.1'), '127.0.0.1', port);
  await new Promise((resolve) => setTimeout(resolve, 100));
  other.close();
  receiver.close();
  assert.deepEqual(got.map(String), ['kept']);
});

test('addresses the native batch takes are IPv4 in dotted form; anything else goes through Node’s send', () => {
  assert.equal(ipv4Number('127.0.0.1'), 0x7f000001);
  assert.equal(ipv4Number('255.255.255.255'), 0xffffffff);
  for (const host of ['::1', '1.2.3', '1.2.3.256', 'example.com', '01234.1.1.1', '']) assert.equal(ipv4Number(host), -1, host);
});
