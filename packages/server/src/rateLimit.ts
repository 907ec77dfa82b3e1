/** A token bucket: `burst` tokens, refilled at `perSecond`. */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Full again, so it can be forgotten. */
  get idle(): boolean {
    return this.tokens + ((Date.now() - this.last) / 1000) * this.perSecond >= this.burst;
  }
}

/**
 * One bucket per key (an IP address), forgotten once full again so the map stays small. `rate` is
 * read at every take: when reloaded limits changed it, every key starts over with a full bucket at
 * the new rate.
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private current: { perSecond: number; burst: number };

  constructor(private readonly rate: () => { perSecond: number; burst: number }) {
    this.current = rate();
  }

  take(key: string): boolean {
    const rate = this.rate();
    if (rate.perSecond !== this.current.perSecond || rate.burst !== this.current.burst) {
      this.current = rate;
      this.buckets.clear();
    }
    if (this.buckets.size > 10_000) for (const [k, b] of this.buckets) if (b.idle) this.buckets.delete(k);
    let bucket = this.buckets.get(key);
    if (!bucket) this.buckets.set(key, (bucket = new TokenBucket(rate.perSecond, rate.burst)));
    return bucket.take();
  }
}
