/**
 * A redis-server (Debian's) of a test's own: a free port on loopback and a temporary folder. With
 * `persistent`, it keeps its data in an append-only file across `halt()` and `resume()`, as a
 * deployment's would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from './daemon.js';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** Stops it (SIGTERM: what it holds is written out), keeping its folder for `resume()`. */
  halt(): Promise<void>;
  /** Starts it again after `halt()`, on the same port and folder. */
  resume(): Promise<void>;
  /** Stops it for good and removes its folder. */
  stop(): Promise<void>;
}

/** A TCP port nothing listens on now. */
export async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startRedis({ persistent = false }: { persistent?: boolean } = {}): Promise<RedisServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-redis-'));
  const host = '127.0.0.1';
  const port = await freePort(host);
  const persistence = persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const launch = (): Promise<Daemon> =>
    startDaemon(
      ['redis-server', '--bind', host, '--port', String(port), '--dir', dataDir, '--save', '', ...persistence, '--protected-mode', 'no'],
      {
        readyAt: [host, port],
        stopSignal: 'SIGTERM',
        // The daemon's own folder, removed with each stop; the data stays in dataDir until the end.
        dir: mkdtempSync(join(tmpdir(), 'parley-redis-run-')),
      },
    );
  let daemon: Daemon | undefined = await launch();
  return {
    url: `redis://${host}:${port}`,
    halt: async () => {
      await daemon?.stop();
      daemon = undefined;
    },
    resume: async () => {
      daemon ??= await launch();
    },
    stop: async () => {
      await daemon?.stop();
      daemon = undefined;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
