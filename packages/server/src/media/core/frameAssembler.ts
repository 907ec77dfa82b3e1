/**
 * Turns one RTP stream's packets back into the frames its sender encoded, for a recording: a
 * jitter buffer puts them in order and waits a while for what is missing (the publisher repairs
 * losses the server NACKs), then frames are depacketized: VP8 without its payload descriptors,
 * H264 as length-prefixed NAL units (what MP4 and Matroska store), Opus as it comes. A video frame
 * that cannot be completed is dropped, and so is every frame after it until a keyframe, which the
 * owner is asked for.
 */
import { h264SpsSize, parseVp8, Vp8Descriptor } from './codecs.js';

export type FrameCodec = 'opus' | 'vp8' | 'h264';

export interface AssembledFrame {
  readonly data: Uint8Array;
  readonly keyFrame: boolean;
  /** The RTP timestamp all its packets carry. */
  readonly timestamp: number;
  /** A VP8 keyframe's or an H264 SPS's picture size (0 when the frame carries none). */
  readonly width: number;
  readonly height: number;
  /** H264 only: the AVC decoder configuration record (avcC) of the frame's SPS and PPS, if it carries them. */
  readonly avcC: Uint8Array | undefined;
}

/** A packet as the assembler takes it. */
export interface FramePacket {
  readonly sequenceNumber: number;
  readonly timestamp: number;
  readonly marker: boolean;
  readonly payload: Uint8Array;
}

export interface FrameAssemblerOptions {
  /** How long a gap is waited for before the frames it touches are given up (ms). */
  maxWaitMs: number;
}

/** Packets held at most: older ones are given up whatever the wait. */
const WINDOW = 1024;

const seqDiff = (a: number, b: number): number => ((a - b + 0x8000) & 0xffff) - 0x8000;

export class FrameAssembler {
  private readonly held = new Map<number, { packet: FramePacket; arrivedMs: number }>();
  /** The next sequence number to take; undefined before the first packet. */
  private next: number | undefined;
  private awaitingKeyFrame: boolean;
  /** Video frames given up because a packet of theirs never came. */
  framesLost = 0;

  constructor(
    readonly codec: FrameCodec,
    private readonly options: FrameAssemblerOptions,
    private readonly onFrame: (frame: AssembledFrame) => void,
    /** A video frame was lost, or the stream started mid-frame: a keyframe is needed. */
    private readonly onKeyFrameNeeded: () => void,
  ) {
    this.awaitingKeyFrame = codec !== 'opus';
  }

  /** Starts afresh (the stream moved to another layer, whose sequence numbers are its own), waiting for a keyframe. */
  reset(): void {
    this.held.clear();
    this.next = undefined;
    this.awaitingKeyFrame = this.codec !== 'opus';
  }

  push(packet: FramePacket, nowMs: number): void {
    const seq = packet.sequenceNumber;
    if (this.next === undefined) this.next = seq;
    const ahead = seqDiff(seq, this.next);
    if (ahead < 0 || ahead >= WINDOW || this.held.has(seq)) return; // late, absurd or a repeat
    this.held.set(seq, { packet, arrivedMs: nowMs });
    this.release(nowMs);
  }

  /** Gives up gaps that have waited long enough; called on a timer as well as per packet. */
  release(nowMs: number): void {
    for (;;) {
      if (this.next === undefined || this.held.size === 0) return;
      const frame = this.completeFrameAt(this.next);
      if (frame) {
        this.next = (frame.lastSeq + 1) & 0xffff;
        this.emit(frame.packets);
        continue;
      }
      if (!this.gapExpired(nowMs)) return;
      this.skipGap();
    }
  }

  /** The packets from `start` through a marker, if all are here. */
  private completeFrameAt(start: number): { packets: FramePacket[]; lastSeq: number } | undefined {
    const packets: FramePacket[] = [];
    for (let seq = start, n = 0; n < WINDOW; seq = (seq + 1) & 0xffff, n++) {
      const entry = this.held.get(seq);
      if (!entry) return undefined;
      if (packets.length > 0 && entry.packet.timestamp !== packets[0]!.timestamp) {
        // A new timestamp without a marker before it: the previous frame ended there (a lost marker packet is caught as a gap).
        return { packets, lastSeq: (seq - 1) & 0xffff };
      }
      packets.push(entry.packet);
      if (entry.packet.marker || this.codec === 'opus') return { packets, lastSeq: seq };
    }
    return undefined;
  }

  /** Whether the oldest packet held waited its time for what is missing before it. */
  private gapExpired(nowMs: number): boolean {
    if (this.held.size >= WINDOW / 2) return true;
    let oldest = Infinity;
    for (const { arrivedMs } of this.held.values()) oldest = Math.min(oldest, arrivedMs);
    return nowMs - oldest >= this.options.maxWaitMs;
  }

  /**
   * Drops what cannot be completed: up to the first packet after the gap that begins a frame of
   * another timestamp. Lost audio is a gap in time; lost video breaks the frames that follow.
   */
  private skipGap(): void {
    const next = this.next!;
    const seqs = [...this.held.keys()].sort((a, b) => seqDiff(a, next) - seqDiff(b, next));
    // Timestamps of what is dropped: a packet of one of them belongs to a broken frame.
    const broken = new Set<number>();
    let resume: number | undefined;
    for (const seq of seqs) {
      const { packet } = this.held.get(seq)!;
      if (seq !== next && !broken.has(packet.timestamp) && isFrameStart(this.codec, packet.payload)) {
        resume = seq;
        break;
      }
      broken.add(packet.timestamp);
      this.held.delete(seq);
    }
    if (this.codec !== 'opus') {
      this.framesLost++;
      this.needKeyFrame();
    }
    this.next = resume ?? (seqs.length > 0 ? (seqs[seqs.length - 1]! + 1) & 0xffff : next);
  }

  private needKeyFrame(): void {
    this.awaitingKeyFrame = true;
    this.onKeyFrameNeeded();
  }

  private emit(packets: FramePacket[]): void {
    for (const { sequenceNumber } of packets) this.held.delete(sequenceNumber);
    const frame = depacketize(this.codec, packets);
    if (!frame) {
      if (this.codec !== 'opus') this.needKeyFrame();
      return;
    }
    if (this.awaitingKeyFrame) {
      if (!frame.keyFrame) return;
      this.awaitingKeyFrame = false;
    }
    this.onFrame(frame);
  }
}

const vp8 = new Vp8Descriptor();

function isFrameStart(codec: FrameCodec, payload: Uint8Array): boolean {
  if (codec === 'vp8') return parseVp8(payload, vp8) && vp8.startOfPartition && vp8.partitionIndex === 0;
  if (codec === 'h264') {
    const type = (payload[0] ?? 0) & 0x1f;
    return type !== NAL_FU_A || ((payload[1] ?? 0) & 0x80) !== 0;
  }
  return true;
}

/** A frame from its packets in order; undefined when they do not make one (malformed, or not starting at its beginning). */
export function depacketize(codec: FrameCodec, packets: readonly FramePacket[]): AssembledFrame | undefined {
  const timestamp = packets[0]!.timestamp;
  if (codec === 'opus') {
    return { data: packets[0]!.payload, keyFrame: true, timestamp, width: 0, height: 0, avcC: undefined };
  }
  if (codec === 'vp8') return vp8Frame(packets, timestamp);
  return h264Frame(packets, timestamp);
}

function vp8Frame(packets: readonly FramePacket[], timestamp: number): AssembledFrame | undefined {
  const parts: Uint8Array[] = [];
  let keyFrame = false;
  let width = 0;
  let height = 0;
  for (const [i, { payload }] of packets.entries()) {
    if (!parseVp8(payload, vp8)) return undefined;
    if (i === 0) {
      if (!vp8.startOfPartition || vp8.partitionIndex !== 0) return undefined;
      ({ keyFrame, width, height } = vp8);
    }
    parts.push(payload.subarray(vp8.length));
  }
  return { data: concat(parts), keyFrame, timestamp, width, height, avcC: undefined };
}

const NAL_IDR = 5;
const NAL_SPS = 7;
const NAL_PPS = 8;
const NAL_STAP_A = 24;
const NAL_FU_A = 28;

function h264Frame(packets: readonly FramePacket[], timestamp: number): AssembledFrame | undefined {
  const nals: Uint8Array[] = [];
  let fragments: Uint8Array[] | undefined;
  for (const { payload } of packets) {
    if (payload.length < 1) return undefined;
    const type = payload[0]! & 0x1f;
    if (type === NAL_STAP_A) {
      for (let at = 1; at < payload.length;) {
        if (at + 2 > payload.length) return undefined;
        const size = (payload[at]! << 8) | payload[at + 1]!;
        if (size === 0 || at + 2 + size > payload.length) return undefined;
        nals.push(payload.subarray(at + 2, at + 2 + size));
        at += 2 + size;
      }
    } else if (type === NAL_FU_A) {
      if (payload.length < 3) return undefined;
      const header = payload[1]!;
      if (header & 0x80) fragments = [Uint8Array.of((payload[0]! & 0xe0) | (header & 0x1f))];
      if (!fragments) return undefined; // a fragment without its start
      fragments.push(payload.subarray(2));
      if (header & 0x40) {
        nals.push(concat(fragments));
        fragments = undefined;
      }
    } else if (type >= 1 && type <= 23) {
      nals.push(payload);
    } else {
      return undefined;
    }
  }
  if (fragments || nals.length === 0) return undefined;
  const sps = nals.find((n) => (n[0]! & 0x1f) === NAL_SPS);
  const pps = nals.find((n) => (n[0]! & 0x1f) === NAL_PPS);
  const size = sps && h264SpsSize(sps);
  const keyFrame = nals.some((n) => (n[0]! & 0x1f) === NAL_IDR);
  const data = new Uint8Array(nals.reduce((sum, n) => sum + 4 + n.length, 0));
  let at = 0;
  for (const nal of nals) {
    new DataView(data.buffer).setUint32(at, nal.length);
    data.set(nal, at + 4);
    at += 4 + nal.length;
  }
  return {
    data,
    keyFrame,
    timestamp,
    width: size?.width ?? 0,
    height: size?.height ?? 0,
    avcC: sps && pps && sps.length >= 4 ? avcConfiguration(sps, pps) : undefined,
  };
}

/** The AVC decoder configuration record (ISO 14496-15) of one SPS and one PPS, with 4-byte lengths. */
function avcConfiguration(sps: Uint8Array, pps: Uint8Array): Uint8Array {
  const record = new Uint8Array(11 + sps.length + pps.length);
  record.set([1, sps[1]!, sps[2]!, sps[3]!, 0xff, 0xe1, sps.length >> 8, sps.length & 0xff]);
  record.set(sps, 8);
  record.set([1, pps.length >> 8, pps.length & 0xff], 8 + sps.length);
  record.set(pps, 11 + sps.length);
  return record;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
