import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, StreamRelayCDNState, StreamRelayCDNUpdateReason, type StreamRelayCDNInfo } from '@parley/sdk';
import { decodeErrors, freePort, probeMedia, startRtmpReceiver, videoSpanSec } from '@parley/testkit';
import { loopFixtures, sleep, startTestServer, type TestClient } from './helpers.js';

/** Resolves with the relay's info from the first update, after the first `since` ones, that says `state` for `url`. */
async function relayState(
  client: TestClient,
  url: string,
  state: StreamRelayCDNState,
  since: number,
  timeoutMs = 10_000,
): Promise<StreamRelayCDNInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const infos = client
      .of('publisherRelayCDNStateUpdate')
      .slice(since)
      .map(([, list]) => list.find((i) => i.url === url));
    const found = infos.find((i) => i?.state === state);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`relay of ${url}: no state ${state}; saw ${JSON.stringify(infos)}`);
    await sleep(20);
  }
}

const updates = (client: TestClient): number => client.of('publisherRelayCDNStateUpdate').length;

test('addPublishCdnUrl pushes a VP8 stream as H264 and AAC to an RTMP server, comes back after the server restarts, and stops on removePublishCdnUrl', async (t) => {
  const env = await startTestServer();
  const dir = mkdtempSync(join(tmpdir(), 'parley-rtmp-'));
  t.after(async () => {
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort('127.0.0.1');
  let receiver = startRtmpReceiver(port, join(dir, 'first.flv'));
  t.after(() => receiver.stop());

  const [alice, bob] = await env.inRoom('cdn', 'alice', 'bob');
  await alice!.publish('alice-cam');
  const stopSending = loopFixtures(alice!.engine);
  t.after(stopSending);
  const url = receiver.url;

  // Bad input: not a URL of RTMP, not one's own stream; nothing changes for anyone.
  const code = (c: TestClient, streamID: string, target: string): Promise<number> =>
    new Promise((resolve) => c.engine.addPublishCdnUrl(streamID, target, resolve));
  assert.equal(await code(alice!, 'alice-cam', 'http://127.0.0.1/live'), ErrorCode.PublisherUpdateCdnTargetError);
  assert.equal(await code(bob!, 'alice-cam', url), ErrorCode.PublisherUpdateCdnTargetError);

  assert.equal(await code(alice!, 'alice-cam', url), 0);
  const relaying = await relayState(alice!, url, StreamRelayCDNState.Relaying, 0);
  assert.equal(relaying.updateReason, StreamRelayCDNUpdateReason.None);
  await sleep(4000);

  // The server goes away: the relay says so, and tries again until it is back.
  const before = updates(alice!);
  await receiver.stop();
  const lost = await relayState(alice!, url, StreamRelayCDNState.RelayRequesting, before);
  assert.equal(lost.updateReason, StreamRelayCDNUpdateReason.CDNServerDisconnected);
  const restarted = Date.now();
  receiver = startRtmpReceiver(port, join(dir, 'second.flv'));
  await relayState(alice!, url, StreamRelayCDNState.Relaying, updates(alice!));
  const backAfterMs = Date.now() - restarted;
  t.diagnostic(`relaying again ${backAfterMs} ms after the RTMP server restarted`);
  assert.ok(backAfterMs <= 5000, `${backAfterMs} ms`);
  await sleep(2000);

  const removed = updates(alice!);
  await new Promise<void>((resolve) => alice!.engine.removePublishCdnUrl('alice-cam', url, (c) => (assert.equal(c, 0), resolve())));
  const stopped = await relayState(alice!, url, StreamRelayCDNState.NoRelay, removed);
  assert.equal(stopped.updateReason, StreamRelayCDNUpdateReason.Disconnected);
  await receiver.stop();

  for (const file of ['first.flv', 'second.flv']) {
    const path = join(dir, file);
    assert.equal(await decodeErrors(path), '', file);
    const probe = await probeMedia(path);
    const video = probe.streams.find((s) => s.kind === 'video')!;
    const audio = probe.streams.find((s) => s.kind === 'audio')!;
    assert.equal(video.codec, 'h264');
    assert.equal(audio.codec, 'aac');
    // Every frame sent while it relayed: the frames against the time from the first to the last.
    const span = await videoSpanSec(path);
    t.diagnostic(`${file}: ${span.toFixed(2)} s from the first frame to the last, ${video.frames} video frames`);
    assert.ok(video.frames >= 0.99 * (span * 30 + 1), `${file}: ${video.frames} frames in ${span} s`);
  }
});

test('an RTMP URL that refuses is tried again with the reason given, and the call goes on', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const [alice, bob] = await env.inRoom('cdn-refused', 'alice', 'bob');
  await alice!.publish('alice-cam');
  const stopSending = loopFixtures(alice!.engine);
  t.after(stopSending);
  let frames = 0;
  bob!.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => frames++ });
  bob!.engine.startPlayingStream('alice-cam');
  await bob!.waitFor('playerRecvVideoFirstFrame');

  const url = `rtmp://127.0.0.1:${await freePort('127.0.0.1')}/live/nobody`;
  await new Promise<void>((resolve) => alice!.engine.addPublishCdnUrl('alice-cam', url, (c) => (assert.equal(c, 0), resolve())));
  // The first update says it is being requested; a later one says why it failed.
  const first = await relayState(alice!, url, StreamRelayCDNState.RelayRequesting, 0);
  assert.equal(first.updateReason, StreamRelayCDNUpdateReason.None);
  const refused = await relayState(alice!, url, StreamRelayCDNState.RelayRequesting, 1);
  assert.equal(refused.updateReason, StreamRelayCDNUpdateReason.AccessPointError);
  const at = frames;
  await sleep(1000);
  assert.ok(frames - at >= 25, `bob got ${frames - at} frames in a second`);
  // Its stream ending ends the relay.
  alice!.engine.stopPublishingStream();
  const ended = await relayState(alice!, url, StreamRelayCDNState.NoRelay, 0);
  assert.equal(ended.url, url);
});
