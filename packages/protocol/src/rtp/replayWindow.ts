/**
 * Replay protection for records and packets numbered by their sender (DTLS records, RFC 6347
 * §4.1.2.6; SRTP and SRTCP, RFC 3711 §3.3.2): a number seen before, or older than the window
 * behind the highest seen, is refused. Numbers are taken only after their packets authenticated,
 * so forged packets cannot move the window.
 */
export class ReplayWindow {
  private highest = -1;
  private readonly seen: Uint8Array;

  constructor(readonly size: number) {
    this.seen = new Uint8Array(size);
  }

  /** Marks `index` as seen (its packet has authenticated); false when it was seen before, or is older than the window. */
  take(index: number): boolean {
    if (index <= this.highest && (this.highest - index >= this.size || this.seen[index % this.size] === 1)) return false;
    if (index > this.highest) {
      const advance = this.highest < 0 ? this.size : index - this.highest;
      if (advance >= this.size) this.seen.fill(0);
      else for (let i = this.highest + 1; i < index; i++) this.seen[i % this.size] = 0;
      this.highest = index;
    }
    this.seen[index % this.size] = 1;
    return true;
  }
}
