/**
 * How far V8 lets the heap grow past what a full collection left before it starts the next one.
 * V8 chose about 25 % for a server that forwards media: at 100 players that left the old space
 * less room to its limit than the young generation takes, so a full collection was marking
 * nearly all the time (35 % of the CPU, a collection every 0.85 s). 100 % is Go's default
 * (GOGC=100, LiveKit's servers): the heap may reach twice what is live.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWTH_PERCENT = 100;

/** Sets the process's heap growth, unless node's command line sets it (`node --heap-growing-percent=N`). */
export function setServerHeapGrowth(percent = HEAP_GROWTH_PERCENT): void {
  if (!process.execArgv.some((arg) => /^--heap[-_]growing[-_]percent/.test(arg))) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
