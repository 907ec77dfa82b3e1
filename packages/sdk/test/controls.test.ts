import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AudioChannel,
  AudioConfigPreset,
  ErrorCode,
  ParleyEngine,
  PlayerState,
  PublisherState,
  RemoteDeviceState,
  VIDEO_CONFIG_PRESETS,
  VideoBufferType,
  VideoConfigPreset,
  VideoMirrorMode,
} from '@parley/sdk';
import { serverMetric } from '@parley/testkit';
import { TestClient, loopFixtures, sleep, startTestServer, type TestServer } from './helpers.js';

const metric = (env: TestServer, name: string): Promise<number> => serverMetric(env.server.httpUrl, name);

test('mutePlayStreamVideo / mutePlayStreamAudio: the server stops forwarding what the player muted (its packets stop) and resumes it; unknown streams get 1004002', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const [pub, viewer] = await env.inRoom('r-mute', 'pub', 'viewer');
  pub!.engine.startPublishingStream('s-mute');
  await pub!.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  t.after(loopFixtures(pub!.engine));
  const received = { video: 0, audio: 0 };
  viewer!.engine.enableCustomVideoRender(true, { bufferType: VideoBufferType.EncodedData });
  viewer!.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => received.video++ });
  viewer!.engine.setCustomAudioRenderHandler({ onRemoteAudioFrameEncodedDataReceived: () => received.audio++ });
  assert.equal(viewer!.engine.mutePlayStreamVideo('s-mute', true), ErrorCode.StreamNotFound, 'not playing it yet');
  viewer!.engine.startPlayingStream('s-mute');
  await viewer!.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);
  await sleep(1000);

  /** What reaches the player over one second, after half a second for a change to settle. */
  const window = async (): Promise<{ packets: number; video: number; audio: number }> => {
    await sleep(500);
    const before = { packets: await metric(env, 'parley_media_rtp_sent_packets_total'), ...received };
    await sleep(1000);
    return {
      packets: (await metric(env, 'parley_media_rtp_sent_packets_total')) - before.packets,
      video: received.video - before.video,
      audio: received.audio - before.audio,
    };
  };
  const both = await window();
  assert.equal(viewer!.engine.mutePlayStreamVideo('s-mute', true), 0);
  const audioOnly = await window();
  assert.equal(viewer!.engine.mutePlayStreamAudio('s-mute', true), 0);
  const nothing = await window();
  viewer!.engine.mutePlayStreamVideo('s-mute', false);
  viewer!.engine.mutePlayStreamAudio('s-mute', false);
  await viewer!.waitFor('playerRecvVideoFirstFrame');
  await sleep(1000); // the next keyframe (asked for on unmuting)
  const again = await window();
  const shown = JSON.stringify({ both, audioOnly, nothing, again });
  assert.ok(both.video > 20 && both.audio > 40, shown);
  assert.ok(audioOnly.video === 0 && audioOnly.audio > 40 && audioOnly.packets <= audioOnly.audio + 5, `video muted: ${shown}`);
  assert.ok(nothing.video === 0 && nothing.audio === 0 && nothing.packets === 0, `both muted: ${shown}`);
  assert.ok(again.video > 20 && again.audio > 40, `resumed: ${shown}`);
  assert.deepEqual(
    viewer!.of('playerStateUpdate').map(([, state]) => PlayerState[state]),
    ['PlayRequesting', 'Playing'],
    'muting does not interrupt the play',
  );
  assert.equal(viewer!.engine.mutePlayStreamAudio('unknown', true), ErrorCode.StreamNotFound);
  assert.equal(viewer!.engine.setPlayVolume('unknown', 50), ErrorCode.StreamNotFound);
  for (const volume of [-1, 201, 1.5, NaN])
    assert.equal(viewer!.engine.setPlayVolume('s-mute', volume), ErrorCode.InvalidParameter, `volume ${volume}`);
  assert.equal(viewer!.engine.setPlayVolume('s-mute', 150), 0);
});

test('publisher controls in Node.js: muted video or audio is not sent and players are told Mute; the camera off is Disable; the speaker muted is Mute', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const [pub, viewer] = await env.inRoom('r-pubmute', 'pub', 'viewer');
  pub!.engine.startPublishingStream('s-pubmute');
  await pub!.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  t.after(loopFixtures(pub!.engine));
  let frames = 0;
  viewer!.engine.enableCustomVideoRender(true, { bufferType: VideoBufferType.EncodedData });
  viewer!.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => frames++ });
  viewer!.engine.startPlayingStream('s-pubmute');
  await viewer!.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);
  const states = (): string[] => [
    ...viewer!.of('remoteCameraStateUpdate').map(([, state]) => `camera ${RemoteDeviceState[state]}`),
    ...viewer!.of('remoteMicStateUpdate').map(([, state]) => `mic ${RemoteDeviceState[state]}`),
    ...viewer!.of('remoteSpeakerStateUpdate').map(([, state]) => `speaker ${RemoteDeviceState[state]}`),
  ];
  const framesOver = async (ms: number): Promise<number> => {
    const before = frames;
    await sleep(ms);
    return frames - before;
  };
  await sleep(500);
  assert.ok((await framesOver(1000)) > 20);

  pub!.engine.mutePublishStreamVideo(true);
  await viewer!.waitFor('remoteCameraStateUpdate', (_, state) => state === RemoteDeviceState.Mute);
  await sleep(300);
  assert.equal(await framesOver(1000), 0, 'no video while muted');
  pub!.engine.mutePublishStreamVideo(false);
  pub!.engine.enableCamera(false);
  await viewer!.waitFor('remoteCameraStateUpdate', (_, state) => state === RemoteDeviceState.Disable);
  pub!.engine.enableCamera(true);
  pub!.engine.muteMicrophone(true);
  assert.equal(pub!.engine.isMicrophoneMuted(), true);
  await viewer!.waitFor('remoteMicStateUpdate', (_, state) => state === RemoteDeviceState.Mute);
  await viewer!.waitFor('remoteCameraStateUpdate', (_, state) => state === RemoteDeviceState.Open);
  pub!.engine.muteMicrophone(false);
  pub!.engine.muteSpeaker(true);
  assert.equal(pub!.engine.isSpeakerMuted(), true);
  await viewer!.waitFor('remoteSpeakerStateUpdate', (_, state) => state === RemoteDeviceState.Mute);
  await sleep(1500);
  assert.ok((await framesOver(1000)) > 20, 'video again');
  // Every change is told, in order.
  assert.deepEqual(states(), [
    'camera Open',
    'camera Mute',
    'camera Open',
    'camera Disable',
    'camera Open',
    'mic Open',
    'mic Mute',
    'mic Open',
    'speaker Open',
    'speaker Mute',
  ]);
});

test('video and audio config, mirror mode, capture volume: presets and valid configs are taken, anything else gets 1000096; mirroring what is sent and a capture volume in Node.js get 1000093', (t) => {
  const engine = new TestClient({ appID: 1, appSign: 'ab'.repeat(32), server: 'ws://127.0.0.1:1' }).engine;
  t.after(() => ParleyEngine.destroyEngine(engine));
  assert.deepEqual(engine.getVideoConfig(), VIDEO_CONFIG_PRESETS[VideoConfigPreset.Preset360P], 'the scenario default');
  assert.equal(engine.setVideoConfig(VideoConfigPreset.Preset720P), 0);
  assert.deepEqual(engine.getVideoConfig(), {
    captureWidth: 1280,
    captureHeight: 720,
    encodeWidth: 1280,
    encodeHeight: 720,
    fps: 15,
    bitrate: 1500,
  });
  const own = { captureWidth: 1280, captureHeight: 720, encodeWidth: 640, encodeHeight: 360, fps: 30, bitrate: 800 };
  assert.equal(engine.setVideoConfig(own), 0);
  assert.deepEqual(engine.getVideoConfig(), own);
  for (const bad of [99 as VideoConfigPreset, { ...own, fps: 0 }, { ...own, encodeWidth: 1920 }, { ...own, bitrate: NaN }]) {
    assert.equal(engine.setVideoConfig(bad), ErrorCode.InvalidParameter, JSON.stringify(bad));
  }
  assert.deepEqual(engine.getVideoConfig(), own, 'a refused config changes nothing');
  assert.equal(engine.setVideoMirrorMode(VideoMirrorMode.NoMirror), 0);
  assert.equal(engine.setVideoMirrorMode(VideoMirrorMode.BothMirror), ErrorCode.UnsupportedRequest);
  assert.equal(engine.setVideoConfig(VideoConfigPreset.Preset180P, 1), 0, 'per channel');
  assert.equal(engine.getVideoConfig(1).encodeWidth, 320);
  assert.deepEqual(engine.getVideoConfig(), own);
  assert.deepEqual(engine.getAudioConfig(), { bitrate: 48, channel: AudioChannel.Mono }, 'StandardQuality by default');
  assert.equal(engine.setAudioConfig(AudioConfigPreset.HighQualityStereo), 0);
  assert.deepEqual(engine.getAudioConfig(), { bitrate: 192, channel: AudioChannel.Stereo });
  assert.equal(engine.setAudioConfig({ bitrate: 1000, channel: AudioChannel.Mono }), ErrorCode.InvalidParameter);
  assert.deepEqual(engine.getAudioConfig(), { bitrate: 192, channel: AudioChannel.Stereo });
  // Node.js apps bring their own encoded audio: there is no microphone to turn up or down.
  for (const volume of [-1, 201, 1.5, NaN]) assert.equal(engine.setCaptureVolume(volume), ErrorCode.InvalidParameter, `volume ${volume}`);
  assert.equal(engine.setCaptureVolume(50), ErrorCode.UnsupportedRequest);
});
