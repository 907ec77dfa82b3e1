/**
 * Time to first frame: startPlayingStream → first frame delivered (Node player, encoded custom
 * render) or rendered (Chromium, the demo page's onPlayerRecvVideoFirstFrame); and end-to-end
 * frame latency through the SFU (publisher's capture time → arrival at the Node player).
 */
import { DEV_APP } from '@parley/server';
import { PublisherState } from '@parley/sdk';
import { TestClient, loopFixtures } from '../packages/sdk/test/helpers.js';
import { launchChromium } from '@parley/testkit';
import { row, sleep, type Row, type ServerUnderTest } from './lib.js';

export async function benchFirstFrame(
  server: ServerUnderTest,
  { runs, latencySeconds }: { runs: number; latencySeconds: number },
): Promise<Row[]> {
  const profile = { appID: DEV_APP.appID, appSign: DEV_APP.appSign, server: server.url };
  const bot = new TestClient(profile);
  await bot.login('bench', 'bot');
  bot.engine.startPublishingStream('bench_bot');
  await bot.waitFor('publisherStateUpdate', (_, s) => s === PublisherState.Publishing);
  // Frames are stamped with this process's clock, which the player shares.
  const stopBot = loopFixtures(bot.engine, () => performance.now());

  const node: number[] = [];
  for (let i = 0; i < runs; i++) {
    const client = new TestClient(profile);
    await client.login('bench', `viewer${i}`);
    let first = 0;
    client.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => (first ||= performance.now()) });
    const start = performance.now();
    client.engine.startPlayingStream('bench_bot');
    await client.waitFor('playerRecvVideoFirstFrame');
    node.push(first - start);
    await client.destroy();
  }

  const latency: number[] = [];
  const viewer = new TestClient(profile);
  await viewer.login('bench', 'latency');
  viewer.engine.setCustomVideoRenderHandler({
    onRemoteVideoFrameEncodedDataReceived: (_data, _params, referenceTime) => latency.push(performance.now() - referenceTime),
  });
  viewer.engine.startPlayingStream('bench_bot');
  await viewer.waitFor('playerRecvVideoFirstFrame');
  latency.length = 0; // from the first keyframe on
  await sleep(latencySeconds * 1000);
  await viewer.destroy();

  const chromium: number[] = [];
  const browser = await launchChromium();
  for (let i = 0; i < runs; i++) {
    const page = await browser.browser.newPage();
    await page.goto(`${server.httpUrl}/?userID=web${i}&roomID=bench`);
    await page.click('#join');
    const line = await page.waitForFunction(
      () =>
        /onPlayerRecvVideoFirstFrame/.test(document.getElementById('log')!.textContent ?? '') &&
        document.getElementById('log')!.textContent,
      undefined,
      { timeout: 15_000 },
    );
    const log = (await line.jsonValue()) as string;
    const at = (pattern: RegExp): number => {
      const [h, m, s] = pattern.exec(log)![1]!.split(':').map(Number);
      return ((h! * 60 + m!) * 60 + s!) * 1000;
    };
    chromium.push(at(/(\S+) onPlayerRecvVideoFirstFrame/) - at(/(\S+) onPlayerStateUpdate stream=bench_bot PlayRequesting/));
    await page.click('#end');
    await page.close();
  }
  await browser.close();
  stopBot();
  await bot.destroy();
  return [
    row('first frame, Node player', 'ms', node),
    row('first frame, Chromium player', 'ms', chromium),
    row('frame latency through the SFU, publisher → Node player', 'ms', latency, `${latency.length} frames`),
  ];
}
