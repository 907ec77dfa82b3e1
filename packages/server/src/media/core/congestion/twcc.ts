/**
 * Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01,
 * RTCP RTPFB PT=205 FMT=15). `TwccRecorder` is the receive side: it records when each
 * transport-wide sequence number arrived and builds the feedback packets that the sender's
 * bandwidth estimator (Chrome's GoogCC) consumes, as libwebrtc's RemoteEstimatorProxy and
 * rtcp::TransportFeedback do. `parseTwccFeedback` reads such a packet back.
 */

const RTPFB = 205;
const TRANSPORT_CC_FMT = 15;
/** RTCP header (4), sender and media SSRC (8), base sequence number, status count, reference time, feedback count (8). */
const HEADER_BYTES = 20;
const CHUNK_BYTES = 2;
const DELTA_TICK_US = 250;
const REFERENCE_TICK_US = 64_000;
const REFERENCE_TICKS_WRAP = 1 << 24;
/** Keeps each feedback inside one datagram with room for SRTCP, UDP, IP and TURN overhead. */
const MAX_FEEDBACK_BYTES = 1200;
const MAX_STATUS_COUNT = 0xffff;

/** Packet status symbols; each also is the byte size of the receive delta it announces. */
const NOT_RECEIVED = 0;
const RECEIVED_SMALL = 1;
const RECEIVED_LARGE = 2;
/** The reserved symbol: no encoder may send it. */
const RESERVED = 3;

const RUN_LENGTH_CAPACITY = 0x1fff;
const TWO_BIT_CAPACITY = 7;
const ONE_BIT_CAPACITY = 14;

/** How long arrivals are kept after being reported, so a packet reported lost and arriving late is reported again (libwebrtc's back window). */
const HISTORY_US = 500_000;
const MIN_CAPACITY = 256;
/** At most this many sequence numbers are tracked; libwebrtc's limit too. */
const MAX_CAPACITY = 1 << 15;

/**
 * One feedback's view of a packet: its transport-wide sequence number (16-bit) and arrival time on the
 * receiver's clock (arbitrary origin: only differences matter), or undefined if reported lost.
 */
export interface PacketResult {
  sequenceNumber: number;
  arrivalTimeUs: number | undefined;
}

export interface TwccFeedback {
  senderSsrc: number;
  mediaSsrc: number;
  baseSequenceNumber: number;
  /** 8-bit */
  feedbackPacketCount: number;
  /** reference time in µs (24-bit field × 64 ms) */
  referenceTimeUs: number;
  /** in sequence order, starting at baseSequenceNumber, packetStatusCount entries; arrivalTimeUs = referenceTimeUs + cumulative deltas */
  packets: PacketResult[];
}

/** Parses the FCI of one RTCP transport-cc packet, given the whole RTCP packet (header included, unencrypted). Returns undefined for anything malformed (never throws). */
export function parseTwccFeedback(rtcp: Uint8Array): TwccFeedback | undefined {
  if (rtcp.length < 4) return undefined;
  const firstByte = rtcp[0]!;
  if (firstByte >> 6 !== 2 || (firstByte & 0x1f) !== TRANSPORT_CC_FMT || rtcp[1] !== RTPFB) return undefined;
  const view = new DataView(rtcp.buffer, rtcp.byteOffset, rtcp.byteLength);
  // Bytes past the length field belong to the next packet of a compound packet.
  let end = (view.getUint16(2) + 1) * 4;
  if (end > rtcp.length) return undefined;
  if (firstByte & 0x20) {
    const padding = rtcp[end - 1]!;
    if (padding === 0 || padding > end - 4) return undefined;
    end -= padding;
  }
  if (end < HEADER_BYTES + CHUNK_BYTES) return undefined;

  const baseSequenceNumber = view.getUint16(12);
  const statusCount = view.getUint16(14);
  if (statusCount === 0) return undefined;
  const symbols = new Uint8Array(statusCount);
  let decoded = 0;
  let offset = HEADER_BYTES;
  while (decoded < statusCount) {
    if (offset + CHUNK_BYTES > end) return undefined;
    const chunk = view.getUint16(offset);
    offset += CHUNK_BYTES;
    const remaining = statusCount - decoded;
    if ((chunk & 0x8000) === 0) {
      const symbol = (chunk >> 13) & 0x3;
      const run = Math.min(chunk & RUN_LENGTH_CAPACITY, remaining);
      if (run > 0 && symbol === RESERVED) return undefined;
      symbols.fill(symbol, decoded, decoded + run);
      decoded += run;
    } else if ((chunk & 0x4000) === 0) {
      const count = Math.min(ONE_BIT_CAPACITY, remaining);
      for (let i = 0; i < count; i++) symbols[decoded++] = (chunk >> (ONE_BIT_CAPACITY - 1 - i)) & 0x1;
    } else {
      const count = Math.min(TWO_BIT_CAPACITY, remaining);
      for (let i = 0; i < count; i++) {
        const symbol = (chunk >> (2 * (TWO_BIT_CAPACITY - 1 - i))) & 0x3;
        if (symbol === RESERVED) return undefined;
        symbols[decoded++] = symbol;
      }
    }
  }

  const referenceTimeUs = ((view.getUint16(16) << 8) | rtcp[18]!) * REFERENCE_TICK_US;
  const packets: PacketResult[] = new Array(statusCount);
  let arrivalTimeUs = referenceTimeUs;
  for (let i = 0; i < statusCount; i++) {
    const symbol = symbols[i]!;
    // libwebrtc also accepts feedback whose deltas are all left out (a V2 extension mode); without them there are no arrival times to give.
    if (offset + symbol > end) return undefined;
    if (symbol === RECEIVED_SMALL) arrivalTimeUs += rtcp[offset]! * DELTA_TICK_US;
    else if (symbol === RECEIVED_LARGE) arrivalTimeUs += view.getInt16(offset) * DELTA_TICK_US;
    offset += symbol;
    packets[i] = { sequenceNumber: (baseSequenceNumber + i) & 0xffff, arrivalTimeUs: symbol === NOT_RECEIVED ? undefined : arrivalTimeUs };
  }
  return {
    senderSsrc: view.getUint32(4),
    mediaSsrc: view.getUint32(8),
    baseSequenceNumber,
    feedbackPacketCount: rtcp[19]!,
    referenceTimeUs,
    packets,
  };
}

/** A transport-cc feedback as werift 0.24 parses it (its `TransportWideCC`). */
export interface ParsedTwccFeedback {
  baseSequenceNumber: number;
  packetStatusCount: number;
  /** In 64 ms ticks. */
  referenceTime: number;
  packetChunks: Array<{ runLength: number; packetStatus: number } | { symbolList: number[] }>;
  /** One per received packet, in order, in µs. */
  recvDeltas: Array<{ delta: number }>;
}

/**
 * The packet results of a feedback werift has parsed (it hands RTCP to its listeners parsed, not
 * as bytes). Undefined when the chunks and deltas disagree with the status count.
 */
export function twccResults(feedback: ParsedTwccFeedback): PacketResult[] | undefined {
  const count = feedback.packetStatusCount;
  const symbols = new Uint8Array(count);
  let decoded = 0;
  for (const chunk of feedback.packetChunks) {
    if (decoded >= count) break;
    if ('runLength' in chunk) {
      const run = Math.min(chunk.runLength, count - decoded);
      symbols.fill(chunk.packetStatus, decoded, decoded + run);
      decoded += run;
    } else {
      for (const symbol of chunk.symbolList) if (decoded < count) symbols[decoded++] = symbol;
    }
  }
  if (decoded < count) return undefined;
  const results: PacketResult[] = new Array(count);
  let arrivalTimeUs = feedback.referenceTime * REFERENCE_TICK_US;
  let delta = 0;
  for (let i = 0; i < count; i++) {
    const symbol = symbols[i]!;
    if (symbol === RECEIVED_SMALL || symbol === RECEIVED_LARGE) {
      const received = feedback.recvDeltas[delta++];
      if (!received) return undefined;
      arrivalTimeUs += received.delta;
    } else if (symbol !== NOT_RECEIVED) return undefined;
    results[i] = {
      sequenceNumber: (feedback.baseSequenceNumber + i) & 0xffff,
      arrivalTimeUs: symbol === NOT_RECEIVED ? undefined : arrivalTimeUs,
    };
  }
  return results;
}

/**
 * Packs status symbols into chunks as libwebrtc does: symbols gather until the next one fits no
 * chunk kind, then the pending ones go out as a run length chunk if all alike, as a one-bit vector
 * if they are 14 without a large delta, else as a two-bit vector of the first 7.
 */
class StatusChunkWriter {
  /** Emitted chunks; the size limit of a feedback bounds their number. */
  readonly chunks = new Uint16Array(MAX_FEEDBACK_BYTES / CHUNK_BYTES);
  chunkCount = 0;
  /** The first symbols not emitted yet; beyond a vector's capacity they are all alike, so the first stands for the rest. */
  private readonly pending = new Uint8Array(ONE_BIT_CAPACITY);
  private pendingCount = 0;
  private allSame = true;
  private hasLarge = false;

  reset(): void {
    this.chunkCount = 0;
    this.clearPending();
  }

  /** Bytes that adding `symbol` adds to the encoded chunks. */
  bytesToAdd(symbol: number): number {
    return this.pendingCount > 0 && this.canAdd(symbol) ? 0 : CHUNK_BYTES;
  }

  add(symbol: number): void {
    if (!this.canAdd(symbol)) this.emit();
    if (this.pendingCount < ONE_BIT_CAPACITY) this.pending[this.pendingCount] = symbol;
    this.pendingCount++;
    this.allSame = this.allSame && symbol === this.pending[0];
    this.hasLarge = this.hasLarge || symbol === RECEIVED_LARGE;
  }

  /** Emits the pending symbols as the last chunk. */
  finish(): void {
    if (this.pendingCount === 0) return;
    if (this.allSame) this.chunks[this.chunkCount++] = this.runLength();
    else if (this.pendingCount <= TWO_BIT_CAPACITY) this.chunks[this.chunkCount++] = this.twoBitVector(this.pendingCount);
    else this.chunks[this.chunkCount++] = this.oneBitVector();
    this.clearPending();
  }

  private canAdd(symbol: number): boolean {
    if (this.pendingCount < TWO_BIT_CAPACITY) return true;
    if (this.pendingCount < ONE_BIT_CAPACITY && !this.hasLarge && symbol !== RECEIVED_LARGE) return true;
    return this.pendingCount < RUN_LENGTH_CAPACITY && this.allSame && symbol === this.pending[0];
  }

  private emit(): void {
    if (this.allSame) {
      this.chunks[this.chunkCount++] = this.runLength();
      this.clearPending();
    } else if (this.pendingCount === ONE_BIT_CAPACITY) {
      this.chunks[this.chunkCount++] = this.oneBitVector();
      this.clearPending();
    } else {
      // 7 to 13 symbols with a large delta among them or coming: send the first 7, keep the rest pending.
      this.chunks[this.chunkCount++] = this.twoBitVector(TWO_BIT_CAPACITY);
      const kept = this.pendingCount - TWO_BIT_CAPACITY;
      this.pending.copyWithin(0, TWO_BIT_CAPACITY, this.pendingCount);
      this.clearPending();
      for (let i = 0; i < kept; i++) this.add(this.pending[i]!);
    }
  }

  private clearPending(): void {
    this.pendingCount = 0;
    this.allSame = true;
    this.hasLarge = false;
  }

  private runLength(): number {
    return (this.pending[0]! << 13) | this.pendingCount;
  }

  private oneBitVector(): number {
    let chunk = 0x8000;
    for (let i = 0; i < this.pendingCount; i++) chunk |= this.pending[i]! << (ONE_BIT_CAPACITY - 1 - i);
    return chunk;
  }

  private twoBitVector(count: number): number {
    let chunk = 0xc000;
    for (let i = 0; i < count; i++) chunk |= this.pending[i]! << (2 * (TWO_BIT_CAPACITY - 1 - i));
    return chunk;
  }
}

/**
 * Receive side, one per transport (peer connection): records the arrival time of each
 * transport-wide sequence number and builds feedback packets from it.
 *
 * Sequence numbers are unwrapped to a counter whose low 16 bits are the wire value. Arrivals live
 * in a ring buffer indexed by that counter, covering [windowBegin, windowEnd); NaN marks a
 * sequence number not received. Each feedback starts at `nextReportSeq`, the lowest sequence
 * number not reported yet; a packet arriving after it was reported lost moves it back, so the next
 * feedback reports it (and, as in libwebrtc, re-reports what follows it). Arrivals older than
 * HISTORY_US are dropped once reported; a packet whose sequence number was dropped is ignored.
 */
export class TwccRecorder {
  private readonly senderSsrc: number;
  private mediaSsrc: number;
  private arrivals = new Float64Array(MIN_CAPACITY);
  private windowBegin = 0;
  /** 0 until the first packet, since unwrapped sequence numbers start at 0x10000. */
  private windowEnd = 0;
  private nextReportSeq = 0;
  /** Sequence numbers below this were dropped from the history. */
  private forgottenBelow = 0;
  private latestArrivalUs = -Infinity;
  private feedbackPacketCount = 0;
  private readonly chunkWriter = new StatusChunkWriter();
  private readonly deltaBytes = Buffer.alloc(MAX_FEEDBACK_BYTES);

  /**
   * `mediaSsrc` must be an SSRC the remote peer sends (media, RTX or FlexFEC): Chrome drops
   * transport feedback whose media source SSRC is not one of its sending SSRCs. It can also be
   * given (or updated) per packet in `onPacket`.
   */
  constructor(options: { senderSsrc: number; mediaSsrc?: number }) {
    this.senderSsrc = options.senderSsrc >>> 0;
    this.mediaSsrc = (options.mediaSsrc ?? 0) >>> 0;
  }

  /**
   * A packet carrying transport-wide sequence number `sequenceNumber` (16-bit) arrived at `arrivalTimeUs` (monotonic µs, e.g. from performance.now()*1000).
   * `mediaSsrc`, the packet's SSRC, becomes the media source SSRC of the next feedback, as in libwebrtc.
   */
  onPacket(sequenceNumber: number, arrivalTimeUs: number, mediaSsrc?: number): void {
    // NaN would read as "not received".
    if (!Number.isFinite(arrivalTimeUs)) return;
    if (mediaSsrc !== undefined) this.mediaSsrc = mediaSsrc >>> 0;
    const wireSeq = sequenceNumber & 0xffff;
    if (this.windowEnd === 0) {
      const seq = 0x10000 + wireSeq;
      this.windowBegin = this.nextReportSeq = seq;
      this.windowEnd = seq + 1;
      this.arrivals[seq % this.arrivals.length] = arrivalTimeUs;
      this.latestArrivalUs = arrivalTimeUs;
      return;
    }
    // Unwrapping against the highest sequence number so far keeps the counter from drifting backwards on reordering.
    const highest = this.windowEnd - 1;
    const seq = highest + (((wireSeq - (highest % 0x10000) + 0x8000) & 0xffff) - 0x8000);
    if (seq < this.forgottenBelow) return;
    if (seq < this.windowBegin) {
      // Reordered before the first packets recorded, the only ones below which nothing is forgotten.
      if (this.windowEnd - seq > MAX_CAPACITY) return;
      this.reserve(this.windowEnd - seq);
      for (let s = seq + 1; s < this.windowBegin; s++) this.arrivals[s % this.arrivals.length] = NaN;
      this.windowBegin = seq;
    } else if (seq >= this.windowEnd) this.extendTo(seq);
    else if (!Number.isNaN(this.arrivals[seq % this.arrivals.length]!)) return;
    this.arrivals[seq % this.arrivals.length] = arrivalTimeUs;
    if (seq < this.nextReportSeq) this.nextReportSeq = seq;
    if (arrivalTimeUs > this.latestArrivalUs) this.latestArrivalUs = arrivalTimeUs;
  }

  /** Complete RTCP transport-cc packets (header included, unencrypted, padded to 32-bit) covering everything recorded since the last call, or [] when nothing new arrived. */
  buildFeedback(): Buffer[] {
    const feedback: Buffer[] = [];
    // windowEnd - 1 is always a received packet, so every feedback holds at least one.
    while (this.nextReportSeq < this.windowEnd) feedback.push(this.buildPacket());
    this.forgetOldArrivals();
    return feedback;
  }

  /** Makes room for sequence numbers up to `seq`, marking the new ones not received. */
  private extendTo(seq: number): void {
    const newEnd = seq + 1;
    if (newEnd - this.windowBegin > MAX_CAPACITY) {
      // Forget the oldest, reported or not, rather than grow without bound. Unwrapping moves at most
      // 0x7fff past the highest, so the new begin stays below windowEnd.
      this.windowBegin = this.forgottenBelow = newEnd - MAX_CAPACITY;
      this.nextReportSeq = Math.max(this.nextReportSeq, this.windowBegin);
    }
    this.reserve(newEnd - this.windowBegin);
    for (let s = this.windowEnd; s < newEnd; s++) this.arrivals[s % this.arrivals.length] = NaN;
    this.windowEnd = newEnd;
  }

  /** Grows the ring buffer to hold `size` sequence numbers. */
  private reserve(size: number): void {
    if (size <= this.arrivals.length) return;
    let capacity = this.arrivals.length * 2;
    while (capacity < size) capacity *= 2;
    const arrivals = new Float64Array(capacity);
    for (let s = this.windowBegin; s < this.windowEnd; s++) arrivals[s % capacity] = this.arrivals[s % this.arrivals.length]!;
    this.arrivals = arrivals;
  }

  /** One feedback packet from nextReportSeq on, as far as its limits allow; advances nextReportSeq past what it covers. */
  private buildPacket(): Buffer {
    const capacity = this.arrivals.length;
    const base = this.nextReportSeq;
    let firstReceived = base;
    while (Number.isNaN(this.arrivals[firstReceived % capacity]!)) firstReceived++;
    const referenceTicks = Math.floor(this.arrivals[firstReceived % capacity]! / REFERENCE_TICK_US);
    // Each delta is taken from the previous packet's reported time, not its true one, so rounding errors do not add up.
    let reportedUs = referenceTicks * REFERENCE_TICK_US;
    let size = HEADER_BYTES;
    let deltaLength = 0;
    this.chunkWriter.reset();
    let seq = base;
    for (; seq < this.windowEnd && seq - base < MAX_STATUS_COUNT; seq++) {
      const arrivalTimeUs = this.arrivals[seq % capacity]!;
      let symbol = NOT_RECEIVED;
      let delta = 0;
      if (!Number.isNaN(arrivalTimeUs)) {
        delta = Math.round((arrivalTimeUs - reportedUs) / DELTA_TICK_US);
        // Not representable: the rest goes into a new feedback with its own reference time.
        if (delta < -0x8000 || delta > 0x7fff) break;
        symbol = delta >= 0 && delta <= 0xff ? RECEIVED_SMALL : RECEIVED_LARGE;
      }
      const grownSize = size + this.chunkWriter.bytesToAdd(symbol) + symbol;
      if (grownSize > MAX_FEEDBACK_BYTES) break;
      size = grownSize;
      this.chunkWriter.add(symbol);
      if (symbol === RECEIVED_SMALL) this.deltaBytes[deltaLength] = delta;
      else if (symbol === RECEIVED_LARGE) this.deltaBytes.writeInt16BE(delta, deltaLength);
      deltaLength += symbol;
      reportedUs += delta * DELTA_TICK_US;
    }
    this.nextReportSeq = seq;
    this.chunkWriter.finish();

    const padding = (4 - (size % 4)) % 4;
    const packet = Buffer.alloc(size + padding);
    // libwebrtc sets the P bit and ends the padding with its length (since 2019; older versions sent zeros without the bit).
    packet[0] = 0x80 | (padding > 0 ? 0x20 : 0) | TRANSPORT_CC_FMT;
    packet[1] = RTPFB;
    packet.writeUInt16BE(packet.length / 4 - 1, 2);
    packet.writeUInt32BE(this.senderSsrc, 4);
    packet.writeUInt32BE(this.mediaSsrc, 8);
    packet.writeUInt16BE(base % 0x10000, 12);
    packet.writeUInt16BE(seq - base, 14);
    packet.writeUIntBE(((referenceTicks % REFERENCE_TICKS_WRAP) + REFERENCE_TICKS_WRAP) % REFERENCE_TICKS_WRAP, 16, 3);
    packet[19] = this.feedbackPacketCount;
    this.feedbackPacketCount = (this.feedbackPacketCount + 1) & 0xff;
    let offset = HEADER_BYTES;
    const { chunks, chunkCount } = this.chunkWriter;
    for (let i = 0; i < chunkCount; i++, offset += CHUNK_BYTES) packet.writeUInt16BE(chunks[i]!, offset);
    this.deltaBytes.copy(packet, offset, 0, deltaLength);
    if (padding > 0) packet[packet.length - 1] = padding;
    return packet;
  }

  /** Drops reported arrivals older than HISTORY_US before the latest one, with the losses among them. */
  private forgetOldArrivals(): void {
    const capacity = this.arrivals.length;
    const cutoffUs = this.latestArrivalUs - HISTORY_US;
    for (let seq = this.windowBegin; seq < this.nextReportSeq; seq++) {
      const arrivalTimeUs = this.arrivals[seq % capacity]!;
      if (Number.isNaN(arrivalTimeUs)) continue;
      if (arrivalTimeUs > cutoffUs) break;
      this.windowBegin = this.forgottenBelow = seq + 1;
    }
  }
}
