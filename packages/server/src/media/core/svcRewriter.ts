/**
 * The per-player stream rewriter for VP9 spatial scalability (SVC). The publisher sends one RTP
 * stream: each picture is up to three layer frames, the smallest first, each predicted from its
 * own layer's earlier frames and (`LnT1`; with `LnT1_KEY` only in a keyframe) from the layer below
 * in the same picture. A player gets the layer frames up to its spatial layer and temporal layer;
 * the RTP marker, which ends a picture, goes on the last packet of its top layer frame; and
 * forwarded packets are numbered without the gaps the dropped ones leave. Moving down needs no
 * keyframe: the next picture simply stops at the lower layer (the decoder takes the smaller
 * picture as it comes). Moving up waits for a keyframe, since the higher layer's frames reference
 * frames of it the player never got. Pure state, no I/O, nothing allocated per packet.
 */
import { parseVp9, Vp9Descriptor } from './codecs.js';
import {
  ALL_TEMPORAL_LAYERS,
  AWAITED,
  emptyRewrittenPacket,
  NONE,
  SEQUENCE_WINDOW,
  SequenceWindow,
  type RewrittenPacket,
  type RtpHeaderFields,
  type StreamRewriter,
} from './videoRewriter.js';

/** How many recent pictures' forwarded layer frames a late packet can still be matched to; a power of two. */
const PICTURE_WINDOW = 16;

export class SvcRewriter implements StreamRewriter {
  private target: number;
  private maxTemporal: number;
  /** The highest spatial layer forwarded, undefined before the first keyframe (and while paused). */
  private spatial: number | undefined;
  /** The highest temporal layer forwarded: raised at a switching-up point or a keyframe. */
  private temporal = 0;
  private paused = false;

  /** What is subtracted (modulo 2^16) from a source sequence number to get the player's. */
  private sequenceOffset = 0;
  private highestSequence = NONE;
  /** The newest picture, by RTP timestamp. */
  private pictureTimestamp = -1;
  /** The newest in-order packet's layer frame was dropped: a gap inside it is dropped packets. */
  private droppingFrame = false;

  private sentSequence = NONE;
  private sentMarker = false;

  private readonly sequences = new SequenceWindow();
  /** Recent pictures by timestamp, and the highest spatial layer forwarded of each (NONE: none, its temporal layer is dropped). */
  private readonly pictureTags = new Float64Array(PICTURE_WINDOW).fill(NONE);
  private readonly pictureTops = new Int32Array(PICTURE_WINDOW);
  private pictureCursor = 0;

  private readonly vp9 = new Vp9Descriptor();
  private readonly result = emptyRewrittenPacket();

  constructor(targetLayer: number, maxTemporalLayer = ALL_TEMPORAL_LAYERS) {
    this.target = targetLayer;
    this.maxTemporal = maxTemporalLayer;
  }

  /** Lower: from the next picture. Higher: from the next keyframe. */
  setTargetLayer(layer: number): void {
    this.target = layer;
  }

  /** Lowering takes effect at the next picture; raising at a switching-up point of the higher layer, or a keyframe. */
  setMaxTemporalLayer(temporalLayer: number): void {
    this.maxTemporal = temporalLayer;
    this.temporal = Math.min(this.temporal, temporalLayer);
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    if (paused) this.spatial = undefined;
  }

  get targetLayer(): number {
    return this.target;
  }

  get currentLayer(): number | undefined {
    return this.spatial;
  }

  /** Every layer up to the higher of the target and the current one: a spatial layer's frames need those below. */
  layersForwarded(): number {
    return (2 << Math.max(this.target, this.spatial ?? 0)) - 1;
  }

  needsKeyFrame(): number | undefined {
    return this.paused || (this.spatial !== undefined && this.spatial >= this.target) ? undefined : this.target;
  }

  get lastSequenceNumber(): number | undefined {
    return this.sentSequence < 0 ? undefined : this.sentSequence;
  }

  /** The packet's values in the player's stream, or undefined when the player does not get it; the object is reused. */
  rewrite(_layer: number, header: RtpHeaderFields, payload: Uint8Array): RewrittenPacket | undefined {
    if (this.paused) return undefined;
    const vp9 = this.vp9;
    const valid = parseVp9(payload, vp9);
    const { sequenceNumber, timestamp } = header;
    if (this.spatial === undefined) {
      if (!valid || !vp9.keyFrame) return undefined;
      this.start(sequenceNumber);
    }
    const ahead = ((sequenceNumber - this.highestSequence) << 16) >> 16;
    if (ahead <= 0) return valid ? this.late(sequenceNumber, header) : undefined;
    if (ahead > 1) this.skip(ahead);
    this.highestSequence = sequenceNumber;
    const slot = sequenceNumber & (SEQUENCE_WINDOW - 1);
    this.sequences.tags[slot] = sequenceNumber;
    this.sequences.slots[slot] = NONE;
    if (!valid) {
      // Padding gives its number to the next packet; anything else leaves a gap.
      if (payload.length === 0) this.sequenceOffset = (this.sequenceOffset + 1) & 0xffff;
      return undefined;
    }
    let switched = false;
    if (timestamp !== this.pictureTimestamp) switched = this.startPicture(timestamp);
    const top = this.pictureTops[this.pictureCursor]!;
    const forwarded = vp9.spatialLayer <= top;
    this.droppingFrame = !forwarded && !vp9.endOfFrame;
    if (!forwarded) {
      this.sequenceOffset = (this.sequenceOffset + 1) & 0xffff;
      return undefined;
    }
    const out = (sequenceNumber - this.sequenceOffset) & 0xffff;
    this.sequences.slots[slot] = out;
    const result = this.output(out, header, top, switched);
    this.sentSequence = out;
    this.sentMarker = result.marker;
    return result;
  }

  /** The payload goes to the player as it came. */
  rewriteDescriptor(): number {
    return 0;
  }

  /** Starts (or restarts after a pause) at a keyframe: numbers continue from the last one sent. */
  private start(sequenceNumber: number): void {
    this.spatial = 0;
    this.pictureTimestamp = -1;
    this.highestSequence = (sequenceNumber - 1) & 0xffff;
    this.sequences.tags.fill(NONE);
    this.pictureTags.fill(NONE);
    // A picture cut short is followed by one unused number, so that the player sees it as incomplete.
    const next = this.sentSequence < 0 ? sequenceNumber : this.sentSequence + (this.sentMarker ? 1 : 2);
    this.sequenceOffset = (sequenceNumber - next) & 0xffff;
  }

  /**
   * Decides on a new picture from its first packet to arrive in order: its temporal layer, and the
   * spatial layer from here on (down at once, up to the target at a keyframe). True when the spatial layer changed.
   */
  private startPicture(timestamp: number): boolean {
    const vp9 = this.vp9;
    this.pictureTimestamp = timestamp;
    this.pictureCursor = (this.pictureCursor + 1) & (PICTURE_WINDOW - 1);
    this.pictureTags[this.pictureCursor] = timestamp;
    const before = this.spatial;
    if (vp9.keyFrame) {
      this.spatial = this.target;
      this.temporal = this.maxTemporal;
    } else if (this.target < this.spatial!) {
      this.spatial = this.target;
    }
    // A frame of a higher temporal layer than forwarded may reference frames of it the player never got, unless it is a switching-up point.
    if (vp9.temporalLayer > this.temporal && vp9.switchingUp && vp9.temporalLayer <= this.maxTemporal) this.temporal = vp9.temporalLayer;
    this.pictureTops[this.pictureCursor] = vp9.temporalLayer <= this.temporal ? this.spatial! : NONE;
    return before !== this.spatial;
  }

  /** Keeps numbers for the packets skipped before one `ahead` of the newest, unless they are known to be dropped. */
  private skip(ahead: number): void {
    const vp9 = this.vp9;
    const dropped = this.droppingFrame && !vp9.startOfFrame && vp9.spatialLayer > (this.spatial ?? 0);
    this.sequenceOffset = this.sequences.keepSkipped(this.highestSequence, ahead, this.sequenceOffset, dropped);
  }

  /**
   * A packet older than the newest (a repair, or reordered): forwarded with the number kept for it
   * if its layer frame is forwarded, as decided for its picture, or as it would be now for a
   * picture none of whose packets came in order.
   */
  private late(sequenceNumber: number, header: RtpHeaderFields): RewrittenPacket | undefined {
    const slot = sequenceNumber & (SEQUENCE_WINDOW - 1);
    const kept = this.sequences.slots[slot]!;
    if (this.sequences.tags[slot] !== sequenceNumber || kept < AWAITED) return undefined;
    const picture = this.pictureTags.indexOf(header.timestamp);
    const top = picture >= 0 ? this.pictureTops[picture]! : this.vp9.temporalLayer <= this.temporal ? this.spatial! : NONE;
    if (this.vp9.spatialLayer > top) return undefined;
    const out = kept & 0xffff;
    this.sequences.slots[slot] = out;
    return this.output(out, header, top, false);
  }

  /** `top`: the highest spatial layer forwarded of the packet's picture. */
  private output(sequenceNumber: number, header: RtpHeaderFields, top: number, switched: boolean): RewrittenPacket {
    const vp9 = this.vp9;
    const result = this.result;
    result.sequenceNumber = sequenceNumber;
    result.timestamp = header.timestamp;
    // The picture ends with its top forwarded layer frame.
    result.marker = header.marker || (vp9.endOfFrame && vp9.spatialLayer === top);
    result.keyFrame = vp9.keyFrame;
    result.switched = switched;
    return result;
  }
}
