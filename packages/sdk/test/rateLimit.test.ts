import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { ErrorCode, PlayerState, PublishChannel, PublisherState } from '@parley/sdk';
import { startServer, randomApp } from '@parley/server';
import { TestClient, sleep } from './helpers.js';

test('rate limits: a flooding connection is slowed then cut off; logins per address are limited; others are unaffected', async (t) => {
  const app = randomApp(5);
  const limits = { framesPerSecond: 10, frameBurst: 20, maxRateLimitedFrames: 50, loginsPerSecondPerIp: 0.1, loginBurstPerIp: 3 };
  const server = await startServer({ port: 0, apps: [app], logLevel: 'silent', staticDir: false, limits });
  const clients: TestClient[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.destroy()));
    await server.close();
  });
  const client = (): TestClient => {
    const c = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url });
    clients.push(c);
    return c;
  };
  const bystander = client();
  assert.equal(await bystander.login('r-rate', 'bystander'), 0);

  const ws = new WebSocket(server.url);
  const messages: Array<{ type: string; code?: number }> = [];
  let closeCode: number | undefined;
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as { type: string; code?: number }));
  ws.on('close', (code) => (closeCode = code));
  await new Promise((resolve) => ws.once('open', resolve));
  for (let id = 1; id <= 40; id++) ws.send(JSON.stringify({ type: 'heartbeat', id }));
  await sleep(300);
  const replies = messages.filter((m) => m.type === 'reply' && m.code === 0).length;
  const limited = messages.filter((m) => m.code === ErrorCode.RateLimited).length;
  assert.ok(replies >= 20 && replies <= 24, `the burst is served (${replies})`);
  assert.equal(replies + limited, 40, 'every frame is answered');
  await sleep(1000);
  ws.send(JSON.stringify({ type: 'heartbeat', id: 100 }));
  await sleep(100);
  assert.deepEqual(messages.at(-1), { type: 'reply', id: 100, code: 0, data: {} }, 'after a pause the connection works');
  for (let id = 200; id < 300; id++) ws.send(JSON.stringify({ type: 'heartbeat', id }));
  await sleep(300);
  assert.equal(closeCode, 1008, 'a connection that keeps flooding is closed');

  // Logins from one address: the burst of 3 (the bystander used one), then 1000095.
  const codes: number[] = [];
  for (let i = 0; i < 4; i++) codes.push(await client().login('r-rate', `login${i}`));
  assert.deepEqual(codes, [0, 0, ErrorCode.RateLimited, ErrorCode.RateLimited]);
  assert.equal(bystander.of('roomStateChanged').length, 2, 'the bystander saw nothing but its own login');
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
