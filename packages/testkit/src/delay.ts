/**
 * A one-way delay on a test network's link, on a kernel without netem: the link's packets are
 * queued (iptables NFQUEUE) to a small program of ours (native/delay.c) that holds each for the
 * delay and lets them go in the order they came. It is compiled on first use, with gcc and
 * libnetfilter-queue (Debian's build-essential and libnetfilter-queue-dev).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const SOURCE = new URL('../native/delay.c', import.meta.url).pathname;

/** The compiled program, built once per version of its source. */
function delayProgram(): string {
  const source = readFileSync(SOURCE);
  const dir = join(tmpdir(), 'parley-native');
  const binary = join(dir, `delay-${createHash('sha256').update(source).digest('hex').slice(0, 16)}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const building = `${binary}.${process.pid}`;
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', building, SOURCE, '-lnetfilter_queue', '-lnfnetlink'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const why = (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message;
    throw new Error(`the delay program does not build (needs gcc and libnetfilter-queue-dev): ${why}`);
  }
  renameSync(building, binary);
  return binary;
}

/** One direction's delay: the program holding the packets of NFQUEUE `queue` in `namespace`. */
export class PacketDelay {
  private constructor(private readonly child: ChildProcess) {}

  /** Starts holding queue `queue`'s packets for `ms`; resolves once it takes them. */
  static async start(namespace: string, queue: number, ms: number): Promise<PacketDelay> {
    const child = spawn('ip', ['netns', 'exec', namespace, delayProgram(), String(queue), String(Math.round(ms))], {
      // Its stdin is a pipe from this process: it exits when this process does, however it ends.
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.once('line', () => resolve());
      child.once('exit', (code) => reject(new Error(`the delay program exited (${code}): ${stderr.trim()}`)));
    });
    return new PacketDelay(child);
  }

  /** Lets every held packet go and ends. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    await exited;
  }
}
