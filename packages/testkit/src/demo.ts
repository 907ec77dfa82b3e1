/** The demo page (packages/demo) as tests drive it: join a room, publish, watch the remote tiles. */
import type { Browser, Page } from 'playwright-core';
import { RECORD_MEDIA } from './browser.js';

export interface DemoOptions {
  roomID?: string;
  videoCodec?: 'VP8' | 'VP9' | 'H264';
  /** Publish once logged in (default true). */
  publish?: boolean;
  /** The engine's scenario, which sets the camera's capture size: 360p standard, 720p high quality. */
  scenario?: 'StandardVideoCall' | 'HighQualityVideoCall';
  /** The audio quality selector's value (an AudioConfigPreset) before joining; the browser's choice by default. */
  audioPreset?: number;
  /** More of the page's URL parameters, e.g. `appID` and `token` for a production server. */
  params?: Record<string, string>;
}

/** Opens the demo from `httpUrl` as `userID`, logs in, and publishes `stream_<userID>`. */
export async function openDemo(
  httpUrl: string,
  browser: Browser,
  userID: string,
  { roomID = 'call', videoCodec = 'VP8', publish = true, scenario = 'StandardVideoCall', audioPreset, params = {} }: DemoOptions = {},
): Promise<Page> {
  const page = await browser.newPage();
  await page.addInitScript(RECORD_MEDIA);
  const query = new URLSearchParams({ userID, roomID, videoCodec, scenario, ...params });
  if (audioPreset !== undefined) query.set('audioPreset', String(audioPreset));
  await gotoSteady(page, `${httpUrl}/?${query}`);
  // The page fills its fields (from the URL, and a dev server's credentials) before it logs "ready".
  await page.waitForFunction(() => / ready$/m.test(document.getElementById('log')?.textContent ?? ''));
  await page.click('#join');
  try {
    await page.waitForFunction(() => document.getElementById('state')!.textContent === 'Logined');
  } catch (err) {
    // What the page went through says why (a refused login, a connection that never opened).
    const shown = await page.evaluate(() => ({
      state: document.getElementById('state')?.textContent,
      log: document.getElementById('log')?.textContent?.slice(-2000),
    }));
    throw new Error(`${userID} did not log in: ${JSON.stringify(shown)}`, { cause: err });
  }
  if (publish) await page.click('#publish');
  return page;
}

/**
 * Navigates, again when Chromium aborts with ERR_NETWORK_CHANGED: it does whenever an interface comes or goes on the
 * machine, which the network tests running beside this one do all the time.
 */
export async function gotoSteady(page: Page, url: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(url);
      return;
    } catch (err) {
      if (attempt === 3 || !String(err).includes('ERR_NETWORK_CHANGED')) throw err;
    }
  }
}

/** Shows the page's remote tiles at 1280×720, a view the largest simulcast layer fits: only the network then limits a player's layer. */
export async function enlargeRemoteTiles(page: Page): Promise<void> {
  await page.addStyleTag({ content: '.tile.remote, .tile.remote video { width: 1280px !important; height: 720px !important; }' });
}

/** Waits until the page shows a remote tile whose video has dimensions, and returns them. */
export async function remoteVideoSize(page: Page, streamID: string): Promise<{ width: number; height: number }> {
  const handle = await page.waitForFunction(
    (id) => {
      const video = document.querySelector<HTMLVideoElement>(`.tile[data-stream-id="${id}"] video`);
      return video && video.videoWidth > 0 ? { width: video.videoWidth, height: video.videoHeight } : null;
    },
    streamID,
    { timeout: 15_000 },
  );
  return (await handle.jsonValue())!;
}

/** Waits until the page's publisher reports Publishing. */
export async function waitPublishing(page: Page): Promise<void> {
  await page.waitForFunction(
    () => /onPublisherStateUpdate stream=\S+ Publishing/.test(document.getElementById('log')!.textContent ?? ''),
    undefined,
    {
      timeout: 15_000,
    },
  );
}

/** A quality report as the demo page keeps it: numbers by the vendor's field names, `level` a StreamQualityLevel. */
export type ShownQuality = Record<string, number>;

/**
 * Waits until the page shows a quality report that `accept` takes, and returns it: of the played
 * `streamID`'s tile, or with no stream of the local preview (the publisher's).
 */
export async function waitQuality(
  page: Page,
  streamID: string | undefined,
  accept: (quality: ShownQuality) => boolean = () => true,
  timeoutMs = 15_000,
): Promise<ShownQuality> {
  const deadline = Date.now() + timeoutMs;
  let last: ShownQuality | undefined;
  for (;;) {
    const shown = await page.evaluate(
      (id) =>
        (id === null
          ? document.getElementById('local-quality')
          : document.querySelector<HTMLElement>(`.tile[data-stream-id="${id}"] .quality`)
        )?.dataset.quality,
      streamID ?? null,
    );
    if (shown) {
      last = JSON.parse(shown) as ShownQuality;
      if (accept(last)) return last;
    }
    if (Date.now() > deadline)
      throw new Error(
        `no accepted quality report for ${streamID ?? 'the publisher'} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The sound levels the demo page shows over `durationMs`, every 100 ms: of the played `streamID`'s tile, or with no stream of the local preview (captured). */
export async function shownSoundLevels(page: Page, streamID: string | undefined, durationMs: number): Promise<number[]> {
  const levels: number[] = [];
  for (const end = Date.now() + durationMs; Date.now() < end;) {
    const shown = await page.evaluate(
      (id) =>
        (id === null ? document.getElementById('local-tile') : document.querySelector<HTMLElement>(`.tile[data-stream-id="${id}"]`))
          ?.dataset.soundLevel,
      streamID ?? null,
    );
    if (shown !== undefined) levels.push(Number(shown));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return levels;
}
