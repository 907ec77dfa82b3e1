import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, randomApp, DEV_APP } from '../src/index.js';
import { TrustedProxies } from '../src/http/clientAddress.js';

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
  t.after(() => rmSync(root, { recursive: true, force: true }));
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

test('production mode refuses the well-known dev credentials', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'parley.json');
  writeFileSync(config, JSON.stringify({ apps: [DEV_APP] }));
  const cli = new URL('../dist/cli.js', import.meta.url).pathname;
  assert.throws(
    () => execFileSync(process.execPath, [cli, 'start', '--config', config, '--port', '0'], { encoding: 'utf8', stdio: 'pipe' }),
    /dev credentials are not allowed/,
  );
});

test('X-Forwarded-For is believed only from trusted proxies, read from the right, and ends at a hop that is not an address', () => {
  const proxies = new TrustedProxies(['127.0.0.1', '10.0.0.0/8']);
  const req = (peer: string, forwarded?: string): IncomingMessage =>
    ({
      socket: { remoteAddress: peer },
      headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded },
    }) as unknown as IncomingMessage;
  assert.equal(proxies.clientAddress(req('198.51.100.7', '1.2.3.4')), '198.51.100.7', 'not from a proxy: the peer');
  assert.equal(proxies.clientAddress(req('127.0.0.1', '203.0.113.9')), '203.0.113.9');
  assert.equal(
    proxies.clientAddress(req('::ffff:127.0.0.1', '6.6.6.6, 203.0.113.9, 10.1.2.3')),
    '203.0.113.9',
    'what the client wrote proves nothing',
  );
  assert.equal(proxies.clientAddress(req('127.0.0.1', '6.6.6.6, 203.0.113.9:5678')), '127.0.0.1', 'a hop with a port ends the walk');
  assert.equal(proxies.clientAddress(req('127.0.0.1', '6.6.6.6, unknown, 10.1.2.3')), '10.1.2.3');
  assert.equal(proxies.clientAddress(req('127.0.0.1')), '127.0.0.1');
  assert.equal(new TrustedProxies([]).clientAddress(req('127.0.0.1', '203.0.113.9')), '127.0.0.1', 'no proxies listed: the peer');
});

test('a server whose port is taken refuses to start (EADDRINUSE) without crashing the process, and the running one serves on', async (t) => {
  const app = randomApp(4_000_101);
  const running = await startServer({ host: '127.0.0.1', port: 0, apps: [app], logLevel: 'silent', staticDir: false });
  t.after(() => running.close());
  await assert.rejects(
    startServer({ host: '127.0.0.1', port: running.port, apps: [app], logLevel: 'silent', staticDir: false }),
    /EADDRINUSE/,
  );
  assert.equal((await get(running.port, '/ready')).status, 200);
});
