/**
 * A simulcast layer (or the only video stream) as a publisher's peer connection receives it:
 * whether it flows, whether its encoder is starved, its size and rates, and its keyframe requests.
 */
import { RateMeter } from './rateMeter.js';

/** Keyframe requests closer together than this are merged: one keyframe serves every player. */
const KEYFRAME_REQUEST_INTERVAL_MS = 100;
/**
 * After a keyframe request, others wait until a keyframe begins to arrive, or this long at least:
 * on a slow or lossy uplink a keyframe takes a round trip and more to begin arriving, and every
 * request meanwhile would make the encoder start yet another, each a burst that starves the frames
 * after it (a keyframe storm, as livekit#2146 saw).
 */
export const KEYFRAME_RETRY_MS = 500;

/** VP8 TIDs are 0..3; the rates of 2 and 3 are counted together (libwebrtc sends at most three temporal layers). */
const TEMPORAL_LAYERS = 3;
/**
 * A layer that sent nothing for this long is paused (or gone): its players move to another, and
 * its rate is what it last had while it flowed. A publisher short of uplink switches layers off
 * (libwebrtc does, by its estimate), and a player on such a layer sees nothing until this passes;
 * even a 7.5 frames/s base temporal layer sends every 133 ms.
 */
const PAUSED_AFTER_MS = 500;
/** A packet at most this far behind the newest is a repair (or reordered), a larger jump a new sequence. */
const REPAIR_WINDOW = 1000;
/**
 * A layer sending under this share of the frame rate of the flowing layer below it is starved:
 * the publisher's uplink leaves its encoder too few bits, so it drops frames, and its players are
 * better served by the layer below. It is fed again once back at the higher share.
 */
const STARVED_FRAME_SHARE = 0.5;
const FED_FRAME_SHARE = 0.8;
/**
 * A fed layer is judged starved only once under STARVED_FRAME_SHARE this long: an encoder that
 * skips frames for a moment (a keyframe of another layer, a busy CPU) would otherwise move its
 * players away and back, a keyframe each way, for a dip that is over before the first one.
 */
const STARVING_FOR_MS = 1000;
/**
 * Under this share of the layer below, a layer is starved at once. Measured over a second, it is
 * no skip for a moment: the layer (nearly) stopped while the one below went on, as when the
 * publisher's uplink collapses and its encoder drops the layer but its pacer still drains the
 * layer's queued packets for seconds; each second waited is frozen.
 */
const DEEPLY_STARVED_FRAME_SHARE = 0.25;
/** A layer that starves (or stops) unasked stays starved at least this long: each switch costs a keyframe on a short uplink. */
const STARVED_HOLD_MS = 5000;

/** One simulcast layer (or the only video stream) as received. */
export class VideoLayer {
  ssrc: number | undefined;
  /** From its last keyframe (VP8) or sequence parameter set (H264); 0 until one was seen. */
  width = 0;
  height = 0;
  /** How many VP8 temporal layers it has been seen to send (1 without TIDs). */
  temporalLayers = 1;
  /** The bitrate the publisher was last asked to keep it under, 0 for none (layerCaps). */
  capBps = 0;
  private lastKeyFrameRequest = 0;
  private keyFrameTimer: NodeJS.Timeout | undefined;
  /** Until when a keyframe request is outstanding (its keyframe has not begun to arrive): others wait. */
  private keyFrameAwaitedUntil = 0;
  /** Received bitrate per temporal layer (a stream without TIDs counts as TID 0). */
  private readonly rates = Array.from({ length: TEMPORAL_LAYERS }, () => new RateMeter());
  private readonly lastRatesBps = new Float64Array(TEMPORAL_LAYERS);
  private firstPacketMs = -1;
  private lastPacketMs = -Infinity;
  private highestSequence = 0;
  private readonly frames = new RateMeter();
  private lastTimestamp = -1;
  /** See STARVED_FRAME_SHARE; a layer that does not flow is starved until it shows otherwise. */
  private starved = true;
  private starvedUntilMs = 0;
  /** Since when a fed layer has been under STARVED_FRAME_SHARE (Infinity: it is not). */
  private starvingSinceMs = Infinity;

  constructor(
    readonly index: number,
    readonly rid: string | undefined,
    /** The spatial layer under it in the same stream (VP9 SVC): its players get that one's frames too. */
    private readonly includes?: VideoLayer,
  ) {}

  /**
   * Whether it is being received as of `atMs` (see judgeLayers for which time that is): a
   * publisher's encoder switches layers off when its uplink is short, or when asked to.
   */
  flowing(atMs: number): boolean {
    return atMs - this.lastPacketMs <= PAUSED_AFTER_MS;
  }

  /** When its sequence last advanced (-Infinity before its first packet). */
  get lastPacketAtMs(): number {
    return this.lastPacketMs;
  }

  /**
   * A packet received. Only those that advance the sequence count: a layer the publisher stopped
   * still brings in repairs of what was lost for a while, and they say nothing of its flow.
   */
  onPacket(bytes: number, temporalLayer: number, sequenceNumber: number, timestamp: number, nowMs: number): void {
    const behind = (this.highestSequence - sequenceNumber) & 0xffff;
    if (behind < REPAIR_WINDOW && this.lastPacketMs > -Infinity) return;
    this.highestSequence = sequenceNumber;
    if (timestamp !== this.lastTimestamp) {
      this.lastTimestamp = timestamp;
      this.frames.add(1, nowMs);
    }
    const tid = Math.min(Math.max(temporalLayer, 0), TEMPORAL_LAYERS - 1);
    if (tid >= this.temporalLayers) this.temporalLayers = tid + 1;
    if (nowMs - this.lastPacketMs > PAUSED_AFTER_MS) this.firstPacketMs = nowMs;
    this.lastPacketMs = nowMs;
    this.rates[tid]!.add(bytes, nowMs);
  }

  /** Whether players may be moved to it: it flows and, above the smallest layer, is not starved. */
  usable(atMs: number): boolean {
    return this.flowing(atMs) && !(this.index > 0 && this.starved);
  }

  /**
   * Judges whether it is starved, by its frame rate against that of `below`, the highest flowing
   * layer under it. `active`: the publisher was asked to send it (a layer paused on request is
   * not held starved when it resumes).
   */
  updateStarved(below: VideoLayer | undefined, active: boolean, atMs: number): void {
    const wasStarved = this.starved;
    if (!this.flowing(atMs)) {
      this.starved = true;
    } else if (below) {
      const share = this.frames.perSecond(atMs) / Math.max(below.frames.perSecond(atMs), 1);
      if (wasStarved) {
        this.starved = share < FED_FRAME_SHARE || atMs < this.starvedUntilMs;
      } else {
        this.starvingSinceMs = share < STARVED_FRAME_SHARE ? Math.min(this.starvingSinceMs, atMs) : Infinity;
        this.starved = share < DEEPLY_STARVED_FRAME_SHARE || atMs - this.starvingSinceMs >= STARVING_FOR_MS;
      }
    } else {
      // Nothing flows below: this is what players can get, unless it starved within the hold. On a
      // collapsing uplink the layer below stalls for moments too, and players on their way down
      // would turn back to a layer that is dying.
      this.starved = wasStarved && atMs < this.starvedUntilMs;
    }
    if (this.starved) this.starvingSinceMs = Infinity;
    if (this.starved && !wasStarved && active) this.starvedUntilMs = atMs + STARVED_HOLD_MS;
  }

  /**
   * Bits per second of this layer with its temporal layers up to `maxTemporal` (and of the spatial
   * layers it includes); while it is paused, what it had when it last flowed for a full second (0
   * if it never did).
   */
  bitrateBps(nowMs: number, maxTemporal = TEMPORAL_LAYERS - 1): number {
    if (this.flowing(nowMs) && nowMs - this.firstPacketMs >= 1000) {
      for (let tid = 0; tid < TEMPORAL_LAYERS; tid++) this.lastRatesBps[tid] = this.rates[tid]!.bps(nowMs);
    }
    let bps = 0;
    for (let tid = 0; tid <= Math.min(maxTemporal, TEMPORAL_LAYERS - 1); tid++) bps += this.lastRatesBps[tid]!;
    return bps + (this.includes?.bitrateBps(nowMs, maxTemporal) ?? 0);
  }

  /**
   * Calls `send` now, or at the end of the merge interval if a request went out recently; nothing
   * while a request is outstanding: its keyframe has not begun to arrive, and `retryAfterMs` (a
   * few round trips) has not passed since it went out.
   */
  requestKeyFrame(send: (ssrc: number) => void, retryAfterMs = KEYFRAME_RETRY_MS): void {
    if (this.keyFrameTimer || Date.now() < this.keyFrameAwaitedUntil) return;
    const wait = this.lastKeyFrameRequest + KEYFRAME_REQUEST_INTERVAL_MS - Date.now();
    if (wait > 0) {
      this.keyFrameTimer = setTimeout(() => {
        this.keyFrameTimer = undefined;
        this.requestKeyFrame(send, retryAfterMs);
      }, wait);
      return;
    }
    if (this.ssrc === undefined) return;
    this.lastKeyFrameRequest = Date.now();
    this.keyFrameAwaitedUntil = this.lastKeyFrameRequest + retryAfterMs;
    send(this.ssrc);
  }

  /** Whether a keyframe request is outstanding. */
  get awaitingKeyFrame(): boolean {
    return this.keyFrameAwaitedUntil > 0;
  }

  /** A keyframe began to arrive: the next request may go at once. */
  keyFrameArrived(): void {
    this.keyFrameAwaitedUntil = 0;
  }

  close(): void {
    clearTimeout(this.keyFrameTimer);
  }
}

/**
 * Judges every layer of one publisher (smallest first): whether each flows and whether each is
 * starved, `active` a bit per layer the publisher was asked to send. Returns the usable layers, a
 * bit per layer.
 *
 * Layers are judged as of their newest packet, not of now: when every layer falls silent at once,
 * the publisher's uplink (or this process: timers run before the packets that waited are read)
 * stalled, and no encoder switched a layer off. Judged as of now, such a stall would move every
 * player to whichever layer came back first and hold the others starved for STARVED_HOLD_MS.
 */
export function judgeLayers(layers: readonly VideoLayer[], active: number): number {
  const atMs = Math.max(...layers.map((layer) => layer.lastPacketAtMs));
  let below: VideoLayer | undefined;
  let usable = 0;
  for (const layer of layers) {
    layer.updateStarved(below, (active & (1 << layer.index)) !== 0, atMs);
    if (layer.flowing(atMs)) below = layer;
    if (layer.usable(atMs)) usable |= 1 << layer.index;
  }
  return usable;
}
