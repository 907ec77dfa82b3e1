import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { startServer, DEV_APP } from '@parley/server';
import {
  PlayerState,
  PublisherState,
  SPEAKING_LEVEL,
  StreamQualityLevel,
  VideoBufferType,
  VideoCodecID,
  VideoConfigPreset,
  AudioConfigPreset,
  UpdateType,
} from '@parley/sdk';
import {
  speechClip,
  cameraClip,
  launchChromium,
  openDemo,
  remoteVideoSize,
  waitPublishing,
  captureTrackStates,
  enlargeRemoteTiles,
  inboundTotals,
  assertMediaFlows,
  shownSoundLevels,
  waitQuality,
} from '@parley/testkit';
import { TestClient, loopFixtures, videoFixture } from '../../sdk/test/helpers.js';

const ARTIFACTS = new URL('../../../test-results/', import.meta.url);

/** The RIDs of the simulcast layers a page sends. */
function outboundRids(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const found: string[] = [];
    for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
      (await pc.getStats()).forEach((s: { type: string; kind?: string; rid?: string }) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid) found.push(s.rid);
      });
    }
    return found.sort();
  });
}

/** Waits for the demo page's log to show the app told of `streamID` arriving at `size` ("320x180"). */
async function waitVideoSizeChanged(page: Page, streamID: string, size: string): Promise<void> {
  await page.waitForFunction(
    (line) => (document.getElementById('log')!.textContent ?? '').includes(line),
    `onPlayerVideoSizeChanged stream=${streamID} ${size}`,
    { timeout: 10_000 },
  );
}

test('browser calls', async (t) => {
  const server = await startServer({ host: '127.0.0.1', port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  const chromium = await launchChromium();
  t.after(async () => {
    await chromium.close();
    await server.close();
  });

  await t.test('two demo pages call each other, and End call removes the tile on the other side', async () => {
    const alice = await openDemo(server.httpUrl, chromium.browser, 'alice');
    const bob = await openDemo(server.httpUrl, chromium.browser, 'bob');
    assert.ok((await remoteVideoSize(alice, 'stream_bob')).width > 0);
    assert.ok((await remoteVideoSize(bob, 'stream_alice')).width > 0);
    await assertMediaFlows(alice);
    await assertMediaFlows(bob);
    // Quality every 3 s: the 360p camera at 15 frames/s over loopback, nothing lost.
    const sent = await waitQuality(bob, undefined, (q) => q.videoSendFPS! > 0);
    assert.ok(sent.videoSendFPS! > 10 && sent.videoSendFPS! < 20 && sent.videoCaptureFPS! > 10, `bob sends ${JSON.stringify(sent)}`);
    assert.ok(sent.videoKBPS! > 50 && sent.audioKBPS! > 5 && sent.totalSendBytes! > 0, `bob sends ${JSON.stringify(sent)}`);
    assert.equal(sent.videoCodecID, VideoCodecID.VP8);
    assert.ok(sent.level! <= StreamQualityLevel.Good && sent.rtt! < 100, `bob's level: ${JSON.stringify(sent)}`);
    const played = await waitQuality(alice, 'stream_bob', (q) => q.videoRecvFPS! > 0);
    assert.ok(
      played.videoRecvFPS! > 10 && played.videoRenderFPS! > 10 && played.videoKBPS! > 20 && played.audioKBPS! > 5,
      `alice plays ${JSON.stringify(played)}`,
    );
    assert.ok(
      played.packetLostRate! < 0.05 && played.videoCumulativeBreakCount === 0 && played.delay! > 0,
      `alice plays ${JSON.stringify(played)}`,
    );
    assert.ok(played.level! <= StreamQualityLevel.Good, `alice's level: ${JSON.stringify(played)}`);
    // Sound levels: Chromium's fake microphone beeps and falls silent in turn; both pages show the
    // level rise to speech and fall by at least 18 dB (the captured one is the browser's peak
    // meter, which decays 12 dB per 100 ms; the played one is each packet's level, RFC 6464).
    for (const [page, streamID] of [
      [bob, undefined],
      [alice, 'stream_bob'],
    ] as const) {
      const levels = await shownSoundLevels(page, streamID, 3000);
      console.log(`# sound levels, ${streamID ?? 'captured'}: ${levels.join(' ')}`);
      const [loudest, quietest] = [Math.max(...levels), Math.min(...levels)];
      assert.ok(loudest >= SPEAKING_LEVEL && quietest <= loudest - 30, `${streamID ?? 'captured'}: ${levels.join(' ')}`);
    }
    // A 640×360 camera goes out as two simulcast layers: half and full resolution.
    assert.deepEqual(await outboundRids(alice), ['f', 'h']);
    // Automatic mode: the 320×240 tile is filled by the half-resolution layer, so that is what comes, and the app is told.
    await waitVideoSizeChanged(alice, 'stream_bob', '320x180');
    assert.deepEqual(await remoteVideoSize(alice, 'stream_bob'), { width: 320, height: 180 });

    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: new URL('two-party-call.png', ARTIFACTS).pathname });

    assert.deepEqual(await captureTrackStates(bob), ['live', 'live']);
    await bob.click('#end');
    await alice.waitForFunction(() => !document.querySelector('.tile[data-stream-id="stream_bob"]'), undefined, { timeout: 10_000 });
    assert.deepEqual(await captureTrackStates(bob), ['ended', 'ended'], 'End call releases the camera and microphone');
    assert.match((await alice.textContent('#log')) ?? '', /onRoomStreamUpdate room=call Delete stream_bob/);
    await alice.click('#end');
    await alice.close();
    await bob.close();
  });

  await t.test(
    'H264 is negotiated when the publisher asks for it, and sent as simulcast: the player moves between its layers',
    async () => {
      const h264 = await openDemo(server.httpUrl, chromium.browser, 'dave', { roomID: 'h264', videoCodec: 'H264' });
      const vp8 = await openDemo(server.httpUrl, chromium.browser, 'erin', { roomID: 'h264' });
      assert.ok((await remoteVideoSize(vp8, 'stream_dave')).width > 0);
      assert.ok((await remoteVideoSize(h264, 'stream_erin')).width > 0);
      await assertMediaFlows(vp8);
      assert.deepEqual((await inboundTotals(vp8)).videoCodecs, ['video/H264']);
      assert.deepEqual((await inboundTotals(h264)).videoCodecs, ['video/VP8']);
      // H264 is sent as simulcast too, and the player moves between its layers at H264 keyframes:
      // the half layer for a 320×240 tile, the full one once the tile is enlarged.
      assert.deepEqual(await outboundRids(h264), ['f', 'h']);
      await waitVideoSizeChanged(vp8, 'stream_dave', '320x180');
      await enlargeRemoteTiles(vp8);
      await waitVideoSizeChanged(vp8, 'stream_dave', '640x360');
      await assertMediaFlows(vp8);
      await h264.close();
      await vp8.close();
    },
  );

  await t.test(
    'camera and microphone off and on, the capture volume: the player is told in order, its frames and audio energy stop and resume on the same peer connection; a late joiner gets the state',
    async () => {
      const alice = await openDemo(server.httpUrl, chromium.browser, 'alice', { roomID: 'devices' });
      const bob = await openDemo(server.httpUrl, chromium.browser, 'bob', { roomID: 'devices', publish: false });
      await remoteVideoSize(bob, 'stream_alice');
      const deviceLines = async (page: Page): Promise<string[]> =>
        ((await page.textContent('#log')) ?? '')
          .split('\n')
          .flatMap((line) => /onRemote(Camera|Mic|Speaker)StateUpdate stream=stream_alice \w+/.exec(line)?.[0] ?? []);
      const waitLines = (page: Page, count: number): Promise<unknown> =>
        page.waitForFunction(
          (n) =>
            (document.getElementById('log')!.textContent ?? '')
              .split('\n')
              .filter((l) => /onRemote(Camera|Mic|Speaker)StateUpdate stream=stream_alice/.test(l)).length >= n,
          count,
          { timeout: 10_000 },
        );
      /** How much bob's frames and audio energy grow over 1.5 s, after a second for the change to settle. */
      const growth = async (): Promise<{ frames: number; energy: number }> => {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const before = await inboundTotals(bob);
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const after = await inboundTotals(bob);
        return { frames: after.framesDecoded - before.framesDecoded, energy: after.audioEnergy - before.audioEnergy };
      };
      await waitLines(bob, 3);
      const start = await inboundTotals(bob);
      const flowing = await growth();
      assert.ok(flowing.frames > 10 && flowing.energy > 0, `media flows at first: ${JSON.stringify(flowing)}`);

      await alice.click('#camera');
      await waitLines(bob, 4);
      const cameraOff = await growth();
      await alice.click('#camera');
      await waitLines(bob, 5);
      const cameraOn = await growth();
      await alice.click('#microphone');
      await waitLines(bob, 6);
      const micOff = await growth();
      await alice.click('#microphone');
      await waitLines(bob, 7);
      const micOn = await growth();
      // The microphone's volume as sent: silent at 0, quieter at 25 % (energy goes with its square), as before at 100.
      const captureVolume = async (volume: number): Promise<{ frames: number; energy: number }> => {
        await alice.$eval(
          '#captureVolume',
          (input: HTMLInputElement, value) => {
            input.value = String(value);
            input.dispatchEvent(new Event('input'));
          },
          volume,
        );
        return growth();
      };
      const [volume0, volume25, volume100] = [await captureVolume(0), await captureVolume(25), await captureVolume(100)];
      // Alice's speaker is told to bob; bob's own playback follows his volume and speaker.
      await alice.click('#speaker');
      await waitLines(bob, 8);
      await alice.click('#speaker');
      await waitLines(bob, 9);
      const tileVideo = '.tile[data-stream-id="stream_alice"] video';
      const playback = (): Promise<{ muted: boolean; volume: number }> =>
        bob.$eval(tileVideo, (v: HTMLVideoElement) => ({ muted: v.muted, volume: v.volume }));
      await bob.$eval('.tile[data-stream-id="stream_alice"] .volume', (input: HTMLInputElement) => {
        input.value = '50';
        input.dispatchEvent(new Event('input'));
      });
      const half = await playback();
      await bob.click('#speaker');
      const speakerOff = await playback();
      await bob.click('#speaker');
      const speakerOn = await playback();
      assert.deepEqual(
        [half, speakerOff, speakerOn],
        [
          { muted: false, volume: 0.5 },
          { muted: true, volume: 0 },
          { muted: false, volume: 0.5 },
        ],
      );
      assert.deepEqual(await deviceLines(bob), [
        'onRemoteCameraStateUpdate stream=stream_alice Open',
        'onRemoteMicStateUpdate stream=stream_alice Open',
        'onRemoteSpeakerStateUpdate stream=stream_alice Open',
        'onRemoteCameraStateUpdate stream=stream_alice Disable',
        'onRemoteCameraStateUpdate stream=stream_alice Open',
        'onRemoteMicStateUpdate stream=stream_alice Mute',
        'onRemoteMicStateUpdate stream=stream_alice Open',
        'onRemoteSpeakerStateUpdate stream=stream_alice Mute',
        'onRemoteSpeakerStateUpdate stream=stream_alice Open',
      ]);
      const shown = JSON.stringify({ flowing, cameraOff, cameraOn, micOff, micOn, volume0, volume25, volume100 });
      const share = (energy: number): string => `${((100 * energy) / flowing.energy).toFixed(1)} %`;
      console.log(
        `# audio energy received at capture volume 0 / 25 / 100: ${share(volume0.energy)} / ${share(volume25.energy)} / ${share(volume100.energy)} of the first`,
      );
      assert.ok(cameraOff.frames <= 1 && cameraOn.frames > 10, `frames stop and resume: ${shown}`);
      assert.ok(micOff.energy < flowing.energy / 20 && micOn.energy > flowing.energy / 4, `audio energy stops and resumes: ${shown}`);
      assert.ok(
        volume0.energy < flowing.energy / 20 &&
          volume25.energy < flowing.energy / 6 &&
          volume25.energy > flowing.energy / 100 &&
          volume100.energy > flowing.energy / 4,
        `the capture volume sets the energy sent: ${shown}`,
      );
      assert.equal((await inboundTotals(bob)).peerConnections, start.peerConnections, 'no new peer connection');
      const logs = `${(await alice.textContent('#log')) ?? ''}${(await bob.textContent('#log')) ?? ''}`;
      assert.doesNotMatch(logs, /Requesting code=[1-9]/, 'nothing was interrupted');

      // Camera off again: someone who starts playing now is told at once.
      await alice.click('#camera');
      await waitLines(bob, 10);
      const carol = await openDemo(server.httpUrl, chromium.browser, 'carol', { roomID: 'devices', publish: false });
      await waitLines(carol, 3);
      assert.deepEqual(await deviceLines(carol), [
        'onRemoteCameraStateUpdate stream=stream_alice Disable',
        'onRemoteMicStateUpdate stream=stream_alice Open',
        'onRemoteSpeakerStateUpdate stream=stream_alice Open',
      ]);
      assert.equal(await carol.getAttribute('.tile[data-stream-id="stream_alice"]', 'data-camera'), 'Disable');
      await Promise.all([alice.close(), bob.close(), carol.close()]);
    },
  );

  await t.test(
    'screen sharing: a second stream beside the camera, with a content hint for detail; ended from the browser, it stops and the app is told',
    async () => {
      const alice = await openDemo(server.httpUrl, chromium.browser, 'alice', { roomID: 'share' });
      const bob = await openDemo(server.httpUrl, chromium.browser, 'bob', { roomID: 'share', publish: false });
      await remoteVideoSize(bob, 'stream_alice');
      await alice.click('#share');
      const screen = await remoteVideoSize(bob, 'stream_alice_screen');
      assert.ok(screen.width > 0, 'the shared screen plays beside the camera');
      await assertMediaFlows(bob);
      assert.equal(
        await alice.evaluate(() => (window as unknown as { __screens: MediaStream[] }).__screens[0]!.getVideoTracks()[0]!.contentHint),
        'detail',
      );
      // The browser's own "stop sharing": the track ends.
      await alice.evaluate(() => {
        const track = (window as unknown as { __screens: MediaStream[] }).__screens[0]!.getVideoTracks()[0]!;
        track.stop();
        track.dispatchEvent(new Event('ended'));
      });
      await bob.waitForFunction(
        () => /onRoomStreamUpdate room=share Delete stream_alice_screen/.test(document.getElementById('log')!.textContent ?? ''),
        undefined,
        {
          timeout: 10_000,
        },
      );
      const aliceLog = (await alice.textContent('#log')) ?? '';
      assert.match(aliceLog, /onScreenCaptureExceptionOccurred Ended/);
      assert.match(aliceLog, /onPublisherStateUpdate stream=stream_alice_screen NoPublish code=0/);
      assert.doesNotMatch((await bob.textContent('#log')) ?? '', /Delete stream_alice\b(?!_)/, 'the camera stays');
      await assertMediaFlows(bob);
      await Promise.all([alice.close(), bob.close()]);
    },
  );

  await t.test('a closed tab leaves the room at once, not at the heartbeat timeout', async () => {
    const alice = await openDemo(server.httpUrl, chromium.browser, 'alice', { roomID: 'tab' });
    const bob = await openDemo(server.httpUrl, chromium.browser, 'bob', { roomID: 'tab' });
    assert.ok((await remoteVideoSize(alice, 'stream_bob')).width > 0);
    const closedAt = Date.now();
    await bob.close();
    // The server's heartbeat timeout is 90 s here; the page's logout makes it immediate.
    await alice.waitForFunction(
      () => /onRoomUserUpdate room=tab Delete bob/.test(document.getElementById('log')!.textContent ?? ''),
      undefined,
      { timeout: 5_000 },
    );
    assert.match((await alice.textContent('#log')) ?? '', /onRoomStreamUpdate room=tab Delete stream_bob/);
    console.log(`# bob left the room ${Date.now() - closedAt} ms after his tab closed`);
    await alice.close();
  });

  await t.test('a browser page and a Node bot call each other', async () => {
    const bot = new TestClient({ appID: DEV_APP.appID, appSign: DEV_APP.appSign, server: server.url });
    t.after(() => bot.destroy());
    const botFrames: Array<{ isKeyFrame: boolean; width: number }> = [];
    bot.engine.enableCustomVideoRender(true, { bufferType: VideoBufferType.EncodedData });
    bot.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: (_data, params) => botFrames.push(params) });
    /** The Opus frames the bot receives, per stream: their TOC byte's stereo flag (RFC 6716 3.1). */
    const botAudio = new Map<string, boolean[]>();
    bot.engine.setCustomAudioRenderHandler({
      onRemoteAudioFrameEncodedDataReceived: (data, _params, _time, streamID) =>
        botAudio.set(streamID, [...(botAudio.get(streamID) ?? []), (data[0]! & 0x04) !== 0]),
    });
    assert.equal(await bot.login('call', 'bot'), 0);
    bot.engine.startPublishingStream('stream_bot');
    await bot.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
    const stop = loopFixtures(bot.engine);
    t.after(stop);

    const carol = await openDemo(server.httpUrl, chromium.browser, 'carol');
    const size = await remoteVideoSize(carol, 'stream_bot');
    assert.deepEqual(size, { width: videoFixture.width, height: videoFixture.height });
    await assertMediaFlows(carol);

    await bot.waitFor('roomStreamUpdate');
    bot.engine.startPlayingStream('stream_carol');
    await bot.waitFor('playerStateUpdate', (id, state) => id === 'stream_carol' && state === PlayerState.Playing, 15_000);
    const deadline = Date.now() + 10_000;
    while (botFrames.length < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(botFrames.length >= 10, `the bot receives the browser's frames (${botFrames.length})`);
    assert.equal(botFrames[0]!.isKeyFrame, true, 'the first delivered frame is a keyframe');
    assert.ok(botFrames[0]!.width > 0);
    assert.ok((botAudio.get('stream_carol') ?? []).length > 0, 'the bot receives the browser audio');

    // The chat box: broadcast messages both ways, and the online count.
    await carol.waitForFunction(() => document.getElementById('online')!.textContent === '2 online');
    await carol.fill('#chat-input', 'hello from the page');
    await carol.click('#send');
    const [, [fromPage]] = await bot.waitFor('IMRecvBroadcastMessage');
    assert.deepEqual([fromPage!.message, fromPage!.fromUser.userID], ['hello from the page', 'carol']);
    assert.equal((await bot.broadcast('call', 'hello from the bot'))[0], 0);
    await carol.waitForFunction(() => document.getElementById('messages')!.textContent!.includes('bothello from the bot'));
    assert.equal(await carol.textContent('#messages'), 'mehello from the pagebothello from the bot');

    // Stereo (setAudioConfig HighQualityStereo before publishing): the browser's encoder sends stereo Opus, the default mono.
    const dave = await openDemo(server.httpUrl, chromium.browser, 'dave', { audioPreset: AudioConfigPreset.HighQualityStereo });
    await bot.waitFor('roomStreamUpdate', (_, type, streams) => type === UpdateType.Add && streams[0]?.streamID === 'stream_dave');
    bot.engine.startPlayingStream('stream_dave');
    await bot.waitFor('playerStateUpdate', (id, state) => id === 'stream_dave' && state === PlayerState.Playing, 15_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const stereoShare = (streamID: string): number => {
      const flags = botAudio.get(streamID) ?? [];
      return flags.filter(Boolean).length / Math.max(flags.length, 1);
    };
    t.diagnostic(
      `Opus frames coded stereo: carol (default) ${stereoShare('stream_carol')}, dave (stereo preset) ${stereoShare('stream_dave')}`,
    );
    assert.equal(stereoShare('stream_carol'), 0, 'mono by default');
    assert.ok(stereoShare('stream_dave') > 0.9, `stereo with the preset: ${stereoShare('stream_dave')}`);
    await Promise.all([carol.close(), dave.close()]);
  });
});

/** What a page sends per simulcast layer now: size, and bytes so far. */
async function outboundLayers(page: Page): Promise<Record<string, { width: number; height: number; bytes: number }>> {
  return page.evaluate(async () => {
    const layers: Record<string, { width: number; height: number; bytes: number }> = {};
    for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach(
        (s: {
          type: string;
          kind?: string;
          rid?: string;
          frameWidth?: number;
          frameHeight?: number;
          bytesSent?: number;
          headerBytesSent?: number;
        }) => {
          if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
          layers[s.rid ?? 'f'] = {
            width: s.frameWidth ?? 0,
            height: s.frameHeight ?? 0,
            bytes: (s.bytesSent ?? 0) + (s.headerBytesSent ?? 0),
          };
        },
      );
    }
    return layers;
  });
}

test('video presets while publishing: the largest layer takes the preset size and stays under its bitrate, without renegotiation', async (t) => {
  const server = await startServer({ host: '127.0.0.1', port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  t.after(() => server.close());
  // A clip an encoder must spend bits on (the built-in fake camera needs ~150 kbit/s at any size).
  const chromium = await launchChromium({ secureOrigin: server.httpUrl, fakeVideoFile: cameraClip(), fakeAudioFile: speechClip() });
  t.after(() => chromium.close());
  const alice = await openDemo(server.httpUrl, chromium.browser, 'alice', { roomID: 'presets', scenario: 'HighQualityVideoCall' });
  const bob = await openDemo(server.httpUrl, chromium.browser, 'bob', { roomID: 'presets', publish: false });
  await enlargeRemoteTiles(bob);
  await remoteVideoSize(bob, 'stream_alice');
  const pcs = (await inboundTotals(bob)).peerConnections;

  /**
   * The largest layer's size and send rate (kbit/s) over 3 s, once it has the width expected and
   * 2 s more for its rate to settle. The encoder ramps up to it within 20 s, and at a call's start
   * may leave it again while its estimate grows: a window in which it was not sent all along is
   * measured again.
   */
  const top = async (width: number, rampedUpKbps = 0): Promise<{ width: number; height: number; kbps: number }> => {
    const sleep = (ms: number): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, ms));
    let measured = { width: 0, height: 0, kbps: 0 };
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      if ((await outboundLayers(alice)).f?.width !== width) {
        await sleep(250);
        continue;
      }
      await sleep(2000);
      const before = (await outboundLayers(alice)).f;
      await sleep(3000);
      const after = (await outboundLayers(alice)).f;
      if (!before || !after) continue;
      measured = { width: after.width, height: after.height, kbps: Math.round(((after.bytes - before.bytes) * 8) / 3000) };
      if (before.width === width && after.width === width && measured.kbps >= rampedUpKbps) break;
    }
    return measured;
  };
  // At a call's start the encoder reaches the full size before its rate: the scenario's default is
  // measured once past the 360p preset's cap (or as it is after 20 s).
  const start = await top(1280, 600 * 1.15);
  await alice.selectOption('#preset', String(VideoConfigPreset.Preset360P));
  const at360 = await top(640);
  await alice.selectOption('#preset', String(VideoConfigPreset.Preset540P));
  const at540 = await top(960);
  const shown = JSON.stringify({ start, at360, at540 });
  t.diagnostic(`largest layer: ${shown}`);
  assert.deepEqual([start.width, start.height], [1280, 720], shown);
  assert.deepEqual([at360.width, at360.height, at540.width, at540.height], [640, 360, 960, 540], shown);
  // The presets' bitrates (600 and 1200 kbit/s), with room for packet headers and the encoder's overshoot.
  assert.ok(at360.kbps <= 600 * 1.15 && at540.kbps <= 1200 * 1.15 && at540.kbps > at360.kbps, shown);
  assert.ok(at360.kbps < start.kbps, `less than the scenario's default before: ${shown}`);
  assert.equal((await inboundTotals(bob)).peerConnections, pcs, 'no new peer connection');
  await assertMediaFlows(bob);

  // The microphone's processing, the preview's mirror and the tiles' fit (AspectFit).
  const local = (): Promise<{ echoCancellation: unknown; noiseSuppression: unknown; transform: string }> =>
    alice
      .$eval('#local', (v: HTMLVideoElement) => ({
        ...(v.srcObject as MediaStream).getAudioTracks()[0]!.getSettings(),
        transform: v.style.transform,
      }))
      .then(({ echoCancellation, noiseSuppression, transform }) => ({ echoCancellation, noiseSuppression, transform }));
  const before = await local();
  await alice.uncheck('#aec');
  await alice.uncheck('#mirror');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = await local();
  assert.deepEqual(
    [before, after],
    [
      { echoCancellation: true, noiseSuppression: true, transform: 'scaleX(-1)' },
      { echoCancellation: false, noiseSuppression: true, transform: '' },
    ],
  );
  assert.equal(await bob.$eval('.tile[data-stream-id="stream_alice"] video', (v: HTMLVideoElement) => v.style.objectFit), 'contain');

  // Audio: the Basic preset's 16 kbit/s is a ceiling the sender takes at once.
  const audioBytes = (): Promise<number> =>
    alice.evaluate(async () => {
      let sent = 0;
      for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs)
        (await pc.getStats()).forEach((s: { type: string; kind?: string; bytesSent?: number }) => {
          if (s.type === 'outbound-rtp' && s.kind === 'audio') sent += s.bytesSent ?? 0;
        });
      return sent;
    });
  const audioKbps = async (): Promise<number> => {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = await audioBytes();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    return Math.round((((await audioBytes()) - before) * 8) / 3000);
  };
  const audioBefore = await audioKbps();
  await alice.selectOption('#audioPreset', String(AudioConfigPreset.BasicQuality));
  const audioBasic = await audioKbps();
  t.diagnostic(`audio payload: ${audioBefore} kbit/s, then ${audioBasic} kbit/s with the Basic preset (Opus and its RED copy)`);
  // RED carries each frame twice: 16 kbit/s of Opus is about 32 of payload.
  assert.ok(audioBasic <= 40 && audioBasic < audioBefore * 0.75, `audio ${audioBefore} → ${audioBasic} kbit/s`);
  assert.doesNotMatch((await alice.textContent('#log')) ?? '', /PublishRequesting code=[1-9]/);
});

test('devices: switching camera and microphone while publishing replaces the tracks, and a camera unplugged gives way to the default one; the player keeps decoding on the same peer connection', async (t) => {
  const server = await startServer({ host: '127.0.0.1', port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  t.after(() => server.close());
  // Chromium's second fake camera delivers Y16 (depth) frames, which no encoder takes; the third delivers MJPEG.
  const chromium = await launchChromium({ secureOrigin: server.httpUrl, fakeCameras: 3 });
  t.after(() => chromium.close());
  const alice = await openDemo(server.httpUrl, chromium.browser, 'alice', { roomID: 'devices2' });
  const bob = await openDemo(server.httpUrl, chromium.browser, 'bob', { roomID: 'devices2', publish: false });
  await remoteVideoSize(bob, 'stream_alice');
  await waitPublishing(alice);
  const pickerOptions = (id: string): Promise<string[]> =>
    alice.$$eval(`#${id} option`, (options) => options.map((o) => o.textContent ?? ''));
  await alice.waitForFunction(() => document.querySelectorAll('#camera-device option').length >= 2, undefined, { timeout: 10_000 });
  assert.deepEqual(await pickerOptions('camera-device'), ['fake_device_0', 'fake_device_1', 'fake_device_2']);
  assert.ok((await pickerOptions('mic-device')).includes('Fake Audio Input 1'), (await pickerOptions('mic-device')).join());
  assert.ok((await pickerOptions('speaker-device')).length >= 2);
  const capturing = (): Promise<string[]> =>
    alice.$eval('#local', (v: HTMLVideoElement) =>
      (v.srcObject as MediaStream)
        .getTracks()
        .map((track) => `${track.kind}:${track.label}`)
        .sort(),
    );
  const before = await capturing();
  const pcs = (await inboundTotals(bob)).peerConnections;

  await alice.selectOption('#camera-device', { label: 'fake_device_2' });
  await alice.selectOption('#mic-device', { label: 'Fake Audio Input 1' });
  await alice.selectOption('#speaker-device', { label: 'Fake Audio Output 1' });
  // The three switches finish in their own time (a new microphone track takes longest).
  await alice.waitForFunction(
    () =>
      ['camera-device fake_device_2', 'mic-device Fake Audio Input 1', 'speaker-device Fake Audio Output 1'].every((line) =>
        (document.getElementById('log')!.textContent ?? '').includes(line),
      ),
    undefined,
    { timeout: 10_000 },
  );
  const log = (await alice.textContent('#log')) ?? '';
  assert.match(log, /camera-device fake_device_2 code=0/);
  assert.match(log, /mic-device Fake Audio Input 1 code=0/);
  const after = await capturing();
  assert.deepEqual(before, ['audio:Fake Default Audio Input', 'video:fake_device_0']);
  assert.deepEqual(after, ['audio:Fake Audio Input 1', 'video:fake_device_2']);
  await assertMediaFlows(bob);

  // The camera in use is unplugged. Chromium's fake devices cannot be, so the page's device list
  // loses it and the browser's devicechange event fires; what the SDK does from there is real.
  await alice.evaluate(`(() => {
    const native = navigator.mediaDevices.enumerateDevices.bind(navigator.mediaDevices);
    navigator.mediaDevices.enumerateDevices = async () => (await native()).filter((d) => d.label !== 'fake_device_2');
    navigator.mediaDevices.dispatchEvent(new Event('devicechange'));
  })()`);
  await alice.waitForFunction(
    () => (document.getElementById('log')!.textContent ?? '').includes('onVideoDeviceStateChanged Delete fake_device_2'),
    undefined,
    { timeout: 10_000 },
  );
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && (await capturing()).includes('video:fake_device_2');)
    await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(await capturing(), ['audio:Fake Audio Input 1', 'video:fake_device_0'], 'back on the default camera');
  await assertMediaFlows(bob);
  assert.equal((await inboundTotals(bob)).peerConnections, pcs, 'no new peer connection');
  const logs = `${(await alice.textContent('#log')) ?? ''}${(await bob.textContent('#log')) ?? ''}`;
  assert.doesNotMatch(logs, /Requesting code=[1-9]/, 'nothing was interrupted');
});

test('devices refused: publishing ends in NoPublish with 1000098 (no retries), and the page still plays the others', async (t) => {
  const server = await startServer({ host: '127.0.0.1', port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  t.after(() => server.close());
  const refusing = await launchChromium({ refuseDevices: true });
  t.after(() => refusing.close());
  const allowing = await launchChromium();
  t.after(() => allowing.close());
  const bob = await openDemo(server.httpUrl, allowing.browser, 'bob', { roomID: 'refused' });
  const alice = await openDemo(server.httpUrl, refusing.browser, 'alice', { roomID: 'refused' });
  await alice.waitForFunction(
    () => /onPublisherStateUpdate stream=stream_alice NoPublish code=1000098/.test(document.getElementById('log')!.textContent ?? ''),
    undefined,
    { timeout: 10_000 },
  );
  assert.ok((await remoteVideoSize(alice, 'stream_bob')).width > 0, 'alice still plays bob');
  await assertMediaFlows(alice);
  const aliceLog = (await alice.textContent('#log')) ?? '';
  assert.doesNotMatch(aliceLog, /stream_alice PublishRequesting code=[1-9]/, 'refused devices are not retried');
  assert.doesNotMatch((await bob.textContent('#log')) ?? '', /Add stream_alice/, 'bob never sees a stream from alice');
});
