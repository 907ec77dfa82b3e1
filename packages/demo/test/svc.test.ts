/**
 * VP9 spatial layers (SVC) end to end: a Chromium publisher sends one VP9 stream of spatial layers
 * (`L2T1` for the SDK's default 640×360 capture), and Chromium players get the layer their views
 * call for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startServer, DEV_APP } from '@parley/server';
import { teardown, cameraClip, launchChromium, openDemo, receivedWidth, sampleVideo, serverMetric, waitPublishing } from '@parley/testkit';

const KEYFRAME_REQUESTS = 'parley_media_keyframe_requests_sent_total';

/** Sizes the remote tile's video to `width`×`height`. */
const viewAt = (page: Page, width: number, height: number): Promise<unknown> =>
  page.addStyleTag({ content: `.tile.remote, .tile.remote video { width: ${width}px !important; height: ${height}px !important; }` });

/** What the page's peer connections say of their video: the encodings' scalability modes, and the codecs received. */
function videoStats(page: Page): Promise<{ sent: string[]; received: string[] }> {
  return page.evaluate(async () => {
    const found = { sent: [] as string[], received: [] as string[] };
    for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
      const stats = await pc.getStats();
      stats.forEach((s: { type: string; kind?: string; scalabilityMode?: string; codecId?: string }) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') found.sent.push(String(s.scalabilityMode));
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          found.received.push(String((stats.get(s.codecId ?? '') as { mimeType?: string } | undefined)?.mimeType));
        }
      });
    }
    return found;
  });
}

/** Polls the page's received width every 100 ms until `done` says yes; the width then. */
async function widthWhen(page: Page, done: (width: number) => boolean, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  let width = 0;
  while (Date.now() < until) {
    width = receivedWidth(await sampleVideo(page));
    if (done(width)) return width;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out; the last width received was ${width}`);
}

test('VP9 SVC: each player gets the spatial layer of its view; a view that shrinks moves down without a keyframe or a freeze, and back up at one when it grows', async (t) => {
  const closeLater = teardown(t);
  const server = await startServer({ host: '127.0.0.1', port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  closeLater(() => server.close());
  const clip = cameraClip();
  const launch = async (): Promise<Awaited<ReturnType<typeof launchChromium>>['browser']> => {
    const chromium = await launchChromium({ secureOrigin: server.httpUrl, fakeVideoFile: clip });
    closeLater(() => chromium.close());
    return chromium.browser;
  };
  const publisher = await openDemo(server.httpUrl, await launch(), 'pub', { roomID: 'svc', videoCodec: 'VP9' });
  await waitPublishing(publisher);
  const small = await openDemo(server.httpUrl, await launch(), 'small', { roomID: 'svc', publish: false });
  const large = await openDemo(server.httpUrl, await launch(), 'large', { roomID: 'svc', publish: false });
  await viewAt(small, 320, 180);
  await viewAt(large, 640, 360);
  await widthWhen(small, (width) => width === 320, 30_000);
  await widthWhen(large, (width) => width === 640, 30_000);
  assert.deepEqual((await videoStats(publisher)).sent, ['L2T1'], 'one encoding of two spatial layers');
  for (const page of [small, large]) assert.deepEqual((await videoStats(page)).received, ['video/VP9']);

  // The large view shrinks: it moves down at the next picture, and no keyframe is asked of the
  // publisher (a simulcast player waits for one of the smaller layer).
  const requestsBefore = await serverMetric(server.httpUrl, KEYFRAME_REQUESTS);
  const resizedAt = Date.now();
  await viewAt(large, 320, 180);
  await widthWhen(large, (width) => width === 320, 5_000);
  const movedAfterMs = Date.now() - resizedAt;
  assert.equal(await serverMetric(server.httpUrl, KEYFRAME_REQUESTS), requestsBefore, 'no keyframe asked for: moving down needs none');
  const before = await sampleVideo(large);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const after = await sampleVideo(large);
  console.log(`# moved down ${movedAfterMs} ms after the resize; then ${after.framesDecoded - before.framesDecoded} frames in 3 s`);
  assert.equal(after.totalFreezesDuration, before.totalFreezesDuration, 'no freeze after the move');
  assert.ok(after.framesDecoded - before.framesDecoded >= 20, 'and it goes on decoding');

  // Growing again, it moves up at a keyframe, asked for.
  await viewAt(large, 640, 360);
  await widthWhen(large, (width) => width === 640, 10_000);
  assert.ok((await serverMetric(server.httpUrl, KEYFRAME_REQUESTS)) > requestsBefore, 'at a keyframe');
  assert.equal(receivedWidth(await sampleVideo(small)), 320, 'the small view keeps its layer');
});
