import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import {
  startServer,
  randomApp,
  verifyWebhook,
  webhookSignature,
  webhookBodySignature,
  type AppConfig,
  type ParleyServer,
  type ServerOptions,
  type WebhookOptions,
} from '../src/index.js';
import { WebhookDispatcher } from '../src/webhooks/dispatcher.js';
import type { MixingEvents } from '../src/egress/mixing.js';
import type { RoomServiceEvents } from '../src/rooms/observer.js';
import { AppRegistry } from '../src/apps.js';
import { callServerApi } from '@parley/testkit';
import { PublisherState } from '@parley/sdk';
import { RawClient } from '../../sdk/test/rawClient.js';
import { TestClient, sleep } from '../../sdk/test/helpers.js';
import { SECRET, appWithCallback, assertGenuine, memoryLogger, roomEvent, startReceiver, unsigned, until } from './webhookHelpers.js';

/** Makes SDK clients of `app` on `server`, destroyed after the test. */
function clientFactory(t: TestContext, server: ParleyServer, app: AppConfig): () => TestClient {
  const clients: TestClient[] = [];
  t.after(() => Promise.all(clients.map((c) => c.destroy())));
  return () => {
    const c = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url });
    clients.push(c);
    return c;
  };
}

async function serverFor(app: AppConfig, options: Partial<ServerOptions> = {}) {
  return startServer({ host: '127.0.0.1', port: 0, apps: [app], logLevel: 'silent', staticDir: false, ...options });
}

/** A dispatcher fed by a hand-driven observer, logging into memory; closed after the test unless `keepOpen`. */
function standaloneDispatcher(t: TestContext, apps: AppConfig[], options: Partial<WebhookOptions>, keepOpen = false) {
  const { log, lines, raw } = memoryLogger();
  const observer = new EventEmitter<RoomServiceEvents>();
  const dispatcher = new WebhookDispatcher({ apps: new AppRegistry(apps), observer, log, options });
  if (!keepOpen) t.after(() => dispatcher.close());
  return { dispatcher, observer, lines, raw };
}

test('signature: the spec vector, and verifyWebhook accepts genuine webhooks and refuses altered, foreign and stale ones', () => {
  assert.equal(webhookSignature('secret', 1470820198, 123412), '5bd59fd62953a8059fb7eaba95720f66d19e4517');
  assert.equal(webhookSignature('secret', '1470820198', '123412'), '5bd59fd62953a8059fb7eaba95720f66d19e4517');

  const timestamp = Math.floor(Date.now() / 1000);
  const nonce = 'a1b2c3d4';
  const event = {
    event: 'room_login',
    appid: 7,
    timestamp,
    nonce,
    signature: webhookSignature(SECRET, timestamp, nonce),
    room_id: 'room-1',
    room_session_id: 'life-1',
    room_seq: 2,
    event_time: Date.now(),
    user_account: 'u1',
    user_nickname: 'User One',
    session_id: 's1',
  };
  const raw = JSON.stringify(event);
  const bodySignature = webhookBodySignature(SECRET, raw);

  const genuine = verifyWebhook(raw, SECRET, { bodySignature });
  assert.ok(genuine.ok);
  assert.equal(genuine.event.event, 'room_login');
  if (genuine.event.event === 'room_login') assert.equal(genuine.event.user_account, 'u1');
  assert.ok(verifyWebhook(raw, SECRET).ok, 'without the body signature header');
  assert.ok(verifyWebhook(Buffer.from(raw), SECRET, { bodySignature }).ok, 'raw bytes');
  assert.ok(verifyWebhook(event, SECRET).ok, 'already parsed');

  // Tampered: any field against the body signature; the signed fields even without it.
  const altered = raw.replace('"room-1"', '"room-2"');
  assert.deepEqual(verifyWebhook(altered, SECRET, { bodySignature }), { ok: false, reason: 'badSignature' });
  assert.deepEqual(verifyWebhook(JSON.stringify({ ...event, nonce: 'a1b2c3d5' }), SECRET), { ok: false, reason: 'badSignature' });
  assert.deepEqual(verifyWebhook(JSON.stringify({ ...event, timestamp: timestamp + 1 }), SECRET), { ok: false, reason: 'badSignature' });
  assert.deepEqual(
    verifyWebhook(event, SECRET, { bodySignature }),
    { ok: false, reason: 'badSignature' },
    'body signature needs the raw body',
  );
  // Wrong secret.
  assert.deepEqual(verifyWebhook(raw, 'another-secret', { bodySignature }), { ok: false, reason: 'badSignature' });
  assert.deepEqual(verifyWebhook(raw, 'another-secret'), { ok: false, reason: 'badSignature' });
  // Stale, correctly signed.
  const old = timestamp - 301;
  const stale = { ...event, timestamp: old, signature: webhookSignature(SECRET, old, nonce) };
  assert.deepEqual(verifyWebhook(stale, SECRET), { ok: false, reason: 'staleTimestamp' });
  assert.ok(verifyWebhook(stale, SECRET, { maxAgeSeconds: 400 }).ok);
  const future = { ...event, timestamp: timestamp + 400, signature: webhookSignature(SECRET, timestamp + 400, nonce) };
  assert.deepEqual(verifyWebhook(future, SECRET), { ok: false, reason: 'staleTimestamp' });
  // Not a webhook at all.
  assert.deepEqual(verifyWebhook('{"event":', SECRET), { ok: false, reason: 'notJson' });
  assert.deepEqual(verifyWebhook('[1,2]', SECRET), { ok: false, reason: 'malformed' });
  assert.deepEqual(verifyWebhook({ ...event, room_seq: '2' }, SECRET), { ok: false, reason: 'malformed' });
  assert.deepEqual(verifyWebhook({ ...event, event: 'room_party' }, SECRET), { ok: false, reason: 'unknownEvent' });
});

test('a callback URL without a secret, or not http(s), is refused at startup', () => {
  const make = (app: AppConfig) => () =>
    new WebhookDispatcher({
      apps: new AppRegistry([app]),
      observer: new EventEmitter<RoomServiceEvents>(),
      log: pino({ level: 'silent' }),
    });
  assert.throws(make({ ...randomApp(1), callbackUrl: 'http://127.0.0.1:9/hook' }), /callbackSecret/);
  assert.throws(make({ ...randomApp(1), callbackUrl: 'ftp://127.0.0.1/hook', callbackSecret: SECRET }), /http or https/);
  assert.throws(make({ ...randomApp(1), callbackUrl: 'not a url', callbackSecret: SECRET }), /not a URL/);
  const silentLog = pino({ level: 'silent' });
  assert.throws(
    () => new WebhookDispatcher({ apps: new AppRegistry([]), observer: new EventEmitter(), log: silentLog, options: { maxBacklog: 0 } }),
    /maxBacklog/,
  );
  assert.doesNotThrow(make(randomApp(1)), 'no callback URL: no webhooks');
});

test('delivery: a room lifetime reaches the callback URL signed, numbered with their room events and with the spec reason codes', async (t) => {
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const app = appWithCallback(3_000_001, receiver.url);
  const silent = randomApp(3_000_002); // no callback URL: gets nothing
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    apps: [app, silent],
    logLevel: 'silent',
    staticDir: false,
    heartbeatTimeoutMs: 1500,
  });
  const raws: RawClient[] = [];
  t.after(async () => {
    for (const raw of raws) raw.ws.terminate();
    await server.close();
  });
  const client = clientFactory(t, server, app);
  const raw = async (): Promise<RawClient> => {
    const r = await RawClient.open(server.url);
    raws.push(r);
    return r;
  };

  const roomID = 'wh-room';
  const alice = client();
  const bob = client();
  assert.equal(await alice.login(roomID, 'alice'), 0);
  assert.equal(await bob.login(roomID, 'bob'), 0);
  alice.engine.startPublishingStream('s-alice', { extraInfo: 'camera' });
  await alice.waitFor('publisherStateUpdate', (id, state) => id === 's-alice' && state === PublisherState.Publishing);
  await receiver.waitFor((a) => a.some((x) => x.body.event === 'stream_create'));
  // alice logs in again elsewhere: her old session and its stream are replaced.
  const alice2 = await raw();
  const login = await alice2.login(app, roomID, { userID: 'alice', userName: 'Alice Two' });
  assert.equal(login.code, 0);
  const alice2SessionID = (login.data as { sessionID: string }).sessionID;
  bob.engine.logoutRoom();
  await receiver.waitFor((a) => a.some((x) => x.body.event === 'room_logout' && x.body.user_account === 'bob'));
  // The last user goes silent: heartbeat timeout, and the room closes with it.
  alice2.ws.terminate();
  await receiver.waitFor((a) => a.some((x) => x.body.event === 'room_close'), 10_000);

  // The same roomID again is a new lifetime, numbered from 1.
  const carol = await raw();
  assert.equal((await carol.login(app, roomID, { userID: 'carol' })).code, 0);
  assert.equal((await carol.request('logout')).code, 0);
  await receiver.waitFor((a) => a.filter((x) => x.body.event === 'room_close').length === 2);
  // Another app without a callback URL produces nothing.
  const other = await raw();
  assert.equal((await other.login(silent, 'silent-room', { userID: 'dave' })).code, 0);
  assert.equal((await other.request('logout')).code, 0);
  await sleep(200);

  for (const arrival of receiver.arrivals) assertGenuine(arrival, app.appID);
  assert.ok(receiver.arrivals.every((a) => a.body.appid === app.appID && a.body.room_id === roomID));
  const lives = [...new Set(receiver.arrivals.map((a) => a.body.room_session_id))];
  assert.equal(lives.length, 2, 'two lifetimes of the room');
  const summary = (life: string): unknown[] =>
    receiver.arrivals
      .map((a) => a.body)
      .filter((b) => b.room_session_id === life)
      .sort((x, y) => x.room_seq - y.room_seq)
      .map((b) => {
        switch (b.event) {
          case 'room_create':
            return [b.room_seq, b.event];
          case 'room_close':
            return [b.room_seq, b.event, b.close_reason, b.reason_detail];
          case 'room_login':
            return [b.room_seq, b.event, b.user_account, b.user_nickname];
          case 'room_logout':
            return [b.room_seq, b.event, b.user_account, b.reason, b.reason_detail];
          case 'stream_create':
            return [b.room_seq, b.event, b.stream_id, b.user_account, b.extra_info];
          case 'stream_close':
            return [b.room_seq, b.event, b.stream_id, b.type, b.reason_detail];
        }
      });
  // Each webhook carries its room event's number: 5 is the stream's devices, which only the room's users are told of.
  assert.deepEqual(summary(lives.find((l) => receiver.arrivals.some((a) => a.body.room_session_id === l && a.body.room_seq === 11))!), [
    [1, 'room_create'],
    [2, 'room_login', 'alice', 'alice'],
    [3, 'room_login', 'bob', 'bob'],
    [4, 'stream_create', 's-alice', 'alice', 'camera'],
    [6, 'stream_close', 's-alice', 2, 'replaced'],
    [7, 'room_logout', 'alice', 2, 'replaced'],
    [8, 'room_login', 'alice', 'Alice Two'],
    [9, 'room_logout', 'bob', 0, 'logout'],
    [10, 'room_logout', 'alice', 1, 'heartbeatTimeout'],
    [11, 'room_close', 1, 'heartbeatTimeout'],
  ]);
  const second = lives.find((l) => !receiver.arrivals.some((a) => a.body.room_session_id === l && a.body.room_seq > 4))!;
  assert.deepEqual(summary(second), [
    [1, 'room_create'],
    [2, 'room_login', 'carol', 'carol'],
    [3, 'room_logout', 'carol', 0, 'logout'],
    [4, 'room_close', 0, 'logout'],
  ]);
  // Each event was delivered once (the receiver answered 200), with its session and time.
  assert.equal(receiver.arrivals.length, 14);
  // Each names itself: an event_id of its own, made of its app, room lifetime and number.
  for (const { body } of receiver.arrivals) assert.equal(body.event_id, `${body.appid}-${body.room_session_id}-${body.room_seq}`);
  assert.equal(new Set(receiver.arrivals.map((a) => a.body.event_id)).size, 14);
  const alice2Login = receiver.arrivals.find((a) => a.body.event === 'room_login' && a.body.user_nickname === 'Alice Two')!.body;
  assert.equal(alice2Login.event === 'room_login' && alice2Login.session_id, alice2SessionID);
  assert.ok(receiver.arrivals.every((a) => Math.abs(a.body.event_time - Date.now()) < 60_000));
});

test('retries: 500 three times then 200 is delivered on the 4th attempt after the configured delays, the same event each time', async (t) => {
  const retryDelaysMs = [50, 100, 200, 400, 800];
  const receiver = await startReceiver((_arrival, before) => (before < 3 ? 500 : 200));
  t.after(() => receiver.close());
  const app = appWithCallback(3_000_003, receiver.url);
  const server = await serverFor(app, { webhooks: { retryDelaysMs } });
  const raw = await RawClient.open(server.url);
  t.after(async () => {
    raw.ws.terminate();
    await server.close();
  });
  assert.equal((await raw.login(app, 'retry-room', { userID: 'erin' })).code, 0);
  await receiver.waitFor((a) => a.filter((x) => x.body.event === 'room_create').length === 4);
  await receiver.waitFor((a) => a.filter((x) => x.body.event === 'room_login').length === 4);
  await sleep(retryDelaysMs[3]! + 200);

  for (const event of ['room_create', 'room_login'] as const) {
    const attempts = receiver.arrivals.filter((a) => a.body.event === event);
    assert.equal(attempts.length, 4, `${event}: delivered on the 4th attempt, not tried again`);
    for (const attempt of attempts) assertGenuine(attempt, app.appID);
    for (let i = 1; i < attempts.length; i++) {
      const gap = attempts[i]!.at - attempts[i - 1]!.at;
      const delay = retryDelaysMs[i - 1]!;
      assert.ok(
        gap >= delay - 2 && gap < delay + 1000,
        `${event}: gap ${gap.toFixed(0)} ms before attempt ${i + 1}, configured ${delay} ms`,
      );
      // The same event every time; each attempt signed afresh.
      assert.deepEqual(unsigned(attempts[i]!.body), unsigned(attempts[0]!.body));
    }
    assert.equal(new Set(attempts.map((a) => a.body.nonce)).size, 4);
  }
});

test('a receiver that is down gets the first attempt and 5 retries, then the event is dropped and logged without secrets', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise<void>((resolve) => closed.close(() => resolve()));

  const retryDelaysMs = [20, 40, 80, 160, 320];
  const app = appWithCallback(3_000_004, `http://127.0.0.1:${port}/hook`);
  const quiet = randomApp(3_000_005);
  const { dispatcher, observer, lines, raw } = standaloneDispatcher(t, [app, quiet], { retryDelaysMs });
  assert.equal(dispatcher.hasCallback(app.appID), true);
  assert.equal(dispatcher.hasCallback(quiet.appID), false);

  const started = performance.now();
  observer.emit('roomCreated', roomEvent(app.appID, 'down-room', 1));
  observer.emit('roomCreated', roomEvent(quiet.appID, 'quiet-room', 1));
  await until(() => dispatcher.stats().dropped === 1);
  const elapsed = performance.now() - started;
  assert.deepEqual(dispatcher.stats(), { pending: 0, inFlight: 0, delivered: 0, failedAttempts: 6, dropped: 1 });
  assert.ok(
    elapsed >= retryDelaysMs.reduce((a, b) => a + b) - 2,
    `dropped after ${elapsed.toFixed(0)} ms, before the retry schedule ran out`,
  );
  const dropped = lines.filter((l) => l.msg === 'webhook dropped');
  assert.equal(dropped.length, 1);
  assert.equal(dropped[0]!.level, 40); // warn
  assert.equal(dropped[0]!.appID, app.appID);
  assert.equal(dropped[0]!.event, 'room_create');
  assert.equal(dropped[0]!.room_id, 'down-room');
  assert.equal(dropped[0]!.attempts, 6);
  assert.equal(dropped[0]!.why, 'ECONNREFUSED');
  assert.ok(!raw.join('\n').includes(SECRET), 'the callback secret is never logged');
  assert.ok(!raw.join('\n').includes('signature'), 'nor signatures');
});

test('a full backlog drops the oldest waiting webhook; close() is bounded even when the receiver never answers', async (t) => {
  const receiver = await startReceiver(() => 'hang');
  t.after(() => receiver.close());
  const app = appWithCallback(3_000_006, receiver.url);
  const { dispatcher, observer, lines } = standaloneDispatcher(
    t,
    [app],
    { maxBacklog: 5, maxConcurrency: 2, timeoutMs: 10_000, closeTimeoutMs: 100 },
    true, // closed by the test itself
  );
  observer.emit('roomCreated', roomEvent(app.appID, 'busy', 1));
  for (let i = 0; i < 19; i++) {
    observer.emit('userJoined', {
      ...roomEvent(app.appID, 'busy', i + 2),
      user: { userID: `u${i}`, userName: `u${i}` },
      sessionID: `s${i}`,
    });
  }
  // 20 events: 5 wait, the 15 oldest were dropped before any was sent.
  assert.equal(dispatcher.stats().pending, 5);
  assert.equal(dispatcher.stats().dropped, 15);
  await receiver.waitFor((a) => a.length === 2);
  assert.deepEqual(
    receiver.arrivals.map((a) => a.body.room_seq),
    [16, 17],
    'the newest are kept',
  );
  assert.deepEqual(dispatcher.stats(), { pending: 3, inFlight: 2, delivered: 0, failedAttempts: 0, dropped: 15 });
  const overflow = lines.filter((l) => l.msg === 'webhook dropped' && l.why === 'backlog full');
  assert.deepEqual(
    overflow.map((l) => l.room_seq),
    Array.from({ length: 15 }, (_, i) => i + 1),
  );

  const started = performance.now();
  await dispatcher.close();
  assert.ok(performance.now() - started < 1500, 'close() waited too long');
  assert.deepEqual(dispatcher.stats(), { pending: 0, inFlight: 0, delivered: 0, failedAttempts: 2, dropped: 20 });
  const atShutdown = lines.filter((l) => l.msg === 'webhook dropped' && l.why !== 'backlog full').map((l) => [l.room_seq, l.why]);
  assert.deepEqual(
    atShutdown.sort((x, y) => Number(x[0]) - Number(y[0])),
    [
      [16, 'aborted'],
      [17, 'aborted'],
      [18, 'shutdown'],
      [19, 'shutdown'],
      [20, 'shutdown'],
    ],
  );
  // Closed: further room events are ignored.
  observer.emit('roomClosed', { ...roomEvent(app.appID, 'busy', 21), reason: 'logout' });
  assert.equal(dispatcher.stats().pending, 0);
});

test('an attempt that gets no answer within timeoutMs fails as a timeout', async (t) => {
  const receiver = await startReceiver(() => 'hang');
  t.after(() => receiver.close());
  const app = appWithCallback(3_000_008, receiver.url);
  const { dispatcher, observer, lines } = standaloneDispatcher(t, [app], { timeoutMs: 150, retryDelaysMs: [30] });
  const started = performance.now();
  observer.emit('roomCreated', roomEvent(app.appID, 'slow', 1));
  await until(() => dispatcher.stats().dropped === 1);
  assert.ok(performance.now() - started >= 2 * 150 + 30 - 2);
  assert.equal(receiver.arrivals.length, 2);
  assert.deepEqual(
    lines.filter((l) => l.msg === 'webhook dropped').map((l) => [l.event, l.attempts, l.why]),
    [['room_create', 2, 'timeout']],
  );
});

test('a receiver that never answers does not slow logins down, and server shutdown stays bounded', async (t) => {
  const receiver = await startReceiver(() => 'hang');
  t.after(() => receiver.close());
  const app = appWithCallback(3_000_007, receiver.url);
  const server = await serverFor(app, { webhooks: { timeoutMs: 3_000, retryDelaysMs: [50], closeTimeoutMs: 200 } });
  let serverClosed = false;
  t.after(() => (serverClosed ? undefined : server.close()));

  const loginTimes: number[] = [];
  for (let i = 0; i < 8; i++) {
    const raw = await RawClient.open(server.url);
    const started = performance.now();
    const reply = await raw.login(app, `hang-room-${i}`, { userID: `user-${i}` });
    loginTimes.push(performance.now() - started);
    assert.equal(reply.code, 0);
    assert.equal((await raw.request('logout')).code, 0);
    raw.ws.terminate();
  }
  await receiver.waitFor((a) => a.length >= 8);
  assert.ok(receiver.hanging() >= 8, 'webhook requests are hanging at the receiver');
  // Were logins waiting for webhooks, each would take the 3 s attempt timeout.
  assert.ok(Math.max(...loginTimes) < 1000, `login times ${loginTimes.map((ms) => ms.toFixed(0)).join(', ')} ms`);

  const started = performance.now();
  await server.close();
  serverClosed = true;
  assert.ok(performance.now() - started < 2500, `server.close() took ${(performance.now() - started).toFixed(0)} ms`);
});

test('what the server API does is reported too: kick (reason 3), forbid (type 100), close room (3)', async (t) => {
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const app = appWithCallback(3_000_009, receiver.url);
  const server = await serverFor(app);
  t.after(() => server.close());
  const client = clientFactory(t, server, app);
  const api = async (action: string, params: Record<string, string>): Promise<number> =>
    (await callServerApi(server.httpUrl, app, action, params)).Code;
  const [pub, kicked, last] = [client(), client(), client()];
  assert.equal(await pub.login('wh-api', 'pub'), 0);
  assert.equal(await kicked.login('wh-api', 'kicked'), 0);
  assert.equal(await last.login('wh-api', 'last'), 0);
  await pub.publish('s-pub');
  assert.equal(await api('ForbidRTCStream', { StreamId: 's-pub' }), 0);
  assert.equal(await api('KickoutUser', { RoomId: 'wh-api', UserId: 'kicked' }), 0);
  assert.equal(await api('CloseRoom', { RoomId: 'wh-api' }), 0);
  await receiver.waitFor((a) => a.some((x) => x.body.event === 'room_close'));
  const codes = receiver.arrivals
    .map((a) => a.body)
    .sort((x, y) => x.room_seq - y.room_seq)
    .flatMap((b) =>
      b.event === 'stream_close'
        ? [[b.event, b.stream_id, b.type]]
        : b.event === 'room_logout'
          ? [[b.event, b.user_account, b.reason]]
          : b.event === 'room_close'
            ? [[b.event, b.close_reason]]
            : [],
    );
  assert.deepEqual(codes, [
    ['stream_close', 's-pub', 100],
    ['room_logout', 'kicked', 3],
    ['room_logout', 'pub', 3],
    ['room_logout', 'last', 3],
    ['room_close', 3],
  ]);
});

test('mixing tasks are reported: mix_start and mix_stop, numbered 1 and 2 within the task and signed like the rest', async (t) => {
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const app = appWithCallback(3_000_005, receiver.url);
  const mixing = new EventEmitter<MixingEvents>();
  const dispatcher = new WebhookDispatcher({
    apps: new AppRegistry([app]),
    observer: new EventEmitter(),
    mixing,
    log: pino({ level: 'silent' }),
  });
  t.after(() => dispatcher.close());
  const event = { appID: app.appID, roomID: 'r', taskID: 'task-1', streamID: 'mixed', timeMs: Date.now() };
  mixing.emit('mixStart', event);
  mixing.emit('mixStop', { ...event, reason: 'inputsGone' });
  await receiver.waitFor((a) => a.length === 2);
  for (const arrival of receiver.arrivals) assertGenuine(arrival, app.appID);
  assert.deepEqual(
    receiver.arrivals
      .map((a) => a.body)
      .map((b) => [b.event, b.room_id, b.room_session_id, b.room_seq, b.event_id, 'reason' in b ? b.reason : '']),
    [
      ['mix_start', 'r', 'task-1', 1, `${app.appID}-task-1-1`, ''],
      ['mix_stop', 'r', 'task-1', 2, `${app.appID}-task-1-2`, 'inputsGone'],
    ],
  );
});
