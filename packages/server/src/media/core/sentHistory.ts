/**
 * What a player was sent, kept to answer its NACKs and to pad probes with the very bytes it got:
 * a ring of slots by the player's sequence number. The slots' fields live in typed arrays, and
 * only the source packets (shared by all players) are references. As one object per slot, each
 * with a buffer of its own, the history was most of a server's heap (0.44 MB per player), and
 * every full garbage collection walked it.
 */

/** The fields of a packet as a player got it that a copy repeats: its header, and the bytes that replaced its payload's first `replaced`. */
export interface SentFields {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  readonly prefix: Uint8Array;
  prefixLength: number;
  replaced: number;
}

/** The longest prefix kept: a rewritten VP8/VP9 descriptor or a RED header. */
export const MAX_PREFIX_BYTES = 30;

export class SentHistory<Source> {
  private readonly sources: (Source | undefined)[];
  /** -1 for a slot never used; a slot with a sequence number has its source. */
  private readonly sequenceNumbers: Int32Array;
  private readonly timestamps: Uint32Array;
  private readonly markers: Uint8Array;
  private readonly payloadTypes: Uint8Array;
  private readonly layers: Uint8Array;
  private readonly prefixLengths: Uint8Array;
  private readonly replacedBytes: Uint16Array;
  private readonly prefixes: Uint8Array;
  private readonly sentAt: Float64Array;
  private readonly resendCounts: Uint8Array;

  constructor(readonly size: number) {
    this.sources = new Array<Source | undefined>(size).fill(undefined);
    this.sequenceNumbers = new Int32Array(size).fill(-1);
    this.timestamps = new Uint32Array(size);
    this.markers = new Uint8Array(size);
    this.payloadTypes = new Uint8Array(size);
    this.layers = new Uint8Array(size);
    this.prefixLengths = new Uint8Array(size);
    this.replacedBytes = new Uint16Array(size);
    this.prefixes = new Uint8Array(size * MAX_PREFIX_BYTES);
    this.sentAt = new Float64Array(size);
    this.resendCounts = new Uint8Array(size);
  }

  /** Keeps `sent` (about to leave, made from `source`) in its sequence number's slot. */
  record(sent: SentFields, source: Source, layer: number, nowMs: number): void {
    if (sent.prefixLength > MAX_PREFIX_BYTES) throw new RangeError(`a prefix of ${sent.prefixLength} bytes is over ${MAX_PREFIX_BYTES}`);
    const slot = sent.sequenceNumber % this.size;
    this.sources[slot] = source;
    this.sequenceNumbers[slot] = sent.sequenceNumber;
    this.timestamps[slot] = sent.timestamp;
    this.markers[slot] = sent.marker ? 1 : 0;
    this.payloadTypes[slot] = sent.payloadType;
    this.layers[slot] = layer;
    this.prefixLengths[slot] = sent.prefixLength;
    this.replacedBytes[slot] = sent.replaced;
    if (sent.prefixLength > 0) this.prefixes.set(sent.prefix.subarray(0, sent.prefixLength), slot * MAX_PREFIX_BYTES);
    this.sentAt[slot] = nowMs;
    this.resendCounts[slot] = 0;
  }

  /** The slot that holds `sequenceNumber`, -1 when it was never sent or has been overwritten. */
  find(sequenceNumber: number): number {
    const slot = sequenceNumber % this.size;
    return this.sequenceNumbers[slot] === sequenceNumber ? slot : -1;
  }

  source(slot: number): Source {
    return this.sources[slot]!;
  }

  layer(slot: number): number {
    return this.layers[slot]!;
  }

  /** When the packet last left (first sent or resent). */
  sentAtMs(slot: number): number {
    return this.sentAt[slot]!;
  }

  resends(slot: number): number {
    return this.resendCounts[slot]!;
  }

  resent(slot: number, nowMs: number): void {
    this.resendCounts[slot]!++;
    this.sentAt[slot] = nowMs;
  }

  /** Writes the packet's header fields into `out`, and its prefix after the first `prefixOffset` bytes of `out.prefix` (RTX's original sequence number). */
  restore(slot: number, out: SentFields, prefixOffset = 0): void {
    out.marker = this.markers[slot] === 1;
    out.payloadType = this.payloadTypes[slot]!;
    out.sequenceNumber = this.sequenceNumbers[slot]!;
    out.timestamp = this.timestamps[slot]!;
    const length = this.prefixLengths[slot]!;
    const start = slot * MAX_PREFIX_BYTES;
    out.prefix.set(this.prefixes.subarray(start, start + length), prefixOffset);
    out.prefixLength = prefixOffset + length;
    out.replaced = this.replacedBytes[slot]!;
  }
}
