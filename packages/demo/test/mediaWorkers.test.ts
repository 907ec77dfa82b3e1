/**
 * A browser call on a server whose media runs on two media workers, when the worker that holds it
 * dies: Chromium's peer connections move to the other worker by ICE restart, with a new DTLS
 * association each (the new worker's fingerprint), and the page shows nothing of it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startServer, DEV_APP } from '@parley/server';
import { launchChromium, openDemo, remoteVideoSize, sampleEvery, teardown, waitPublishing } from '@parley/testkit';

/** The publisher and player state changes the page's log shows. */
const stateChanges = async (page: Page): Promise<string[]> =>
  (await page.evaluate(() => document.getElementById('log')!.textContent ?? ''))
    .split('\n')
    .filter((line) => /on(Publisher|Player)StateUpdate/.test(line));

/** Its peer connections, by their states. */
const connectionStates = (page: Page): Promise<string[]> =>
  page.evaluate(() => (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs.map((pc) => pc.connectionState));

test('a browser call whose media worker dies moves to the other by ICE restart and a new DTLS association: the same peer connections, video going on, no state shown', async (t) => {
  const closeLater = teardown(t);
  const media = { workers: 2 };
  const server = await startServer({ host: '127.0.0.1', port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent', media });
  closeLater(() => server.close());
  const chromium = await launchChromium({ secureOrigin: server.httpUrl });
  closeLater(() => chromium.close());
  const publisher = await openDemo(server.httpUrl, chromium.browser, 'pub', { roomID: 'moves' });
  await waitPublishing(publisher);
  const player = await openDemo(server.httpUrl, chromium.browser, 'player', { roomID: 'moves', publish: false });
  await remoteVideoSize(player, 'stream_pub');

  const workers = server.media.workers!;
  const slot = workers.endpoints().indexOf(2);
  assert.ok(slot >= 0, `one worker holds the publisher and its player: ${workers.endpoints().join(', ')}`);
  const pages = [publisher, player];
  const [shownBefore, pcsBefore] = [await Promise.all(pages.map(stateChanges)), await Promise.all(pages.map(connectionStates))];
  workers.stop(slot);
  const [samples] = (await sampleEvery([player], 8_000, 250)) as [Awaited<ReturnType<typeof sampleEvery>>[number]];

  let longestStallMs = 0;
  for (let i = 1, since = samples[0]!.at; i < samples.length; i++) {
    if (samples[i]!.framesDecoded > samples[i - 1]!.framesDecoded) since = samples[i]!.at;
    longestStallMs = Math.max(longestStallMs, samples[i]!.at - since);
  }
  const last = samples.filter((s) => samples.at(-1)!.at - s.at <= 3_000);
  const fps = ((last.at(-1)!.framesDecoded - last[0]!.framesDecoded) * 1000) / (last.at(-1)!.at - last[0]!.at);
  console.log(`# after the worker died: the longest stall ${Math.round(longestStallMs)} ms; the last 3 s at ${fps.toFixed(1)} frames/s`);
  assert.ok(fps >= 10, `video goes on: ${fps.toFixed(1)} frames/s`);
  assert.ok(longestStallMs <= 3_000, `a short stall: ${Math.round(longestStallMs)} ms`);
  const moved = workers.endpoints();
  assert.equal(moved[0]! + moved[1]!, 2, `both moved, none left behind or opened twice: ${moved.join(', ')}`);
  assert.deepEqual(await Promise.all(pages.map(connectionStates)), pcsBefore, 'the same peer connections, connected');
  assert.deepEqual(await Promise.all(pages.map(stateChanges)), shownBefore, 'no state change shown');
});
