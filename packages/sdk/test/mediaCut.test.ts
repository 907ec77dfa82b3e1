/**
 * Media liveness in Node.js: a publisher in its own network namespace (needs root, iptables)
 * loses all UDP to the server for 5 s while its signalling stays up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlayerState, VideoBufferType } from '@parley/sdk';
import { serverMetric, teardown, TestNetwork } from '@parley/testkit';
import { sleep, startTestServer } from './helpers.js';
import { startPublisherIn } from './publisherChild.js';

test('media cut (Node): 5 s without UDP, the publisher goes to PublishRequesting 1003020 and is back by ICE restart within 3 s; its player notices nothing but the pause', async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const host = network.addHost();
  const env = await startTestServer({ host: network.serverIp });
  closeLater(() => env.close());
  const publisher = startPublisherIn(host, env, 'r-cut', 'pub', 's-cut');
  closeLater(() => publisher.kill());
  const waitLine = publisher.waitLine;
  await waitLine(/^publishing$/, 0, 20_000);

  const [player] = await env.inRoom('r-cut', 'player');
  let frames = 0;
  player!.engine.enableCustomVideoRender(true, { bufferType: VideoBufferType.EncodedData });
  player!.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => frames++ });
  player!.engine.startPlayingStream('s-cut');
  await player!.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);
  const framesFlowing = async (timeoutMs: number): Promise<number> => {
    const before = frames;
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(50)) if (frames > before + 2) return Date.now();
    throw new Error(`no frames within ${timeoutMs} ms`);
  };
  await framesFlowing(5000);
  const playerEventsBefore = player!.events.length;

  const cutAt = Date.now();
  host.cutUdp(true);
  await waitLine(/^state PublishRequesting 1003020$/, cutAt, 6000);
  await sleep(cutAt + 5000 - Date.now());
  const restoredAt = Date.now();
  host.cutUdp(false);
  const publishingAt = await waitLine(/^state Publishing 0$/, restoredAt, 10_000);
  const framesAt = await framesFlowing(10_000);
  t.diagnostic(`after the cut: Publishing again in ${publishingAt - restoredAt} ms, frames at the player in ${framesAt - restoredAt} ms`);
  assert.ok(publishingAt - restoredAt <= 3000, `Publishing again ${publishingAt - restoredAt} ms after the cut ended`);
  assert.ok(framesAt - restoredAt <= 3000, `frames again ${framesAt - restoredAt} ms after the cut ended`);
  const noticed = player!.events.slice(playerEventsBefore).filter((e) => /StateUpdate|StreamUpdate|UserUpdate/.test(e.event));
  assert.deepEqual(noticed, [], 'the player saw no state or room change');
  assert.ok((await serverMetric(env.server.httpUrl, 'parley_media_stalls_total')) >= 1, 'the server saw the stall');
});
