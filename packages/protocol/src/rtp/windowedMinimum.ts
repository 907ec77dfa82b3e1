/**
 * The least of the values added within the last `windowMs` (a value added at t counts until
 * t + windowMs), kept as a monotonic queue: each entry is larger than those before it, so the
 * first is the least, and a value is dropped as soon as a smaller one comes after it. O(1)
 * amortised per value, however many the window holds.
 */
export class WindowedMinimum {
  private readonly entries: Array<{ atMs: number; value: number }> = [];
  /** Entries before this index have left the window (removed in batches, not one shift each). */
  private head = 0;

  constructor(private readonly windowMs: number) {}

  /** `nowMs` no earlier than the previous value's. */
  add(value: number, nowMs: number): void {
    const { entries } = this;
    while (entries.length > this.head && entries[entries.length - 1]!.value >= value) entries.pop();
    entries.push({ atMs: nowMs, value });
  }

  /** The least value of the window as of `nowMs`; undefined when it holds none. */
  least(nowMs: number): number | undefined {
    const { entries } = this;
    while (this.head < entries.length && nowMs - entries[this.head]!.atMs > this.windowMs) this.head++;
    if (this.head > 64 && this.head * 2 > entries.length) {
      entries.splice(0, this.head);
      this.head = 0;
    }
    return entries[this.head]?.value;
  }
}
