import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateToken04, randomApp } from '@parley/server';
import { startServerProcess } from '@parley/testkit';
import { TestClient, sleep } from './helpers.js';

test('secrets never reach the logs: a production server logs logins, not AppSigns, secrets, proofs or tokens', async (t) => {
  const app = randomApp(77);
  const server = await startServerProcess({ listen: { host: '127.0.0.1', port: 0 }, apps: [app], media: { udpPort: 0, tcpPort: false } });
  t.after(() => server.stop());
  const { url } = server;

  const token = generateToken04({ appID: app.appID, userID: 'by-token', serverSecret: app.serverSecret, effectiveTimeInSeconds: 600 });
  const withSign = new TestClient({ appID: app.appID, appSign: app.appSign, server: url });
  const withToken = new TestClient({ appID: app.appID, server: url });
  const wrong = new TestClient({ appID: app.appID, appSign: 'a'.repeat(64), server: url });
  t.after(() => Promise.all([withSign.destroy(), withToken.destroy(), wrong.destroy()]));
  assert.equal(await withSign.login('r-logs', 'by-sign'), 0);
  assert.equal(
    await new Promise((resolve) => withToken.engine.loginRoom('r-logs', { userID: 'by-token', userName: 'x' }, { token }, resolve)),
    0,
  );
  assert.notEqual(await wrong.login('r-logs', 'wrong'), 0);
  await sleep(300);
  const output = server.output();

  assert.match(output, /"msg":"login"/, 'logins are logged');
  for (const secret of [app.appSign, app.serverSecret, token, token.slice(2, 40), 'a'.repeat(64)]) {
    assert.ok(!output.includes(secret), `the log does not contain ${secret.slice(0, 8)}…`);
  }
});
