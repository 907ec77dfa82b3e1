import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

test('a plain ESM script at the repo root imports the SDK and the server and makes a call setup', () => {
  const script = `
    import { ParleyEngine, RoomStateChangedReason } from '@parley/sdk';
    import { startServer, randomApp } from '@parley/server';
    const app = randomApp(7);
    const server = await startServer({ port: 0, apps: [app], logLevel: 'silent' });
    const engine = ParleyEngine.createEngine({ appID: app.appID, appSign: app.appSign, server: server.url }, null);
    const code = await new Promise((resolve) => engine.loginRoom('r', { userID: 'u', userName: 'u' }, {}, resolve));
    await new Promise((resolve) => ParleyEngine.destroyEngine(engine, resolve));
    await server.close();
    console.log(JSON.stringify({ code, logined: RoomStateChangedReason.Logined }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
  assert.deepEqual(JSON.parse(out.trim()), { code: 0, logined: 1 });
});
