/**
 * A room whose media runs on two media workers (`media.workers: 2`): what its users see is what
 * they see of a server with media on the main thread.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { PlayerState, PublisherState, StreamQualityLevel } from '@parley/sdk';
import { audioFixture, loopFixtures, sleep, startTestServer } from './helpers.js';

test('media on two workers: each publisher on its own worker; the viewer plays both, and active speakers and link quality come through', async (t) => {
  const env = await startTestServer({ media: { workers: 2 }, networkQualityIntervalMs: 500 });
  t.after(() => env.close());
  const [speaker, camera, viewer] = await env.inRoom('r-workers', 'speaker', 'camera', 'viewer');
  // The speaker sends audio alone, at level 80; the camera the fixtures' video (and silent audio).
  speaker!.engine.startPublishingStream('s-speaker');
  await speaker!.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  let packet = 0;
  const audio = setInterval(
    () =>
      speaker!.engine.sendCustomAudioCaptureEncodedData(
        audioFixture[packet++ % audioFixture.length]!,
        { codec: 'opus', audioLevel: 80 },
        packet * 20,
      ),
    20,
  );
  t.after(() => clearInterval(audio));
  camera!.engine.startPublishingStream('s-camera');
  await camera!.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  t.after(loopFixtures(camera!.engine));

  let frames = 0;
  viewer!.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => frames++ });
  viewer!.engine.startPlayingStream('s-speaker');
  viewer!.engine.startPlayingStream('s-camera');
  await viewer!.waitFor('playerStateUpdate', (streamID, state) => streamID === 's-speaker' && state === PlayerState.Playing);
  await viewer!.waitFor('playerRecvVideoFirstFrame', (streamID) => streamID === 's-camera');
  const before = frames;
  await sleep(1000);
  assert.ok(frames - before >= 20, `${frames - before} frames in 1 s of 30`);

  // Active speakers come from the levels the speaker's worker reads; link quality from the readings of both.
  await viewer!.waitFor('activeSpeakerUpdate', (_, speakers) => speakers.some((s) => s.userID === 'speaker'));
  assert.ok(
    !viewer!.of('activeSpeakerUpdate').some(([, speakers]) => speakers.some((s) => s.userID === 'camera')),
    'the silent camera never speaks',
  );
  const good = (level: StreamQualityLevel): boolean => level <= StreamQualityLevel.Good;
  await viewer!.waitFor('networkQuality', (userID, up, down) => userID === '' && up === StreamQualityLevel.Unknown && good(down));
  await viewer!.waitFor('networkQuality', (userID, up) => userID === 'camera' && good(up));
});

/**
 * Kills the media worker that holds a call (the camera's publisher and the viewer's subscriber) and
 * checks that the call goes on: frames again, every endpoint open once, no state change told.
 */
async function workerDiesUnderCall(t: TestContext, workers: number): Promise<void> {
  const env = await startTestServer({ media: { workers } });
  t.after(() => env.close());
  const [camera, viewer] = await env.inRoom('r-move', 'camera', 'viewer');
  camera!.engine.startPublishingStream('s-camera');
  await camera!.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  t.after(loopFixtures(camera!.engine));
  const frameTimes: number[] = [];
  viewer!.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => frameTimes.push(performance.now()) });
  viewer!.engine.startPlayingStream('s-camera');
  await viewer!.waitFor('playerRecvVideoFirstFrame', (streamID) => streamID === 's-camera');

  const media = env.server.media.workers!;
  const slot = media.endpoints().indexOf(2);
  assert.ok(slot >= 0, `one worker holds both: ${media.endpoints().join(', ')}`);
  const told = (): number => camera!.of('publisherStateUpdate').length + viewer!.of('playerStateUpdate').length;
  const toldBefore = told();
  const killedAt = performance.now();
  media.stop(slot);

  const deadline = killedAt + 15_000;
  while (frameTimes.filter((at) => at > killedAt + 1000).length < 60 && performance.now() < deadline) await sleep(100);
  const after = frameTimes.filter((at) => at > killedAt);
  const gaps = frameTimes.slice(1).map((at, i) => (at > killedAt ? at - frameTimes[i]! : 0));
  console.log(`# ${workers} worker(s): the longest gap between frames since the worker died: ${Math.round(Math.max(...gaps))} ms`);
  assert.ok(after.filter((at) => at > killedAt + 1000).length >= 60, `frames resume: ${after.length} since the worker died`);
  const moved = media.endpoints();
  assert.equal(
    moved.reduce((sum, n) => sum + n, 0),
    2,
    `both moved, none left behind or opened twice: ${moved.join(', ')}`,
  );
  assert.equal(
    told(),
    toldBefore,
    `no publisher or player state change: ${JSON.stringify([...camera!.of('publisherStateUpdate'), ...viewer!.of('playerStateUpdate')])}`,
  );
}

test('a media worker that dies: its peer connections move to the other worker by ICE restart, each with a new DTLS association, and no user is told', (t) =>
  workerDiesUnderCall(t, 2));

test('the only media worker dying: its peer connections wait for the worker started in its place, and move there as above', (t) =>
  workerDiesUnderCall(t, 1));
