import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PlayerState,
  PublisherState,
  StreamQualityLevel,
  VideoCodecID,
  type PlayStreamQuality,
  type PublishStreamQuality,
} from '@parley/sdk';
import { FreezeCounter, playQuality, publishQuality, sampleStats, type StatsEntry } from '../src/quality.js';
import { loopFixtures, startTestServer } from './helpers.js';

/** A stats entry with its fields, as getStats gives them. */
type Entry = StatsEntry & Record<string, unknown>;

/** Stats as Chromium reports a simulcast publisher (two layers) after `seconds` at 30 frames/s, 500 kbit/s of video and 32 of audio. */
function publisherStats(seconds: number, fractionLost: number): Entry[] {
  return [
    { type: 'codec', id: 'c-vp8', mimeType: 'video/VP8' },
    { type: 'media-source', id: 'ms-v', kind: 'video', frames: 30 * seconds },
    {
      type: 'outbound-rtp',
      id: 'o-q',
      kind: 'video',
      rid: 'q',
      framesSent: 30 * seconds,
      bytesSent: 12_500 * seconds,
      headerBytesSent: 0,
      codecId: 'c-vp8',
    },
    {
      type: 'outbound-rtp',
      id: 'o-h',
      kind: 'video',
      rid: 'h',
      framesSent: 29 * seconds,
      bytesSent: 50_000 * seconds,
      headerBytesSent: 0,
      codecId: 'c-vp8',
    },
    { type: 'outbound-rtp', id: 'o-a', kind: 'audio', bytesSent: 4_000 * seconds, headerBytesSent: 0 },
    { type: 'remote-inbound-rtp', id: 'r-v', kind: 'video', fractionLost, roundTripTime: 0.04 },
    { type: 'candidate-pair', id: 'p', nominated: true, state: 'succeeded', currentRoundTripTime: 0.03 },
  ];
}

test('a publisher sample: frames of the busiest layer, bytes of all, the round trip of the ICE pair, the loss the server reported', () => {
  const quality = publishQuality(sampleStats(publisherStats(10, 0), 10_000), sampleStats(publisherStats(13, 0.05), 13_000));
  assert.equal(quality.videoCaptureFPS, 30);
  assert.equal(quality.videoSendFPS, 30);
  assert.equal(quality.videoKBPS, 500);
  assert.equal(quality.audioKBPS, 32);
  assert.equal(quality.rtt, 30);
  assert.equal(quality.packetLostRate, 0.05);
  assert.equal(quality.level, StreamQualityLevel.Medium);
  assert.equal(quality.videoCodecID, VideoCodecID.VP8);
  assert.equal(quality.totalSendBytes, (12_500 + 50_000 + 4_000) * 13);
});

test('a player sample: the link loss counts what came only as a retransmission; freezes and delay as the browser measured them', () => {
  const stats = (received: number, lost: number, repaired: number, freezes: number): Entry[] => [
    { type: 'codec', id: 'c-h264', mimeType: 'video/H264' },
    {
      type: 'inbound-rtp',
      id: 'i-v',
      kind: 'video',
      packetsReceived: received,
      packetsLost: lost,
      retransmittedPacketsReceived: repaired,
      framesReceived: received / 3,
      framesDecoded: received / 3,
      bytesReceived: received * 1000,
      freezeCount: freezes,
      totalFreezesDuration: freezes * 0.5,
      codecId: 'c-h264',
    },
    {
      type: 'inbound-rtp',
      id: 'i-a',
      kind: 'audio',
      packetsReceived: 0,
      bytesReceived: 0,
      jitterBufferDelay: 6,
      jitterBufferEmittedCount: 100,
    },
    { type: 'candidate-pair', id: 'p', nominated: true, currentRoundTripTime: 0.02 },
  ];
  // 270 received in 3 s, of them 20 only as retransmissions, and 10 never: 30 of 280 lost on the link.
  const quality = playQuality(sampleStats(stats(900, 0, 0, 0), 0), sampleStats(stats(1170, 10, 20, 2), 3000));
  assert.equal(quality.videoRecvFPS, 30);
  assert.equal(quality.packetLostRate, 30 / 280);
  assert.equal(quality.level, StreamQualityLevel.Bad);
  assert.equal(quality.videoCumulativeBreakCount, 2);
  assert.equal(quality.videoCumulativeBreakTime, 1000);
  assert.equal(quality.delay, 20 + 60);
  assert.equal(quality.videoCodecID, VideoCodecID.Default);
});

test('freezes are counted as Chromium counts them: an interval over max(3 × the mean, the mean + 150 ms)', () => {
  const freezes = new FreezeCounter();
  let now = 0;
  for (let i = 0; i < 30; i++) freezes.onFrame((now += 33));
  freezes.onFrame((now += 150)); // under the mean + 150 ms
  assert.equal(freezes.count, 0);
  freezes.onFrame((now += 400));
  assert.equal(freezes.count, 1);
  assert.equal(freezes.seconds, 0.4);
});

test('a Node.js call reports its quality while publishing and playing: plausible rates, no loss, a good level; the server its links', async (t) => {
  const env = await startTestServer({ networkQualityIntervalMs: 500 });
  t.after(() => env.close());
  const timeouts = { qualityIntervalMs: 1000 };
  const pub = env.client({ timeouts });
  const viewer = env.client({ timeouts });
  assert.equal(await pub.login('r-quality', 'pub'), 0);
  assert.equal(await viewer.login('r-quality', 'viewer'), 0);
  pub.engine.startPublishingStream('s-quality');
  await pub.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  t.after(loopFixtures(pub.engine));
  viewer.engine.startPlayingStream('s-quality');
  await viewer.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);
  // The first report covers the first second; the third is steady.
  await pub.waitFor('publisherQualityUpdate', () => pub.of('publisherQualityUpdate').length >= 3);
  await viewer.waitFor('playerQualityUpdate', () => viewer.of('playerQualityUpdate').length >= 3);
  const sent: PublishStreamQuality = pub.of('publisherQualityUpdate').at(-1)![1];
  const got: PlayStreamQuality = viewer.of('playerQualityUpdate').at(-1)![1];
  console.log(`# publisher: ${JSON.stringify(sent)}\n# player: ${JSON.stringify(got)}`);
  assert.ok(sent.videoSendFPS > 25 && sent.videoSendFPS < 35, `sent ${sent.videoSendFPS} frames/s of the 30 given`);
  assert.equal(sent.videoCaptureFPS, sent.videoSendFPS, 'encoded custom capture: every frame given is sent');
  assert.ok(sent.videoKBPS > 10 && sent.audioKBPS > 5, `${sent.videoKBPS} kbit/s video, ${sent.audioKBPS} audio`);
  assert.equal(sent.videoCodecID, VideoCodecID.VP8);
  assert.ok(sent.totalSendBytes > 0);
  assert.ok(sent.level <= StreamQualityLevel.Good, `publisher level ${StreamQualityLevel[sent.level]}`);
  assert.ok(got.videoRecvFPS > 25 && got.videoRecvFPS < 35, `received ${got.videoRecvFPS} frames/s`);
  assert.ok(got.videoKBPS > 10 && got.audioKBPS > 5, `${got.videoKBPS} kbit/s video, ${got.audioKBPS} audio`);
  assert.equal(got.packetLostRate, 0);
  assert.equal(got.videoCumulativeBreakCount, 0);
  assert.ok(got.totalRecvBytes > 0);
  assert.ok(got.level <= StreamQualityLevel.Good, `player level ${StreamQualityLevel[got.level]}`);

  // The server's view of the links: the publisher's up, the player's down; the player hears of the publisher's too.
  const good = (level: StreamQualityLevel): boolean => level <= StreamQualityLevel.Good;
  await pub.waitFor('networkQuality', (userID, up, down) => userID === '' && good(up) && down === StreamQualityLevel.Unknown);
  await viewer.waitFor('networkQuality', (userID, up, down) => userID === '' && up === StreamQualityLevel.Unknown && good(down));
  await viewer.waitFor('networkQuality', (userID, up, down) => userID === 'pub' && good(up) && down === StreamQualityLevel.Unknown);
  assert.ok(!pub.of('networkQuality').some(([userID]) => userID === 'viewer'), 'the publisher does not play the viewer');

  // Reports stop with the stream.
  viewer.engine.stopPlayingStream('s-quality');
  pub.engine.stopPublishingStream();
  const counts = [pub.of('publisherQualityUpdate').length, viewer.of('playerQualityUpdate').length];
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual([pub.of('publisherQualityUpdate').length, viewer.of('playerQualityUpdate').length], counts);
});
