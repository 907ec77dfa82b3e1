import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Chromium from the system (Debian's package), with a fake camera and microphone. */
export async function launchChromium(): Promise<{ browser: Browser; close(): Promise<void> }> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'parley-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
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

/** Records every RTCPeerConnection and every camera/microphone stream the page makes, for tests to inspect. */
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
    window.__captures = [];
    const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = async (constraints) => {
      const stream = await getUserMedia(constraints);
      window.__captures.push(stream);
      return stream;
    };
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
  audioBytes: number;
  /** mimeType of every inbound video stream, e.g. "video/VP8". */
  videoCodecs: string[];
}

export async function inboundTotals(page: Page): Promise<InboundTotals> {
  return page.evaluate(async () => {
    type Stat = { type: string; kind?: string; framesDecoded?: number; bytesReceived?: number; codecId?: string; mimeType?: string };
    const totals = { framesDecoded: 0, audioBytes: 0, videoCodecs: [] as string[] };
    for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
      if (pc.connectionState === 'closed') continue;
      const stats = await pc.getStats();
      stats.forEach((s: Stat) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'video') {
          totals.framesDecoded += s.framesDecoded ?? 0;
          const codec = s.codecId ? (stats.get(s.codecId) as Stat | undefined) : undefined;
          if (codec?.mimeType) totals.videoCodecs.push(codec.mimeType);
        }
        if (s.kind === 'audio') totals.audioBytes += s.bytesReceived ?? 0;
      });
    }
    return totals;
  });
}
