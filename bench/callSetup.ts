/**
 * Call setup on loopback, median of N runs each:
 * - login: loginRoom → Logined (Node SDK);
 * - time to first frame, Node: startPlayingStream → first decoded-ready frame via custom render;
 * - time to first frame, Chromium: startPlayingStream → first rendered frame on the demo page.
 * The publisher is a Node bot looping the fixture files and answering keyframe requests.
 *
 *   npm run bench              # 20 runs
 *   npm run bench -- --runs 5
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startServer, DEV_APP } from '@parley/server';
import { PublisherState, RoomStateChangedReason } from '@parley/sdk';
import { TestClient, loopFixtures } from '../packages/sdk/test/helpers.js';
import { launchChromium } from '../packages/demo/test/browser.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' }, quick: { type: 'boolean', default: false } } });
const runs = values.quick ? 5 : Number(values.runs);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

const server = await startServer({ host: '127.0.0.1', port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
const profile = { appID: DEV_APP.appID, appSign: DEV_APP.appSign, server: server.url };

const bot = new TestClient(profile);
await bot.login('bench', 'bot');
bot.engine.startPublishingStream('bench_bot');
await bot.waitFor('publisherStateUpdate', (_, s) => s === PublisherState.Publishing);
const stopBot = loopFixtures(bot.engine);

const login: number[] = [];
const nodeFirstFrame: number[] = [];
for (let i = 0; i < runs; i++) {
  const client = new TestClient(profile);
  const t0 = performance.now();
  client.engine.loginRoom('bench', { userID: `viewer${i}`, userName: 'viewer' }, { isUserStatusNotify: false });
  await client.waitFor('roomStateChanged', (_, reason) => reason === RoomStateChangedReason.Logined);
  login.push(performance.now() - t0);

  let first = 0;
  client.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => (first ||= performance.now()) });
  const t1 = performance.now();
  client.engine.startPlayingStream('bench_bot');
  await client.waitFor('playerRecvVideoFirstFrame');
  nodeFirstFrame.push(first - t1);
  await client.destroy();
}

const chromeFirstFrame: number[] = [];
const chromium = await launchChromium();
for (let i = 0; i < runs; i++) {
  const page = await chromium.browser.newPage();
  await page.goto(`${server.httpUrl}/?userID=web${i}&roomID=bench`);
  await page.click('#join');
  const line = await page.waitForFunction(
    () =>
      /onPlayerRecvVideoFirstFrame/.test(document.getElementById('log')!.textContent ?? '') && document.getElementById('log')!.textContent,
    undefined,
    { timeout: 15_000 },
  );
  const log = (await line.jsonValue()) as string;
  const at = (pattern: RegExp): number => {
    const [h, m, s] = pattern.exec(log)![1]!.split(':').map(Number);
    return ((h! * 60 + m!) * 60 + s!) * 1000;
  };
  chromeFirstFrame.push(at(/(\S+) onPlayerRecvVideoFirstFrame/) - at(/(\S+) onPlayerStateUpdate stream=bench_bot PlayRequesting/));
  await page.click('#end');
  await page.close();
}
await chromium.close();
stopBot();
await bot.destroy();
await server.close();

const rows = [
  ['login (loginRoom → Logined), Node', login],
  ['first frame, Node player', nodeFirstFrame],
  ['first frame, Chromium player', chromeFirstFrame],
] as const;
const result = Object.fromEntries(
  rows.map(([name, xs]) => [
    name,
    { runs: xs.length, p50: median(xs), p90: quantile(xs, 0.9), min: Math.min(...xs), max: Math.max(...xs) },
  ]),
);
const table = [
  `| measure (ms, loopback, ${runs} runs) | p50 | p90 | min | max |`,
  '|---|---|---|---|---|',
  ...Object.entries(result).map(
    ([name, r]) => `| ${name} | ${r.p50.toFixed(1)} | ${r.p90.toFixed(1)} | ${r.min.toFixed(1)} | ${r.max.toFixed(1)} |`,
  ),
].join('\n');
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/call-setup.json', import.meta.url),
  JSON.stringify({ date: new Date().toISOString(), runs, result }, null, 2),
);
writeFileSync(new URL('./results/call-setup.md', import.meta.url), `${table}\n`);
console.log(table);
