/**
 * A player's peer connection: one audio and one video sender fed by a publisher. Video comes
 * from one simulcast layer at a time, chosen for this player, rewritten into one continuous
 * stream (VideoRewriter). What was sent is remembered so NACKs are answered with the very bytes
 * the player missed, as RTX when negotiated.
 */
import {
  GenericNack,
  RTCRtpHeaderExtensionParameters,
  RtcpTransportLayerFeedback,
  TransportWideCC,
  type RtcpPacket,
  type RtpPacket,
  type RTCRtpSender,
} from 'werift';
import { SIMULCAST_LAYER_EXTENSION_URI } from '@parley/protocol';
import { DownlinkAllocator, type PacketKind } from './downlinkAllocator.js';
import { asksForKeyFrame } from './keyFrames.js';
import { ForwardingSender, outgoingPacket, type OutgoingPacket } from './forwardingSender.js';
import { twccResults } from './twcc.js';
import { TRANSPORT_CC_URI } from './uplinkFeedback.js';
import { ALL_TEMPORAL_LAYERS, VideoRewriter } from './videoRewriter.js';
import { WeriftPeer, type HeaderExtensions, type PeerOptions } from './weriftPeer.js';
import type { VideoLayer } from './videoLayer.js';
import type { Kind, WeriftPublisher } from './weriftPublisher.js';
import type { MediaSubscriber, PlayVideo } from './types.js';

const SMALL = 1;
const BIG = 2;

/** Video packets remembered for NACKs, by the player's sequence number modulo this. */
const SENT_HISTORY = 1024;
/**
 * A packet is resent at most this often and this many times: players repeat a NACK until the
 * copy arrives (werift every 5 ms), and a repeat within the interval is for the copy on its way.
 */
const RESEND_INTERVAL_MS = 10;
const MAX_RESENDS = 10;
/** Padding copies only packets this recent, so that a player that gets one still has a use for its slot in the jitter buffer. */
const PADDING_SOURCE_PACKETS = 64;
/** RTP header, extensions and RTX's original sequence number, as counted against the retransmission budget. */
const RTX_OVERHEAD_BYTES = 32;

/** Header extensions a player may get: the transport-wide sequence number and the simulcast layer. */
const subscribeHeaderExtensions = (): HeaderExtensions => ({
  audio: [new RTCRtpHeaderExtensionParameters({ uri: TRANSPORT_CC_URI })],
  video: [
    new RTCRtpHeaderExtensionParameters({ uri: TRANSPORT_CC_URI }),
    new RTCRtpHeaderExtensionParameters({ uri: SIMULCAST_LAYER_EXTENSION_URI }),
  ],
});

/** One video packet as the player got it. */
class SentPacket {
  source: RtpPacket | undefined;
  sequenceNumber = -1;
  timestamp = 0;
  marker = false;
  layer = 0;
  /** The rewritten descriptor that replaced the source payload's first `replaced` bytes. */
  readonly prefix = Buffer.alloc(32);
  prefixLength = 0;
  replaced = 0;
  sentAtMs = 0;
  resends = 0;
}

/**
 * The layer a player gets: forced by its VideoStreamType, else the smallest layer that covers
 * its view (a 160-px tile never gets 720p), else the largest. Fitted into the view, a layer
 * covers it when it fills the view's width or its height without being scaled up.
 */
export function chooseLayer(video: PlayVideo, layers: readonly Pick<VideoLayer, 'width' | 'height'>[]): number {
  const top = layers.length - 1;
  if (video.type === SMALL) return 0;
  if (video.type === BIG || (video.viewWidth === 0 && video.viewHeight === 0)) return top;
  const largest = layers[top]!;
  for (let i = 0; i < top; i++) {
    // A layer not seen yet is taken to be the largest halved per side for each step down.
    const scale = 2 ** (top - i);
    const { width, height } = layers[i]!.width > 0 ? layers[i]! : { width: largest.width / scale, height: largest.height / scale };
    if (width >= video.viewWidth || height >= video.viewHeight) return i;
  }
  return top;
}

export class WeriftSubscriber extends WeriftPeer implements MediaSubscriber {
  private readonly senders: Partial<Record<Kind, RTCRtpSender>> = {};
  private readonly forwarders: Partial<Record<Kind, ForwardingSender>> = {};
  private readonly rewriter: VideoRewriter;
  private readonly sent = Array.from({ length: SENT_HISTORY }, () => new SentPacket());
  private readonly out: OutgoingPacket = outgoingPacket();
  /** Negotiated extension ids, 0 when not negotiated. */
  private readonly extensionIds: Record<Kind, { transportCc: number; layer: number }> = {
    audio: { transportCc: 0, layer: 0 },
    video: { transportCc: 0, layer: 0 },
  };
  private transportSequenceNumber = 0;
  private video: PlayVideo;
  /** With transport-cc negotiated: the player's downlink estimate and the layer it allows. */
  private allocator: DownlinkAllocator | undefined;
  /** Where the next padding copy is taken from, counting back from the newest packet sent. */
  private paddingCursor = 0;
  /** The layer this player's choice, view and link call for, whether or not the publisher sends it now. */
  private wantedLayer: number;

  static async create(options: PeerOptions, offer: string, publisher: WeriftPublisher, video?: PlayVideo): Promise<WeriftSubscriber> {
    const subscriber = new WeriftSubscriber(options, publisher, video);
    await subscriber.negotiate(offer, (t) => {
      t.setDirection('sendonly');
      const kind = t.kind as Kind;
      subscriber.senders[kind] = t.sender;
      subscriber.forwarders[kind] = new ForwardingSender(t.sender);
    });
    for (const t of subscriber.pc.getTransceivers()) {
      const id = (uri: string): number => t.headerExtensions.find((e) => e.uri === uri)?.id ?? 0;
      subscriber.extensionIds[t.kind as Kind] = { transportCc: id(TRANSPORT_CC_URI), layer: id(SIMULCAST_LAYER_EXTENSION_URI) };
    }
    if (subscriber.extensionIds.video.transportCc) {
      subscriber.allocator = new DownlinkAllocator({ sendPadding: (bytes) => subscriber.sendPadding(bytes) });
    }
    subscriber.listen();
    subscriber.observer.once('connected', () => subscriber.requestKeyFrame());
    return subscriber;
  }

  private constructor(
    options: PeerOptions,
    private readonly publisher: WeriftPublisher,
    video: PlayVideo = { type: 0, viewWidth: 0, viewHeight: 0 },
  ) {
    super(options, publisher.subscriberCodecs(), subscribeHeaderExtensions());
    this.video = video;
    this.wantedLayer = chooseLayer(video, publisher.layers);
    this.rewriter = new VideoRewriter(publisher.usableLayerNear(this.wantedLayer));
    this.stats.subscribers++;
  }

  private listen(): void {
    const video = this.pc.getTransceivers().find((t) => t.kind === 'video');
    if (!video) return;
    const ssrc = video.sender.ssrc;
    // Read at the transport: werift routes feedback by SSRC, which a player need not use
    // consistently (transport-cc names any media SSRC; werift players announce SSRCs of their own).
    video.sender.dtlsTransport.onRtcp.subscribe((rtcp: RtcpPacket) => {
      if (asksForKeyFrame(rtcp, ssrc)) {
        this.stats.keyFrameRequestsReceived++;
        this.requestKeyFrame();
      } else if (rtcp instanceof RtcpTransportLayerFeedback) {
        const { feedback } = rtcp;
        if (feedback instanceof GenericNack && feedback.mediaSourceSsrc === ssrc) {
          this.stats.nacksReceived++;
          this.resend(feedback.lost);
        } else if (feedback instanceof TransportWideCC && this.allocator) {
          const results = twccResults(feedback);
          if (!results) return;
          this.allocator.onFeedback(results, performance.now());
          this.retarget();
        }
      }
    });
  }

  setVideo(video: PlayVideo): void {
    this.video = video;
    this.retarget();
  }

  /** The publisher learned a layer's size, or a layer started or stopped flowing. */
  layersChanged(): void {
    this.retarget();
  }

  /**
   * The layer (and temporal layers) the player is to get: its choice, capped in automatic mode by
   * its view and its link, and of those the nearest one the publisher sends.
   */
  private retarget(): void {
    const { layers } = this.publisher;
    const wanted = chooseLayer(this.video, layers);
    const { spatial, temporal } =
      this.allocator && this.video.type === 0
        ? this.allocator.allocate(wanted, this.wantedLayer, layers, performance.now())
        : { spatial: wanted, temporal: ALL_TEMPORAL_LAYERS };
    this.rewriter.setMaxTemporalLayer(temporal);
    const target = this.publisher.usableLayerNear(spatial, this.rewriter.targetLayer);
    const wantedChanged = spatial !== this.wantedLayer;
    this.wantedLayer = spatial;
    if (target !== this.rewriter.targetLayer) {
      // Below what the view calls for, it is the link that cannot carry more.
      this.rewriter.setTargetLayer(target, spatial < wanted);
      this.requestKeyFrame();
    } else if (!wantedChanged) {
      return;
    }
    this.publisher.layersInUseChanged();
  }

  /** The layers this player uses, a bit per layer: the one it gets, the one it is moving to, and the one it wants. */
  layersInUse(): number {
    return (1 << this.wantedLayer) | this.layersForwarded();
  }

  /** The layers this player gets or waits for a keyframe of, a bit per layer. */
  layersForwarded(): number {
    const current = this.rewriter.currentLayer;
    return (1 << this.rewriter.targetLayer) | (current === undefined ? 0 : 1 << current);
  }

  /** Asks the publisher for a keyframe of the layer this player waits for, or gets. */
  private requestKeyFrame(): void {
    const layer = this.rewriter.needsKeyFrame() ?? this.rewriter.currentLayer;
    if (layer !== undefined) this.publisher.requestKeyFrame(layer);
  }

  private nextTransportSequenceNumber(kind: Kind): number {
    if (!this.extensionIds[kind].transportCc) return 0;
    this.transportSequenceNumber = (this.transportSequenceNumber + 1) & 0xffff;
    return this.transportSequenceNumber;
  }

  sendAudio(packet: RtpPacket, sentAt: bigint, nowMs: number): void {
    const forwarder = this.forwarders.audio;
    if (!this.connected || !forwarder?.ready) return;
    const { header } = packet;
    const out = this.header(header.marker, forwarder.payloadType!, forwarder.ssrc, header.sequenceNumber, header.timestamp);
    out.prefixLength = out.replaced = 0;
    this.setExtensions('audio', 0);
    this.onSent('audio', forwarder.send(out, packet, sentAt, true), nowMs);
  }

  sendVideo(layer: number, packet: RtpPacket, sentAt: bigint, nowMs: number): void {
    const forwarder = this.forwarders.video;
    if (!this.connected || !forwarder?.ready) return;
    const rewritten = this.rewriter.rewrite(layer, packet.header, packet.payload, this.publisher.videoCodec, nowMs);
    if (!rewritten) {
      if (this.rewriter.needsKeyFrame() === layer) this.publisher.requestKeyFrame(layer);
      return;
    }
    // The layer left behind may no longer be used by anyone.
    if (rewritten.switched) this.publisher.layersInUseChanged();
    const { marker, sequenceNumber, timestamp } = rewritten;
    const out = this.header(marker, forwarder.payloadType!, forwarder.ssrc, sequenceNumber, timestamp);
    out.prefixLength = out.replaced = rewritten.descriptorLength ? this.rewriter.rewriteDescriptor(packet.payload, out.prefix) : 0;
    this.setExtensions('video', layer);
    const slot = this.sent[sequenceNumber % SENT_HISTORY]!;
    slot.source = packet;
    slot.sequenceNumber = sequenceNumber;
    slot.timestamp = timestamp;
    slot.marker = marker;
    slot.layer = layer;
    slot.prefixLength = slot.replaced = out.prefixLength;
    if (out.prefixLength > 0) out.prefix.copy(slot.prefix, 0, 0, out.prefixLength);
    slot.sentAtMs = nowMs;
    slot.resends = 0;
    this.onSent('video', forwarder.send(out, packet, sentAt, true), nowMs);
  }

  /** The reused outgoing packet with these header fields. */
  private header(marker: boolean, payloadType: number, ssrc: number, sequenceNumber: number, timestamp: number): OutgoingPacket {
    const { out } = this;
    out.marker = marker;
    out.payloadType = payloadType;
    out.ssrc = ssrc;
    out.sequenceNumber = sequenceNumber;
    out.timestamp = timestamp;
    return out;
  }

  private setExtensions(kind: Kind, layer: number): void {
    const { extensions } = this.out;
    const ids = this.extensionIds[kind];
    extensions.transportCcId = ids.transportCc;
    extensions.transportSequenceNumber = this.nextTransportSequenceNumber(kind);
    extensions.layerId = ids.layer;
    extensions.layer = layer;
  }

  /** Counts a packet that went out (`bytes` 0: it could not) and tells the allocator. */
  private onSent(kind: PacketKind, bytes: number, nowMs: number): void {
    if (!bytes) return;
    if (kind === 'audio' || kind === 'video') {
      this.stats.packetsSent++;
      this.stats.bytesSent += bytes;
    } else if (kind === 'retransmission') {
      this.stats.retransmissionsSent++;
    }
    const { extensions } = this.out;
    if (extensions.transportCcId) this.allocator?.onPacketSent(kind, extensions.transportSequenceNumber, bytes, nowMs);
  }

  /**
   * Sends again what the player lost (as RTX when negotiated), each packet at most once per
   * interval and a few times in all, and with an estimate, within the retransmission budget and
   * twice on a very lossy link.
   */
  private resend(lost: number[]): void {
    const now = performance.now();
    for (const sequenceNumber of lost) {
      const slot = this.sent[sequenceNumber % SENT_HISTORY]!;
      if (slot.sequenceNumber !== sequenceNumber || !slot.source) continue;
      if (slot.resends >= MAX_RESENDS || (slot.resends > 0 && now - slot.sentAtMs < RESEND_INTERVAL_MS)) continue;
      const copies = this.allocator?.retransmissionCopies() ?? 1;
      if (this.allocator && !this.allocator.allowRetransmission(copies * (slot.source.payload.length + RTX_OVERHEAD_BYTES), now)) continue;
      slot.resends++;
      slot.sentAtMs = now;
      for (let i = 0; i < copies; i++) this.sendCopy(slot, 'retransmission', now);
    }
  }

  /** Pads the stream for a probe with RTX copies of recent packets: at least `bytes`, unless there is nothing to copy. */
  private sendPadding(bytes: number): number {
    const newest = this.rewriter.lastSequenceNumber;
    if (newest === undefined || !this.forwarders.video?.ready) return 0;
    const now = performance.now();
    let sent = 0;
    for (let tried = 0; sent < bytes && tried < PADDING_SOURCE_PACKETS; tried++) {
      this.paddingCursor = (this.paddingCursor + 1) % PADDING_SOURCE_PACKETS;
      const sequenceNumber = (newest - this.paddingCursor + 0x10000) & 0xffff;
      const slot = this.sent[sequenceNumber % SENT_HISTORY]!;
      if (slot.sequenceNumber !== sequenceNumber || !slot.source) continue;
      sent += this.sendCopy(slot, 'padding', now);
    }
    return sent;
  }

  /** Sends a copy of a packet the player got: as RTX when negotiated, else as it was (padding needs RTX). Returns the bytes sent. */
  private sendCopy(slot: SentPacket, kind: 'retransmission' | 'padding', nowMs: number): number {
    const forwarder = this.forwarders.video;
    if (!forwarder?.ready || !slot.source) return 0;
    const rtx = forwarder.nextRtx();
    if (!rtx && kind === 'padding') return 0;
    // RTX (RFC 4588) carries the original sequence number, then the payload as first sent.
    const out = rtx
      ? this.header(slot.marker, rtx.payloadType, rtx.ssrc, rtx.sequenceNumber, slot.timestamp)
      : this.header(slot.marker, forwarder.payloadType!, forwarder.ssrc, slot.sequenceNumber, slot.timestamp);
    if (rtx) out.prefix.writeUInt16BE(slot.sequenceNumber, 0);
    const osnBytes = rtx ? 2 : 0;
    slot.prefix.copy(out.prefix, osnBytes, 0, slot.prefixLength);
    out.prefixLength = osnBytes + slot.prefixLength;
    out.replaced = slot.replaced;
    this.setExtensions('video', slot.layer);
    const bytes = forwarder.send(out, slot.source, 0n, false);
    this.onSent(kind, bytes, nowMs);
    return bytes;
  }

  protected onClose(): void {
    this.stats.subscribers--;
    this.allocator?.close();
    for (const sender of Object.values(this.senders)) sender.stop();
  }
}
