/**
 * The server behind a 1:1 NAT, as on a cloud instance with a public address mapped onto its
 * private one: it listens on its private address and announces the public one (media.announcedIp).
 * Clients outside reach it only at the public address (network namespaces; needs root, iptables).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomApp } from '@parley/server';
import { TestNetwork, socketsOf, startServerProcess, teardown } from '@parley/testkit';
import { liveCall, sleep, TestClient } from './helpers.js';

test('a server behind a 1:1 NAT with announcedIp: clients outside publish and play through its public address', async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const nat = network.addHost();
  const machine = nat.addLanHost();
  nat.forwardAllTo(machine);
  const publicIp = nat.ip;
  const app = randomApp(6_000_001);
  const server = await startServerProcess(
    {
      listen: { host: machine.ip, port: 0 },
      apps: [app],
      media: { listenIp: machine.ip, announcedIp: publicIp, udpPort: 0, tcpPort: false },
    },
    { prefix: machine.command([]) },
  );
  closeLater(() => server.stop());
  assert.deepEqual(
    socketsOf(server.pid, 'udp').map(({ ip }) => ip),
    [machine.ip],
    'media binds the private address only',
  );
  // Outside, the server is its public address.
  const url = server.url.replace(machine.ip, publicIp);
  const client = (): TestClient => {
    const c = new TestClient({ appID: app.appID, appSign: app.appSign, server: url });
    closeLater(() => c.destroy());
    return c;
  };
  const call = await liveCall({ client }, 'nat');
  closeLater(() => call.stop());
  const before = call.frames();
  await sleep(2000);
  assert.ok(call.frames() - before >= 30, `the player gets the stream (${call.frames() - before} frames in 2 s)`);
});
