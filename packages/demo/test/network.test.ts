/**
 * Calls over impaired links: browsers in network namespaces whose link to the server is capped
 * or lossy (see @parley/testkit's TestNetwork; needs root, tc and iptables).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startServer, DEV_APP, type ParleyServer } from '@parley/server';
import { StreamQualityLevel } from '@parley/sdk';
import {
  TestNetwork,
  teardown,
  cameraClip,
  concealment,
  decodeRate,
  enlargeRemoteTiles,
  framesSent,
  inboundTotals,
  layerReceived,
  launchChromium,
  openDemo,
  receivedWidths,
  remoteVideoSize,
  sampleEvery,
  sampleVideo,
  sendRate,
  serverMetric,
  speechClip,
  waitPublishing,
  waitQuality,
  type ShownQuality,
  type TestHost,
  type VideoSample,
} from '@parley/testkit';

const metric = (server: ParleyServer, name: string): Promise<number> => serverMetric(server.httpUrl, name);

interface Call {
  network: TestNetwork;
  server: ParleyServer;
  publisherHost: TestHost;
  publisher: Page;
  player: Page;
}

/** A publisher in its own namespace and a player beside the server, in one room. */
async function call(t: { after(fn: () => unknown): void }): Promise<Call> {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const publisherHost = network.addHost();
  const server = await startServer({ host: network.serverIp, port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  closeLater(() => server.close());
  const clip = cameraClip();
  const publisherBrowser = await launchChromium({
    host: { network, host: publisherHost },
    secureOrigin: server.httpUrl,
    fakeVideoFile: clip,
  });
  closeLater(() => publisherBrowser.close());
  const playerBrowser = await launchChromium({ secureOrigin: server.httpUrl, fakeVideoFile: clip });
  closeLater(() => playerBrowser.close());
  const publisher = await openDemo(server.httpUrl, publisherBrowser.browser, 'pub', { roomID: 'net' });
  const player = await openDemo(server.httpUrl, playerBrowser.browser, 'player', { roomID: 'net', publish: false });
  // Every layer in use, so that none is paused and the publisher sends all it can.
  await enlargeRemoteTiles(player);
  return { network, server, publisherHost, publisher, player };
}

/** The first sample at least `ms` after `samples[i]`. */
const after = (samples: VideoSample[], i: number, ms: number): VideoSample =>
  samples.find((s) => s.at - samples[i]!.at >= ms) ?? samples.at(-1)!;

const kbit = (bps: number): string => `${Math.round(bps / 1000)} kbit/s`;

test('uplink congestion control', async (t) => {
  await t.test(
    'on a clean link a simulcast publisher’s estimate reaches its full bitrate within seconds (by Publishing typically)',
    async (t) => {
      const { publisher, player } = await call(t);
      await waitPublishing(publisher);
      const samples = (await sampleEvery([publisher], 8000, 250))[0]!;
      // Full bitrate: what it sends once settled (the encoder's ceiling for this capture).
      const full = sendRate(after(samples, 0, 6000), samples.at(-1)!);
      const seconds = (i: number): number => (i < 0 ? Infinity : (samples[i]!.at - samples[0]!.at) / 1000);
      const estimated = seconds(samples.findIndex((s) => s.availableOutgoingBitrate >= full));
      const sent = seconds(samples.findIndex((s, i) => sendRate(s, after(samples, i, 1000)) >= 0.8 * full)) + 1;
      console.log(
        `# clean uplink: full ${kbit(full)}; the estimate there ${estimated.toFixed(2)} s, 80 % of it sent over 1 s by ${sent.toFixed(2)} s after Publishing`,
      );
      // Enough that the bound below needs probing: from libwebrtc's 300 kbit/s start, 8 % a second takes
      // over 3.5 s to 80 % of 500 kbit/s. (The clip gives 600–800 here; a busy machine's encoder less.)
      assert.ok(full > 500_000, `the clip makes the encoder send over 500 kbit/s (${kbit(full)})`);
      // Typically there by Publishing (the initial probes), the encoder following in 1–2 s; 3.8 s once
      // on a loaded CI machine. The bound catches a ramp that lost its probing: without it libwebrtc
      // grows 8 % a second from its 300 kbit/s start, 11 s to 700 kbit/s. The estimate, not the send rate:
      // under a loaded CI machine Chromium's encoder itself follows late, and a bound on what it sends
      // measured the machine, not the feedback Parley gives the publisher.
      assert.ok(estimated <= 5, `the publisher's estimate at its full bitrate within 5 s (${estimated.toFixed(2)} s)`);
      assert.ok(Number.isFinite(sent), 'the encoder follows the estimate');
      assert.ok((await remoteVideoSize(player, 'stream_pub')).width > 0);
    },
  );

  await t.test('behind a 500 kbit/s uplink a publisher settles below it within 10 s and its player keeps decoding', async (t) => {
    const { publisher, player, publisherHost } = await call(t);
    publisherHost.shapeUplink({ rateKbit: 500 });
    await waitPublishing(publisher);
    await remoteVideoSize(player, 'stream_pub');
    const played = [await sampleVideo(player)];
    const sent = (await sampleEvery([publisher], 16_000, 500))[0]!;
    const start = sent[0]!.at;
    const settled = sent.filter((s) => s.at - start >= 10_000);
    const rates = settled.slice(0, -2).map((s, i) => sendRate(s, settled[i + 2]!));
    played.push(await sampleVideo(player));
    console.log(`# 500 kbit/s uplink: video sent from 10 s on, per second: ${rates.map(kbit).join(', ')}`);
    assert.ok(
      rates.every((r) => r < 500_000),
      `below the cap from 10 s on: ${rates.map(kbit).join(', ')}`,
    );
    assert.ok(
      rates.every((r) => r > 150_000),
      `and still using it: ${rates.map(kbit).join(', ')}`,
    );
    const fps = decodeRate(played[0]!, played[1]!);
    assert.ok(fps >= 10, `the player decodes ${fps.toFixed(1)} frames/s of a 15 frames/s stream`);
  });
  await t.test(
    "behind a 120 kbit/s uplink the publisher's audio gives way to its video (a sixth of the estimate), and is back at 32 kbit/s once the link is",
    async (t) => {
      const { publisher, publisherHost } = await call(t);
      await waitPublishing(publisher);
      publisherHost.shapeUplink({ rateKbit: 120 });
      const narrow = await audioTarget(publisher, ({ targetBps }) => targetBps > 0 && targetBps <= 22_000);
      console.log(`# 120 kbit/s uplink: audio at ${kbit(narrow.targetBps)}, the estimate ${kbit(narrow.estimateBps)}`);
      // Without it, Opus (with RED, each frame twice) keeps its 32 kbit/s and takes ~75 of the 120.
      assert.ok(narrow.targetBps <= 22_000, `the audio gave way: ${kbit(narrow.targetBps)}`);
      assert.ok(narrow.targetBps >= 12_000, `not under 12 kbit/s: ${kbit(narrow.targetBps)}`);
      publisherHost.shapeUplink({});
      const wide = await audioTarget(publisher, ({ targetBps }) => targetBps >= 32_000);
      assert.ok(wide.targetBps >= 32_000, `back at 32 kbit/s on a clean link: ${kbit(wide.targetBps)}`);
    },
  );
});

/** A publisher beside the server and a player in each of `players` hosts, watching it in a 1280×720 view. */
async function downlinkCall(t: { after(fn: () => unknown): void }, players: number) {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const server = await startServer({ host: network.serverIp, port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  closeLater(() => server.close());
  const clip = cameraClip();
  const publisherBrowser = await launchChromium({ secureOrigin: server.httpUrl, fakeVideoFile: clip });
  closeLater(() => publisherBrowser.close());
  const publisher = await openDemo(server.httpUrl, publisherBrowser.browser, 'pub', { roomID: 'down', scenario: 'HighQualityVideoCall' });
  await waitPublishing(publisher);
  const hosts: TestHost[] = [];
  const pages: Page[] = [];
  for (let i = 0; i < players; i++) {
    const host = network.addHost();
    const browser = await launchChromium({ host: { network, host }, secureOrigin: server.httpUrl, fakeVideoFile: clip });
    closeLater(() => browser.close());
    const page = await openDemo(server.httpUrl, browser.browser, `player${i}`, { roomID: 'down', publish: false });
    await enlargeRemoteTiles(page);
    hosts.push(host);
    pages.push(page);
  }
  return { network, server, publisher, hosts, pages };
}

/** The layers of the 1280×720 publisher, smallest first. */
const RIDS = ['q', 'h', 'f'] as const;
/** The layer each of a player's samples decoded, against the publisher's samples taken beside them. */
const layersOf = (played: VideoSample[], sent: VideoSample[]): Array<string | undefined> =>
  played.map((s, i) => layerReceived(s, sent[i]!, RIDS));

/**
 * Whether the publisher sent layer `rid` under half the frames of layer `below` (over a second)
 * for at least `forMs`: what the server judges a starved layer, which players are moved off. A
 * starved window counts from its start: one starved second is a second of starving.
 */
function starvedFor(sent: VideoSample[], rid: string, below: string, forMs: number): boolean {
  let since = Infinity;
  for (let i = 1, from = 0; i < sent.length; i++) {
    while (sent[i]!.at - sent[from]!.at > 1000) from++;
    const share = framesSent(sent[from]!, sent[i]!, rid) / Math.max(framesSent(sent[from]!, sent[i]!, below), 1);
    since = share < 0.5 ? Math.min(since, sent[from]!.at) : Infinity;
    if (sent[i]!.at - since >= forMs) return true;
  }
  return false;
}

test('downlink adaptation: two players of a simulcast publisher, one capped at 500 kbit/s', async (t) => {
  const { hosts, pages, publisher } = await downlinkCall(t, 2);
  const [clean, capped] = pages as [Page, Page];
  for (const page of pages) {
    await page.waitForFunction(
      () => [...document.querySelectorAll<HTMLVideoElement>('.tile.remote video')].some((v) => v.videoWidth === 1280),
      undefined,
      { timeout: 30_000 },
    );
  }

  hosts[1]!.shapeDownlink({ rateKbit: 500 });
  const [cleanSamples, cappedSamples, sentSamples] = (await sampleEvery([clean, capped, publisher], 20_000, 250)) as [
    VideoSample[],
    VideoSample[],
    VideoSample[],
  ];
  const start = cappedSamples[0]!.at;
  const cappedLayers = layersOf(cappedSamples, sentSamples);
  const cleanLayers = layersOf(cleanSamples, sentSamples);
  const switched = cappedLayers.findIndex((layer) => layer !== undefined && layer !== 'f');
  console.log(`# capped player, width per 250 ms: ${receivedWidths(cappedSamples)}`);
  assert.ok(switched >= 0, 'the capped player moves to a smaller layer');
  const switchedAfterMs = cappedSamples[switched]!.at - start;
  assert.ok(switchedAfterMs <= 5000, `within 5 s of the cap (${switchedAfterMs} ms)`);
  // From a second after the switch (the new layer's keyframe decoded) to the end of the capped time.
  const from = cappedSamples.findIndex((s) => s.at - cappedSamples[switched]!.at >= 1000);
  const cappedFps = decodeRate(cappedSamples[from]!, cappedSamples.at(-1)!);
  const cleanFps = decodeRate(cleanSamples[from]!, cleanSamples.at(-1)!);
  // What the capped player's layer carried meanwhile: a publisher short of CPU may send fewer frames on a small layer.
  const sentFrames = cappedSamples
    .slice(from + 1)
    .map((_, i) => framesSent(sentSamples[from + i]!, sentSamples[from + i + 1]!, cappedLayers[from + i + 1] ?? ''))
    .reduce((sum, frames) => sum + frames, 0);
  const layerFps = (sentFrames * 1000) / (sentSamples.at(-1)!.at - sentSamples[from]!.at);
  const frozen = cappedSamples.at(-1)!.totalFreezesDuration - cappedSamples[from]!.totalFreezesDuration;
  console.log(
    `# 500 kbit/s player: layer switch ${switchedAfterMs.toFixed(0)} ms after the cap; then ${cappedFps.toFixed(1)} frames/s of the ${layerFps.toFixed(1)} its layer sent (clean player ${cleanFps.toFixed(1)}), ${frozen.toFixed(2)} s frozen`,
  );
  // The clean player's rate, unless the capped player's layer itself sent fewer frames.
  assert.ok(
    cappedFps >= 0.8 * Math.min(cleanFps, layerFps),
    `capped ${cappedFps.toFixed(1)} frames/s, at least 80 % of the clean player's ${cleanFps.toFixed(1)} (its layer sent ${layerFps.toFixed(1)})`,
  );
  assert.ok(frozen < 1, `no freeze of a second or more after the switch (${frozen.toFixed(2)} s frozen)`);
  assert.ok(
    cappedLayers.slice(from).every((layer) => layer !== 'f'),
    `stays on a layer that fits: ${receivedWidths(cappedSamples.slice(from))}`,
  );
  // What the publisher sent says whether its encoder starved the full layer (a busy CPU) or the server moved the player.
  const sentPerLayer = sentSamples
    .slice(1)
    .map((s, i) => ['q', 'h', 'f'].map((rid) => framesSent(sentSamples[i]!, s, rid)).join('/'))
    .join(' ');
  const fullLayerStarved = starvedFor(sentSamples, 'f', 'q', 1000);
  assert.ok(
    fullLayerStarved ? cleanLayers.at(-1) === 'f' : cleanLayers.every((layer) => layer === 'f'),
    `the clean player keeps the full layer${fullLayerStarved ? ' (back on it after the publisher starved it)' : ''}: ${receivedWidths(cleanSamples)}; widths sent (f): ${sentSamples.map((s) => s.frameWidthByRid.f).join(' ')}; frames sent per 250 ms (q/h/f): ${sentPerLayer}`,
  );

  hosts[1]!.shapeDownlink({});
  const [lifted, sentLifted] = (await sampleEvery([capped, publisher], 15_000, 250)) as [VideoSample[], VideoSample[]];
  const back = layersOf(lifted, sentLifted).indexOf('f');
  console.log(`# after the lift, width per 250 ms: ${receivedWidths(lifted)}`);
  assert.ok(back >= 0, `back to the full layer within 15 s of the lift: ${receivedWidths(lifted)}`);
  console.log(`# back on the full layer ${((lifted[back]!.at - lifted[0]!.at) / 1000).toFixed(1)} s after the lift`);
});

test('downlink loss: at 10 % and at 30 % random loss the player keeps decoding beside a clean one, NACK and RTX keeping up', async (t) => {
  const { hosts, pages, server } = await downlinkCall(t, 2);
  const [clean, lossy] = pages as [Page, Page];
  // What the server did to repair the link, printed beside the result: a freeze's cause in a failed run.
  const repairMetrics = {
    nacks: 'parley_media_nacks_received_total',
    resent: 'parley_media_retransmitted_packets_total',
    refused: 'parley_media_retransmissions_refused_total',
    keyframeRequests: 'parley_media_keyframe_requests_received_total',
  };
  const repairs = async (): Promise<Record<string, number>> =>
    Object.fromEntries(await Promise.all(Object.entries(repairMetrics).map(async ([key, name]) => [key, await metric(server, name)])));
  for (const page of pages) await remoteVideoSize(page, 'stream_pub');
  // Floors well under what is measured (see the README's network table): the bench compares with a direct call.
  const minShare = { 0.1: 0.7, 0.3: 0.5 };
  for (const loss of [0.1, 0.3] as const) {
    hosts[1]!.shapeDownlink({ loss });
    const repairsBefore = await repairs();
    const [cleanSamples, lossySamples] = (await sampleEvery([clean, lossy], 15_000, 1000)) as [VideoSample[], VideoSample[]];
    const repairsAfter = await repairs();
    const cleanFps = decodeRate(cleanSamples[0]!, cleanSamples.at(-1)!);
    const first = lossySamples[0]!;
    const last = lossySamples.at(-1)!;
    const fps = decodeRate(first, last);
    const perMinute = ((last.totalFreezesDuration - first.totalFreezesDuration) * 60_000) / (last.at - first.at);
    console.log(
      `# ${loss * 100} % downlink loss: ${fps.toFixed(1)} frames/s (clean player ${cleanFps.toFixed(1)}), ${last.freezeCount - first.freezeCount} freezes, ${perMinute.toFixed(1)} s/min frozen, widths ${receivedWidths(lossySamples)}; ${Object.keys(
        repairMetrics,
      )
        .map((key) => `${key} ${repairsAfter[key]! - repairsBefore[key]!}`)
        .join(', ')}`,
    );
    assert.ok(fps >= minShare[loss] * cleanFps, `${loss * 100} % loss: ${fps.toFixed(1)} frames/s against ${cleanFps.toFixed(1)} clean`);
    assert.ok(perMinute <= 10, `${loss * 100} % loss: ${perMinute.toFixed(1)} s/min frozen`);
  }
});

test('uplink loss: behind 20 % loss, the server asks the simulcast publisher for what was lost and the player keeps decoding', async (t) => {
  const { publisher, player, publisherHost, server } = await call(t);
  await waitPublishing(publisher);
  await remoteVideoSize(player, 'stream_pub');
  const nacksSent = (): Promise<number> => metric(server, 'parley_media_nacks_sent_total');
  const clean = (await sampleEvery([player], 10_000, 1000))[0]!;
  const nacksBefore = await nacksSent();
  publisherHost.shapeUplink({ loss: 0.2 });
  const lossy = (await sampleEvery([player], 15_000, 1000))[0]!;
  const cleanFps = decodeRate(clean[0]!, clean.at(-1)!);
  const fps = decodeRate(lossy[0]!, lossy.at(-1)!);
  const frozen = lossy.at(-1)!.totalFreezesDuration - lossy[0]!.totalFreezesDuration;
  const nacks = (await nacksSent()) - nacksBefore;
  const reported = await reportedVideoLoss(publisher);
  console.log(
    `# 20 % uplink loss: ${fps.toFixed(1)} frames/s (${cleanFps.toFixed(1)} before), ${frozen.toFixed(2)} s frozen in 15 s, ${nacks} NACKs sent; the server's receiver reports count ${(100 * reported).toFixed(1)} % of the video lost`,
  );
  assert.ok(nacks > 0, 'the server asks the publisher for lost packets');
  // What repairs left lost, as a browser reports it (about 12 % when repairs count as lost): the
  // publisher's congestion control cuts its rate for what it reads there.
  assert.ok(reported < 0.04, `the receiver reports count repairs as received: ${(100 * reported).toFixed(1)} % lost`);
  // A floor well under what is measured (0.73–0.85×): the network bench compares with a direct call.
  assert.ok(fps >= 0.5 * cleanFps, `${fps.toFixed(1)} frames/s, at least half the ${cleanFps.toFixed(1)} before the loss`);
});

/** The publisher's audio encoder's target and its estimate of its uplink, once `accept` takes them or after `timeoutMs`. */
async function audioTarget(
  page: Page,
  accept: (sample: { targetBps: number; estimateBps: number }) => boolean,
  timeoutMs = 15_000,
): Promise<{ targetBps: number; estimateBps: number }> {
  for (const deadline = Date.now() + timeoutMs; ; await new Promise((resolve) => setTimeout(resolve, 500))) {
    const sample = await page.evaluate(async () => {
      const found = { targetBps: 0, estimateBps: 0 };
      for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs.filter((pc) => pc.connectionState !== 'closed')) {
        (await pc.getStats()).forEach(
          (s: { type: string; kind?: string; targetBitrate?: number; nominated?: boolean; availableOutgoingBitrate?: number }) => {
            if (s.type === 'outbound-rtp' && s.kind === 'audio') found.targetBps = s.targetBitrate ?? 0;
            if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) found.estimateBps = s.availableOutgoingBitrate;
          },
        );
      }
      return found;
    });
    if (accept(sample) || Date.now() > deadline) return sample;
  }
}

/** The share of the video a page sent that the server's receiver reports count as lost (cumulative, all layers). */
function reportedVideoLoss(page: Page): Promise<number> {
  return page.evaluate(async () => {
    let sent = 0;
    let lost = 0;
    for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs.filter((pc) => pc.connectionState !== 'closed')) {
      (await pc.getStats()).forEach((s: { type: string; kind?: string; packetsSent?: number; packetsLost?: number }) => {
        if (s.kind !== 'video') return;
        if (s.type === 'outbound-rtp') sent += s.packetsSent ?? 0;
        if (s.type === 'remote-inbound-rtp') lost += s.packetsLost ?? 0;
      });
    }
    return sent > 0 ? lost / sent : 1;
  });
}

/**
 * The latest onNetworkQuality the page logged for `user` (logged when it changes; the server
 * reports every 3 s), once `accept` takes it or after `timeoutMs`.
 */
async function networkQuality(
  page: Page,
  user: string,
  accept: (quality: { up: string; down: string }) => boolean,
  timeoutMs = 10_000,
): Promise<{ up: string; down: string }> {
  for (const deadline = Date.now() + timeoutMs; ; await new Promise((resolve) => setTimeout(resolve, 500))) {
    const log = (await page.textContent('#log')) ?? '';
    const last = [...log.matchAll(/onNetworkQuality user=(\S+) up=(\w+) down=(\w+)/g)].filter((m) => m[1] === user).at(-1);
    const quality = { up: last?.[2] ?? 'none', down: last?.[3] ?? 'none' };
    if (accept(quality) || Date.now() > deadline) return quality;
  }
}

/** The audio formats of each of a page's open peer connections, in order, as its local and remote descriptions list them ("red/48000/2"). */
async function audioFormats(page: Page): Promise<Array<{ local: string[]; remote: string[] }>> {
  const descriptions = await page.evaluate(() =>
    (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs
      .filter((pc) => pc.connectionState !== 'closed')
      .map((pc) => ({ local: pc.localDescription?.sdp ?? '', remote: pc.remoteDescription?.sdp ?? '' })),
  );
  const formats = (sdp: string): string[] => {
    const section = sdp.split(/\r\n(?=m=)/).find((s) => s.startsWith('m=audio')) ?? '';
    const types = section.split('\r\n')[0]!.split(' ').slice(3);
    return types.map((pt) => new RegExp(`^a=rtpmap:${pt} (\\S+)`, 'm').exec(section)?.[1]?.toLowerCase() ?? pt);
  };
  return descriptions.map(({ local, remote }) => ({ local: formats(local), remote: formats(remote) }));
}

test('audio over lossy links: at 30 % and 50 % random loss each way on both sides, RED and NACK keep the voice going', async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const publisherHost = network.addHost();
  const playerHost = network.addHost();
  const server = await startServer({ host: network.serverIp, port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  closeLater(() => server.close());
  const publisherBrowser = await launchChromium({
    host: { network, host: publisherHost },
    secureOrigin: server.httpUrl,
    fakeAudioFile: speechClip(),
  });
  closeLater(() => publisherBrowser.close());
  const playerBrowser = await launchChromium({ host: { network, host: playerHost }, secureOrigin: server.httpUrl });
  closeLater(() => playerBrowser.close());
  const publisher = await openDemo(server.httpUrl, publisherBrowser.browser, 'pub', { roomID: 'voice' });
  const player = await openDemo(server.httpUrl, playerBrowser.browser, 'player', { roomID: 'voice', publish: false });
  await remoteVideoSize(player, 'stream_pub');

  // The publisher offers RED first and the server keeps it so (a browser sends RED only then); the player takes RED too.
  const [sent] = await audioFormats(publisher);
  assert.deepEqual(sent!.local.slice(0, 2), ['red/48000/2', 'opus/48000/2']);
  assert.deepEqual(sent!.remote, ['red/48000/2', 'opus/48000/2']);
  const [played] = await audioFormats(player);
  assert.ok(played!.remote.includes('red/48000/2') && played!.remote.includes('opus/48000/2'), `player: ${played!.remote.join(', ')}`);
  // On the clean links both report a good level.
  const good = (q: ShownQuality): boolean => q.level! <= StreamQualityLevel.Good;
  await waitQuality(player, 'stream_pub', good);
  await waitQuality(publisher, undefined, good);

  // Goals: continuous at 30 % (under 10 % concealed), intelligible at 50 % (under 25 %). Measured: about 3 % and 15 %.
  for (const [loss, ceiling] of [
    [0.3, 0.1],
    [0.5, 0.25],
  ] as const) {
    for (const host of [publisherHost, playerHost]) {
      host.shapeUplink({ loss });
      host.shapeDownlink({ loss });
    }
    const [red, recovered] = [
      await metric(server, 'parley_media_audio_red_sent_packets_total'),
      await metric(server, 'parley_media_audio_recovered_frames_total'),
    ];
    const [samples] = (await sampleEvery([player], 15_000, 1000)) as [VideoSample[]];
    const concealed = concealment(samples[0]!, samples.at(-1)!);
    const redSent = (await metric(server, 'parley_media_audio_red_sent_packets_total')) - red;
    const recoveredFrames = (await metric(server, 'parley_media_audio_recovered_frames_total')) - recovered;
    console.log(
      `# ${loss * 100} % loss each way on both links: ${(100 * concealed).toFixed(1)} % of the audio concealed; ${redSent} RED packets sent, ${recoveredFrames} frames recovered from the publisher's RED`,
    );
    assert.ok(concealed < ceiling, `${(100 * concealed).toFixed(1)} % concealed at ${loss * 100} % loss, under ${ceiling * 100} %`);
    // The quality reports see the links as they are, whatever the repairs hide.
    const bad = (q: ShownQuality): boolean => q.level! >= StreamQualityLevel.Bad;
    const [playerLevel, publisherLevel] = [await waitQuality(player, 'stream_pub', bad), await waitQuality(publisher, undefined, bad)].map(
      (q) => StreamQualityLevel[q.level!],
    );
    // And the server sees the links the same: the player hears of its own downlink and of the publisher's uplink.
    const badOrDie = ['Bad', 'Die'];
    const [own, publisherLink] = [
      await networkQuality(player, '(local)', (q) => badOrDie.includes(q.down)),
      await networkQuality(player, 'pub', (q) => badOrDie.includes(q.up)),
    ];
    console.log(
      `# quality levels at ${loss * 100} % loss: player ${playerLevel}, publisher ${publisherLevel}; the server's: player down ${own.down}, publisher up ${publisherLink.up}`,
    );
    assert.ok(
      badOrDie.includes(own.down) && badOrDie.includes(publisherLink.up),
      `network quality: ${JSON.stringify({ own, publisherLink })}`,
    );
    assert.ok(redSent > 0 && recoveredFrames > 0, 'RED went both ways: to the player, and from the publisher (frames recovered)');
  }
});

test("ICE consent: a player whose answers to the server's own checks are all lost keeps playing past werift's 30 s, its checks keeping consent fresh", async (t) => {
  const { publisher, player, hosts } = await consentCall(t);
  await waitPublishing(publisher);
  await remoteVideoSize(player, 'stream_pub');
  hosts.player.dropStunResponsesToServer();
  // Consent lapses 30 s after the server's last answered check (sent every 4–6 s).
  const [samples] = (await sampleEvery([player], 40_000, 2000)) as [VideoSample[]];
  const log = (await player.textContent('#log')) ?? '';
  assert.doesNotMatch(log, /onPlayerStateUpdate stream=stream_pub PlayRequesting code=[1-9]/, 'the play was never interrupted');
  const lastFps = decodeRate(samples.at(-3)!, samples.at(-1)!);
  assert.ok(lastFps > 5, `still decoding at the end: ${lastFps.toFixed(1)} frames/s`);
});

/** A publisher beside the server and a player in its own namespace. */
async function consentCall(t: { after(fn: () => unknown): void }) {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const playerHost = network.addHost();
  const server = await startServer({ host: network.serverIp, port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  closeLater(() => server.close());
  const publisherBrowser = await launchChromium({ secureOrigin: server.httpUrl });
  closeLater(() => publisherBrowser.close());
  const playerBrowser = await launchChromium({ host: { network, host: playerHost }, secureOrigin: server.httpUrl });
  closeLater(() => playerBrowser.close());
  const publisher = await openDemo(server.httpUrl, publisherBrowser.browser, 'pub', { roomID: 'consent' });
  const player = await openDemo(server.httpUrl, playerBrowser.browser, 'player', { roomID: 'consent', publish: false });
  return { publisher, player, hosts: { player: playerHost } };
}

/** The page's log lines after the first `skip`, each with its time (ms since midnight UTC, as Date.now() gives it modulo a day). */
async function logSince(page: Page, skip: number): Promise<Array<{ atMs: number; line: string }>> {
  const lines = ((await page.textContent('#log')) ?? '').split('\n').filter(Boolean).slice(skip);
  return lines.map((line) => {
    const [h, m, s] = line.slice(0, 12).split(':').map(Number) as [number, number, number];
    return { atMs: ((h * 60 + m) * 60 + s) * 1000, line: line.slice(13) };
  });
}

const logLength = async (page: Page): Promise<number> => ((await page.textContent('#log')) ?? '').split('\n').filter(Boolean).length;

/** Waits until the page decodes more video frames than it had, and returns when (Date.now()). */
async function decodingAgain(page: Page, timeoutMs: number): Promise<number> {
  const before = (await inboundTotals(page)).framesDecoded;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await inboundTotals(page)).framesDecoded > before + 1) return Date.now();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no new frames decoded within ${timeoutMs} ms`);
}

test('media cut: 5 s without UDP (signalling intact) ends in Requesting with 1003020/1004020, back within 3 s by ICE restart with no one else noticing; a cut that stays stays Requesting', async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const cutHost = network.addHost();
  const server = await startServer({ host: network.serverIp, port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  closeLater(() => server.close());
  const cutBrowser = await launchChromium({ host: { network, host: cutHost }, secureOrigin: server.httpUrl });
  closeLater(() => cutBrowser.close());
  const otherBrowser = await launchChromium({ secureOrigin: server.httpUrl });
  closeLater(() => otherBrowser.close());
  const cut = await openDemo(server.httpUrl, cutBrowser.browser, 'cut', { roomID: 'cut' });
  const other = await openDemo(server.httpUrl, otherBrowser.browser, 'other', { roomID: 'cut' });
  await Promise.all([waitPublishing(cut), waitPublishing(other)]);
  await Promise.all([remoteVideoSize(cut, 'stream_other'), remoteVideoSize(other, 'stream_cut')]);
  await Promise.all([decodingAgain(cut, 5000), decodingAgain(other, 5000)]);

  const [cutSkip, otherSkip] = [await logLength(cut), await logLength(other)];
  cutHost.cutUdp(true);
  await new Promise((resolve) => setTimeout(resolve, 5000));
  const restoredAt = Date.now();
  cutHost.cutUdp(false);
  const [cutDecoding, otherDecoding] = await Promise.all([decodingAgain(cut, 10_000), decodingAgain(other, 10_000)]);
  // Both states back (they may follow the frames by a sample of the stall watch).
  await cut.waitForFunction(
    (skip) => {
      const lines = (document.getElementById('log')!.textContent ?? '').split('\n').slice(skip).join('\n');
      return / stream=stream_cut Publishing code=0/.test(lines) && / stream=stream_other Playing code=0/.test(lines);
    },
    cutSkip,
    { timeout: 10_000 },
  );
  const cutLog = await logSince(cut, cutSkip);
  const otherLog = await logSince(other, otherSkip);
  const shown = (log: Array<{ line: string }>): string => log.map((l) => l.line).join('\n');
  const restoredMs = restoredAt % 86_400_000;
  const back = (pattern: RegExp): number => cutLog.find((l) => l.atMs >= restoredMs - 1000 && pattern.test(l.line))!.atMs - restoredMs;
  t.diagnostic(
    `after the cut: frames decoded again in ${cutDecoding - restoredAt} ms (cut page) and ${otherDecoding - restoredAt} ms (other page); ` +
      `Publishing ${back(/Publishing/)} ms, Playing ${back(/Playing/)} ms`,
  );
  assert.match(shown(cutLog), /stream=stream_cut PublishRequesting code=1003020/, shown(cutLog));
  assert.match(shown(cutLog), /stream=stream_other PlayRequesting code=1004020/, shown(cutLog));
  assert.ok(cutDecoding - restoredAt <= 3000 && otherDecoding - restoredAt <= 3000, 'video flows again both ways within 3 s');
  assert.ok(back(/Publishing/) <= 3000 && back(/Playing/) <= 3000, `states back within 3 s:\n${shown(cutLog)}`);
  assert.doesNotMatch(
    shown(otherLog),
    /onRoomUserUpdate|onRoomStreamUpdate|onPlayerStateUpdate|onPublisherStateUpdate/,
    'the other user saw nothing but a pause',
  );
  assert.ok((await metric(server, 'parley_media_stalls_total')) >= 1, 'the server saw the stall too');

  // A cut that stays: Requesting with the codes, retried, never NoPublish/NoPlay in silence.
  const staySkip = await logLength(cut);
  cutHost.cutUdp(true);
  await new Promise((resolve) => setTimeout(resolve, 8000));
  const stayLog = shown(await logSince(cut, staySkip));
  assert.match(stayLog, /stream=stream_cut PublishRequesting code=1003020/, stayLog);
  assert.match(stayLog, /stream=stream_other PlayRequesting code=1004020/, stayLog);
  assert.doesNotMatch(stayLog, /NoPublish|NoPlay|Publishing|Playing/, stayLog);
});
