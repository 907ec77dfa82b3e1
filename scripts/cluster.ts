/**
 * `npm run cluster`: a Parley cluster on this machine for development. A redis-server of its own (a
 * free port on loopback, a temporary folder, nothing persisted) and three nodes, each `parley start
 * --config <file>` as production runs them, on 127.0.0.1:8081, 8082 and 8083, serving one app made
 * for this run and the demo page. It prints each node's demo URL (with the app's credentials in it,
 * so the page can log in), then the nodes' logs. Ctrl-C (or SIGTERM) stops the nodes, then Redis,
 * and removes the folder; a second Ctrl-C kills what is left at once.
 *
 *   npm run cluster [-- --port 9001 --nodes 5]   nodes on 9001, 9002, … (--port 0: free ports)
 *
 * `kill -TERM <pid>` of one node (the pids are printed) stops it alone: its clients are disconnected
 * and reconnect, the other nodes go on.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const HOST = '127.0.0.1';
const CLI = new URL('../packages/server/dist/cli.js', import.meta.url).pathname;
const DEMO = new URL('../packages/demo/dist/index.html', import.meta.url).pathname;
/** How long a node or Redis may take to start, and to stop before it is killed. */
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
/** A second signal within this long of the first is the same Ctrl-C (npm forwards it too). */
const SAME_SIGNAL_MS = 1_000;

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8081' },
    nodes: { type: 'string', default: '3' },
  },
});
const basePort = Number(values.port);
const nodeCount = Number(values.nodes);
if (!Number.isInteger(basePort) || basePort < 0 || basePort + nodeCount > 65536) fatal(`--port ${values.port}: not a port number`);
if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 9) fatal(`--nodes ${values.nodes}: from 1 to 9`);
if (!existsSync(CLI)) fatal(`${CLI} is missing: run npm run build first`);
const redisVersion = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
if (redisVersion.error) fatal('redis-server not found: install Redis (Debian/Ubuntu: apt install redis-server) or put it on PATH');
if (!existsSync(DEMO)) process.stderr.write(`parley cluster: ${DEMO} is missing (npm run build makes it): the nodes serve no demo page\n`);

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<void>;
}

const children: Child[] = [];
const dir = mkdtempSync(join(tmpdir(), 'parley-cluster-'));
let stopping: Promise<never> | undefined;
let firstSignalAt = 0;

/** Starts `argv` in a process group of its own: Ctrl-C reaches this script, which stops each in order. */
function launch(name: string, argv: string[]): Child {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    // It could not be started at all (no 'exit' follows).
    child.once('error', (err) => {
      resolve();
      void shutdown(1, `${name}: ${err.message}`);
    });
  });
  const entry = { name, process: child, exited };
  children.push(entry);
  return entry;
}

const running = (child: Child): boolean => child.process.exitCode === null && child.process.signalCode === null;

/** SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_MS. */
async function stopChild(child: Child): Promise<void> {
  if (!running(child)) return;
  child.process.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      process.stderr.write(`parley cluster: ${child.name} did not stop within ${STOP_TIMEOUT_MS / 1000} s: killed\n`);
      child.process.kill('SIGKILL');
      resolve();
    }, STOP_TIMEOUT_MS);
  });
  await Promise.race([child.exited, late]);
  clearTimeout(timer);
  await child.exited;
}

/** Stops the nodes, then Redis (which they need while they close), removes the folder and exits. */
function shutdown(code: number, message?: string): Promise<never> {
  if (message) process.stderr.write(`parley cluster: ${message}\n`);
  stopping ??= (async () => {
    const [redis, ...nodes] = children;
    await Promise.all(nodes.map(stopChild));
    if (redis) await stopChild(redis);
    rmSync(dir, { recursive: true, force: true });
    if (code === 0) process.stdout.write('parley cluster: stopped\n');
    process.exit(code);
  })();
  return stopping;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (!stopping) {
      firstSignalAt = Date.now();
      process.stdout.write('\nparley cluster: stopping\n');
      void shutdown(0);
    } else if (Date.now() - firstSignalAt > SAME_SIGNAL_MS) {
      for (const child of children) if (running(child)) child.process.kill('SIGKILL');
    }
  });
}
// Whatever ends this script, no child outlives it.
process.on('exit', () => {
  for (const child of children) if (running(child)) child.process.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function fatal(message: string): never {
  process.stderr.write(`parley cluster: ${message}\n`);
  process.exit(1);
}

/** A TCP port nothing listens on now: `port` if it is free (undefined if not), any with 0. */
async function freePort(port = 0): Promise<number | undefined> {
  const server = createServer();
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => resolve(true));
  });
  if (!listening) return undefined;
  const { port: bound } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return bound;
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: HOST, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });

async function startRedis(): Promise<{ url: string; pid: number }> {
  const port = (await freePort())!;
  const redis = launch('redis', [
    'redis-server',
    '--bind',
    HOST,
    '--port',
    String(port),
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--loglevel',
    'warning',
  ]);
  let output = '';
  const collect = (chunk: Buffer): void => void (output += chunk.toString());
  redis.process.stdout!.on('data', collect);
  redis.process.stderr!.on('data', collect);
  for (const deadline = Date.now() + START_TIMEOUT_MS; !(await accepts(port)); await new Promise((r) => setTimeout(r, 50))) {
    if (!running(redis) || Date.now() > deadline) return shutdown(1, `redis-server did not start: ${output.trim() || 'no output'}`);
  }
  redis.process.stdout!.off('data', collect);
  // Its goodbye when this script stops it is no news.
  redis.process.stdout!.on('data', (chunk: Buffer) => void (stopping || process.stdout.write(prefixed('redis', chunk.toString()))));
  redis.process.stderr!.on('data', (chunk: Buffer) => process.stderr.write(prefixed('redis', chunk.toString())));
  void redis.exited.then(() => stopping ?? shutdown(1, `redis-server exited (${exitOf(redis)})`));
  return { url: `redis://${HOST}:${port}`, pid: redis.process.pid! };
}

const prefixed = (name: string, text: string): string =>
  text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => `${name.padEnd(7)}| ${line}\n`)
    .join('');

const exitOf = (child: Child): string =>
  child.process.signalCode ? `signal ${child.process.signalCode}` : `code ${String(child.process.exitCode)}`;

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** A node's JSON log line, shorter: level, message, then its other fields. */
function logLine(line: string): string {
  try {
    const { level, msg, ...rest } = JSON.parse(line) as Record<string, unknown>;
    for (const key of ['time', 'pid', 'hostname', 'service']) delete rest[key];
    const fields = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    return `${LEVELS[level as number] ?? String(level)} ${String(msg)}${fields}`;
  } catch {
    return line;
  }
}

/** Starts a node; resolves with its http URL once it listens, or stops everything if it cannot. */
function startNode(
  nodeId: string,
  port: number,
  redisUrl: string,
  app: Record<string, unknown>,
): Promise<{ httpUrl: string; pid: number }> {
  const file = join(dir, `${nodeId}.json`);
  const config = {
    listen: { host: HOST, port },
    apps: [app],
    // Media on loopback, on a UDP port the system picks (the log says which); no ICE-TCP.
    media: { listenIp: HOST, udpPort: 0, tcpPort: false },
    cluster: { redisUrl, nodeId },
    // Ctrl-C stops at once; a node's own SIGTERM disconnects its clients, who reconnect.
    drainMs: 0,
    log: { level: 'info' },
    demo: true,
  };
  writeFileSync(file, JSON.stringify(config, null, 2));
  const node = launch(nodeId, [process.execPath, CLI, 'start', '--config', file]);
  let stderr = '';
  node.process.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    process.stderr.write(prefixed(nodeId, chunk.toString()));
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => void shutdown(1, `${nodeId} did not start within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    let listening = false;
    createInterface({ input: node.process.stdout! }).on('line', (line) => {
      process.stdout.write(prefixed(nodeId, logLine(line)));
      if (listening) return;
      try {
        const entry = JSON.parse(line) as { msg?: string; httpUrl?: string };
        if (entry.msg === 'server listening' && entry.httpUrl) {
          listening = true;
          clearTimeout(timer);
          resolve({ httpUrl: entry.httpUrl, pid: node.process.pid! });
        }
      } catch {
        // not a log line
      }
    });
    void node.exited.then(() => {
      clearTimeout(timer);
      if (stopping) return;
      if (!listening) {
        // Its own line (`parley: …`), else the error of a crash, else whatever it wrote last.
        const lines = stderr.trim().split('\n').reverse();
        const reason =
          lines.find((line) => line.startsWith('parley: '))?.slice('parley: '.length) ??
          lines.find((line) => /^\w*Error: /.test(line)) ??
          (lines[0] || exitOf(node));
        return void shutdown(1, `${nodeId} did not start: ${reason}`);
      }
      process.stderr.write(`parley cluster: ${nodeId} exited (${exitOf(node)})\n`);
      const nodes = children.slice(1);
      if (nodes.every((n) => !running(n))) void shutdown(1, 'no node is left');
    });
  });
}

const ports: number[] = [];
for (let i = 0; i < nodeCount; i++) {
  const port = await freePort(basePort === 0 ? 0 : basePort + i);
  if (port === undefined) fatal(`port ${basePort + i} is in use: choose others with --port (npm run cluster -- --port 9001)`);
  ports.push(port);
}
const redis = await startRedis();
// One app for this run: random secrets (the well-known dev credentials are refused by `parley start`).
const app = { appID: 1234567891, appSign: randomBytes(32).toString('hex'), serverSecret: randomBytes(16).toString('hex') };
const nodes = await Promise.all(
  Array.from({ length: nodeCount }, async (_, i) => {
    const nodeId = `node-${i + 1}`;
    return { nodeId, ...(await startNode(nodeId, ports[i]!, redis.url, app)) };
  }),
);

const query = `?appID=${app.appID}&appSign=${app.appSign}`;
process.stdout.write(
  [
    '',
    `Parley cluster: ${nodeCount} node(s) sharing ${redis.url} (pid ${redis.pid})`,
    ...nodes.map(({ nodeId, httpUrl, pid }) => `  ${nodeId}  ${httpUrl}/${query}  (pid ${pid})`),
    `  appID:        ${app.appID}`,
    `  appSign:      ${app.appSign}`,
    `  serverSecret: ${app.serverSecret}`,
    'Open the demo on two nodes and join one room: the nodes are one cluster.',
    'kill -TERM <pid> stops one node; Ctrl-C stops them all.',
    '',
    '',
  ].join('\n'),
);
