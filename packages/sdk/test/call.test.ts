import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlayerState, PublisherState, RoomStateChangedReason, UpdateType, VideoBufferType } from '@parley/sdk';
import { audioFixture, equalBytes, sleep, startTestServer, videoFixture } from './helpers.js';

test('a Node publisher sends 300 VP8 frames and opus; the player gets every frame byte-identical and in order', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const a = env.client();
  const b = env.client();

  const received: Array<{ data: Uint8Array; ts: number; isKeyFrame: boolean; width: number }> = [];
  const audioReceived: Uint8Array[] = [];
  a.engine.enableCustomVideoRender(true, { bufferType: VideoBufferType.EncodedData });
  a.engine.setCustomVideoRenderHandler({
    onRemoteVideoFrameEncodedDataReceived: (data, params, ts) =>
      received.push({ data, ts, isKeyFrame: params.isKeyFrame, width: params.width }),
  });
  a.engine.setCustomAudioRenderHandler({ onRemoteAudioFrameEncodedDataReceived: (data) => audioReceived.push(data) });

  assert.equal(await a.login('room1', 'userA'), 0);
  assert.equal(await b.login('room1', 'userB'), 0);
  b.engine.enableCustomVideoCapture(true, { bufferType: VideoBufferType.EncodedData });
  b.engine.startPublishingStream('streamB');
  await b.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);

  const [, , streams] = await a.waitFor('roomStreamUpdate', (_, type) => type === UpdateType.Add);
  assert.deepEqual(
    streams.map((s) => [s.streamID, s.user.userID]),
    [['streamB', 'userB']],
  );
  a.engine.startPlayingStream('streamB');
  await a.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);

  const frames = videoFixture.frames;
  assert.equal(frames.length, 300);
  for (let i = 0; i < frames.length; i++) {
    const ms = i * 33;
    assert.equal(
      b.engine.sendCustomVideoCaptureEncodedData(frames[i]!.data, { codec: 'vp8', isKeyFrame: i % 30 === 0, width: 320, height: 240 }, ms),
      0,
    );
    if (i < audioFixture.length / 2) b.engine.sendCustomAudioCaptureEncodedData(audioFixture[i]!, { codec: 'opus' }, i * 20);
    await sleep(3);
  }
  const deadline = Date.now() + 10_000;
  while (received.length < frames.length && Date.now() < deadline) await sleep(20);

  assert.equal(received.length, frames.length, 'every frame arrives once');
  for (let i = 0; i < frames.length; i++) {
    assert.ok(equalBytes(received[i]!.data, frames[i]!.data), `frame ${i} is byte-identical`);
    assert.equal(received[i]!.ts, i * 33, `frame ${i} keeps its reference time`);
  }
  assert.equal(received[0]!.isKeyFrame, true);
  assert.equal(received[0]!.width, 320);
  assert.ok(audioReceived.length > 100, `audio frames arrive (${audioReceived.length})`);
  assert.ok(equalBytes(audioReceived[0]!, audioFixture[0]!));

  a.engine.stopPlayingStream('streamB');
  b.engine.stopPublishingStream();
  await a.waitFor('roomStreamUpdate', (_, type) => type === UpdateType.Delete);
  a.engine.logoutRoom('room1');
  b.engine.logoutRoom('room1');
  await a.waitFor('roomStateChanged', (_, reason) => reason === RoomStateChangedReason.Logout);
  await b.waitFor('roomStateChanged', (_, reason) => reason === RoomStateChangedReason.Logout);

  const states = (c: typeof a, event: 'roomStateChanged' | 'publisherStateUpdate' | 'playerStateUpdate') =>
    c.of(event).map((args) => [args[1], args[2]]);
  assert.deepEqual(states(a, 'roomStateChanged'), [
    [RoomStateChangedReason.Logining, 0],
    [RoomStateChangedReason.Logined, 0],
    [RoomStateChangedReason.Logout, 0],
  ]);
  assert.deepEqual(states(b, 'publisherStateUpdate'), [
    [PublisherState.PublishRequesting, 0],
    [PublisherState.Publishing, 0],
    [PublisherState.NoPublish, 0],
  ]);
  assert.deepEqual(states(a, 'playerStateUpdate'), [
    [PlayerState.PlayRequesting, 0],
    [PlayerState.Playing, 0],
    [PlayerState.NoPlay, 0],
  ]);
});
