/**
 * Turns wrapping RTP counters (16-bit sequence numbers, 32-bit timestamps) into monotonic numbers:
 * the first value maps to itself, later ones count on across wraps (earlier ones may go negative).
 */
export class SequenceUnwrapper {
  private readonly range: number;
  private highest: number | undefined;

  constructor(bits: 16 | 32) {
    this.range = 2 ** bits;
  }

  unwrap(value: number): number {
    if (this.highest === undefined) {
      this.highest = value;
      return value;
    }
    const half = this.range / 2;
    let delta = (value - (this.highest % this.range) + this.range) % this.range;
    if (delta >= half) delta -= this.range;
    const ext = this.highest + delta;
    if (ext > this.highest) this.highest = ext;
    return ext;
  }
}
