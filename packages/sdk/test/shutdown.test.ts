import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, RoomStateChangedReason } from '@parley/sdk';
import { liveCall, sleep, startTestServer } from './helpers.js';

const readyz = async (httpUrl: string): Promise<number> => (await fetch(new URL('/readyz', httpUrl))).status;

test('graceful shutdown: new users are turned away while calls in progress go on until they end', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const call = await liveCall(env, 'r-drain');
  t.after(call.stop);

  const closing = env.server.close({ drainMs: 10_000 });
  let closed = false;
  void closing.then(() => (closed = true));
  assert.equal(await readyz(env.server.httpUrl), 503);
  assert.equal(await env.client().login('r-drain', 'latecomer'), ErrorCode.ConnectFailed, 'no new connections');

  const frames = call.frames();
  await sleep(1000);
  assert.ok(call.frames() > frames + 10, 'the call goes on while the server drains');
  assert.deepEqual(call.roomEventsSinceStart(), [[], []]);
  assert.equal(closed, false);

  const leftAt = Date.now();
  call.viewer.engine.logoutRoom('r-drain');
  call.pub.engine.logoutRoom('r-drain');
  await closing;
  console.log(`# closed ${Date.now() - leftAt} ms after the last user left (drain limit 10 s)`);
  assert.ok(Date.now() - leftAt < 5000, 'the server stops once its rooms are empty');
});

test('graceful shutdown: users still there when the drain ends are disconnected (1001) and start reconnecting', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const stayer = env.client({ reconnectWindowMs: 1000 });
  assert.equal(await stayer.login('r-stay', 'stayer'), 0);
  const startedAt = Date.now();
  await env.server.close({ drainMs: 800 });
  const [, reason, code] = await stayer.waitFor('roomStateChanged', (_, r) => r === RoomStateChangedReason.Reconnecting);
  assert.deepEqual([reason, code], [RoomStateChangedReason.Reconnecting, ErrorCode.ConnectionBroken]);
  assert.ok(Date.now() - startedAt >= 800, 'not before the drain ended');
});

test('closing again cuts a drain short', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  assert.equal(await env.client().login('r-cut', 'someone'), 0);
  const startedAt = Date.now();
  const draining = env.server.close({ drainMs: 60_000 });
  await sleep(200);
  await env.server.close();
  await draining;
  assert.ok(Date.now() - startedAt < 5000);
});
