/**
 * A stream published on another node, as the players of this node see it: a publisher whose
 * packets come over the node-to-node relay. Its players' subscribers are fed as from a local
 * publisher (layers, NACKs answered from what each was sent, keyframes, quality); what they need
 * of the stream (which layers, keyframes, repairs of relay losses) goes back to the publisher's
 * node. One per publication and node, whatever the number of players; it ends a few seconds after
 * its last player left, when the publisher's node says the publication ended, or when that node
 * falls silent.
 */
import { EventEmitter } from 'node:events';
import {
  GenericNack,
  PictureLossIndication,
  RTCRtpCodecParameters,
  RtcpPayloadSpecificFeedback,
  RtcpTransportLayerFeedback,
  RtpPacket,
} from 'werift';
import { NackGenerator } from '@parley/protocol/rtp';
import { VideoLayer } from '../core/videoLayer.js';
import type { VideoCodec } from '../core/videoRewriter.js';
import type {
  LinkQuality,
  MediaPublisher,
  MediaStats,
  MediaSubscriber,
  MediaTap,
  PlayVideo,
  PublisherEvents,
  RelayStream,
} from '../core/types.js';
import { AudioReceiver } from '../werift/audioReceiver.js';
import { LayerFanout } from '../werift/layerFanout.js';
import type { LayerSource } from '../werift/layerSource.js';
import type { PeerOptions } from '../werift/weriftPeer.js';
import { WeriftSubscriber } from '../werift/weriftSubscriber.js';
import { StreamTap } from '../werift/streamTap.js';
import type { DescriptionMessage, OpenMessage, RelayCodec, RelayedLayer } from './relayProtocol.js';

/** The relay's SSRC used as the sender of its feedback. */
const FEEDBACK_SSRC = 1;

/** A layer as the publisher's node measures it: its rates are those it reports, whether or not the layer comes here now. */
class ReportedVideoLayer extends VideoLayer {
  private reportedBps: [number, number, number] = [0, 0, 0];

  report({ width, height, temporalLayers, bps }: RelayedLayer): void {
    if (width > 0) [this.width, this.height] = [width, height];
    this.temporalLayers = Math.max(1, Math.min(3, temporalLayers));
    this.reportedBps = bps;
  }

  override bitrateBps(_nowMs: number, maxTemporal = 2): number {
    return this.reportedBps[Math.max(0, Math.min(2, maxTemporal))] ?? 0;
  }
}

export interface RelayedPublisherOptions {
  relayID: string;
  stream: RelayStream;
  peerOptions: PeerOptions;
  stats: MediaStats;
  /** Sends an RTCP datagram, and a control message, to the publisher's node. */
  sendRtcp(datagram: Buffer): void;
  sendOpen(message: OpenMessage): void;
  /** The publisher's node is told the relay is no longer wanted. */
  unwanted(): void;
  keepaliveMs: number;
  /** The publisher's node silent this long: the relay is dead. */
  silenceMs: number;
  /** How long the relay stays without players before it ends. */
  lingerMs: number;
}

export class RelayedPublisher implements MediaPublisher, LayerSource {
  readonly observer = new EventEmitter<PublisherEvents>();
  readonly answer = '';
  readonly fanout: LayerFanout;
  readonly audioFormat: DescriptionMessage['audioFormat'];
  readonly videoCodec: VideoCodec;
  private readonly audio: AudioReceiver;
  private readonly layerBySsrc = new Map<number, ReportedVideoLayer>();
  private readonly nacks = new NackGenerator((ssrc, lost) => this.sendNack(ssrc, lost));
  private readonly codecs: Pick<DescriptionMessage, 'audioCodecs' | 'videoCodecs'>;
  private readonly keepalive: NodeJS.Timeout;
  private lingering: NodeJS.Timeout | undefined;
  private lastHeardMs = performance.now();
  private sentMasks = { used: -1, forwarded: -1 };
  private isClosed = false;

  private readonly audioSsrc: number;

  constructor(
    description: DescriptionMessage,
    private readonly options: RelayedPublisherOptions,
  ) {
    this.audioSsrc = description.audioSsrc;
    const layers = description.videoSsrcs.map((ssrc, i) => {
      const layer = new ReportedVideoLayer(i, undefined);
      layer.ssrc = ssrc;
      this.layerBySsrc.set(ssrc, layer);
      return layer;
    });
    this.fanout = new LayerFanout(
      layers,
      options.stats,
      () => this.videoCodec,
      () => this.layersInUseChanged(),
    );
    this.audioFormat = description.audioFormat;
    this.videoCodec = description.videoCodec;
    this.audio = new AudioReceiver(description.audioFormat);
    this.codecs = { audioCodecs: description.audioCodecs, videoCodecs: description.videoCodecs };
    this.described(description);
    this.keepalive = setInterval(() => this.keepAlive(), options.keepaliveMs);
    this.linger();
  }

  /** The relay's SSRCs, which its packets arrive under. */
  get ssrcs(): number[] {
    return [this.audioSsrc, ...this.layerBySsrc.keys()];
  }

  get layers(): readonly VideoLayer[] {
    return this.fanout.layers;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get connected(): boolean {
    return !this.isClosed;
  }

  /** The publisher's node answered or told of a change: the layers as it sees them. */
  described(description: DescriptionMessage): void {
    this.lastHeardMs = performance.now();
    let usable = 0;
    description.layers.forEach((reported, i) => {
      (this.fanout.layers[i] as ReportedVideoLayer | undefined)?.report(reported);
      if (reported.usable) usable |= 1 << i;
    });
    // Sizes and rates may have changed even when usability did not: the subscribers are told once.
    if (usable === this.fanout.usableLayers) this.fanout.tellLayersChanged();
    else this.fanout.setUsable(usable);
  }

  /** A packet of the relay. */
  onRtp(datagram: Buffer): void {
    if (this.isClosed) return;
    let rtp: RtpPacket;
    try {
      rtp = RtpPacket.deSerialize(datagram);
    } catch {
      return;
    }
    this.options.stats.relayPacketsReceived++;
    const now = performance.now();
    const { ssrc, sequenceNumber } = rtp.header;
    if (ssrc === this.audioSsrc) {
      const packets = this.fanout.forwardAudio(this.audio, rtp, now);
      for (const packet of packets ?? []) this.nacks.onPacket(ssrc, packet.rtp.header.sequenceNumber, now, packet.rtp === rtp);
      return;
    }
    const layer = this.layerBySsrc.get(ssrc);
    if (!layer) return;
    this.nacks.onPacket(ssrc, sequenceNumber, now);
    this.fanout.forwardVideo(layer, rtp, now);
  }

  subscriberCodecs(): { audio: RTCRtpCodecParameters[]; video: RTCRtpCodecParameters[] } {
    const make = (c: RelayCodec): RTCRtpCodecParameters => new RTCRtpCodecParameters({ ...c, rtcpFeedback: c.rtcpFeedback ?? [] });
    return { audio: this.codecs.audioCodecs.map(make), video: this.codecs.videoCodecs.map(make) };
  }

  usableLayerNear(layer: number, fallback?: number): number {
    return this.fanout.usableLayerNear(layer, fallback);
  }

  /** Tells the publisher's node at once what its players now use; a relay without players lingers, then ends. */
  layersInUseChanged(): void {
    if (this.isClosed) return;
    this.sendOpenIfChanged();
    if (this.fanout.size > 0) {
      clearTimeout(this.lingering);
      this.lingering = undefined;
    } else {
      this.linger();
    }
  }

  requestKeyFrame(layer: number): void {
    if (this.isClosed) return;
    this.fanout.layers[layer]?.requestKeyFrame((ssrc) => {
      this.options.stats.keyFrameRequestsSent++;
      const pli = new PictureLossIndication({ senderSsrc: FEEDBACK_SSRC, mediaSsrc: ssrc });
      this.options.sendRtcp(new RtcpPayloadSpecificFeedback({ feedback: pli }).serialize());
    });
  }

  private sendNack(mediaSourceSsrc: number, lost: number[]): void {
    if (this.isClosed) return;
    const nack = new GenericNack({ senderSsrc: FEEDBACK_SSRC, mediaSourceSsrc, lost });
    this.options.sendRtcp(new RtcpTransportLayerFeedback({ feedback: nack }).serialize());
  }

  private masks(): { used: number; forwarded: number } {
    let forwarded = 0;
    for (let i = 0; i < this.fanout.layers.length; i++) if (this.fanout.forwarded(i)) forwarded |= 1 << i;
    return { used: this.fanout.usedLayers(), forwarded };
  }

  private sendOpenIfChanged(): void {
    const masks = this.masks();
    if (masks.used === this.sentMasks.used && masks.forwarded === this.sentMasks.forwarded) return;
    this.sendOpen(masks);
  }

  private sendOpen(masks: { used: number; forwarded: number }): void {
    this.sentMasks = masks;
    this.options.sendOpen({ type: 'open', relayID: this.options.relayID, ...this.options.stream, ...masks });
  }

  private keepAlive(): void {
    if (performance.now() - this.lastHeardMs > this.options.silenceMs) return this.close();
    this.sendOpen(this.masks());
  }

  private linger(): void {
    this.lingering ??= setTimeout(() => {
      this.options.unwanted();
      this.close();
    }, this.options.lingerMs);
  }

  async subscribe(offer: string, video?: PlayVideo): Promise<MediaSubscriber> {
    const subscriber = await WeriftSubscriber.create(this.options.peerOptions, offer, this, video);
    if (this.isClosed) subscriber.close();
    else this.fanout.add(subscriber);
    return subscriber;
  }

  /** Without sender reports: the relay does not carry them, so a recording times this stream by arrival. */
  tap(): MediaTap {
    const video = this.codecs.videoCodecs.length > 0 ? this.videoCodec : undefined;
    const tap = new StreamTap(this, this.fanout, this.codecs.audioCodecs.length > 0, video);
    if (this.isClosed) tap.close();
    else this.fanout.add(tap);
    return tap;
  }

  speechLevel(): number {
    return this.fanout.speechLevel();
  }

  /** Its uplink is the publisher's, whose node reports it. */
  linkQuality(): LinkQuality {
    return { lossFraction: undefined, rttMs: undefined };
  }

  restartIce(): Promise<string> {
    return Promise.reject(new Error('a relayed stream has no transport of its own'));
  }

  /** Nothing to add them to: it has no transport of its own. */
  addRemoteCandidates(): void {}

  setMediaDue(): void {}

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    clearInterval(this.keepalive);
    clearTimeout(this.lingering);
    this.nacks.close();
    this.fanout.close();
    this.observer.emit('closed');
  }
}
