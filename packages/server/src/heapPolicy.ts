/**
 * How V8 manages a media server's heap. Its own heuristics suit pages and tools; for a server
 * that forwards media each of these cost a fifth or more of its CPU:
 * - Heap growth: V8 let the heap grow about 25 % past what a full collection left. At 100 players
 *   that was less room than the young generation takes, so a full collection was marking nearly
 *   all the time (35 % of the CPU, a collection every 0.85 s). 100 % is Go's default (GOGC=100,
 *   LiveKit's servers): the heap may reach twice what is live.
 * - The memory reducer: a server with few players allocates slowly, which V8 takes for idleness;
 *   it then runs full collections and shrinks the young generation, and scavenges come every
 *   0.3 s instead of every 5 s (10 players: 37.3 → 33.1 µs per forwarded packet without it, medians of 6 alternating runs). An
 *   idle server keeps its heap instead of giving it back. V8 makes an isolate's reducer when it
 *   sets up its heap, so the main thread's goes only with node's command line
 *   (`node --no-memory-reducer`: the CLI's shebang, `npm start`, the systemd units); media workers
 *   started after `setServerHeapPolicy` should go without one either way.
 */
import { setFlagsFromString } from 'node:v8';

const SERVER_HEAP_FLAGS = ['--heap-growing-percent=100', '--no-memory-reducer'];

const flagName = (flag: string): string =>
  flag
    .replace(/^--(no-)?/, '')
    .replace(/=.*/, '')
    .replaceAll('_', '-');

/** Sets the server's heap flags, each unless node's command line sets it (`node --heap-growing-percent=N`, `--memory-reducer`). */
export function setServerHeapPolicy(): void {
  const given = new Set(process.execArgv.map(flagName));
  for (const flag of SERVER_HEAP_FLAGS) if (!given.has(flagName(flag))) setFlagsFromString(flag);
}
