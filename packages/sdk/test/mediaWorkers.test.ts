/**
 * A room whose media runs on two media workers (`media.workers: 2`): what its users see is what
 * they see of a server with media on the main thread.
 */
import { test } from 'node:test';
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
