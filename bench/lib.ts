/** What the benchmark sections share: statistics, the server under test in its own process, result rows. */
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

export interface Row {
  measure: string;
  unit: string;
  n: number;
  p50: number;
  p99?: number;
  /** Anything else worth reporting beside the quantiles (e.g. a rate or a ratio). */
  note?: string;
}

export function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

export function row(measure: string, unit: string, xs: number[], note?: string): Row {
  return { measure, unit, n: xs.length, p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), ...(note ? { note } : {}) };
}

/** The server's CPU time per login between two stats, with its kernel share (sockets on loopback). */
export function cpuPerLogin(before: ServerStats, after: ServerStats, logins: number): string {
  const total = (after.cpuMs - before.cpuMs) / logins;
  const kernel = (after.systemMs - before.systemMs) / logins;
  return `server CPU ${total.toFixed(3)} ms per login (${kernel.toFixed(2)} in the kernel): ${(1000 / total).toFixed(0)} logins/s per core`;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Pins a process, all its threads included (a Node process's GC and a Janus's helper threads count
 * as its cost), to one CPU, or with `all` to every CPU of the machine (whatever this process is
 * pinned to), so the server and the load generator do not compete (no-op where taskset is missing).
 */
export function pin(pid: number, cpu: number | 'all'): void {
  try {
    execFileSync('taskset', ['-a', '-cp', cpu === 'all' ? `0-${cpus().length - 1}` : String(cpu), String(pid)], {
      stdio: 'ignore',
    });
  } catch {
    // not pinned: numbers are noisier, still comparable within one run
  }
}

/** CPU time of a process so far, in ms, and the part of it spent in the kernel. */
export interface CpuTime {
  cpuMs: number;
  systemMs: number;
}

/** CPU time (all threads) of a process so far, from /proc. */
export function processCpu(pid: number): CpuTime {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ms = (ticks: string | undefined): number => (Number(ticks) * 1000) / 100; // USER_HZ
  const [user, system] = [ms(fields[11]), ms(fields[12])]; // utime, stime
  return { cpuMs: user + system, systemMs: system };
}

export interface ServerStats extends CpuTime {
  rss: number;
  heapUsed: number;
  rooms: number;
  sessions: number;
  publications: number;
}

/** The Parley server in a child process (see serverProcess.ts), pinned to CPU 0 (with media workers, to all). */
export type MediaSockets = 'one port' | 'port per connection';

/** How the server under test runs (see serverProcess.ts). */
export interface ServerVariant {
  /** One UDP port for all media (the default), or a port per peer connection. */
  sockets?: MediaSockets;
  /** A node of a cluster. */
  cluster?: { redisUrl: string; nodeId: string };
  /** Where StartRecord writes (the server records only with one). */
  recordingDir?: string;
  /** The forwarding path's sealing and sending (native by default). */
  fastPath?: 'native' | 'typescript';
  /** Media worker threads (media.workers): the server then runs on every CPU, else on CPU 0. */
  workers?: number;
}

export class ServerUnderTest {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly httpUrl: string,
    /** The one UDP port of all media (none with a port per peer connection). */
    readonly udpPort: number | undefined,
  ) {}

  static async start(variant: ServerVariant = {}): Promise<ServerUnderTest> {
    const child = fork(new URL('./serverProcess.ts', import.meta.url).pathname, [JSON.stringify(variant)], {
      // The memory reducer goes only with node's command line, as in the server's launchers (packages/server/src/heapPolicy.ts).
      execArgv: ['--import', 'tsx', '--no-memory-reducer'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = await new Promise<{ url: string; httpUrl: string; udpPort?: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { url: string; httpUrl: string; udpPort?: number }));
      child.once('exit', (code) => reject(new Error(`server process exited (${code})`)));
    });
    pin(child.pid!, variant.workers ? 'all' : 0);
    return new ServerUnderTest(child, ready.url, ready.httpUrl, ready.udpPort);
  }

  /** The server's CPU time so far, then (after a garbage collection) its memory and room counts. */
  stats(): Promise<ServerStats> {
    return new Promise((resolve) => {
      this.child.once('message', (m) => resolve(m as ServerStats));
      this.child.send('stats');
    });
  }

  /** The process's pid (its children, e.g. ffmpeg, are found by it). */
  get pid(): number {
    return this.child.pid!;
  }

  /** SIGKILL: the node dies mid-call. */
  async kill(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send('close');
    await exited;
  }
}
