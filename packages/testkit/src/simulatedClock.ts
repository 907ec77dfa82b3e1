import type { Clock } from '@parley/protocol/rtp';

/** Simulated time: timers run as `advance` passes them. */
export class SimulatedClock implements Clock {
  private timers: Array<{ intervalMs: number | undefined; nextMs: number; fire: () => void }> = [];

  constructor(public nowMs = 0) {}

  now(): number {
    return this.nowMs;
  }

  every(intervalMs: number, tick: () => void): () => void {
    return this.add({ intervalMs, nextMs: this.nowMs + intervalMs, fire: tick });
  }

  /** Calls `fire` once, `delayMs` from now, unless the returned function is called first. */
  after(delayMs: number, fire: () => void): () => void {
    return this.add({ intervalMs: undefined, nextMs: this.nowMs + delayMs, fire });
  }

  private add(timer: SimulatedClock['timers'][number]): () => void {
    this.timers.push(timer);
    return () => (this.timers = this.timers.filter((t) => t !== timer));
  }

  /** Moves to `toMs`, running due timers on the way. */
  advance(toMs: number): void {
    for (;;) {
      const due = this.timers.filter((t) => t.nextMs <= toMs).sort((a, b) => a.nextMs - b.nextMs)[0];
      if (!due) break;
      this.nowMs = due.nextMs;
      if (due.intervalMs === undefined) this.timers = this.timers.filter((t) => t !== due);
      else due.nextMs += due.intervalMs;
      due.fire();
    }
    this.nowMs = toMs;
  }
}
