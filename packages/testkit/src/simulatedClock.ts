import type { Clock } from '@parley/protocol/rtp';

/** Simulated time: `every` timers run as `advance` passes them. */
export class SimulatedClock implements Clock {
  nowMs = 0;
  private timers: Array<{ intervalMs: number; nextMs: number; tick: () => void }> = [];

  now(): number {
    return this.nowMs;
  }

  every(intervalMs: number, tick: () => void): () => void {
    const timer = { intervalMs, nextMs: this.nowMs + intervalMs, tick };
    this.timers.push(timer);
    return () => (this.timers = this.timers.filter((t) => t !== timer));
  }

  /** Moves to `toMs`, running due timers on the way. */
  advance(toMs: number): void {
    for (;;) {
      const due = this.timers.filter((t) => t.nextMs <= toMs).sort((a, b) => a.nextMs - b.nextMs)[0];
      if (!due) break;
      this.nowMs = due.nextMs;
      due.nextMs += due.intervalMs;
      due.tick();
    }
    this.nowMs = toMs;
  }
}
