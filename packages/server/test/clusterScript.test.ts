/**
 * `npm run cluster` (scripts/cluster.ts) and the three-node example of deploy/cluster: the script's
 * nodes each serve the demo page and log in its app, deploy/cluster/nginx.conf spreads clients over
 * them, Ctrl-C leaves no process behind; the example's node files, unit and redis.conf are valid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import { makeCertificate, siteWithCertificate, startNginxSite, teardown } from '@parley/testkit';
import { loadConfig } from '../src/configFile.js';
import { randomApp } from '../src/config.js';

const run = promisify(execFile);
const root = new URL('../../../', import.meta.url).pathname;
const script = join(root, 'scripts/cluster.ts');
const cli = join(root, 'packages/server/dist/cli.js');
const example = join(root, 'deploy/cluster');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function listening(port: number, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface Summary {
  redisUrl: string;
  redisPid: number;
  nodes: Array<{ nodeId: string; url: string; pid: number }>;
}

/** Waits for the script's summary: Redis's URL and pid, and each node's demo URL and pid. */
function summaryOf(child: ChildProcess, nodeCount: number, timeoutMs = 20_000): Promise<Summary> {
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no summary within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    child.once('exit', (code) => reject(new Error(`the script exited (${code}):\n${output}`)));
    const read = (chunk: Buffer): void => {
      output += chunk.toString();
      const redis = /sharing (redis:\/\/\S+) \(pid (\d+)\)/.exec(output);
      const nodes = [...output.matchAll(/^ {2}(node-\d+) {2}(http:\/\/\S+) {2}\(pid (\d+)\)$/gm)].map(([, nodeId, url, pid]) => ({
        nodeId: nodeId!,
        url: url!,
        pid: Number(pid),
      }));
      if (redis && nodes.length === nodeCount) {
        clearTimeout(timer);
        resolve({ redisUrl: redis[1]!, redisPid: Number(redis[2]), nodes });
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', (chunk: Buffer) => void (output += chunk.toString()));
  });
}

/** GET (or a WebSocket upgrade) through nginx, trusting the test's CA. */
function httpsGet(port: number, path: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca, servername: 'parley.example.com' }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('npm run cluster: Redis and three nodes that each serve the demo page and log in its app, behind deploy/cluster/nginx.conf; Ctrl-C leaves no process', async (t) => {
  const closeLater = teardown(t);
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  closeLater(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const { redisUrl, redisPid, nodes } = await summaryOf(child, 3);
  assert.deepEqual(
    nodes.map((n) => n.nodeId),
    ['node-1', 'node-2', 'node-3'],
  );
  assert.equal(new Set(nodes.map((n) => new URL(n.url).port)).size, 3, 'three ports');

  // Each node: the demo page, ready, and the app in its URL logs in (and reaches its media).
  await Promise.all(
    nodes.map(async ({ nodeId, url }) => {
      const page = await fetch(url);
      assert.equal(page.status, 200, nodeId);
      assert.match(await page.text(), /id="appSign"/, `${nodeId} serves the demo page`);
      const ready = await fetch(new URL('/ready', url));
      assert.equal(ready.status, 200, `${nodeId} is ready`);
      const { searchParams, host } = new URL(url);
      const { stdout } = await run(process.execPath, [
        cli,
        'doctor',
        `ws://${host}/ws`,
        '--app-id',
        searchParams.get('appID')!,
        '--app-sign',
        searchParams.get('appSign')!,
      ]);
      assert.match(stdout, /^signalling ok/m, `${nodeId}: ${stdout}`);
      assert.match(stdout, /^udp +ok/m, `${nodeId}: ${stdout}`);
    }),
  );
  // One cluster: every node is in the registry of the one Redis.
  const { stdout: registered } = await run('redis-cli', ['-u', redisUrl, 'HKEYS', 'parley:nodes']);
  assert.deepEqual(registered.trim().split('\n').sort(), ['node-1', 'node-2', 'node-3']);

  // deploy/cluster/nginx.conf in front of the three nodes, with the test's certificate and ports.
  const certificate = makeCertificate({ ips: ['127.0.0.1'], names: ['parley.example.com'] });
  closeLater(() => certificate.remove());
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  let site = siteWithCertificate(readFileSync(join(example, 'nginx.conf'), 'utf8'), listen, certificate);
  nodes.forEach(({ url }, i) => (site = site.replace(`server 127.0.0.1:${7801 + i} `, `server ${new URL(url).host} `)));
  const nginx = await startNginxSite(site, listen);
  closeLater(() => nginx.stop());
  const ca = readFileSync(certificate.caFile);
  const page = await httpsGet(port, '/', ca);
  assert.equal(page.status, 200);
  assert.match(page.body, /id="appSign"/);
  assert.equal((await httpsGet(port, '/metrics', ca)).status, 403, 'the operations endpoints stay private');
  assert.equal((await httpsGet(port, '/ready', ca)).status, 403);
  const sockets = await Promise.all(
    nodes.map(
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, { ca });
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        }),
    ),
  );
  for (const ws of sockets) ws.terminate();

  // Ctrl-C: the script stops the nodes, then Redis, and exits 0; none of them is left.
  child.kill('SIGINT');
  assert.equal(await exited, 0);
  for (const pid of [redisPid, ...nodes.map((n) => n.pid)]) assert.equal(alive(pid), false, `pid ${pid} is gone`);
});

test('npm run cluster without redis-server: one line and exit 1', async () => {
  const before = new Set(readdirSync(tmpdir()).filter((name) => name.startsWith('parley-cluster-')));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: root,
    env: { ...process.env, PATH: '/nonexistent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 1);
  assert.match(stderr, /^parley cluster: redis-server not found: [^\n]+\n$/);
  const after = readdirSync(tmpdir()).filter((name) => name.startsWith('parley-cluster-') && !before.has(name));
  assert.deepEqual(after, [], 'no folder left');
});

test('deploy/cluster: each node file is valid with the secrets in the environment, and the nodes differ in their ports and IDs only', () => {
  const app = randomApp(1234567890);
  const env = {
    PARLEY_APP_1234567890_APP_SIGN: app.appSign,
    PARLEY_APP_1234567890_SERVER_SECRET: app.serverSecret,
    PARLEY_APP_1234567890_CALLBACK_SECRET: 'webhook-secret',
    PARLEY_TURN_SECRET: 'a-long-random-shared-secret',
    PARLEY_REDIS_URL: 'redis://:password@10.0.0.9:6379',
  };
  const files = readdirSync(example).filter((name) => /^node-\d+\.yaml$/.test(name));
  assert.deepEqual(files, ['node-1.yaml', 'node-2.yaml', 'node-3.yaml']);
  const nodes = files.map((name) => {
    const file = join(example, name);
    const loaded = loadConfig(readFileSync(file, 'utf8'), file, env);
    assert.equal(loaded.code, 0, 'message' in loaded ? loaded.message : '');
    return loaded.code === 0 ? loaded.data : assert.fail();
  });
  assert.deepEqual(
    nodes.map((n) => n.options.cluster?.nodeId),
    ['node-1', 'node-2', 'node-3'],
  );
  assert.ok(nodes.every((n) => n.options.cluster?.redisUrl === env.PARLEY_REDIS_URL));
  const ports = nodes.flatMap((n) => [n.options.port, n.options.media?.udpPort, n.options.media?.tcpPort]);
  assert.equal(new Set(ports).size, ports.length, `distinct ports: ${ports.join(', ')}`);
  const rest = nodes.map(({ options: { port: _p, media, cluster, ...others }, ...loaded }) => ({
    ...others,
    ...loaded,
    media: { ...media, udpPort: 0, tcpPort: 0 },
    cluster: { ...cluster, nodeId: '' },
  }));
  assert.deepEqual(rest[1], rest[0]);
  assert.deepEqual(rest[2], rest[0]);
});

test('deploy/cluster: the systemd template unit parses and outlasts the drain; redis.conf starts Redis with its AOF and password', async (t) => {
  const unit = readFileSync(join(example, 'parley@.service'), 'utf8');
  assert.match(unit, /^ExecStart=.* start --config \/etc\/parley\/%i\.yaml$/m);
  const stopSec = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1]);
  const drainMs = Number(/^drainMs: (\d+)/m.exec(readFileSync(join(example, 'node-1.yaml'), 'utf8'))?.[1]);
  assert.ok(stopSec * 1000 > drainMs, `TimeoutStopSec=${stopSec} outlasts drainMs ${drainMs}`);
  const unitDir = mkdtempSync(join(tmpdir(), 'parley-unit-'));
  t.after(() => rmSync(unitDir, { recursive: true, force: true }));
  writeFileSync(join(unitDir, 'parley@.service'), unit);
  const verified = await run('systemd-analyze', ['verify', join(unitDir, 'parley@node-1.service')]).catch((err: { stderr: string }) => err);
  const complaints = verified.stderr
    .split('\n')
    .filter((line) => line.includes('parley@'))
    .join('\n');
  assert.equal(complaints, '', 'systemd-analyze verify finds nothing to say about the unit');

  // The example's redis.conf, on a test's address, port and folder (the command line wins over the file).
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-conf-'));
  const port = await freePort();
  const redis = spawn('redis-server', [join(example, 'redis.conf'), '--bind', '127.0.0.1', '--port', String(port), '--dir', dir], {
    stdio: 'ignore',
  });
  const redisExited = new Promise<void>((resolve) => redis.once('exit', () => resolve()));
  t.after(async () => {
    redis.kill('SIGTERM');
    await redisExited;
    rmSync(dir, { recursive: true, force: true });
  });
  await listening(port);
  const password = /^requirepass (\S+)$/m.exec(readFileSync(join(example, 'redis.conf'), 'utf8'))?.[1];
  assert.ok(password);
  const cliArgs = ['-h', '127.0.0.1', '-p', String(port), '--no-auth-warning'];
  const { stdout: refused } = await run('redis-cli', [...cliArgs, 'PING']);
  assert.match(refused, /NOAUTH/, 'a password is needed');
  const setting = async (key: string): Promise<string> =>
    (await run('redis-cli', [...cliArgs, '-a', password, 'CONFIG', 'GET', key])).stdout.trim().split('\n')[1]!;
  assert.equal(await setting('appendonly'), 'yes');
  assert.equal(await setting('appendfsync'), 'everysec');
  assert.equal(await setting('maxmemory-policy'), 'noeviction');
  assert.equal(await setting('protected-mode'), 'yes');
});
