import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '@parley/protocol';
import { PublisherState } from '@parley/sdk';
import { startServer, randomApp } from '../src/index.js';
import { TestClient, loopFixtures, sleep } from '../../sdk/test/helpers.js';
import { RawClient } from '../../sdk/test/rawClient.js';

async function get(base: string, path: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(base + path);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** The value of one sample of the exposition, e.g. `parley_rooms` or `parley_signalling_errors_total{code="1"`. */
function sample(exposition: string, series: string): number | undefined {
  const line = exposition.split('\n').find((l) => l.startsWith(series.includes('{') ? series : `${series} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('metrics count rooms, users, streams, media, logins and refusals; health and readiness follow the server life', async (t) => {
  const app = randomApp(1_000_003);
  const server = await startServer({ port: 0, apps: [app], logLevel: 'silent', staticDir: false });
  const scrape = async (): Promise<string> => (await get(server.httpUrl, '/metrics')).body;
  const raw = await RawClient.open(server.url);
  const clients: TestClient[] = [];
  t.after(async () => {
    raw.ws.terminate();
    await Promise.all(clients.map((c) => c.destroy()));
    await server.close();
  });

  assert.deepEqual(await get(server.httpUrl, '/healthz'), {
    status: 200,
    type: 'application/json; charset=utf-8',
    body: '{"status":"ok"}',
  });
  assert.equal((await get(server.httpUrl, '/readyz')).status, 200);
  const first = await get(server.httpUrl, '/metrics');
  assert.equal(first.status, 200);
  assert.match(first.type, /^text\/plain; version=0\.0\.4/);
  for (const name of ['nodejs_eventloop_lag_seconds', 'process_cpu_seconds_total', 'process_resident_memory_bytes']) {
    assert.ok(sample(first.body, name) !== undefined, `${name} missing`);
  }
  assert.equal(sample(first.body, 'parley_rooms'), 0);
  assert.equal(sample(first.body, 'parley_logins_total'), 0);

  // A refused request is counted under its code.
  const refused = await raw.request('publish', { streamID: 's', sdp: 'v=0\r\n', extraInfo: '' });
  assert.equal(refused.code, ErrorCode.NotLoggedIn);
  const notLoggedIn = `parley_signalling_errors_total{code="${ErrorCode.NotLoggedIn}",name="NotLoggedIn"}`;
  assert.equal(sample(await scrape(), notLoggedIn), 1);

  // One publisher, one player, media flowing.
  const pub = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url });
  const viewer = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url });
  clients.push(pub, viewer);
  assert.equal(await pub.login('room-m', 'pub'), 0);
  assert.equal(await viewer.login('room-m', 'viewer'), 0);
  pub.engine.startPublishingStream('s-m');
  await pub.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  const stop = loopFixtures(pub.engine);
  t.after(stop);
  viewer.engine.startPlayingStream('s-m');
  await viewer.waitFor('playerRecvVideoFirstFrame');

  const during = await scrape();
  const gauges = ['parley_rooms', 'parley_users', 'parley_streams', 'parley_publishers', 'parley_players'].map((g) => sample(during, g));
  assert.deepEqual(gauges, [1, 2, 1, 1, 1]);
  assert.equal(sample(during, 'parley_logins_total'), 2);
  assert.ok(sample(during, 'parley_media_keyframe_requests_sent_total')! >= 1);
  const media = [
    'parley_media_rtp_received_packets_total',
    'parley_media_rtp_received_bytes_total',
    'parley_media_rtp_sent_packets_total',
    'parley_media_rtp_sent_bytes_total',
  ];
  const before = media.map((m) => sample(during, m)!);
  assert.ok(
    before.every((v) => v > 0),
    `media totals: ${before.join(', ')}`,
  );
  assert.ok(before[1]! > before[0]! * 12 && before[3]! > before[2]! * 12, 'bytes include at least an RTP header per packet');
  await sleep(300);
  const later = await scrape();
  const after = media.map((m) => sample(later, m)!);
  assert.ok(
    after.every((v, i) => v > before[i]!),
    `media totals grow: ${before.join(', ')} -> ${after.join(', ')}`,
  );
  stop();

  // Everyone leaves: the gauges go back to zero, the totals stay.
  await Promise.all(clients.splice(0).map((c) => c.destroy()));
  let left = '';
  for (let i = 0; i < 50; i++) {
    left = await scrape();
    if (sample(left, 'parley_players') === 0 && sample(left, 'parley_publishers') === 0 && sample(left, 'parley_users') === 0) break;
    await sleep(100);
  }
  const gaugesLeft = ['parley_rooms', 'parley_users', 'parley_streams', 'parley_publishers', 'parley_players'].map((g) => sample(left, g));
  assert.deepEqual(gaugesLeft, [0, 0, 0, 0, 0]);
  assert.equal(sample(left, 'parley_logins_total'), 2);
  assert.equal(sample(left, notLoggedIn), 1);

  // Shutting down: not ready any more, still alive. The raw client, paused, holds the shutdown
  // open (it never answers the close handshake) until it is cut.
  raw.ws.pause();
  const closing = server.close();
  assert.deepEqual(await get(server.httpUrl, '/readyz'), {
    status: 503,
    type: 'application/json; charset=utf-8',
    body: '{"status":"unavailable"}',
  });
  assert.equal((await get(server.httpUrl, '/healthz')).status, 200);
  raw.ws.terminate();
  await closing;
});

test('each server has its own metrics', async (t) => {
  const a = await startServer({ port: 0, apps: [randomApp(1)], logLevel: 'silent', staticDir: false });
  t.after(() => a.close());
  const b = await startServer({ port: 0, apps: [randomApp(2)], logLevel: 'silent', staticDir: false });
  t.after(() => b.close());
  const raw = await RawClient.open(a.url);
  t.after(() => raw.ws.terminate());
  await raw.request('play', { streamID: 's', sdp: 'v=0\r\n', attempt: 1 });
  const series = `parley_signalling_errors_total{code="${ErrorCode.NotLoggedIn}",name="NotLoggedIn"}`;
  assert.equal(sample((await get(a.httpUrl, '/metrics')).body, series), 1);
  const other = (await get(b.httpUrl, '/metrics')).body;
  assert.equal(sample(other, series), undefined);
  assert.ok(sample(other, 'nodejs_eventloop_lag_seconds') !== undefined);
});
