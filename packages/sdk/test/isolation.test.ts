import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, randomApp } from '@parley/server';
import { ErrorCode, PlayerState, PublisherState, UpdateType } from '@parley/sdk';
import { TestClient, sleep } from './helpers.js';

test('apps and rooms are isolated: same IDs in two apps never meet; a stream of room A cannot be played from room B', async (t) => {
  const appX = randomApp(11);
  const appY = randomApp(22);
  const server = await startServer({ port: 0, apps: [appX, appY], logLevel: 'silent', staticDir: false });
  const clients: TestClient[] = [];
  const client = (app: typeof appX, timeouts = {}): TestClient => {
    const c = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url, timeouts });
    clients.push(c);
    return c;
  };
  t.after(async () => {
    await Promise.all(clients.map((c) => c.destroy()));
    await server.close();
  });

  // The same roomID, userID and streamID in two apps: no kick-out, no 1003028, no shared events.
  const x = client(appX);
  const y = client(appY);
  assert.equal(await x.login('same-room', 'same-user'), 0);
  assert.equal(await y.login('same-room', 'same-user'), 0);
  x.engine.startPublishingStream('same-stream');
  y.engine.startPublishingStream('same-stream');
  await x.waitFor('publisherStateUpdate', (_, s) => s === PublisherState.Publishing);
  await y.waitFor('publisherStateUpdate', (_, s) => s === PublisherState.Publishing);
  const xWatcher = client(appX);
  assert.equal(await xWatcher.login('same-room', 'watcher'), 0);
  await xWatcher.waitFor('roomStreamUpdate');
  await sleep(200);
  assert.deepEqual(
    xWatcher.of('roomUserUpdate').map(([, type, users]) => [type, users.map((u) => u.userID)]),
    [[UpdateType.Add, ['same-user']]],
  );
  assert.equal(xWatcher.of('roomStreamUpdate').length, 1);
  assert.equal(x.of('roomUserUpdate').filter(([, type]) => type === UpdateType.Add).length, 1, 'x sees only its own app');
  assert.equal(y.of('roomUserUpdate').length, 0, 'y sees nobody from app X');
  // An appSign of one app does not open the other.
  const crossed = new TestClient({ appID: appY.appID, appSign: appX.appSign, server: server.url });
  clients.push(crossed);
  assert.equal(await crossed.login('same-room', 'intruder'), ErrorCode.AppSignWrong);

  // Room B cannot play room A's stream, though it exists in the same app.
  const other = client(appX, { playRetryIntervalMs: 60_000 });
  assert.equal(await other.login('room-b', 'other'), 0);
  other.engine.startPlayingStream('same-stream');
  await other.waitFor('playerStateUpdate', (_, s, code) => s === PlayerState.PlayRequesting && code === ErrorCode.StreamNotFound);
  await sleep(300);
  assert.ok(!other.of('playerStateUpdate').some(([, s]) => s === PlayerState.Playing));
  assert.equal(other.of('roomStreamUpdate').length, 0);
});
