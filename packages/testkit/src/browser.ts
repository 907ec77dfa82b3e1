import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { TestHost, TestNetwork } from './network.js';

export interface ChromiumOptions {
  /** Run Chromium inside this host's namespace (its traffic then crosses the host's link). */
  host?: { network: TestNetwork; host: TestHost };
  /** An http origin other than localhost that may use the camera, e.g. the server's on a test network. */
  secureOrigin?: string;
  /** A .y4m clip as the fake camera instead of Chromium's built-in pattern (which encodes at only ~150 kbit/s). */
  fakeVideoFile?: string;
  /** A .wav clip as the fake microphone (looped) instead of Chromium's beeps, which are mostly silence. */
  fakeAudioFile?: string;
  /** How many fake cameras there are (1 by default); the fake microphones and speakers are always three. */
  fakeCameras?: number;
  /** The user refuses the camera and microphone (as if the browser's prompt were answered "Block"). */
  refuseDevices?: boolean;
  /** Certificates to trust (their `spki` hashes, see makeCertificate): for https, wss and TURN over TLS. */
  trustSpki?: string[];
}

/** Chromium from the system (Debian's package), with a fake camera and microphone. */
export async function launchChromium(options: ChromiumOptions = {}): Promise<{ browser: Browser; close(): Promise<void> }> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'parley-chromium-'));
  const executable = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: options.host ? options.host.network.executable(options.host.host, executable) : executable,
    headless: true,
    args: [
      options.fakeCameras ? `--use-fake-device-for-media-stream=device-count=${options.fakeCameras}` : '--use-fake-device-for-media-stream',
      options.refuseDevices ? '--use-fake-ui-for-media-stream=deny' : '--use-fake-ui-for-media-stream',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // The test server listens on 127.0.0.1 only, and Chromium leaves loopback out of ICE by default.
      '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required',
      ...(options.secureOrigin ? [`--unsafely-treat-insecure-origin-as-secure=${options.secureOrigin}`] : []),
      ...(options.trustSpki ? [`--ignore-certificate-errors-spki-list=${options.trustSpki.join(',')}`] : []),
      ...(options.fakeVideoFile ? [`--use-file-for-fake-video-capture=${options.fakeVideoFile}`] : []),
      ...(options.fakeAudioFile ? [`--use-file-for-fake-audio-capture=${options.fakeAudioFile}`] : []),
    ],
  });
  const browser = context.browser();
  return {
    browser: browser ?? (context as unknown as Browser),
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Records every RTCPeerConnection, camera/microphone stream and shared screen the page makes, for tests to inspect. */
export const RECORD_MEDIA = `
  (() => {
    const Native = window.RTCPeerConnection;
    window.__pcs = [];
    window.RTCPeerConnection = function (...args) {
      const pc = new Native(...args);
      window.__pcs.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
    const record = (method, streams) => {
      const original = navigator.mediaDevices[method].bind(navigator.mediaDevices);
      navigator.mediaDevices[method] = async (constraints) => {
        const stream = await original(constraints);
        streams.push(stream);
        return stream;
      };
    };
    window.__captures = [];
    window.__screens = [];
    record('getUserMedia', window.__captures);
    record('getDisplayMedia', window.__screens);
  })();
`;

/** The readyState of every captured camera/microphone track. */
export function captureTrackStates(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    (window as unknown as { __captures: MediaStream[] }).__captures.flatMap((s) => s.getTracks().map((t) => t.readyState)),
  );
}

export interface InboundTotals {
  framesDecoded: number;
  /** Video RTP packets received, and keyframe requests (PLIs) sent: frames not decoded tell apart nothing arriving and a stream that cannot be decoded. */
  videoPackets: number;
  pliSent: number;
  audioBytes: number;
  /** The audio's energy so far (totalAudioEnergy): it grows with sound, not with silence. */
  audioEnergy: number;
  /** Peer connections the page has opened (closed ones too): a renegotiation-free change keeps it. */
  peerConnections: number;
  /** mimeType of every inbound video stream, e.g. "video/VP8". */
  videoCodecs: string[];
}

export async function inboundTotals(page: Page): Promise<InboundTotals> {
  return page.evaluate(async () => {
    type Stat = {
      type: string;
      kind?: string;
      framesDecoded?: number;
      packetsReceived?: number;
      pliCount?: number;
      bytesReceived?: number;
      totalAudioEnergy?: number;
      codecId?: string;
      mimeType?: string;
    };
    const pcs = (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs;
    const totals = {
      framesDecoded: 0,
      videoPackets: 0,
      pliSent: 0,
      audioBytes: 0,
      audioEnergy: 0,
      peerConnections: pcs.length,
      videoCodecs: [] as string[],
    };
    for (const pc of pcs) {
      if (pc.connectionState === 'closed') continue;
      const stats = await pc.getStats();
      stats.forEach((s: Stat) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'video') {
          totals.framesDecoded += s.framesDecoded ?? 0;
          totals.videoPackets += s.packetsReceived ?? 0;
          totals.pliSent += s.pliCount ?? 0;
          const codec = s.codecId ? (stats.get(s.codecId) as Stat | undefined) : undefined;
          if (codec?.mimeType) totals.videoCodecs.push(codec.mimeType);
        }
        if (s.kind === 'audio') {
          totals.audioBytes += s.bytesReceived ?? 0;
          totals.audioEnergy += s.totalAudioEnergy ?? 0;
        }
      });
    }
    return totals;
  });
}

/** What a page's peer connections have sent and received so far, mostly of video (cumulative counters). */
export interface VideoSample {
  /** When the sample was taken, ms (performance.now() of the page). */
  at: number;
  /** RTP bytes of video sent, headers included, over all encodings. */
  bytesSent: number;
  /** The sender's congestion controller's estimate of its uplink, bits/s (0 before one exists). */
  availableOutgoingBitrate: number;
  /** Video frames sent, per simulcast layer's RID. */
  framesSentByRid: Record<string, number>;
  /** Width of the last frame each simulcast layer sent: a busy encoder scales its layers down. */
  frameWidthByRid: Record<string, number>;
  framesDecoded: number;
  bytesReceived: number;
  freezeCount: number;
  /** Seconds of frozen video (Chromium's freeze definition: a frame interval over max(3 × mean, mean + 150 ms)). */
  totalFreezesDuration: number;
  /** Resolution of the last decoded frame of each inbound video stream. */
  frameSizes: Array<{ width: number; height: number }>;
  /** Audio samples played out, and those of them the receiver made up for lost packets (concealment). */
  audioSamplesReceived: number;
  audioSamplesConcealed: number;
}

export async function sampleVideo(page: Page): Promise<VideoSample> {
  return page.evaluate(async () => {
    type Stat = Record<string, number | string | boolean | undefined> & { type: string; kind?: string };
    const sample = {
      at: performance.now(),
      bytesSent: 0,
      availableOutgoingBitrate: 0,
      framesSentByRid: {} as Record<string, number>,
      frameWidthByRid: {} as Record<string, number>,
      framesDecoded: 0,
      bytesReceived: 0,
      freezeCount: 0,
      totalFreezesDuration: 0,
      frameSizes: [] as Array<{ width: number; height: number }>,
      audioSamplesReceived: 0,
      audioSamplesConcealed: 0,
    };
    for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
      if (pc.connectionState === 'closed') continue;
      // No named helpers in here: the test runner's transform would wrap them in a function the page lacks.
      (await pc.getStats()).forEach((s: Stat) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          sample.bytesSent += Number(s.bytesSent ?? 0) + Number(s.headerBytesSent ?? 0);
          if (typeof s.rid === 'string') {
            sample.framesSentByRid[s.rid] = (sample.framesSentByRid[s.rid] ?? 0) + Number(s.framesSent ?? 0);
            if (Number(s.frameWidth ?? 0) > 0) sample.frameWidthByRid[s.rid] = Number(s.frameWidth);
          }
        }
        if (s.type === 'candidate-pair' && s.nominated) sample.availableOutgoingBitrate += Number(s.availableOutgoingBitrate ?? 0);
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          sample.framesDecoded += Number(s.framesDecoded ?? 0);
          sample.bytesReceived += Number(s.bytesReceived ?? 0) + Number(s.headerBytesReceived ?? 0);
          sample.freezeCount += Number(s.freezeCount ?? 0);
          sample.totalFreezesDuration += Number(s.totalFreezesDuration ?? 0);
          if (Number(s.frameWidth ?? 0) > 0) sample.frameSizes.push({ width: Number(s.frameWidth), height: Number(s.frameHeight) });
        }
        if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          sample.audioSamplesReceived += Number(s.totalSamplesReceived ?? 0);
          sample.audioSamplesConcealed += Number(s.concealedSamples ?? 0);
        }
      });
    }
    return sample;
  });
}

/** Samples every page every `intervalMs` for `durationMs`, side by side: one list of samples per page. */
export async function sampleEvery(pages: Page[], durationMs: number, intervalMs: number): Promise<VideoSample[][]> {
  const samples: VideoSample[][] = pages.map(() => []);
  const start = Date.now();
  for (;;) {
    const round = await Promise.all(pages.map((page) => sampleVideo(page)));
    round.forEach((sample, i) => samples[i]!.push(sample));
    if (Date.now() - start >= durationMs) return samples;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Bits per second of video sent between two samples. */
export const sendRate = (from: VideoSample, to: VideoSample): number => ((to.bytesSent - from.bytesSent) * 8 * 1000) / (to.at - from.at);
/** The share of audio concealed between two samples (0 when none was played). */
export const concealment = (from: VideoSample, to: VideoSample): number =>
  (to.audioSamplesConcealed - from.audioSamplesConcealed) / Math.max(1, to.audioSamplesReceived - from.audioSamplesReceived);
/** Frames the simulcast layer `rid` sent between two samples. */
export const framesSent = (from: VideoSample, to: VideoSample, rid: string): number =>
  (to.framesSentByRid[rid] ?? 0) - (from.framesSentByRid[rid] ?? 0);
/** Frames decoded per second between two samples. */
export const decodeRate = (from: VideoSample, to: VideoSample): number =>
  ((to.framesDecoded - from.framesDecoded) * 1000) / (to.at - from.at);

/** Width of the first inbound video stream's last decoded frame (0 before one). */
export const receivedWidth = (sample: VideoSample): number => sample.frameSizes[0]?.width ?? 0;
export const receivedWidths = (samples: VideoSample[]): string => samples.map(receivedWidth).join(' ');

/**
 * Which simulcast layer (of `rids`) a player decodes: the one whose width as the publisher sent it
 * at about the same time is nearest to the player's frame width. Fixed widths would not do: a
 * publisher short of CPU scales every layer down. A layer not being sent (paused) has no width.
 */
export function layerReceived(received: VideoSample, sent: VideoSample, rids: readonly string[]): string | undefined {
  const width = receivedWidth(received);
  if (width === 0) return undefined;
  let nearest: string | undefined;
  let distance = Infinity;
  for (const rid of rids) {
    const sentWidth = sent.frameWidthByRid[rid];
    if (sentWidth !== undefined && Math.abs(width - sentWidth) <= distance) {
      nearest = rid;
      distance = Math.abs(width - sentWidth);
    }
  }
  return nearest;
}

/** One end of a candidate pair, as getStats tells it. */
export interface PathEnd {
  candidateType: string;
  protocol: string;
  /** For a relay candidate: how the browser reaches the TURN server (udp, tcp, tls). */
  relayProtocol?: string;
  address: string;
  port: number;
}

/** The candidate pair that carries each open peer connection's media: what kind of path the page's calls took. */
export async function mediaPaths(page: Page): Promise<Array<{ local: PathEnd; remote: PathEnd }>> {
  return page.evaluate(async () => {
    type Stat = Record<string, unknown> & { type: string; id: string };
    const paths: Array<{ local: PathEnd; remote: PathEnd }> = [];
    for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
      if (pc.connectionState !== 'connected') continue;
      const stats = await pc.getStats();
      stats.forEach((s: Stat) => {
        if (s.type !== 'transport' || typeof s.selectedCandidatePairId !== 'string') return;
        const pair = stats.get(s.selectedCandidatePairId) as Stat;
        const [local, remote] = [pair.localCandidateId, pair.remoteCandidateId].map((id) => {
          const c = stats.get(id as string) as Stat;
          return {
            candidateType: String(c.candidateType),
            protocol: String(c.protocol),
            ...(c.relayProtocol ? { relayProtocol: String(c.relayProtocol) } : {}),
            address: String(c.address),
            port: Number(c.port),
          };
        });
        paths.push({ local: local!, remote: remote! });
      });
    }
    return paths;
  });
}

/** Waits until the page has decoded `frames` more video frames (over all it plays), or fails after `timeoutMs`. */
export async function waitDecoding(page: Page, frames = 10, timeoutMs = 20_000): Promise<void> {
  const start = (await inboundTotals(page)).framesDecoded;
  for (const deadline = Date.now() + timeoutMs; (await inboundTotals(page)).framesDecoded <= start + frames;) {
    if (Date.now() > deadline) throw new Error(`fewer than ${frames} video frames decoded within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Frames keep being decoded and audio keeps arriving: at least two more frames within 5 s. (Right
 * after the call starts a player has been seen to receive a layer's packets for over 1.5 s without
 * decoding them or asking for a keyframe; see the README's known issues.)
 */
export async function assertMediaFlows(page: Page): Promise<void> {
  const before = await inboundTotals(page);
  let after = before;
  for (let waited = 0; waited < 5000 && after.framesDecoded < before.framesDecoded + 2; waited += 500) {
    await page.waitForTimeout(500);
    after = await inboundTotals(page);
  }
  assert.ok(
    after.framesDecoded >= before.framesDecoded + 2,
    `video frames are decoded (${before.framesDecoded} → ${after.framesDecoded}; packets ${before.videoPackets} → ${after.videoPackets}, PLIs sent ${before.pliSent} → ${after.pliSent})`,
  );
  assert.ok(after.audioBytes > before.audioBytes, `audio arrives (${before.audioBytes} → ${after.audioBytes} bytes)`);
}
