/**
 * A Parley server in a process of its own, started as production starts it: `parley start
 * --config <file>` with the given configuration (written as JSON), optionally through a command
 * prefix (`ip netns exec NS` puts it in a test network's namespace). Resolves once it listens,
 * with what its startup log line says.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface ServerProcess {
  pid: number;
  /** ws(s)://host:port/path of signalling, and http(s)://host:port. */
  url: string;
  httpUrl: string;
  udpPort?: number;
  tcpPort?: number;
  /** Its configuration file (JSON). */
  configFile: string;
  /** Log lines (JSON) so far. */
  readonly logs: Array<Record<string, unknown>>;
  /** Everything it wrote so far, stdout and stderr. */
  output(): string;
  /**
   * Writes `config` over the file and sends SIGHUP; resolves with whether the server reloaded it
   * ('configuration reloaded' in its log) or refused it (its message on stderr).
   */
  reload(config: Record<string, unknown>): Promise<{ reloaded: true } | { reloaded: false; message: string }>;
  /** SIGTERM without a drain; resolves when the process has exited. */
  stop(): Promise<void>;
}

const CLI = new URL('./cli.js', import.meta.resolve('@parley/server')).pathname;

export async function startServerProcess(
  config: Record<string, unknown>,
  { prefix = [], timeoutMs = 20_000 }: { prefix?: string[]; timeoutMs?: number } = {},
): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-server-'));
  const file = join(dir, 'parley.json');
  // Info: the line that says it listens is one.
  const write = (contents: Record<string, unknown>): void =>
    writeFileSync(file, JSON.stringify({ drainMs: 0, ...contents, log: { level: 'info' } }));
  write(config);
  const argv = [...prefix, process.execPath, CLI, 'start', '--config', file];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    output += chunk.toString();
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const logs: Array<Record<string, unknown>> = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
      child.once('exit', (code) => reject(new Error(`the server exited (${code}): ${stderr}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        logs.push(entry);
        if (entry.msg === 'server listening') {
          clearTimeout(timer);
          resolve(entry);
        }
      });
    });
    const { url, httpUrl } = listening as { url: string; httpUrl: string };
    const media = (listening.media ?? {}) as { udpPort?: number; tcpPort?: number };
    return {
      pid: pidOf(child),
      configFile: file,
      url,
      httpUrl,
      udpPort: media.udpPort,
      tcpPort: media.tcpPort,
      logs,
      output: () => output,
      reload: async (next) => {
        const [logged, errors] = [logs.length, stderr.length];
        write(next);
        child.kill('SIGHUP');
        for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
          if (logs.slice(logged).some((entry) => entry.msg === 'configuration reloaded')) return { reloaded: true };
          const refused = /configuration not reloaded: (.*)/.exec(stderr.slice(errors));
          if (refused) return { reloaded: false, message: refused[1]! };
        }
        throw new Error('the server neither reloaded nor refused the configuration within 10 s');
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function pidOf(child: ChildProcess): number {
  if (child.pid === undefined) throw new Error('the server process has no pid');
  return child.pid;
}

/** The sockets process `pid` has open of `protocol` (IPv4), as local address and port (from /proc, in the process's namespace). */
export function socketsOf(pid: number, protocol: 'udp' | 'tcp'): Array<{ ip: string; port: number; listening: boolean }> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // closed meanwhile
    }
  }
  return readFileSync(`/proc/${pid}/net/${protocol}`, 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length > 9 && inodes.has(fields[9]!))
    .map((fields) => {
      const [hexIp, hexPort] = fields[1]!.split(':') as [string, string];
      const ip = [3, 2, 1, 0].map((i) => parseInt(hexIp.slice(i * 2, i * 2 + 2), 16)).join('.');
      // TCP state 0A is LISTEN; UDP sockets have no state worth telling.
      return { ip, port: parseInt(hexPort, 16), listening: fields[3] === '0A' };
    });
}
