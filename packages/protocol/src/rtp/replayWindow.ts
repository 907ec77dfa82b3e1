/**
 * Replay protection for records and packets numbered by their sender (DTLS records, RFC 6347
 * §4.1.2.6; SRTP and SRTCP, RFC 3711 §3.3.2): a number seen before, or older than the window
 * behind the highest seen, is refused. A number is marked seen only after its packet
 * authenticated, so forged packets cannot move the window.
 */
export class ReplayWindow {
  private highest = -1;
  private readonly seen: Uint8Array;

  constructor(readonly size: number) {
    this.seen = new Uint8Array(size);
  }

  /** Whether a packet numbered `index` may be new. */
  fresh(index: number): boolean {
    if (index > this.highest) return true;
    if (this.highest - index >= this.size) return false;
    return this.seen[index % this.size] === 0;
  }

  /** Marks `index` as seen (its packet authenticated). */
  accept(index: number): void {
    if (index > this.highest) {
      const advance = this.highest < 0 ? this.size : index - this.highest;
      if (advance >= this.size) this.seen.fill(0);
      else for (let i = this.highest + 1; i < index; i++) this.seen[i % this.size] = 0;
      this.highest = index;
    }
    this.seen[index % this.size] = 1;
  }
}

/**
 * A 16-bit sequence number extended to a counter near the highest one extended so far
 * (RFC 3711 Appendix A): the one of the three candidate rollovers closest to `highest`.
 */
export function extendSequence(sequenceNumber: number, highest: number): number {
  if (highest < 0) return 0x10000 + sequenceNumber;
  const base = highest - (highest & 0xffff);
  let best = base + sequenceNumber;
  for (const candidate of [best - 0x10000, best + 0x10000]) {
    if (candidate >= 0 && Math.abs(candidate - highest) < Math.abs(best - highest)) best = candidate;
  }
  return best;
}
