import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { UpdateType } from '@parley/sdk';
import { startTestServer } from './helpers.js';

test('a killed client (no logoutRoom) is removed after the heartbeat timeout: the room sees its stream and user go', async (t) => {
  const heartbeatTimeoutMs = 1500;
  const env = await startTestServer({ heartbeatTimeoutMs });
  t.after(() => env.close());
  const watcher = env.client();
  assert.equal(await watcher.login('r-hb', 'watcher'), 0);

  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      new URL('./publisherProcess.ts', import.meta.url).pathname,
      env.server.url,
      String(env.app.appID),
      env.app.appSign,
      'r-hb',
      'doomed',
      's-doomed',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => child.kill('SIGKILL'));
  await once(child.stdout!, 'data');
  await watcher.waitFor('roomStreamUpdate', (_, type) => type === UpdateType.Add);

  child.kill('SIGKILL');
  const killedAt = Date.now();
  const [, , streams] = await watcher.waitFor('roomStreamUpdate', (_, type) => type === UpdateType.Delete, heartbeatTimeoutMs + 3000);
  const [, , users] = await watcher.waitFor('roomUserUpdate', (_, type) => type === UpdateType.Delete, 1000);
  const elapsed = Date.now() - killedAt;
  assert.deepEqual(
    streams.map((s) => s.streamID),
    ['s-doomed'],
  );
  assert.deepEqual(
    users.map((u) => u.userID),
    ['doomed'],
  );
  assert.ok(elapsed <= heartbeatTimeoutMs + 1000, `removed ${elapsed} ms after the kill (timeout ${heartbeatTimeoutMs} ms)`);
  assert.equal((await env.server.rooms.stats()).publications, 0);
});
