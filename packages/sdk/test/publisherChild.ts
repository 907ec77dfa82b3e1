/**
 * The publisher of publisherProcess.ts, started in a test host's network namespace: what it
 * prints, as it comes, and a wait for a line.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { TestHost } from '@parley/testkit';
import { sleep, type TestServer } from './helpers.js';

export interface PublisherChild {
  /** Its output lines, each with when it came. */
  readonly lines: Array<{ atMs: number; line: string }>;
  /** When the first line matching `pattern` that came at or after `sinceMs` came (waiting up to `timeoutMs` for it). */
  waitLine(pattern: RegExp, sinceMs: number, timeoutMs: number): Promise<number>;
  kill(): void;
}

/** Logs in to `roomID` as `userID` in `host`'s namespace and publishes `streamID`; killed by `kill`. */
export function startPublisherIn(host: TestHost, env: TestServer, roomID: string, userID: string, streamID: string): PublisherChild {
  const script = new URL('./publisherProcess.ts', import.meta.url).pathname;
  const [command, ...args] = host.command([
    process.execPath,
    '--import',
    'tsx',
    script,
    env.server.url,
    String(env.app.appID),
    env.app.appSign,
    roomID,
    userID,
    streamID,
  ]);
  const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Array<{ atMs: number; line: string }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push({ atMs: Date.now(), line }));
  return {
    lines,
    async waitLine(pattern, sinceMs, timeoutMs) {
      for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(50)) {
        const found = lines.find((l) => l.atMs >= sinceMs && pattern.test(l.line));
        if (found) return found.atMs;
      }
      throw new Error(`no line like ${pattern} within ${timeoutMs} ms; saw ${JSON.stringify(lines)}`);
    },
    kill: () => child.kill('SIGKILL'),
  };
}
