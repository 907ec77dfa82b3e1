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

/** The path's delay without a queue is the least one-way delay of this long. */
const BASE_WINDOW_MS = 10_000;
const BASE_BUCKETS = 10;
/** A queue stands when every packet of this long waited in it. */
const RECENT_WINDOW_MS = 200;
const RECENT_BUCKETS = 2;

/** The least value added over the last `bucketMs × buckets` (at least `bucketMs × (buckets − 1)`), in buckets of time. */
class WindowedMin {
  private readonly mins: Float64Array;
  /** The newest bucket's number: time / bucketMs. */
  private newest = -Infinity;

  constructor(
    private readonly bucketMs: number,
    buckets: number,
  ) {
    this.mins = new Float64Array(buckets).fill(Infinity);
  }

  add(value: number, atMs: number): void {
    const bucket = Math.floor(atMs / this.bucketMs);
    if (bucket > this.newest) {
      // The buckets time has moved past are emptied (all of them after a long pause).
      const from = Math.max(this.newest + 1, bucket - this.mins.length + 1);
      for (let b = from; b <= bucket; b++) this.mins[this.slot(b)] = Infinity;
      this.newest = bucket;
    }
    // A packet reordered from before the window counts in its oldest bucket.
    const slot = this.slot(Math.max(bucket, this.newest - this.mins.length + 1));
    if (value < this.mins[slot]!) this.mins[slot] = value;
  }

  private slot(bucket: number): number {
    const { length } = this.mins;
    return ((bucket % length) + length) % length;
  }

  get min(): number {
    let min = Infinity;
    for (const value of this.mins) if (value < min) min = value;
    return min;
  }
}

export class QueueDelayMeter {
  private readonly base = new WindowedMin(BASE_WINDOW_MS / BASE_BUCKETS, BASE_BUCKETS);
  private readonly recent = new WindowedMin(RECENT_WINDOW_MS / RECENT_BUCKETS, RECENT_BUCKETS);

  /** A packet that arrived, by arrival time. */
  add(sendTimeMs: number, arrivalMs: number): void {
    const oneWayMs = arrivalMs - sendTimeMs;
    this.base.add(oneWayMs, arrivalMs);
    this.recent.add(oneWayMs, arrivalMs);
  }

  /** How long every packet of the last RECENT_WINDOW_MS waited at least, ms (0 before any arrived). */
  get standingMs(): number {
    const recent = this.recent.min;
    return Number.isFinite(recent) ? recent - this.base.min : 0;
  }
}
