/**
 * Calls over impaired links: a Chromium publisher and a Chromium player, each in its own network
 * namespace, through Parley and, side by side in the same run, directly (Chromium to Chromium,
 * libwebrtc end to end: the reference). For each scenario a fresh call warms up on a clean link,
 * then the impairment is applied (the publisher's uplink or the player's downlink) and the player
 * is measured: frames decoded per second, seconds frozen per minute, the resolution it ends on, and
 * the share of audio concealed. Every scenario runs at each of the round trips asked for: each
 * host's link is delayed by half of it each way (NFQUEUE, see the test kit's delay), so that the
 * direct call's path (the publisher's link, then the player's) is as long one way as Parley's. Needs
 * root (namespaces, tc, iptables), as the network tests do.
 */
import type { Browser, Page } from 'playwright-core';
import { DEV_APP, startServer, type ParleyServer } from '@parley/server';
import {
  RECORD_MEDIA,
  TestNetwork,
  cameraClip,
  concealment,
  decodeRate,
  launchChromium,
  openDemo,
  remoteVideoSize,
  sampleEvery,
  sendRate,
  speechClip,
  type LinkShape,
  type TestHost,
  type VideoSample,
} from '@parley/testkit';
import type { VideoCodec } from '@parley/sdk';
import { row, sleep, type Row } from './lib.js';

interface Scenario {
  name: string;
  uplink?: LinkShape;
  downlink?: LinkShape;
  /** The impairment is lifted this share of the way into the window (a capacity drop and its recovery); it lasts the window when absent. */
  liftAfter?: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'clean' },
  { name: 'downlink 10 % loss', downlink: { loss: 0.1 } },
  { name: 'downlink 30 % loss', downlink: { loss: 0.3 } },
  { name: 'downlink 500 kbit/s', downlink: { rateKbit: 500 } },
  { name: 'uplink 30 % loss', uplink: { loss: 0.3 } },
  { name: 'uplink 500 kbit/s', uplink: { rateKbit: 500 } },
  { name: 'downlink 1 Mbit/s with 5 % loss', downlink: { rateKbit: 1000, loss: 0.05 } },
  { name: '50 % loss both ways', uplink: { loss: 0.5 }, downlink: { loss: 0.5 } },
  { name: 'downlink dropping to 300 kbit/s for half the window', downlink: { rateKbit: 300 }, liftAfter: 0.5 },
];

/** A camera and the player's view of it: the SDK's default capture, or 720p. */
export interface View {
  width: number;
  height: number;
  fps: number;
}

export const VIEWS: Record<string, View> = {
  '640x360': { width: 640, height: 360, fps: 15 },
  '1280x720': { width: 1280, height: 720, fps: 30 },
};

/** On a clean link first, so that both calls start the impairment at full quality. */
const WARM_UP_MS = 10_000;

interface Measured {
  /** Frames decoded in each second of the window. */
  fps: number[];
  /** The longest time without a frame decoded (to the sampling's 250 ms). */
  longestStallMs: number;
  freezeSecondsPerMinute: number;
  height: number;
  concealment: number;
  /** What the publisher's browser sent of video over the window, and the median of its congestion controller's estimate, bits/s. */
  publisherSendBps: number;
  publisherEstimateBps: number;
}

interface Call {
  publisher: Page;
  player: Page;
  close(): Promise<void>;
}

interface Hosts {
  network: TestNetwork;
  server: ParleyServer;
  publisherHost: TestHost;
  playerHost: TestHost;
  publisherBrowser: Browser;
  playerBrowser: Browser;
  view: View;
  videoCodec: VideoCodec;
}

export async function benchNetwork({
  seconds,
  roundTripsMs,
  views,
  only,
  videoCodec,
}: {
  seconds: number;
  /** What Parley's publisher sends (the direct call sends the browser's default, VP8). */
  videoCodec: VideoCodec;
  roundTripsMs: number[];
  views: string[];
  /** Only the scenarios whose names contain this. */
  only?: string;
}): Promise<Row[]> {
  const scenarios = SCENARIOS.filter((scenario) => !only || scenario.name.includes(only));
  const rows: Row[] = [];
  for (const name of views) {
    const view = VIEWS[name];
    if (!view) throw new Error(`no view ${name}: ${Object.keys(VIEWS).join(', ')}`);
    rows.push(...(await benchView(view, scenarios, seconds, roundTripsMs, videoCodec)));
  }
  return rows;
}

async function benchView(
  view: View,
  scenarios: Scenario[],
  seconds: number,
  roundTripsMs: number[],
  videoCodec: VideoCodec,
): Promise<Row[]> {
  const network = new TestNetwork();
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const publisherHost = network.addHost();
    const playerHost = network.addHost();
    network.routeBetweenHosts();
    const server = await startServer({ host: network.serverIp, port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
    closers.push(() => server.close());
    const clip = cameraClip({ ...view, seconds: 4 });
    const voice = speechClip();
    const launch = async (host: TestHost): Promise<Browser> => {
      const chromium = await launchChromium({
        host: { network, host },
        secureOrigin: server.httpUrl,
        fakeVideoFile: clip,
        fakeAudioFile: voice,
      });
      closers.push(() => chromium.close());
      return chromium.browser;
    };
    const hosts: Hosts = {
      network,
      server,
      publisherHost,
      playerHost,
      publisherBrowser: await launch(publisherHost),
      playerBrowser: await launch(playerHost),
      view,
      videoCodec,
    };
    const rows: Row[] = [];
    for (const roundTripMs of roundTripsMs) {
      for (const host of [publisherHost, playerHost]) {
        await host.delayUplink(roundTripMs / 2);
        await host.delayDownlink(roundTripMs / 2);
      }
      for (const [i, scenario] of scenarios.entries()) {
        const name = `${view.width}×${view.height}, ${scenario.name}${roundTripMs > 0 ? `, ${roundTripMs} ms round trip` : ''}`;
        const parley = await measure(hosts, scenario, seconds, () => parleyCall(hosts, `net${roundTripMs}-${i}`));
        const direct = await measure(hosts, scenario, seconds, () => directCall(hosts));
        rows.push(...compare(name, parley, direct));
        console.log(`network: ${name} done`);
      }
    }
    return rows;
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    network.close();
  }
}

async function measure(hosts: Hosts, scenario: Scenario, seconds: number, start: () => Promise<Call>): Promise<Measured> {
  const call = await start();
  try {
    await sleep(WARM_UP_MS);
    hosts.publisherHost.shapeUplink(scenario.uplink ?? {});
    hosts.playerHost.shapeDownlink(scenario.downlink ?? {});
    const lift =
      scenario.liftAfter === undefined
        ? undefined
        : setTimeout(
            () => {
              hosts.publisherHost.shapeUplink({});
              hosts.playerHost.shapeDownlink({});
            },
            scenario.liftAfter * seconds * 1000,
          );
    const [fine, sent] = (await sampleEvery([call.player, call.publisher], seconds * 1000, 250)) as [VideoSample[], VideoSample[]];
    clearTimeout(lift);
    // Per second for the frame rates, every sample for the stalls.
    const samples = fine.filter((_, i) => i % 4 === 0);
    const first = samples[0]!;
    const last = fine.at(-1)!;
    let [longestStallMs, since] = [0, first.at];
    for (const [i, sample] of fine.entries()) {
      if (i > 0 && sample.framesDecoded > fine[i - 1]!.framesDecoded) since = sample.at;
      longestStallMs = Math.max(longestStallMs, sample.at - since);
    }
    return {
      fps: samples.slice(1).map((sample, i) => decodeRate(samples[i]!, sample)),
      longestStallMs,
      freezeSecondsPerMinute: ((last.totalFreezesDuration - first.totalFreezesDuration) * 60_000) / (last.at - first.at),
      height: Math.max(0, ...last.frameSizes.map((size) => size.height)),
      concealment: concealment(first, last),
      publisherSendBps: sendRate(sent[0]!, sent.at(-1)!),
      publisherEstimateBps: median(sent.map((sample) => sample.availableOutgoingBitrate)),
    };
  } finally {
    hosts.publisherHost.shapeUplink({});
    hosts.playerHost.shapeDownlink({});
    await call.close();
  }
}

/** The demo page publishing its camera (simulcast layers as its size gives) and another playing it in a view of the camera's size. */
async function parleyCall({ server, publisherBrowser, playerBrowser, view, videoCodec }: Hosts, roomID: string): Promise<Call> {
  const publisher = await openDemo(server.httpUrl, publisherBrowser, 'pub', { roomID, scenario: 'HighQualityVideoCall', videoCodec });
  const player = await openDemo(server.httpUrl, playerBrowser, 'player', { roomID, publish: false });
  await player.addStyleTag({
    content: `.tile.remote, .tile.remote video { width: ${view.width}px !important; height: ${view.height}px !important; }`,
  });
  await remoteVideoSize(player, 'stream_pub');
  return {
    publisher,
    player,
    async close() {
      await player.close();
      await publisher.close();
    },
  };
}

/** The same camera, microphone and view in a plain peer connection between the two browsers (one encoding, no server). */
async function directCall({ server, publisherBrowser, playerBrowser, view }: Hosts): Promise<Call> {
  const open = async (browser: Browser): Promise<Page> => {
    const page = await browser.newPage();
    await page.addInitScript(RECORD_MEDIA);
    // Any page of the server's origin: it is the one Chromium lets use the camera.
    await page.goto(`${server.httpUrl}/`);
    return page;
  };
  const publisher = await open(publisherBrowser);
  const player = await open(playerBrowser);
  // Offers and answers carry every candidate (no trickling): each page waits for gathering to end.
  const offer = await publisher.evaluate(async ({ width, height, fps }) => {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { ideal: width }, height: { ideal: height }, frameRate: { ideal: fps } },
    });
    const pc = new RTCPeerConnection();
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    (window as unknown as { direct: RTCPeerConnection }).direct = pc;
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') resolve();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    });
    return pc.localDescription!.sdp;
  }, view);
  const answer = await player.evaluate(
    async ({ sdp, width, height }) => {
      // With the camera granted, Chromium offers its real addresses rather than mDNS names, which nothing here resolves.
      for (const track of (await navigator.mediaDevices.getUserMedia({ audio: true })).getTracks()) track.stop();
      const pc = new RTCPeerConnection();
      const video = document.createElement('video');
      video.id = 'direct';
      video.autoplay = true;
      video.playsInline = true;
      video.style.width = `${width}px`;
      video.style.height = `${height}px`;
      document.body.append(video);
      pc.addEventListener('track', (event) => (video.srcObject = event.streams[0]!));
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await new Promise<void>((resolve) => {
        if (pc.iceGatheringState === 'complete') resolve();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
      });
      return pc.localDescription!.sdp;
    },
    { sdp: offer, ...view },
  );
  await publisher.evaluate(
    (sdp) => (window as unknown as { direct: RTCPeerConnection }).direct.setRemoteDescription({ type: 'answer', sdp }),
    answer,
  );
  await player.waitForFunction(() => (document.querySelector<HTMLVideoElement>('#direct')?.videoWidth ?? 0) > 0, undefined, {
    timeout: 15_000,
  });
  return {
    publisher,
    player,
    async close() {
      await player.close();
      await publisher.close();
    },
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Parley's numbers, with the direct call's beside them in the notes. */
function compare(scenario: string, parley: Measured, direct: Measured): Row[] {
  const directFps = median(direct.fps);
  return [
    row(
      `${scenario}: frames/s received`,
      'fps',
      parley.fps,
      `direct ${directFps.toFixed(1)}; Parley ×${(median(parley.fps) / directFps).toFixed(2)}`,
    ),
    {
      measure: `${scenario}: frozen`,
      unit: 's/min',
      n: 1,
      p50: parley.freezeSecondsPerMinute,
      note: `direct ${direct.freezeSecondsPerMinute.toFixed(1)}; Parley ${(parley.freezeSecondsPerMinute - direct.freezeSecondsPerMinute).toFixed(1)} more`,
    },
    {
      measure: `${scenario}: longest stall`,
      unit: 'ms',
      n: 1,
      p50: parley.longestStallMs,
      note: `direct ${direct.longestStallMs.toFixed(0)} ms`,
    },
    { measure: `${scenario}: resolution at the end`, unit: 'px high', n: 1, p50: parley.height, note: `direct ${direct.height}` },
    {
      measure: `${scenario}: video the publisher sends`,
      unit: 'kbit/s',
      n: 1,
      p50: Math.round(parley.publisherSendBps / 1000),
      note: `direct ${Math.round(direct.publisherSendBps / 1000)}; its estimate ${Math.round(parley.publisherEstimateBps / 1000)} (direct ${Math.round(direct.publisherEstimateBps / 1000)})`,
    },
    {
      measure: `${scenario}: audio concealed`,
      unit: '%',
      n: 1,
      p50: 100 * parley.concealment,
      note: `direct ${(100 * direct.concealment).toFixed(1)} %`,
    },
  ];
}
