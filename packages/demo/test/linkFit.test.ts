/**
 * A 1:1 call of the SDK's default capture (640×360 at 15 frames/s, two simulcast layers) whose
 * player's downlink is short of the 360p layer's rate, for good or for a while (see @parley/testkit's
 * TestNetwork; needs root, tc and iptables).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, DEV_APP } from '@parley/server';
import {
  TestNetwork,
  teardown,
  cameraClip,
  decodeRate,
  enlargeRemoteTiles,
  launchChromium,
  openDemo,
  receivedWidth,
  receivedWidths,
  sampleEvery,
  waitPublishing,
  type VideoSample,
} from '@parley/testkit';

async function call(t: { after(fn: () => unknown): void }) {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const server = await startServer({ host: network.serverIp, port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  closeLater(() => server.close());
  const clip = cameraClip({ width: 640, height: 360, fps: 15, seconds: 4 });
  const publisherBrowser = await launchChromium({ secureOrigin: server.httpUrl, fakeVideoFile: clip });
  closeLater(() => publisherBrowser.close());
  const publisher = await openDemo(server.httpUrl, publisherBrowser.browser, 'pub', { roomID: 'fit' });
  await waitPublishing(publisher);
  const playerHost = network.addHost();
  const playerBrowser = await launchChromium({ host: { network, host: playerHost }, secureOrigin: server.httpUrl, fakeVideoFile: clip });
  closeLater(() => playerBrowser.close());
  const player = await openDemo(server.httpUrl, playerBrowser.browser, 'player', { roomID: 'fit', publish: false });
  await enlargeRemoteTiles(player);
  await player.waitForFunction(
    () => [...document.querySelectorAll<HTMLVideoElement>('.tile.remote video')].some((v) => v.videoWidth === 640),
    undefined,
    { timeout: 30_000 },
  );
  return { playerHost, player };
}

const receiveRate = (from: VideoSample, to: VideoSample): number =>
  ((to.bytesReceived - from.bytesReceived) * 8 * 1000) / (to.at - from.at);

test('a player whose downlink carries 500 kbit/s, under the 360p layer’s rate, keeps 360p: the publisher encodes it at what the link carries', async (t) => {
  const { playerHost, player } = await call(t);
  playerHost.shapeDownlink({ rateKbit: 500 });
  const [samples] = (await sampleEvery([player], 25_000, 250)) as [VideoSample[]];
  console.log(`# width per 250 ms: ${receivedWidths(samples)}`);
  const last = samples.filter((s) => samples.at(-1)!.at - s.at <= 15_000);
  const rate = receiveRate(last[0]!, last.at(-1)!);
  const fps = decodeRate(last[0]!, last.at(-1)!);
  const on360p = last.filter((s) => receivedWidth(s) === 640).length / last.length;
  console.log(
    `# the last 15 s: ${Math.round(rate / 1000)} kbit/s received, ${fps.toFixed(1)} frames/s, ${Math.round(100 * on360p)} % on 360p`,
  );
  // Uncapped, the 360p layer of this clip is about 700 kbit/s: the player would be on 180p all along. It is on
  // 180p for a few seconds after the link narrows, until the publisher encodes 360p for it.
  assert.ok(on360p >= 0.6, `mostly 360p (640 wide) over the last 15 s: ${receivedWidths(last)}`);
  assert.ok(rate < 500_000, `what it receives fits the link: ${Math.round(rate / 1000)} kbit/s`);
  assert.ok(fps >= 12, `at the camera's frame rate: ${fps.toFixed(1)} frames/s of 15`);
});

test('a player whose downlink drops to 300 kbit/s for 10 s keeps decoding on a layer that fits, and is back on 360p after', async (t) => {
  const { playerHost, player } = await call(t);
  playerHost.shapeDownlink({ rateKbit: 300 });
  const [dropped] = (await sampleEvery([player], 10_000, 250)) as [VideoSample[]];
  playerHost.shapeDownlink({});
  const [lifted] = (await sampleEvery([player], 15_000, 250)) as [VideoSample[]];
  let longestStallMs = 0;
  for (let i = 1, since = dropped[0]!.at; i < dropped.length; i++) {
    if (dropped[i]!.framesDecoded > dropped[i - 1]!.framesDecoded) since = dropped[i]!.at;
    longestStallMs = Math.max(longestStallMs, dropped[i]!.at - since);
  }
  const fps = decodeRate(dropped[0]!, dropped.at(-1)!);
  console.log(`# dropped, width per 250 ms: ${receivedWidths(dropped)}; lifted: ${receivedWidths(lifted)}`);
  console.log(`# under 300 kbit/s: ${fps.toFixed(1)} frames/s, longest stall ${longestStallMs} ms`);
  assert.ok(longestStallMs <= 1500, `no stall much over a second: ${longestStallMs} ms`);
  assert.ok(fps >= 10, `${fps.toFixed(1)} frames/s of 15 under 300 kbit/s`);
  // Back on 360p within 5 s of the lift, and there after it: the 360p layer, paused while the
  // link was short, resumes at what the player's budget carries, not at its full rate.
  const back = lifted.findIndex((s) => receivedWidth(s) === 640);
  const after = lifted.slice(Math.max(back, 0));
  const on360p = after.filter((s) => receivedWidth(s) === 640).length / after.length;
  assert.ok(back >= 0 && lifted[back]!.at - lifted[0]!.at <= 5_000 && on360p >= 0.9, `back on 360p: ${receivedWidths(lifted)}`);
});
