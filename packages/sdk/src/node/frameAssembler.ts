/**
 * Rebuilds VP8 frames from RTP packets for encoded custom render. Frames come out whole, once,
 * and in order. A packet still missing after `maxWaitMs` (retransmission had its chance) makes
 * the assembler drop the broken frame and everything up to the next keyframe, which it asks for:
 * a frame is never delivered corrupted, and never without the frames it depends on.
 */
import { readVp8Descriptor, readVp8FrameInfo } from './vp8.js';
import { SequenceUnwrapper } from './unwrap.js';

export interface AssembledFrame {
  data: Uint8Array;
  isKeyFrame: boolean;
  width: number;
  height: number;
  rtpTimestamp: number;
  /** The simulcast layer its packets were tagged with (0 when untagged). */
  layer: number;
}

interface BufferedPacket {
  timestamp: number;
  marker: boolean;
  frameStart: boolean;
  body: Uint8Array;
  layer: number;
}

export interface FrameAssemblerOptions {
  maxWaitMs: number;
  onFrame(frame: AssembledFrame): void;
  onKeyFrameNeeded(): void;
}

const KEYFRAME_REQUEST_INTERVAL_MS = 300;
/** More buffered packets than this means the gap will not heal by waiting. */
const MAX_BUFFERED_PACKETS = 4096;

export class Vp8FrameAssembler {
  private readonly packets = new Map<number, BufferedPacket>();
  /** Padding-only packets (bandwidth probes): no frame's, but their sequence numbers keep frames contiguous. */
  private readonly padding = new Set<number>();
  private readonly seq = new SequenceUnwrapper(16);
  /** Extended sequence number where the next frame must start. */
  private next: number | undefined;
  /** Whether a frame has been assembled (or given up on) yet. */
  private started = false;
  private waitingForKeyFrame = true;
  private gapTimer: ReturnType<typeof setTimeout> | undefined;
  private width = 0;
  private lastKeyFrameRequest = -Infinity;
  private height = 0;

  constructor(private readonly options: FrameAssemblerOptions) {}

  push(sequenceNumber: number, timestamp: number, marker: boolean, payload: Uint8Array, layer = 0): void {
    if (payload.length === 0) {
      const ext = this.seq.unwrap(sequenceNumber);
      if (this.next === undefined || ext >= this.next) this.padding.add(ext);
      if (this.next !== undefined) this.drain();
      else if (this.padding.size > MAX_BUFFERED_PACKETS) this.padding.clear();
      return;
    }
    const descriptor = readVp8Descriptor(payload);
    if (!descriptor) return;
    const ext = this.seq.unwrap(sequenceNumber);
    if (this.packets.has(ext)) return;
    if (!this.started) {
      // Until the first frame is out, the earliest frame start seen so far is where to begin;
      // packets before it (a frame joined in the middle) are dropped then.
      if (descriptor.frameStart && (this.next === undefined || ext < this.next)) this.next = ext;
    } else if (ext < this.next!) {
      return; // a late duplicate, or part of a frame already given up
    }
    this.packets.set(ext, { timestamp, marker, frameStart: descriptor.frameStart, body: payload.subarray(descriptor.headerSize), layer });
    if (this.next !== undefined) this.drain();
    else if (this.packets.size > MAX_BUFFERED_PACKETS) this.packets.clear(); // no frame start in sight
  }

  close(): void {
    clearTimeout(this.gapTimer);
    this.packets.clear();
    this.padding.clear();
  }

  private drain(): void {
    for (;;) {
      while (this.started && this.padding.delete(this.next!)) this.next!++;
      const end = this.completeFrameEnd();
      if (end === undefined) break;
      if (!this.started) this.start();
      this.emit(this.next!, end);
      this.next = end + 1;
    }
    if (this.packets.size === 0) {
      clearTimeout(this.gapTimer);
      this.gapTimer = undefined;
    } else if (this.packets.size > MAX_BUFFERED_PACKETS) {
      this.skipGap();
    } else if (!this.gapTimer) {
      this.gapTimer = setTimeout(() => this.skipGap(), this.options.maxWaitMs);
      (this.gapTimer as { unref?: () => void }).unref?.();
    }
  }

  /** The extended sequence number of the last packet of the frame starting at `next`, if all of it is here. */
  private completeFrameEnd(): number | undefined {
    const start = this.next!;
    const first = this.packets.get(start);
    if (!first?.frameStart) return undefined;
    for (let s = start; ; s++) {
      const packet = this.packets.get(s);
      if (!packet || packet.timestamp !== first.timestamp || (s > start && packet.frameStart)) return undefined;
      if (packet.marker) return s;
    }
  }

  private emit(start: number, end: number): void {
    let size = 0;
    for (let s = start; s <= end; s++) size += this.packets.get(s)!.body.length;
    const data = new Uint8Array(size);
    let offset = 0;
    const { timestamp, layer } = this.packets.get(start)!;
    for (let s = start; s <= end; s++) {
      const { body } = this.packets.get(s)!;
      data.set(body, offset);
      offset += body.length;
      this.packets.delete(s);
    }
    clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    const info = readVp8FrameInfo(data);
    if (info.isKeyFrame) {
      this.waitingForKeyFrame = false;
      this.width = info.width ?? this.width;
      this.height = info.height ?? this.height;
    } else if (this.waitingForKeyFrame) {
      this.askForKeyFrame();
      return;
    }
    this.options.onFrame({ data, isKeyFrame: info.isKeyFrame, width: this.width, height: this.height, rtpTimestamp: timestamp, layer });
  }

  /** Asks at most once per KEYFRAME_REQUEST_INTERVAL_MS: the answer takes a round trip to arrive. */
  private askForKeyFrame(): void {
    const now = Date.now();
    if (now - this.lastKeyFrameRequest < KEYFRAME_REQUEST_INTERVAL_MS) return;
    this.lastKeyFrameRequest = now;
    this.options.onKeyFrameNeeded();
  }

  private start(): void {
    this.started = true;
    this.dropBefore(this.next!);
  }

  private dropBefore(seq: number): void {
    for (const s of this.packets.keys()) if (s < seq) this.packets.delete(s);
    for (const s of this.padding) if (s < seq) this.padding.delete(s);
  }

  /** Gives up on the missing packets: resume at the next frame start and wait for a keyframe. */
  private skipGap(): void {
    this.gapTimer = undefined;
    if (!this.started) this.start();
    const buffered = [...this.packets.keys()].sort((a, b) => a - b);
    const resume = buffered.find((s) => s > this.next! && this.packets.get(s)!.frameStart);
    if (resume !== undefined) this.next = resume;
    else if (buffered.length > 0) this.next = buffered[buffered.length - 1]! + 1;
    this.dropBefore(this.next!);
    this.waitingForKeyFrame = true;
    this.askForKeyFrame();
    this.drain();
  }
}
