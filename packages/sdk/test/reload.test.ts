/**
 * `parley start` re-reads its configuration's apps and limits on SIGHUP (systemctl reload) while
 * calls go on; a file with errors changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '@parley/sdk';
import { randomApp, type AppConfig } from '@parley/server';
import { startServerProcess, teardown } from '@parley/testkit';
import { liveCall, sleep, TestClient } from './helpers.js';

test('SIGHUP reloads apps and limits without dropping a call; a broken file is refused and changes nothing', async (t) => {
  const closeLater = teardown(t);
  const [first, added] = [randomApp(8_000_001), randomApp(8_000_002)];
  const lifted = 1e6;
  const config = (apps: AppConfig[], loginsPerSecondPerIp: number) => ({
    listen: { host: '127.0.0.1', port: 0 },
    apps,
    media: { udpPort: 0, tcpPort: false },
    limits: { connectionsPerSecondPerIp: lifted, connectionBurstPerIp: lifted, loginsPerSecondPerIp, loginBurstPerIp: 2 },
  });
  const server = await startServerProcess(config([first], lifted));
  closeLater(() => server.stop());
  const client = (app: AppConfig): TestClient => {
    const c = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url });
    closeLater(() => c.destroy());
    return c;
  };

  const call = await liveCall({ client: () => client(first) }, 'reload');
  closeLater(() => call.stop());
  assert.equal(await client(added).login('reload', 'newcomer'), ErrorCode.AppIDUnknown, 'the second app is not served yet');

  // A second app, and at most two logins from one address (a full bucket at the new rate).
  assert.deepEqual(await server.reload(config([first, added], 0.001)), { reloaded: true });
  assert.equal(await client(added).login('reload', 'newcomer'), 0, 'the added app is served');
  assert.equal(await client(first).login('reload', 'second'), 0);
  assert.equal(await client(first).login('reload', 'third'), ErrorCode.RateLimited, 'the new login limit applies');

  // A file with errors: refused, one line naming the key; the server goes on as it was.
  const refused = await server.reload({ ...config([first, added], lifted), media: { udpPort: 'seven' } });
  assert.equal(refused.reloaded, false);
  assert.match((refused as { message: string }).message, /media\.udpPort: must be a port number$/);
  assert.equal(await client(first).login('reload', 'fourth'), ErrorCode.RateLimited, 'the limits of the last good file stay');

  const before = call.frames();
  await sleep(1000);
  assert.ok(call.frames() - before >= 20, `the call went on (${call.frames() - before} frames in 1 s)`);
  // Others joining is all the call's two users were told.
  const told = call
    .roomEventsSinceStart()
    .map((events) => events.filter((e) => e !== 'roomUserUpdate' && e !== 'roomOnlineUserCountUpdate'));
  assert.deepEqual(told, [[], []], 'neither side of the call noticed');
});
