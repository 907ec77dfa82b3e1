import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, randomApp, DEV_APP } from '../src/index.js';

/** A raw GET, so that the path reaches the server exactly as written (no URL normalization). */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the static file server serves its folder and nothing outside it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'parley-static-'));
  writeFileSync(join(root, 'index.html'), '<h1>demo</h1>');
  const server = await startServer({ port: 0, apps: [randomApp(1)], staticDir: root, logLevel: 'silent' });
  t.after(() => server.close());
  assert.deepEqual(await get(server.port, '/'), { status: 200, body: '<h1>demo</h1>' });
  for (const path of [
    '/../../../../etc/passwd',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/..%2f..%2f..%2fetc%2fpasswd',
    '/%00',
    '/index.html%00.js',
    '/dev-config.json',
  ]) {
    const { status, body } = await get(server.port, path);
    assert.equal(status, 404, path);
    assert.ok(!body.includes('root:'), path);
  }
});

test('production mode refuses the well-known dev credentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
  const config = join(dir, 'parley.json');
  writeFileSync(config, JSON.stringify({ apps: [DEV_APP] }));
  const cli = new URL('../dist/cli.js', import.meta.url).pathname;
  assert.throws(
    () => execFileSync(process.execPath, [cli, 'start', '--config', config, '--port', '0'], { encoding: 'utf8', stdio: 'pipe' }),
    /dev credentials are not allowed/,
  );
});
