/**
 * A media worker's MediaStats as the main thread reads them: each worker copies its numbers into a
 * board (a Float64Array on shared memory) every few milliseconds; the plane's stats are the sums
 * of the boards, read when read. A worker that dies leaves its counters to `retired`, so totals
 * never go back; its gauges (endpoints open) go with it.
 */
import { emptyMediaStats, type MediaStats } from '../core/types.js';

type Leaf = readonly [string] | readonly [string, string];
type Numbers = Record<string, number | Record<string, number>>;

/** Every number of a MediaStats, in a fixed order: top-level counts, then records' keys (mediaStalls.silent). */
const LAYOUT: readonly Leaf[] = Object.entries(emptyMediaStats() as unknown as Numbers).flatMap(([key, value]): Leaf[] =>
  typeof value === 'number' ? [[key]] : Object.keys(value).map((sub): Leaf => [key, sub]),
);
const GAUGES = new Set(['publishers', 'subscribers']);

export const newBoard = (): Float64Array => new Float64Array(new SharedArrayBuffer(LAYOUT.length * Float64Array.BYTES_PER_ELEMENT));

export function writeBoard(stats: Readonly<MediaStats>, board: Float64Array): void {
  const numbers = stats as unknown as Numbers;
  LAYOUT.forEach(([key, sub], i) => {
    const value = numbers[key]!;
    board[i] = typeof value === 'number' ? value : value[sub!]!;
  });
}

/** The stats of the workers' boards together, and of those workers that died. */
export class SummedStats {
  private readonly retired = new Float64Array(LAYOUT.length);
  readonly stats: MediaStats;

  constructor(boards: () => Iterable<Float64Array>) {
    const sum = (i: number): number => {
      let total = this.retired[i]!;
      for (const board of boards()) total += board[i]!;
      return total;
    };
    const stats: Record<string, unknown> = {};
    LAYOUT.forEach(([key, sub], i) => {
      if (sub === undefined) {
        Object.defineProperty(stats, key, { get: () => sum(i), enumerable: true });
        return;
      }
      const record = (stats[key] ??= {}) as object;
      Object.defineProperty(record, sub, { get: () => sum(i), enumerable: true });
    });
    this.stats = stats as unknown as MediaStats;
  }

  /** Keeps the counters of a worker that is gone. */
  retire(board: Float64Array): void {
    LAYOUT.forEach(([key], i) => {
      if (!GAUGES.has(key)) this.retired[i] = this.retired[i]! + board[i]!;
    });
  }
}
