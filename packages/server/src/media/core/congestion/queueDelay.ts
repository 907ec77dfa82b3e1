/**
 * The queue on the path to a player, from each packet's one-way delay: its arrival time (the
 * player's clock) minus its send time (ours), so up to a constant offset between the clocks. The
 * least one-way delay of the last BASE_WINDOW_MS is the path's delay without a queue; what a packet
 * took beyond it, it waited in a queue.
 *
 * The delay gradient (TrendlineEstimator) sees a queue grow, not one that stays: a drop-tail queue
 * at its limit holds its delay while it drops whatever exceeds the link, and the gradient then reads
 * normal. Here such a queue shows as every recent packet having waited: the least queueing delay
 * of the last RECENT_WINDOW_MS (a least, so that jitter, which only ever adds delay, does not count).
 * A path whose delay grew for good (a new route) reads as a queue until the old least ages out.
 */
import { WindowedMinimum } from '@parley/protocol/rtp';

/** The path's delay without a queue is the least one-way delay of this long. */
const BASE_WINDOW_MS = 10_000;
/** A queue stands when every packet of this long waited in it. */
const RECENT_WINDOW_MS = 200;

export class QueueDelayMeter {
  private readonly base = new WindowedMinimum(BASE_WINDOW_MS);
  private readonly recent = new WindowedMinimum(RECENT_WINDOW_MS);
  private newestArrivalMs = -Infinity;

  /** A packet that arrived, by arrival time. */
  add(sendTimeMs: number, arrivalMs: number): void {
    const oneWayMs = arrivalMs - sendTimeMs;
    this.newestArrivalMs = Math.max(this.newestArrivalMs, arrivalMs);
    this.base.add(oneWayMs, this.newestArrivalMs);
    this.recent.add(oneWayMs, this.newestArrivalMs);
  }

  /** How long every packet of the last RECENT_WINDOW_MS waited at least, ms (0 before any arrived). */
  get standingMs(): number {
    const recent = this.recent.least(this.newestArrivalMs);
    const base = this.base.least(this.newestArrivalMs);
    return recent === undefined || base === undefined ? 0 : recent - base;
  }
}
