/**
 * One published stream's packets handed on to its sinks: the subscribers of its players here, and
 * the relays that carry it to other nodes. It keeps what every sink needs of the stream: its
 * layers (which flow, their sizes and rates), its audio as players take it (RED repairs applied),
 * its speech level. Where the packets come from (a client's peer connection, a relay from another
 * node) is its owner's business.
 */
import type { RtpPacket } from 'werift';
import { h264FrameSize, inspectH264, parseVp8, parseVp9, Vp8Descriptor, Vp9Descriptor } from '../core/codecs.js';
import { SpeechLevel } from '../core/speechLevel.js';
import type { VideoLayer } from '../core/videoLayer.js';
import type { LayerUser, VideoBudget } from '../core/layerCaps.js';
import type { MediaStats, SenderClock } from '../core/types.js';
import type { VideoCodec } from '../core/videoRewriter.js';
import type { AudioPacket, AudioReceiver } from './audioReceiver.js';
import { NTP_EPOCH_OFFSET_MS, ntpNow } from '@parley/protocol/rtp';

/** Where a stream's packets go: a player's subscriber, or a relay to another node. */
export interface LayerSink {
  readonly observer: { once(event: 'closed', listener: () => void): unknown };
  sendAudio(packet: AudioPacket, sentAt: bigint, nowMs: number): void;
  sendVideo(layer: number, packet: RtpPacket, sentAt: bigint, nowMs: number): void;
  /** The layers it uses (gets, moves to or wants), a bit per layer: the others may pause. */
  layersInUse(): number;
  /** The layers it gets or waits for a keyframe of, a bit per layer: their losses are worth repairing. */
  layersForwarded(): number;
  /** The stream learned a layer's size, or a layer started or stopped being usable. */
  layersChanged(): void;
  /** What its link carries for video and the layer it wants, undefined if it takes layers as they come. */
  videoBudget(): VideoBudget | undefined;
  close(): void;
}

export class LayerFanout {
  private readonly sinks = new Set<LayerSink>();
  private readonly vp8 = new Vp8Descriptor();
  private readonly vp9 = new Vp9Descriptor();
  private readonly speech = new SpeechLevel();
  /** Which layers players may be moved to, a bit per layer. */
  private usable = 0;
  /** The latest sender report of each of its RTP streams, by SSRC. */
  private readonly senderClocks = new Map<number, SenderClock>();

  constructor(
    /** Smallest first; one layer without simulcast, a VP9 stream's spatial layers with SVC. */
    readonly layers: readonly VideoLayer[],
    private readonly stats: MediaStats,
    /** Read per packet; fixed once negotiated. */
    private readonly videoCodec: () => VideoCodec,
    /** A sink came or went, or changed the layers it uses. */
    private readonly layersInUseChanged: () => void,
  ) {}

  get size(): number {
    return this.sinks.size;
  }

  add(sink: LayerSink): void {
    this.sinks.add(sink);
    sink.observer.once('closed', () => {
      this.sinks.delete(sink);
      this.layersInUseChanged();
    });
    this.layersInUseChanged();
  }

  /** The layers some sink uses, a bit per layer; the smallest always counts. */
  usedLayers(): number {
    let used = 1;
    for (const sink of this.sinks) used |= sink.layersInUse();
    return used;
  }

  /** Each sink's budget and the layers it uses. */
  *users(): Iterable<LayerUser> {
    for (const sink of this.sinks) yield { budget: sink.videoBudget(), inUse: sink.layersInUse() };
  }

  /** Whether some sink gets `layer`, or waits for its keyframe. */
  forwarded(layer: number): boolean {
    for (const sink of this.sinks) if (sink.layersForwarded() & (1 << layer)) return true;
    return false;
  }

  /**
   * Whether losses of `layer` are worth asking the publisher to repair: some sink gets it or waits
   * for its keyframe, and, above the smallest, it is usable. A starved layer's players are moving to
   * the one below, and the publisher's pacer sends repairs before any new packet: on a collapsing
   * uplink, repairs of the layer they leave would hold back the keyframe they wait for.
   */
  worthRepairing(layer: number): boolean {
    return this.forwarded(layer) && (layer === 0 || (this.usable & (1 << layer)) !== 0);
  }

  /** Sets which layers are usable; sinks are told when that changed. */
  setUsable(usable: number): void {
    if (usable === this.usable) return;
    this.usable = usable;
    this.tellLayersChanged();
  }

  get usableLayers(): number {
    return this.usable;
  }

  /**
   * The highest usable layer at most `layer`, else the lowest usable above it, else `fallback`: a
   * gap in the only layer there is (an encoder dropping frames) is no reason to wait for a
   * keyframe of another.
   */
  usableLayerNear(layer: number, fallback = layer): number {
    const usable = (i: number): boolean => (this.usable & (1 << i)) !== 0;
    for (let i = layer; i >= 0; i--) if (usable(i)) return i;
    for (let i = layer + 1; i < this.layers.length; i++) if (usable(i)) return i;
    return fallback;
  }

  /** A sender report of one of its RTP streams came (NTP time as RTCP carries it). */
  senderReport(ssrc: number, ntpTimestamp: bigint, rtpTimestamp: number): void {
    const seconds = Number(ntpTimestamp >> 32n);
    const fraction = Number(ntpTimestamp & 0xffffffffn) / 2 ** 32;
    this.senderClocks.set(ssrc, { unixMs: (seconds + fraction) * 1000 - NTP_EPOCH_OFFSET_MS, rtpTimestamp });
  }

  senderClockOf(ssrc: number): SenderClock | undefined {
    return this.senderClocks.get(ssrc);
  }

  /** The mean sound level (0–100) its audio carried since the previous call. */
  speechLevel(): number {
    return this.speech.read();
  }

  /** Counts a received packet; returns its size. */
  private count(rtp: RtpPacket): number {
    const bytes = rtp.header.serializeSize + rtp.payload.length + rtp.header.paddingSize;
    this.stats.packetsReceived++;
    this.stats.bytesReceived += bytes;
    return bytes;
  }

  /**
   * Hands an audio packet, and what its redundancy recovers, to the sinks; returns them (for the
   * owner's loss accounting), or undefined when it is malformed.
   */
  forwardAudio(audio: AudioReceiver, rtp: RtpPacket, nowMs: number): AudioPacket[] | undefined {
    this.count(rtp);
    const packets = audio.receive(rtp);
    if (!packets) return undefined;
    const sentAt = ntpNow();
    for (const packet of packets) {
      if (packet.rtp !== rtp) this.stats.audioFramesRecovered++;
      this.speech.add(packet.level);
      for (const sink of this.sinks) sink.sendAudio(packet, sentAt, nowMs);
    }
    return packets;
  }

  /** `layer`: the simulcast layer, or for VP9 the stream (each packet counts for its spatial layer). */
  forwardVideo(layer: VideoLayer, rtp: RtpPacket, nowMs: number): void {
    const codec = this.videoCodec();
    if (codec === 'vp9') {
      this.forwardSpatialLayer(rtp, nowMs);
      return;
    }
    const bytes = this.count(rtp);
    layer.ssrc = rtp.header.ssrc;
    const vp8 = codec === 'vp8' && parseVp8(rtp.payload, this.vp8) ? this.vp8 : undefined;
    layer.onPacket(bytes, vp8?.temporalLayer ?? 0, rtp.header.sequenceNumber, rtp.header.timestamp, nowMs);
    if (layer.awaitingKeyFrame && (vp8 ? vp8.keyFrame : codec === 'h264' && inspectH264(rtp.payload) === 'keyFrameStart')) {
      layer.keyFrameArrived();
    }
    // Sizes from VP8 keyframes and H264 sequence parameter sets: views cap layers by them.
    const size = vp8 ? (vp8.width > 0 ? vp8 : undefined) : codec === 'h264' ? h264FrameSize(rtp.payload) : undefined;
    if (size && size.width !== layer.width) {
      layer.width = size.width;
      layer.height = size.height;
      this.tellLayersChanged();
    }
    this.toSinks(layer.index, rtp, nowMs);
  }

  /**
   * A packet of a VP9 stream, counted for its spatial layer (a malformed one for the smallest: its
   * players' rewriters drop it). Sizes come from the scalability structure of keyframes.
   */
  private forwardSpatialLayer(rtp: RtpPacket, nowMs: number): void {
    const bytes = this.count(rtp);
    const vp9 = this.vp9;
    const valid = parseVp9(rtp.payload, vp9);
    const layer = this.layers[valid ? Math.min(vp9.spatialLayer, this.layers.length - 1) : 0]!;
    layer.ssrc = rtp.header.ssrc;
    layer.onPacket(bytes, valid ? vp9.temporalLayer : 0, rtp.header.sequenceNumber, rtp.header.timestamp, nowMs);
    // A layer frame that references no earlier picture: a keyframe's, or where the layer can be taken up.
    if (layer.awaitingKeyFrame && valid && vp9.startOfFrame && !vp9.interPicture) layer.keyFrameArrived();
    let resized = false;
    for (let i = 0; i < Math.min(vp9.spatialLayers, this.layers.length); i++) {
      const sized = this.layers[i]!;
      if (vp9.widths[i]! > 0 && vp9.widths[i] !== sized.width) {
        sized.width = vp9.widths[i]!;
        sized.height = vp9.heights[i]!;
        resized = true;
      }
    }
    if (resized) this.tellLayersChanged();
    this.toSinks(layer.index, rtp, nowMs);
  }

  private toSinks(layer: number, rtp: RtpPacket, nowMs: number): void {
    if (this.sinks.size === 0) return;
    const sentAt = ntpNow();
    for (const sink of this.sinks) sink.sendVideo(layer, rtp, sentAt, nowMs);
  }

  tellLayersChanged(): void {
    for (const sink of this.sinks) sink.layersChanged();
  }

  close(): void {
    for (const layer of this.layers) layer.close();
    for (const sink of [...this.sinks]) sink.close();
  }
}
