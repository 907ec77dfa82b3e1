import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { loadConfig } from '../src/configFile.js';
import { randomApp } from '../src/config.js';
import { announcedAddress } from '../src/net.js';

const cli = new URL('../dist/cli.js', import.meta.url).pathname;
const app = randomApp(4242);

const VALID = `
listen:
  host: 127.0.0.1
  port: 7900
publicUrl: http://parley.example.com:7900
apps:
  - appID: ${app.appID}
    appSign: ${app.appSign}
    serverSecret: ${app.serverSecret}
    callbackUrl: https://business.example.com/parley
    callbackSecret: webhook-secret
media:
  listenIp: 10.0.0.5
  announcedIp: 203.0.113.7
  portRange: [40000, 40999]
turn:
  urls: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:443?transport=tcp"]
  secret: 0123456789abcdef0123
limits:
  maxPlaysPerSession: 16
log:
  level: warn
drainMs: 5000
recording:
  dir: /var/lib/parley/recordings
  onFileReady: aws s3 cp "$1" s3://recordings/
`;

/** Runs the CLI; resolves with its exit code and what it wrote to stderr. */
function run(args: string[], env: Record<string, string> = {}): { status: number; stderr: string; stdout: string } {
  try {
    const stdout = execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: 'pipe', env: { ...process.env, ...env } });
    return { status: 0, stderr: '', stdout };
  } catch (err) {
    const { status, stderr, stdout } = err as { status: number; stderr: string; stdout: string };
    return { status, stderr, stdout };
  }
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a YAML config gives the server its listen address, apps, media, limits, log level and drain time; JSON too; secrets from the environment win', () => {
  const loaded = loadConfig(VALID, 'parley.yaml');
  assert.equal(loaded.code, 0, 'message' in loaded ? loaded.message : '');
  if (loaded.code !== 0) return;
  const { options, drainMs, tls } = loaded.data;
  assert.deepEqual(
    { host: options.host, port: options.port, media: options.media, limits: options.limits, logLevel: options.logLevel, drainMs, tls },
    {
      host: '127.0.0.1',
      port: 7900,
      media: { listenIp: '10.0.0.5', announcedIp: '203.0.113.7', portRange: [40000, 40999], tcpPort: 7881 },
      limits: { maxPlaysPerSession: 16 },
      logLevel: 'warn',
      drainMs: 5000,
      tls: undefined,
    },
  );
  assert.equal(options.staticDir, false, 'no demo page unless asked for');
  assert.deepEqual(options.recording, { dir: '/var/lib/parley/recordings', onFileReady: 'aws s3 cp "$1" s3://recordings/' });
  assert.equal(options.publicUrl, 'http://parley.example.com:7900');
  assert.deepEqual(options.turn, {
    urls: ['turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:443?transport=tcp'],
    secret: '0123456789abcdef0123',
  });
  const turnFromEnv = loadConfig(VALID, 'parley.yaml', { PARLEY_TURN_SECRET: 'from-the-environment' });
  assert.equal(turnFromEnv.code === 0 && turnFromEnv.data.options.turn?.secret, 'from-the-environment');
  // Without a range, one UDP port for all; ICE-TCP may be turned off.
  const onePort = loadConfig(VALID.replace('  portRange: [40000, 40999]\n', '  tcpPort: false\n'), 'parley.yaml');
  assert.deepEqual(onePort.code === 0 && onePort.data.options.media, { listenIp: '10.0.0.5', announcedIp: '203.0.113.7', udpPort: 7882 });
  assert.deepEqual(options.apps, [{ ...app, callbackUrl: 'https://business.example.com/parley', callbackSecret: 'webhook-secret' }]);

  const json = loadConfig(JSON.stringify({ apps: [{ appID: 9, appSign: 'a'.repeat(64), serverSecret: 'x'.repeat(32) }] }), 'parley.json', {
    PARLEY_APP_9_SERVER_SECRET: 'y'.repeat(32),
  });
  assert.equal(json.code, 0);
  if (json.code !== 0) return;
  assert.deepEqual(
    [json.data.options.host, json.data.options.port, json.data.options.apps[0]!.serverSecret],
    ['0.0.0.0', 7800, 'y'.repeat(32)],
  );
  // A secret may live only in the environment.
  const withoutSign = VALID.replace(/ {4}appSign: .*\n/, '');
  assert.notEqual(loadConfig(withoutSign, 'parley.yaml').code, 0);
  assert.equal(loadConfig(withoutSign, 'parley.yaml', { [`PARLEY_APP_${app.appID}_APP_SIGN`]: app.appSign }).code, 0);
});

test('an announced host name is resolved to the address candidates carry; one that does not resolve stops the server from starting', async () => {
  assert.equal(await announcedAddress('203.0.113.7'), '203.0.113.7');
  assert.equal(await announcedAddress('localhost'), '127.0.0.1');
  await assert.rejects(announcedAddress('no-such-host.invalid'), /media\.announcedIp: no-such-host\.invalid does not resolve/);
  const named = loadConfig(VALID.replace('announcedIp: 203.0.113.7', 'announcedIp: media.example.com'), 'parley.yaml');
  assert.equal(named.code === 0 && named.data.options.media?.announcedIp, 'media.example.com');
});

test('the example configuration in deploy/ is valid once its secrets are in the environment', () => {
  const file = new URL('../../../deploy/parley.example.yaml', import.meta.url).pathname;
  const appID = 1234567890;
  const env = {
    [`PARLEY_APP_${appID}_APP_SIGN`]: app.appSign,
    [`PARLEY_APP_${appID}_SERVER_SECRET`]: app.serverSecret,
    [`PARLEY_APP_${appID}_CALLBACK_SECRET`]: 'webhook-secret',
    PARLEY_TURN_SECRET: 'a-long-random-shared-secret',
  };
  const loaded = loadConfig(readFileSync(file, 'utf8'), file, env);
  assert.equal(loaded.code, 0, 'message' in loaded ? loaded.message : '');
  assert.notEqual(loadConfig(readFileSync(file, 'utf8'), file, {}).code, 0, 'not without them');
});

test('twenty-two malformed configs: each gets one line naming the key and the problem, and the server does not start', (t) => {
  const dir = tempDir(t);
  const appLines = (overrides: Record<string, string> = {}): string =>
    `apps:\n  - appID: ${overrides.appID ?? app.appID}\n    appSign: ${overrides.appSign ?? app.appSign}\n    serverSecret: "${overrides.serverSecret ?? app.serverSecret}"\n`;
  const cases: Array<[string, string, RegExp]> = [
    ['no apps', 'listen:\n  port: 7800\n', /: apps: is missing$/],
    ['appSign not hex', appLines({ appSign: 'z'.repeat(64) }), /: apps\[0\]\.appSign: must be 64 hex characters$/],
    ['serverSecret short', appLines({ serverSecret: 'short' }), /: apps\[0\]\.serverSecret: must be 32 printable characters$/],
    ['port out of range', `listen:\n  port: 70000\n${appLines()}`, /: listen\.port: must be a port number$/],
    [
      'port range reversed',
      `${appLines()}media:\n  portRange: [50000, 40000]\n`,
      /: media\.portRange: must be \[first, last\] with 0 < first ≤ last$/,
    ],
    [
      'one port and a range',
      `${appLines()}media:\n  udpPort: 7882\n  portRange: [40000, 40999]\n`,
      /: media\.udpPort: cannot be given with portRange \(one port for all, or a port per connection\)$/,
    ],
    [
      'public URL without TLS',
      `publicUrl: https://parley.example.com\n${appLines()}`,
      /: publicUrl: is https, so the server needs tls or a proxy in front \(behindProxy\)$/,
    ],
    ['TCP port', `${appLines()}media:\n  tcpPort: yes\n`, /: media\.tcpPort: must be a port number or false$/],
    ['fast path', `${appLines()}media:\n  fastPath: fastest\n`, /: media\.fastPath: must be native or typescript$/],
    ['media workers', `${appLines()}media:\n  workers: 1.5\n`, /: media\.workers: must be a whole number$/],
    [
      'media workers on a node of a cluster',
      `${appLines()}media:\n  workers: 2\ncluster:\n  redisUrl: redis://127.0.0.1:6379\n`,
      /: media\.workers: cannot be given on a node of a cluster \(its relay serves the streams of one media thread\)$/,
    ],
    ['recording without a folder', `${appLines()}recording:\n  onFileReady: upload "$1"\n`, /: recording\.dir: is missing$/],
    [
      'TURN URL',
      `${appLines()}turn:\n  urls: [stun:turn.example.com]\n  secret: 0123456789abcdef\n`,
      /: turn\.urls\[0\]: must be turn:host:port\?transport=udp\|tcp or turns:host:port\?transport=tcp$/,
    ],
    [
      'announced address',
      `${appLines()}media:\n  announcedIp: "media.example.com:80"\n`,
      /: media\.announcedIp: must be an IPv4 address or a host name$/,
    ],
    [
      'Redis URL',
      `${appLines()}cluster:\n  redisUrl: http://redis.example.com\n`,
      /: cluster\.redisUrl: must be a redis:\/\/ or rediss:\/\/ URL$/,
    ],
    ['log level', `${appLines()}log:\n  level: loud\n`, /: log\.level: must be one of fatal, error, warn, info, debug, trace, silent$/],
    ['misspelt key', `${appLines()}meida:\n  listenIp: 10.0.0.1\n`, /: meida: is not a known key$/],
    ['negative limit', `${appLines()}limits:\n  maxPlaysPerSession: -1\n`, /: limits\.maxPlaysPerSession: must be positive$/],
    ['certificate missing', `${appLines()}tls:\n  cert: ${dir}/none.pem\n  key: ${dir}/none.key\n`, /: tls\.cert: ENOENT/],
    [
      'callback URL',
      `${appLines()}`.replace(/(serverSecret: .*\n)/, '$1    callbackUrl: ftp://example.com\n    callbackSecret: s\n'),
      /: apps\[0\]\.callbackUrl: must be an http\(s\) URL$/,
    ],
    [
      'callback unsigned',
      `${appLines()}`.replace(/(serverSecret: .*\n)/, '$1    callbackUrl: https://example.com\n'),
      /: apps\[0\]\.callbackSecret: is needed to sign the callbackUrl webhooks$/,
    ],
    ['appID twice', `${appLines()}${appLines().replace('apps:\n', '')}`, /: apps: appID 4242 is listed twice$/],
  ];
  for (const [index, [name, text, expected]] of cases.entries()) {
    const file = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
    writeFileSync(file, text);
    // `start` reads the file as `config check` does; three of the cases show that it then does not start.
    const start = index < 3 ? [['start', '--config', file, '--port', '0']] : [];
    for (const command of [['config', 'check', file], ...start]) {
      const { status, stderr } = run(command);
      const lines = stderr.trim().split('\n');
      assert.equal(status, 1, `${name}: ${command[0]} fails`);
      assert.equal(lines.length, 1, `${name}: one line: ${stderr}`);
      assert.match(lines[0]!, expected, name);
      assert.ok(lines[0]!.startsWith(`parley: ${file}: `), `${name}: names the file: ${lines[0]}`);
    }
  }
});

test('with a certificate the server serves https and wss itself; config check says so', async (t) => {
  const dir = tempDir(t);
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'pipe' },
  );
  const file = join(dir, 'parley.yaml');
  writeFileSync(
    file,
    `${VALID.replace('port: 7900', 'port: 0').replace('level: warn', 'level: info')}tls:\n  cert: ${cert}\n  key: ${key}\n`.replace(
      /media:\n(  .*\n)+/,
      'media:\n  udpPort: 0\n  tcpPort: false\n',
    ),
  );
  assert.match(run(['config', 'check', file]).stdout, /: ok \(1 app\(s\), https on 127\.0\.0\.1:0\)/);

  const server = spawn(process.execPath, [cli, 'start', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => server.kill('SIGKILL'));
  let output = '';
  server.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const listening = /"httpUrl":"https:\/\/127\.0\.0\.1:(\d+)"/;
  for (const deadline = Date.now() + 10_000; !listening.test(output) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
  const port = Number(listening.exec(output)?.[1]);
  assert.ok(port > 0, output);
  const ca = readFileSync(cert);
  const status = await new Promise<number>((resolve, reject) =>
    request({ host: '127.0.0.1', port, path: '/healthz', ca }, (res) => resolve(res.statusCode ?? 0))
      .on('error', reject)
      .end(),
  );
  assert.equal(status, 200);
  // Signalling over wss: the server's hello arrives.
  const hello = await new Promise<string>((resolve, reject) => {
    const socket = new WebSocket(`wss://127.0.0.1:${port}/ws`, { ca });
    socket.once('message', (data: Buffer) => (resolve(data.toString()), socket.close()));
    socket.once('error', reject);
  });
  assert.match(hello, /"type":"hello"/);
});
