/**
 * A bitrate over a sliding window: bytes are added into fixed time buckets, so adding is O(1) and
 * allocates nothing (it runs per forwarded packet).
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

  add(bytes: number, nowMs: number): void {
    const bucket = Math.floor(nowMs / BUCKET_MS);
    const slot = bucket % this.buckets.length;
    if (this.bucketOf[slot] !== bucket) {
      this.bucketOf[slot] = bucket;
      this.buckets[slot] = 0;
    }
    this.buckets[slot] += bytes;
  }

  /** Bits per second over the window ending now (the current, partly filled bucket included). */
  bps(nowMs: number): number {
    const newest = Math.floor(nowMs / BUCKET_MS);
    const oldest = newest - this.buckets.length + 1;
    let bytes = 0;
    for (let slot = 0; slot < this.buckets.length; slot++) {
      const bucket = this.bucketOf[slot]!;
      if (bucket >= oldest && bucket <= newest) bytes += this.buckets[slot]!;
    }
    // The window spans the full buckets before the current one and the part of it elapsed.
    const spanMs = this.windowMs - BUCKET_MS + (nowMs - newest * BUCKET_MS);
    return (bytes * 8 * 1000) / Math.max(spanMs, BUCKET_MS);
  }
}
