/** A helper program a test runs beside the server (coturn, nginx), ready once it takes TCP connections. */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { TestCertificate } from './tls.js';

export interface Daemon {
  /** Ends it with its stop signal and removes its folder. */
  stop(): Promise<void>;
}

/** Runs `argv`; resolves once `readyAt` (host, port) accepts a connection, or fails with what it wrote. */
export async function startDaemon(
  argv: string[],
  { readyAt: [host, port], stopSignal, dir }: { readyAt: [string, number]; stopSignal: NodeJS.Signals; dir: string },
): Promise<Daemon> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(stopSignal);
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 100))) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return { stop };
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`${argv[0]} did not listen on ${host}:${port}: ${output}`);
    }
  }
}

/** Where a reverse proxy in front of Parley listens, where it forwards to, and its certificate. */
export interface ReverseProxyOptions {
  /** ip:port it listens on (TLS). */
  listen: string;
  /** host:port of the Parley server. */
  upstream: string;
  certificate: TestCertificate;
}
