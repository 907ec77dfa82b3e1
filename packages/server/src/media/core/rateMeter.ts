/**
 * A rate over a sliding window (bytes, or frames): amounts are added into fixed time buckets, so
 * adding is O(1) and allocates nothing (it runs per forwarded packet).
 */

const BUCKET_MS = 100;

export class RateMeter {
  private readonly buckets: Float64Array;
  /** The bucket index (time / BUCKET_MS) each slot was last written for. */
  private readonly bucketOf: Float64Array;

  /** `windowMs` a multiple of 100 ms. */
  constructor(private readonly windowMs = 1000) {
    const count = Math.max(1, Math.round(windowMs / BUCKET_MS));
    this.buckets = new Float64Array(count);
    this.bucketOf = new Float64Array(count).fill(-1);
  }

  add(amount: number, nowMs: number): void {
    const bucket = Math.floor(nowMs / BUCKET_MS);
    const slot = bucket % this.buckets.length;
    if (this.bucketOf[slot] !== bucket) {
      this.bucketOf[slot] = bucket;
      this.buckets[slot] = 0;
    }
    this.buckets[slot] += amount;
  }

  /** Bits per second, for amounts in bytes. */
  bps(nowMs: number): number {
    return this.perSecond(nowMs) * 8;
  }

  /** The amount per second over the window ending now (the current, partly filled bucket included). */
  perSecond(nowMs: number): number {
    const newest = Math.floor(nowMs / BUCKET_MS);
    const oldest = newest - this.buckets.length + 1;
    let amount = 0;
    for (let slot = 0; slot < this.buckets.length; slot++) {
      const bucket = this.bucketOf[slot]!;
      if (bucket >= oldest && bucket <= newest) amount += this.buckets[slot]!;
    }
    // The window spans the full buckets before the current one and the part of it elapsed.
    const spanMs = this.windowMs - BUCKET_MS + (nowMs - newest * BUCKET_MS);
    return (amount * 1000) / Math.max(spanMs, BUCKET_MS);
  }
}
