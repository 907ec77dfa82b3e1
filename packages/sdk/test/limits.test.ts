import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode } from '@parley/protocol';
import { ErrorCode, PlayerState, PublishChannel, PublisherState } from '@parley/sdk';
import { startServer, randomApp } from '@parley/server';
import { TestClient, sleep, startTestServer } from './helpers.js';
import { RawClient } from './rawClient.js';

const heartbeats = (client: RawClient, count: number): void => {
  for (let i = 0; i < count; i++) client.ws.send(JSON.stringify({ type: 'heartbeat', id: i + 1 }));
};
const served = (client: RawClient): number => client.messages.filter((m) => m.type === 'reply' && m.code === 0).length;
const limited = (client: RawClient): number => client.messages.filter((m) => m.code === ErrorCode.RateLimited).length;

test('rate limits: a flooding connection is slowed then cut off; logins per address are limited; others are unaffected', async (t) => {
  const env = await startTestServer({
    limits: { framesPerSecond: 10, frameBurst: 20, maxRateLimitedFrames: 50, loginsPerSecondPerIp: 0.1, loginBurstPerIp: 3 },
  });
  t.after(() => env.close());
  const bystander = env.client();
  assert.equal(await bystander.login('r-rate', 'bystander'), 0);

  const flooder = await RawClient.open(env.server.url);
  heartbeats(flooder, 40);
  await sleep(300);
  assert.ok(served(flooder) >= 20 && served(flooder) <= 24, `the burst is served (${served(flooder)})`);
  assert.equal(served(flooder) + limited(flooder), 40, 'every frame is answered');
  await sleep(1000);
  assert.deepEqual(
    await flooder.request('heartbeat'),
    { type: 'reply', id: 1000, code: 0, data: {} },
    'after a pause the connection works',
  );
  heartbeats(flooder, 100);
  assert.equal(await flooder.closed(), CloseCode.PolicyViolation, 'a connection that keeps flooding is closed');

  // Logins from one address: the burst of 3 (the bystander used one), then 1000095.
  const codes: number[] = [];
  for (let i = 0; i < 4; i++) codes.push(await env.client().login('r-rate', `login${i}`));
  assert.deepEqual(codes, [0, 0, ErrorCode.RateLimited, ErrorCode.RateLimited]);
  assert.equal(bystander.of('roomStateChanged').length, 2, 'the bystander saw nothing but its own login');
});

test('per-address limits: connections from one address share a frame budget, and new connections beyond the rate are refused', async (t) => {
  const env = await startTestServer({
    limits: { framesPerSecondPerIp: 2, frameBurstPerIp: 30, connectionsPerSecondPerIp: 0.1, connectionBurstPerIp: 3 },
  });
  t.after(() => env.close());
  // Linux routes all of 127/8 to loopback, so these are three different client addresses.
  const [a1, a2] = [await RawClient.open(env.server.url, '127.0.0.2'), await RawClient.open(env.server.url, '127.0.0.2')];
  heartbeats(a1, 20);
  await sleep(200);
  heartbeats(a2, 20);
  await sleep(300);
  assert.equal(served(a1), 20, 'the first connection is within the budget');
  assert.ok(served(a2) >= 10 && served(a2) <= 12, `the second shares what is left (${served(a2)})`);
  assert.equal(served(a2) + limited(a2), 20);

  // Reconnecting does not refill it, and past the connection burst the upgrade is refused with 429.
  const a3 = await RawClient.open(env.server.url, '127.0.0.2');
  heartbeats(a3, 20);
  await sleep(300);
  assert.ok(served(a3) <= 3 && served(a3) + limited(a3) === 20, `a new connection gets no fresh budget (${served(a3)} served)`);
  await assert.rejects(RawClient.open(env.server.url, '127.0.0.2'), /429/);

  // Another address has its own budget, and the SDK's users meet no limit at all.
  const b = await RawClient.open(env.server.url, '127.0.0.3');
  heartbeats(b, 30);
  await sleep(300);
  assert.equal(served(b), 30);
  assert.equal(await env.client().login('r-ip', 'someone'), 0);
});

test('a client that stops reading is disconnected with 4001 once too much waits for it; its session can resume', async (t) => {
  const maxUnsentBytes = 64 * 1024;
  const env = await startTestServer({ heartbeatTimeoutMs: 60_000, limits: { maxUnsentBytes, framesPerSecond: 1e6, frameBurst: 1e6 } });
  t.after(() => env.close());
  const slow = await RawClient.open(env.server.url);
  const login = await slow.login(env.app, 'r-slow', { userID: 'slow' }, true);
  assert.equal(login.code, 0);
  const { sessionID, resumeToken, seq } = login.data as { sessionID: string; resumeToken: string; seq: number };
  slow.ws.pause(); // reads nothing more: the kernel buffers fill up, then the server's queue

  // Another user comes and goes (a long name makes each notification ~400 bytes) until far more
  // than the limit and the kernel's socket buffers together (~5 MB on loopback here) is meant for the slow reader.
  const churn = await RawClient.open(env.server.url);
  const user = { userID: 'churn', userName: 'n'.repeat(250) };
  const CYCLES = 15_000;
  for (let i = 0; i < CYCLES; i++) {
    churn.ws.send(JSON.stringify({ type: 'login', id: 2 * i, ...churn.loginFrame(env.app, 'r-slow', user) }));
    churn.ws.send(JSON.stringify({ type: 'logout', id: 2 * i + 1 }));
    if (i % 500 === 499) await churn.next((m) => m.id === 2 * i + 1, churn.messages.length - 2, 10_000);
  }
  const sentMB = (CYCLES * 2 * 400) / 2 ** 20;
  assert.equal(churn.messages.filter((m) => m.type === 'reply' && m.code !== 0).length, 0, 'the other user was served throughout');

  slow.ws.resume();
  assert.equal(await slow.closed(), CloseCode.SlowReader);
  const received = slow.messages.filter((m) => m.type === 'userUpdate').length;
  console.log(`# slow reader: ${received} of ${CYCLES * 2} notifications (~${sentMB.toFixed(1)} MB) reached it before the close`);
  // Had the server buffered on, every notification would have come before the close frame.
  assert.ok(received < CYCLES * 2, `the server stopped buffering for it (${received} of ${CYCLES * 2} delivered)`);
  const seqs = slow.messages.filter((m) => m.type === 'userUpdate').map((m) => m.seq as number);
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => seq + 1 + i),
    'what did arrive is whole and in order',
  );

  // The session waits for it: a resume brings the room as it is now.
  assert.deepEqual(await env.roomUserIDs('r-slow'), ['slow']);
  const again = await RawClient.open(env.server.url);
  const resumed = await again.resume(env.app.appID, { sessionID, resumeToken }, seqs.at(-1) ?? seq);
  assert.equal(resumed.code, 0);
  assert.deepEqual((resumed.data as { snapshot?: unknown }).snapshot, { users: [], streams: [], extraInfos: [], streamDevices: [] });
});

test('a user cannot hold more publications or plays than the limits allow', async (t) => {
  const app = randomApp(6);
  const server = await startServer({
    port: 0,
    apps: [app],
    logLevel: 'silent',
    staticDir: false,
    limits: { maxPublicationsPerSession: 1, maxPlaysPerSession: 1 },
  });
  const clients: TestClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.destroy()));
    await server.close();
  });
  const client = (): TestClient => {
    const c = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url, timeouts: { playRetryIntervalMs: 60_000 } });
    clients.push(c);
    return c;
  };
  const a = client();
  const b = client();
  assert.equal(await a.login('r-caps', 'a'), 0);
  assert.equal(await b.login('r-caps', 'b'), 0);
  a.engine.startPublishingStream('s-a1');
  await a.waitFor('publisherStateUpdate', (id, s) => id === 's-a1' && s === PublisherState.Publishing);
  a.engine.startPublishingStream('s-a2', {}, PublishChannel.Aux);
  await a.waitFor('publisherStateUpdate', (id, s) => id === 's-a2' && s === PublisherState.NoPublish);
  assert.equal(a.of('publisherStateUpdate').at(-1)?.[2], ErrorCode.ChannelAlreadyPublishing);
  b.engine.startPlayingStream('s-a1');
  await b.waitFor('playerStateUpdate', (id, s) => id === 's-a1' && s === PlayerState.Playing);
  b.engine.startPlayingStream('s-other');
  await b.waitFor('playerStateUpdate', (id, s) => id === 's-other' && s === PlayerState.NoPlay);
  assert.equal(b.of('playerStateUpdate').at(-1)?.[2], ErrorCode.PlayFailed);
});
