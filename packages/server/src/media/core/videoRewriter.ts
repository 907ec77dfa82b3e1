/**
 * The per-player video stream rewriter for simulcast. A publisher sends a video track as up to
 * three simulcast streams (layer 0 smallest .. 2 largest), each with its own SSRC, sequence
 * numbers, RTP timestamps and VP8 PictureIDs; a player receives one continuous stream. A
 * VideoRewriter, one per player video track, looks at every packet of every layer and decides
 * whether the player gets it and with which header and VP8 descriptor values: it forwards one
 * layer, moves to the target layer at a keyframe of that layer, drops VP8 temporal layers above
 * the player's limit, and numbers what it forwards so that the player sees one stream without
 * jumps. Pure state, no I/O, nothing allocated per packet: the caller sends, keeps the map from
 * the player's sequence numbers to source packets for NACKs, and asks the publisher for a
 * keyframe when `needsKeyFrame()` names a layer.
 */
import { inspectH264, parseVp8, Vp8Descriptor, writeVp8Descriptor } from './codecs.js';

export type VideoCodec = 'vp8' | 'vp9' | 'h264';

/** The RTP header fields the rewriter reads (werift's RtpHeader has them). */
export interface RtpHeaderFields {
  readonly sequenceNumber: number;
  readonly timestamp: number;
  readonly marker: boolean;
}

/** A forwarded packet's values in the player's stream. */
export interface RewrittenPacket {
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  /** VP8 PictureID, TL0PICIDX and KEYIDX for the player; undefined when the source packet has none. */
  pictureId: number | undefined;
  tl0PicIdx: number | undefined;
  keyIdx: number | undefined;
  /** The packet starts a keyframe. */
  keyFrame: boolean;
  /** The packet is the first of a newly forwarded layer (including the very first one forwarded). */
  switched: boolean;
  /**
   * 0 when the payload goes to the player as it came. Otherwise the VP8 descriptor's values
   * changed: the player's payload is what `rewriteDescriptor` writes, this many bytes, followed
   * by `payload.subarray(descriptorLength)`.
   */
  descriptorLength: number;
}

/**
 * What a player's subscriber asks of the rewriter of its video: VideoRewriter for simulcast (and a
 * single stream), SvcRewriter for the spatial layers of one VP9 stream.
 */
export interface StreamRewriter {
  /** The layer the player is to get (now, or from its next keyframe). */
  readonly targetLayer: number;
  /** The layer being forwarded, undefined before the first keyframe. */
  readonly currentLayer: number | undefined;
  /** The newest sequence number sent to the player, undefined before any. */
  readonly lastSequenceNumber: number | undefined;
  /** `congested`: the player's link cannot carry the current layer. */
  setTargetLayer(layer: number, congested?: boolean): void;
  setMaxTemporalLayer(temporalLayer: number): void;
  setPaused(paused: boolean): void;
  /** The layer whose keyframe is awaited (ask its publisher stream for one), or undefined. */
  needsKeyFrame(): number | undefined;
  /** The layers whose packets the player gets or waits for a keyframe of, a bit per layer. */
  layersForwarded(): number;
  rewrite(layer: number, header: RtpHeaderFields, payload: Uint8Array, codec: VideoCodec, arrivalMs: number): RewrittenPacket | undefined;
  rewriteDescriptor(payload: Uint8Array, out: Uint8Array): number;
}

/** The RTP clock rate of VP8 and H264 (RFC 7741, RFC 6184), per millisecond. */
const TICKS_PER_MS = 90;
/** How far behind the newest packet (in source sequence numbers) a late packet is still placed; a power of two. */
export const SEQUENCE_WINDOW = 256;
/** How many recent VP8 frames (by PictureID) a late packet can still be matched to; a power of two. */
const FRAME_WINDOW = 32;
/** Set on a window slot kept for a packet or frame not seen yet, over the number it is to get. */
export const AWAITED = 0x10000;
/** A window slot's packet or frame was dropped, or a window tag has nothing recorded. */
export const NONE = -1;
/** The highest VP8 TID (2 bits): no temporal layer limit. */
export const ALL_TEMPORAL_LAYERS = 3;
/** Simulcast layers whose newest packet is tracked (a publisher sends at most three); see `behindNewest`. */
const TRACKED_LAYERS = 4;

/** The reused result object of a rewriter, before its first packet. */
export const emptyRewrittenPacket = (): RewrittenPacket => ({
  sequenceNumber: 0,
  timestamp: 0,
  marker: false,
  pictureId: undefined,
  tl0PicIdx: undefined,
  keyIdx: undefined,
  keyFrame: false,
  switched: false,
  descriptorLength: 0,
});

/**
 * Recent source sequence numbers of a rewritten stream, by number modulo the window: the source
 * number as tag, and the player's number (with AWAITED if the packet has not come yet) or NONE.
 */
export class SequenceWindow {
  readonly tags = new Int32Array(SEQUENCE_WINDOW).fill(NONE);
  readonly slots = new Int32Array(SEQUENCE_WINDOW);

  /**
   * Records the source packets skipped between `highest` and one `ahead` of it, which may still
   * come late (reordered or repaired): their numbers are kept for them, unless they are known to be
   * `dropped`. Returns the offset (source minus player number) for the packets after them, moved
   * on past the dropped ones.
   */
  keepSkipped(highest: number, ahead: number, offset: number, dropped: boolean): number {
    for (let i = Math.max(1, ahead - SEQUENCE_WINDOW + 1); i < ahead; i++) {
      const source = (highest + i) & 0xffff;
      const slot = source & (SEQUENCE_WINDOW - 1);
      this.tags[slot] = source;
      this.slots[slot] = dropped ? NONE : AWAITED | ((source - offset) & 0xffff);
    }
    return dropped ? (offset + ahead - 1) & 0xffff : offset;
  }
}

/** The player's PictureID keeps the source's width (7 or 15 bits), so it wraps at the source's range. */
function pictureIdMask(descriptor: Vp8Descriptor): number {
  return descriptor.pictureIdBits === 15 ? 0x7fff : 0x7f;
}

export class VideoRewriter implements StreamRewriter {
  private target: number;
  private maxTemporal: number;
  private layer: number | undefined;
  private size: { readonly width: number; readonly height: number } | undefined;
  /** The highest temporal layer forwarded now: raised only where a frame allows it, see startFrame. */
  private temporal = 0;
  /** See setTargetLayer. */
  private congested = false;
  /** The player asked for no video (mutePlayStreamVideo). */
  private paused = false;

  /** What is subtracted (modulo each field's range) from the current layer's values to get the player's. */
  private sequenceOffset = 0;
  private timestampOffset = 0;
  private pictureIdOffset = 0;
  private tl0PicIdxOffset = 0;
  private keyIdxOffset = 0;

  /** The current layer's newest packet and frame, in its own numbering. */
  private highestSequence = 0;
  private frameTimestamp = -1;
  private framePictureId = -1;
  private frameForwarded = false;
  private frameEnded = false;

  /** The player's stream: values of the newest packet forwarded (-1 before there is one). */
  private sentSequence = -1;
  private sentTimestamp = 0;
  private sentAtMs = 0;
  private sentMarker = false;
  private sentPictureId = -1;
  private sentTl0PicIdx = -1;
  private sentKeyIdx = -1;

  /** The current layer's recent sequence numbers. */
  private readonly sequences = new SequenceWindow();
  /** Likewise for its recent VP8 frames, by source PictureID, holding the player's PictureID. */
  private readonly frameTags = new Int32Array(FRAME_WINDOW).fill(NONE);
  private readonly frameSlots = new Int32Array(FRAME_WINDOW);
  /** Each layer's newest source sequence number seen, forwarded or not (NONE before its first). */
  private readonly newestSequences = new Int32Array(TRACKED_LAYERS).fill(NONE);

  private readonly vp8 = new Vp8Descriptor();
  private readonly result = emptyRewrittenPacket();

  constructor(targetLayer: number, maxTemporalLayer = ALL_TEMPORAL_LAYERS) {
    this.target = targetLayer;
    this.maxTemporal = maxTemporalLayer;
  }

  /**
   * The layer to forward; the switch happens at its next keyframe, until then the current layer
   * goes on. Waiting for a lower layer, only the current one's base temporal layer goes on, and
   * when `congested` (the player's link cannot carry the current layer) nothing of it: the new
   * layer's keyframe then finds the link clear instead of queued behind what the link drops. A
   * layer left that way can only be taken up again at a keyframe.
   */
  setTargetLayer(layer: number, congested = false): void {
    this.target = layer;
    this.congested = congested;
    this.temporal = Math.min(this.temporal, this.temporalLimit());
  }

  /**
   * The highest VP8 temporal layer to forward (0 for the base layer only). Lowering takes effect
   * at the next frame; raising at the next frame of a higher layer that has the layer sync bit,
   * or at a keyframe, since other frames of that layer may reference frames the player never got.
   */
  setMaxTemporalLayer(temporalLayer: number): void {
    this.maxTemporal = temporalLayer;
    this.temporal = Math.min(this.temporal, this.temporalLimit());
  }

  /** The highest temporal layer the current layer may have forwarded, -1 for none: see setTargetLayer. */
  private temporalLimit(): number {
    if (this.layer === undefined || this.target >= this.layer) return this.maxTemporal;
    return this.congested ? NONE : 0;
  }

  /**
   * Stops forwarding (the player muted the video), or starts again: at a keyframe of the target
   * layer, every number continuing from the last one sent, as at a layer switch.
   */
  setPaused(paused: boolean): void {
    this.paused = paused;
    if (paused) this.layer = undefined;
  }

  /** The layer the player is to get (now, or from its next keyframe). */
  get targetLayer(): number {
    return this.target;
  }

  /** The layer whose keyframe is awaited (ask its publisher stream for one), or undefined. */
  needsKeyFrame(): number | undefined {
    return this.paused || (this.layer === this.target && this.temporal >= 0) ? undefined : this.target;
  }

  /** The layer being forwarded, undefined before the first keyframe of the target layer. */
  get currentLayer(): number | undefined {
    return this.layer;
  }

  /** The target layer and the current one. */
  layersForwarded(): number {
    return (1 << this.target) | (this.layer === undefined ? 0 : 1 << this.layer);
  }

  /** The current layer's frame size from its last keyframe (VP8 only); a new object whenever it changes. */
  get currentSize(): { readonly width: number; readonly height: number } | undefined {
    return this.size;
  }

  /** The newest sequence number and timestamp sent to the player, undefined before any. */
  get lastSequenceNumber(): number | undefined {
    return this.sentSequence < 0 ? undefined : this.sentSequence;
  }

  get lastTimestamp(): number | undefined {
    return this.sentSequence < 0 ? undefined : this.sentTimestamp;
  }

  /**
   * Decides on one packet of `layer`: undefined when the player does not get it, otherwise its
   * values in the player's stream. The returned object is reused: it holds until the next call.
   */
  rewrite(layer: number, header: RtpHeaderFields, payload: Uint8Array, codec: VideoCodec, arrivalMs: number): RewrittenPacket | undefined {
    const stale = this.behindNewest(layer, header.sequenceNumber);
    const switching = layer !== this.layer;
    if (this.paused || (switching && layer !== this.target)) return undefined;
    const isVp8 = codec === 'vp8';
    let valid: boolean;
    let keyFrame: boolean;
    if (isVp8) {
      valid = parseVp8(payload, this.vp8);
      keyFrame = valid && this.vp8.keyFrame;
    } else {
      const kind = inspectH264(payload);
      valid = kind !== 'malformed';
      keyFrame = kind === 'keyFrameStart';
    }
    if (switching) {
      // A keyframe's first packet older than its layer's newest is a copy (a repair, or padding:
      // Chromium pads its probes with RTX copies of a recent large packet, which for a small
      // layer is a one-packet keyframe, and keeps one for thousands of packets) or came
      // reordered. The layer's packets after it went by unforwarded, so the player would get a
      // keyframe cut short, or one followed by a gap in every number that it NACKs in vain, and
      // no keyframe would be asked for any more: libwebrtc's VP8 reference finder holds every
      // later frame for the base layer frames in the gap, and Chromium asks for a keyframe only
      // after 3 s without a decodable frame.
      if (!keyFrame || stale) return undefined;
      this.startLayer(layer, header.sequenceNumber, header.timestamp, arrivalMs, isVp8);
    }

    const { sequenceNumber, timestamp, marker } = header;
    const ahead = ((sequenceNumber - this.highestSequence) << 16) >> 16;
    if (ahead <= 0) return this.late(sequenceNumber, header, valid, keyFrame, isVp8);
    if (ahead > 1) this.skip(ahead, valid && this.skippedAreDropped(timestamp, isVp8));
    this.highestSequence = sequenceNumber;
    const slot = sequenceNumber & (SEQUENCE_WINDOW - 1);
    this.sequences.tags[slot] = sequenceNumber;
    this.sequences.slots[slot] = NONE;

    const sameFrame = timestamp === this.frameTimestamp;
    if (!valid) {
      // Padding (an empty payload) or a packet of a frame the player does not get or has had in
      // full gives its number to the next packet. Anything else may be part of a frame the
      // player gets: it leaves a gap, so that the player sees that frame as incomplete.
      if (payload.length === 0 || (sameFrame && (this.frameEnded || !this.frameForwarded))) {
        this.sequenceOffset = (this.sequenceOffset + 1) & 0xffff;
      }
      if (sameFrame && marker) this.frameEnded = true;
      return undefined;
    }
    if (!sameFrame) this.startFrame(timestamp, isVp8, keyFrame);
    if (marker) this.frameEnded = true;
    if (!this.frameForwarded) {
      this.sequenceOffset = (this.sequenceOffset + 1) & 0xffff;
      return undefined;
    }

    const out = (sequenceNumber - this.sequenceOffset) & 0xffff;
    this.sequences.slots[slot] = out;
    const vp8 = this.vp8;
    const pictureId = isVp8 && vp8.pictureId >= 0 ? (vp8.pictureId - this.pictureIdOffset) & pictureIdMask(vp8) : NONE;
    const result = this.output(out, header, pictureId, isVp8, keyFrame, switching);
    this.sentSequence = out;
    this.sentTimestamp = result.timestamp;
    this.sentAtMs = arrivalMs;
    this.sentMarker = marker;
    if (isVp8) {
      if (vp8.pictureId >= 0) this.sentPictureId = pictureId;
      if (vp8.tl0PicIdx >= 0) this.sentTl0PicIdx = result.tl0PicIdx!;
      if (vp8.keyIdx >= 0) this.sentKeyIdx = result.keyIdx!;
      if (vp8.width > 0 && (vp8.width !== this.size?.width || vp8.height !== this.size.height)) {
        this.size = { width: vp8.width, height: vp8.height };
      }
    }
    return result;
  }

  /**
   * Whether a packet of `layer` is older than the newest one of that layer seen so far; if it is
   * newer, it becomes the newest. A copy of the newest is not older: what follows it is still to come.
   */
  private behindNewest(layer: number, sequenceNumber: number): boolean {
    if (layer < 0 || layer >= TRACKED_LAYERS) return false;
    const newest = this.newestSequences[layer]!;
    const ahead = ((sequenceNumber - newest) << 16) >> 16;
    if (newest !== NONE && ahead < 0) return true;
    this.newestSequences[layer] = sequenceNumber;
    return false;
  }

  /**
   * Writes the player's VP8 payload descriptor for the packet `rewrite` was just given (and
   * forwarded) into `out` (at least 6 bytes) and returns its length, equal to the source
   * descriptor's. The player's payload is those bytes followed by `payload.subarray(length)`,
   * so a sealer can encrypt the two pieces in turn without copying the payload.
   */
  rewriteDescriptor(payload: Uint8Array, out: Uint8Array): number {
    const { pictureId, tl0PicIdx, keyIdx } = this.result;
    return writeVp8Descriptor(payload, this.vp8, out, pictureId ?? 0, tl0PicIdx ?? 0, keyIdx ?? 0);
  }

  /**
   * Makes `layer` the current one from its keyframe packet: every field continues from the last
   * value sent, so the player sees one stream.
   */
  private startLayer(layer: number, sequenceNumber: number, timestamp: number, arrivalMs: number, isVp8: boolean): void {
    this.layer = layer;
    this.size = undefined;
    this.highestSequence = (sequenceNumber - 1) & 0xffff;
    this.frameTimestamp = -1;
    this.framePictureId = -1;
    // Late packets from before the switch must not find a slot.
    this.sequences.tags.fill(NONE);
    this.frameTags.fill(NONE);
    if (this.sentSequence < 0) {
      this.sequenceOffset = this.timestampOffset = this.pictureIdOffset = this.tl0PicIdxOffset = this.keyIdxOffset = 0;
      return;
    }
    // A frame of the old layer cut short is followed by one unused number, so that the player
    // sees it as incomplete rather than assembling it with what follows (mediasoup issue 408).
    const next = this.sentSequence + (this.sentMarker ? 1 : 2);
    this.sequenceOffset = (sequenceNumber - next) & 0xffff;
    // The layers' RTP clocks are unrelated: the new one is placed as far after the last timestamp
    // sent as the wall clock moved, at least one tick, so the player's timestamps keep rising.
    const elapsedTicks = Math.max(1, Math.round((arrivalMs - this.sentAtMs) * TICKS_PER_MS));
    this.timestampOffset = (timestamp - this.sentTimestamp - elapsedTicks) >>> 0;
    // The keyframe is a new picture, a new TL0 picture and a new keyframe: each is the last sent + 1.
    const vp8 = this.vp8;
    this.pictureIdOffset = isVp8 && vp8.pictureId >= 0 && this.sentPictureId >= 0 ? (vp8.pictureId - this.sentPictureId - 1) & 0x7fff : 0;
    this.tl0PicIdxOffset = isVp8 && vp8.tl0PicIdx >= 0 && this.sentTl0PicIdx >= 0 ? (vp8.tl0PicIdx - this.sentTl0PicIdx - 1) & 0xff : 0;
    this.keyIdxOffset = isVp8 && vp8.keyIdx >= 0 && this.sentKeyIdx >= 0 ? (vp8.keyIdx - this.sentKeyIdx - 1) & 0x1f : 0;
  }

  /**
   * Whether the packets skipped before one (valid) with `timestamp` are known to belong to a
   * frame the player does not get: it is the same frame as the newest packet's, or the frame
   * right after it (by PictureID) and the packet is its first.
   */
  private skippedAreDropped(timestamp: number, isVp8: boolean): boolean {
    if (this.frameForwarded) return false;
    if (timestamp === this.frameTimestamp) return true;
    const vp8 = this.vp8;
    return (
      isVp8 &&
      vp8.startOfPartition &&
      vp8.partitionIndex === 0 &&
      vp8.pictureId >= 0 &&
      this.framePictureId >= 0 &&
      ((vp8.pictureId - this.framePictureId) & pictureIdMask(vp8)) === 1
    );
  }

  /** The packets skipped before one `ahead` of the newest: see SequenceWindow.keepSkipped. */
  private skip(ahead: number, dropped: boolean): void {
    this.sequenceOffset = this.sequences.keepSkipped(this.highestSequence, ahead, this.sequenceOffset, dropped);
  }

  /** Decides on a new frame of the current layer, from its first packet to arrive in order. */
  private startFrame(timestamp: number, isVp8: boolean, keyFrame: boolean): void {
    this.frameTimestamp = timestamp;
    this.frameEnded = false;
    if (!isVp8) {
      // No temporal layers: every frame goes on, unless the layer is left congested (then from a keyframe).
      if (keyFrame) this.temporal = this.temporalLimit();
      this.frameForwarded = this.temporal >= 0;
      return;
    }
    const vp8 = this.vp8;
    const temporalLayer = vp8.temporalLayer < 0 ? 0 : vp8.temporalLayer;
    let forwarded = true;
    // A keyframe resets every reference, so all temporal layers can follow it. Otherwise a frame
    // of a higher layer than forwarded so far may reference frames of that layer the player never
    // got, unless it has the layer sync bit (mediasoup checks it, as LiveKit did until it moved to
    // the dependency descriptor); base layer frames only reference base layer frames.
    if (vp8.keyFrame) {
      this.temporal = this.temporalLimit();
      forwarded = this.temporal >= 0;
    } else if (temporalLayer > this.temporal) {
      forwarded = vp8.layerSync && temporalLayer <= this.temporalLimit();
      if (forwarded) this.temporal = temporalLayer;
    }
    this.frameForwarded = forwarded;
    if (vp8.pictureId >= 0) this.numberFrame(vp8.pictureId, pictureIdMask(vp8), forwarded);
  }

  /**
   * Records the player's PictureID for a new frame, and for the frames skipped before it (their
   * packets may come late). A dropped frame's PictureID goes to the next frame, as LiveKit does,
   * so forwarded frames' PictureIDs have no gaps: libwebrtc's VP8 reference finder takes a
   * missing PictureID for a frame still to come and holds back the frames of higher temporal
   * layers after it until it comes or a timeout passes.
   */
  private numberFrame(pictureId: number, mask: number, forwarded: boolean): void {
    if (this.framePictureId >= 0) {
      const skipped = ((pictureId - this.framePictureId) & mask) - 1;
      if (skipped < FRAME_WINDOW) {
        for (let i = 1; i <= skipped; i++) {
          const source = (this.framePictureId + i) & mask;
          this.frameTags[source & (FRAME_WINDOW - 1)] = source;
          this.frameSlots[source & (FRAME_WINDOW - 1)] = AWAITED | ((source - this.pictureIdOffset) & mask);
        }
      }
    }
    this.framePictureId = pictureId;
    const slot = pictureId & (FRAME_WINDOW - 1);
    this.frameTags[slot] = pictureId;
    if (forwarded) {
      this.frameSlots[slot] = (pictureId - this.pictureIdOffset) & mask;
    } else {
      this.frameSlots[slot] = NONE;
      this.pictureIdOffset = (this.pictureIdOffset + 1) & 0x7fff;
    }
  }

  /**
   * A packet of the current layer older than the newest: forwarded with the number kept for it
   * if its frame is forwarded; dropped if it is a copy, from before the switch, or too old. One
   * that is dropped leaves its number unused (a valid copy of a malformed one may still take it).
   */
  private late(
    sequenceNumber: number,
    header: RtpHeaderFields,
    valid: boolean,
    keyFrame: boolean,
    isVp8: boolean,
  ): RewrittenPacket | undefined {
    const slot = sequenceNumber & (SEQUENCE_WINDOW - 1);
    const kept = this.sequences.slots[slot]!;
    // A slot's tag is one of the last SEQUENCE_WINDOW numbers (or NONE, as the switch left it),
    // so a packet older than that, or from before the switch, finds another.
    if (this.sequences.tags[slot] !== sequenceNumber || kept < AWAITED || !valid) return undefined;
    let pictureId = NONE;
    if (isVp8) {
      const vp8 = this.vp8;
      const temporalLayer = vp8.temporalLayer < 0 ? 0 : vp8.temporalLayer;
      if (vp8.pictureId < 0) {
        if (temporalLayer > this.temporal) return undefined;
      } else {
        pictureId = this.lateFramePictureId(vp8.pictureId, temporalLayer);
        if (pictureId < 0) return undefined;
      }
    }
    const out = kept & 0xffff;
    this.sequences.slots[slot] = out;
    return this.output(out, header, pictureId, isVp8, keyFrame, false);
  }

  /** The player's PictureID for a late packet's frame, or NONE if that frame is not forwarded. */
  private lateFramePictureId(pictureId: number, temporalLayer: number): number {
    const slot = pictureId & (FRAME_WINDOW - 1);
    if (this.frameTags[slot] !== pictureId) return NONE;
    const kept = this.frameSlots[slot]!;
    if (kept < AWAITED) return kept;
    // The frame's first packet to come: it is forwarded if its temporal layer is, and keeps its
    // PictureID or leaves it unused (a gap the player tolerates for a non-base layer frame).
    this.frameSlots[slot] = temporalLayer <= this.temporal ? kept & 0x7fff : NONE;
    return this.frameSlots[slot]!;
  }

  private output(
    sequenceNumber: number,
    header: RtpHeaderFields,
    pictureId: number,
    isVp8: boolean,
    keyFrame: boolean,
    switched: boolean,
  ): RewrittenPacket {
    const result = this.result;
    result.sequenceNumber = sequenceNumber;
    result.timestamp = (header.timestamp - this.timestampOffset) >>> 0;
    result.marker = header.marker;
    result.keyFrame = keyFrame;
    result.switched = switched;
    result.pictureId = result.tl0PicIdx = result.keyIdx = undefined;
    result.descriptorLength = 0;
    if (!isVp8) return result;
    const vp8 = this.vp8;
    let changed = false;
    if (pictureId >= 0) {
      result.pictureId = pictureId;
      changed = pictureId !== vp8.pictureId;
    }
    if (vp8.tl0PicIdx >= 0) {
      result.tl0PicIdx = (vp8.tl0PicIdx - this.tl0PicIdxOffset) & 0xff;
      changed ||= result.tl0PicIdx !== vp8.tl0PicIdx;
    }
    if (vp8.keyIdx >= 0) {
      result.keyIdx = (vp8.keyIdx - this.keyIdxOffset) & 0x1f;
      changed ||= result.keyIdx !== vp8.keyIdx;
    }
    if (changed) result.descriptorLength = vp8.length;
    return result;
  }
}
