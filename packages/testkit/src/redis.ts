/** A redis-server (Debian's) of a test's own: a free port on loopback, a temporary folder, no persistence unless asked. */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from './daemon.js';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  stop(): Promise<void>;
}

/** A TCP port nothing listens on now. */
async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  const host = '127.0.0.1';
  const port = await freePort(host);
  const daemon = await startDaemon(
    ['redis-server', '--bind', host, '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'],
    { readyAt: [host, port], stopSignal: 'SIGTERM', dir },
  );
  return { url: `redis://${host}:${port}`, stop: daemon.stop };
}
