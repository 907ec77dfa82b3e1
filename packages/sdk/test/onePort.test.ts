/**
 * Hundreds of peer connections on the server's one media UDP port: 500 Node.js players of one
 * stream, the server in a process of its own (as production runs it). Each player gets the
 * stream; the server's only UDP socket is that port; and no packet reaches the wrong peer
 * connection: SRTP/SRTCP would refuse it, and the server counts what fails authentication and
 * what belongs to no peer connection at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PublisherState, VideoBufferType } from '@parley/sdk';
import { randomApp } from '@parley/server';
import { serverMetric, socketsOf, startServerProcess, teardown } from '@parley/testkit';
import { sleep, TestClient, videoFixture } from './helpers.js';

const PLAYERS = 500;
const JOINING_AT_ONCE = 25;
const FPS = 10;

test(`${PLAYERS} players of one stream through the server's one UDP port: every one gets the stream, and no packet reaches the wrong peer connection`, async (t) => {
  const closeLater = teardown(t);
  const app = randomApp(5_000_001);
  const lifted = 1e6;
  const server = await startServerProcess({
    listen: { host: '127.0.0.1', port: 0 },
    apps: [app],
    media: { udpPort: 0, tcpPort: false },
    limits: { connectionsPerSecondPerIp: lifted, connectionBurstPerIp: lifted, loginsPerSecondPerIp: lifted, loginBurstPerIp: lifted },
  });
  closeLater(() => server.stop());
  const profile = { appID: app.appID, appSign: app.appSign, server: server.url, timeouts: { qualityIntervalMs: 3_600_000 } };
  const clients: TestClient[] = [];
  closeLater(() => Promise.all(clients.map((c) => c.destroy())));
  const client = (): TestClient => {
    const c = new TestClient(profile);
    clients.push(c);
    return c;
  };

  const publisher = client();
  assert.equal(await publisher.login('crowd', 'pub', { isUserStatusNotify: false }), 0);
  publisher.engine.startPublishingStream('crowd');
  await publisher.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  // Video only, at a modest rate: what is measured is routing, not forwarding capacity.
  let next = 0;
  publisher.engine.on('customVideoCaptureKeyFrameRequested', () => (next = 0));
  const video = setInterval(() => {
    const index = next % videoFixture.frames.length;
    next = index + 1;
    const { data } = videoFixture.frames[index]!;
    const config = { codec: 'vp8' as const, isKeyFrame: index === 0, width: videoFixture.width, height: videoFixture.height };
    publisher.engine.sendCustomVideoCaptureEncodedData(data, config, Date.now());
  }, 1000 / FPS);
  closeLater(() => clearInterval(video));

  const frames = new Array<number>(PLAYERS).fill(0);
  const join = async (i: number): Promise<void> => {
    const player = client();
    assert.equal(await player.login('crowd', `player${i}`, { isUserStatusNotify: false }), 0, `player${i} logs in`);
    player.engine.enableCustomVideoRender(true, { bufferType: VideoBufferType.EncodedData });
    player.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => frames[i]!++ });
    player.engine.startPlayingStream('crowd');
    await player.waitFor('playerRecvVideoFirstFrame', () => true, 60_000);
  };
  const joinStarted = Date.now();
  for (let first = 0; first < PLAYERS; first += JOINING_AT_ONCE) {
    await Promise.all(Array.from({ length: Math.min(JOINING_AT_ONCE, PLAYERS - first) }, (_, k) => join(first + k)));
  }
  t.diagnostic(`${PLAYERS} players joined and had their first frame after ${((Date.now() - joinStarted) / 1000).toFixed(1)} s`);
  assert.equal(await serverMetric(server.httpUrl, 'parley_players'), PLAYERS);

  // The server's one UDP socket is the media port, on the listen address.
  assert.deepEqual(
    socketsOf(server.pid, 'udp').map(({ ip, port }) => `${ip}:${port}`),
    [`127.0.0.1:${server.udpPort}`],
  );
  const unroutableBefore = await serverMetric(server.httpUrl, 'parley_media_unroutable_datagrams_total');
  const before = [...frames];
  await sleep(5000);
  const gained = frames.map((n, i) => n - before[i]!).sort((a, b) => a - b);
  t.diagnostic(`frames per player in 5 s (${5 * FPS} sent): fewest ${gained[0]}, median ${gained[PLAYERS >> 1]}`);
  assert.ok(gained[0]! >= 2 * FPS, `every player keeps getting frames (the fewest: ${gained[0]} in 5 s)`);
  assert.equal(
    await serverMetric(server.httpUrl, 'parley_media_dropped_packets_total', { reason: 'srtp-unauthenticated' }),
    0,
    'no packet failed authentication',
  );
  assert.equal(
    (await serverMetric(server.httpUrl, 'parley_media_unroutable_datagrams_total')) - unroutableBefore,
    0,
    'no datagram belonged to no peer connection while the call ran',
  );
});
