import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateToken04, randomApp } from '@parley/server';
import { TestClient, sleep } from './helpers.js';

test('secrets never reach the logs: a production server logs logins, not AppSigns, secrets, proofs or tokens', async (t) => {
  const app = randomApp(77);
  const dir = mkdtempSync(join(tmpdir(), 'parley-logs-'));
  const config = join(dir, 'parley.json');
  writeFileSync(config, JSON.stringify({ apps: [app] }));
  const cli = new URL('../../server/dist/cli.js', import.meta.url).pathname;
  const server = spawn(process.execPath, [cli, 'start', '--config', config, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => server.kill('SIGKILL'));
  let output = '';
  server.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  while (!/"port":\d+/.test(output)) await sleep(20);
  const port = Number(/"port":(\d+)/.exec(output)![1]);
  const url = `ws://127.0.0.1:${port}/ws`;

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

  assert.match(output, /"msg":"login"/, 'logins are logged');
  for (const secret of [app.appSign, app.serverSecret, token, token.slice(2, 40), 'a'.repeat(64)]) {
    assert.ok(!output.includes(secret), `the log does not contain ${secret.slice(0, 8)}…`);
  }
});
