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
  RtpPacket,
  TransportWideCC,
  type RtcpPacket,
  type RTCRtpSender,
  type RTCRtpTransceiver,
} from 'werift';
import { AUDIO_LEVEL_URI, SIMULCAST_LAYER_EXTENSION_URI } from '@parley/protocol';
import { dtlsTransportInternals } from '@parley/protocol/rtp';
import { DownlinkAllocator, type PacketKind } from '../core/congestion/downlinkAllocator.js';
import { Pacer } from '../core/congestion/pacer.js';
import type { AudioPacket } from './audioReceiver.js';
import { asksForKeyFrame } from './keyFrames.js';
import { RedEncoder, writeRedHeader } from '../core/red.js';
import { SentHistory } from '../core/sentHistory.js';
import { ForwardingSender, outgoingPacket, type OutgoingPacket } from './forwardingSender.js';
import { twccResults } from '../core/congestion/twcc.js';
import { TRANSPORT_CC_URI } from './uplinkFeedback.js';
import { ALL_TEMPORAL_LAYERS, VideoRewriter, type StreamRewriter } from '../core/videoRewriter.js';
import { SvcRewriter } from '../core/svcRewriter.js';
import { chooseLayer } from '../core/layerChoice.js';
import { addNack, WeriftPeer, type HeaderExtensions, type PeerOptions } from './weriftPeer.js';
import type { Kind, LayerSource } from './layerSource.js';
import type { LinkQuality, MediaSubscriber, PlayMuted, PlayVideo } from '../core/types.js';
import type { VideoBudget } from '../core/layerCaps.js';

/** Packets remembered for NACKs, by the player's sequence number modulo this: about 1 s of video, 5 s of audio. */
const SENT_HISTORY = { video: 1024, audio: 256 } as const;
/**
 * A packet is resent at most this often and this many times: players repeat a NACK until the
 * copy arrives (werift every 5 ms), and a repeat within the interval is for the copy on its way.
 */
const RESEND_INTERVAL_MS = 10;
const MAX_RESENDS = 10;
/** Padding copies only packets this recent, so that a player that gets one still has a use for its slot in the jitter buffer. */
const PADDING_SOURCE_PACKETS = 64;
/** How often a player gets sender reports (libwebrtc's interval for video): one compound packet for both senders. */
const SENDER_REPORT_INTERVAL_MS = 1000;
/** RTP header, extensions and RTX's original sequence number, as counted against the retransmission budget. */
const RTX_OVERHEAD_BYTES = 32;

/** Header extensions a player may get: the transport-wide sequence number, the simulcast layer, the audio level. */
const subscribeHeaderExtensions = (): HeaderExtensions => ({
  audio: [new RTCRtpHeaderExtensionParameters({ uri: TRANSPORT_CC_URI }), new RTCRtpHeaderExtensionParameters({ uri: AUDIO_LEVEL_URI })],
  video: [
    new RTCRtpHeaderExtensionParameters({ uri: TRANSPORT_CC_URI }),
    new RTCRtpHeaderExtensionParameters({ uri: SIMULCAST_LAYER_EXTENSION_URI }),
  ],
});

export class WeriftSubscriber extends WeriftPeer implements MediaSubscriber {
  /** A player sends receiver reports and transport-wide feedback while the transport is up. */
  protected readonly mediaKind = 'rtcp';
  private readonly senders: Partial<Record<Kind, RTCRtpSender>> = {};
  private readonly forwarders: Partial<Record<Kind, ForwardingSender>> = {};
  private readonly rewriter: StreamRewriter;
  private readonly sent: Record<Kind, SentHistory<RtpPacket>> = {
    audio: new SentHistory(SENT_HISTORY.audio),
    video: new SentHistory(SENT_HISTORY.video),
  };
  /** The player's audio format; `red` -1 when it gets plain Opus (unwrapped from RED if need be). */
  private readonly audioFormat = { opus: -1, red: -1 };
  private readonly redEncoder = new RedEncoder();
  private readonly out: OutgoingPacket = outgoingPacket();
  /** Negotiated extension ids, 0 when not negotiated. */
  private readonly extensionIds: Record<Kind, { transportCc: number; layer: number; audioLevel: number }> = {
    audio: { transportCc: 0, layer: 0, audioLevel: 0 },
    video: { transportCc: 0, layer: 0, audioLevel: 0 },
  };
  private transportSequenceNumber = 0;
  private video: PlayVideo;
  /** With transport-cc negotiated: the player's downlink estimate and the layer it allows. */
  private allocator: DownlinkAllocator | undefined;
  /** Spreads video and retransmissions at a multiple of the allocator's estimate; sends at once without one. */
  private readonly pacer = new Pacer({
    transmit: (kind, datagram, transportSequenceNumber, nowMs) => this.transmit(kind, datagram, transportSequenceNumber, nowMs),
  });
  /** Where the next padding copy is taken from, counting back from the newest packet sent. */
  private paddingCursor = 0;
  /** The layer this player's choice, view and link call for, whether or not the publisher sends it now. */
  private wantedLayer: number;
  /** What the player asked not to receive (mutePlayStreamVideo/Audio): not forwarded at all. */
  private videoMuted = false;
  private audioMuted = false;
  private readonly senderReports = setInterval(() => this.sendReports(), SENDER_REPORT_INTERVAL_MS);

  static async create(options: PeerOptions, offer: string, publisher: LayerSource, video?: PlayVideo): Promise<WeriftSubscriber> {
    const subscriber = new WeriftSubscriber(options, publisher, video);
    await subscriber.negotiate(offer, (t) => {
      t.setDirection('sendonly');
      const kind = t.kind as Kind;
      if (kind === 'audio') subscriber.negotiateAudio(t);
      subscriber.senders[kind] = t.sender;
      subscriber.forwarders[kind] = new ForwardingSender(t.sender, options.fastPath);
    });
    for (const t of subscriber.pc.getTransceivers()) {
      const id = (uri: string): number => t.headerExtensions.find((e) => e.uri === uri)?.id ?? 0;
      subscriber.extensionIds[t.kind as Kind] = {
        transportCc: id(TRANSPORT_CC_URI),
        layer: id(SIMULCAST_LAYER_EXTENSION_URI),
        audioLevel: id(AUDIO_LEVEL_URI),
      };
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
    private readonly publisher: LayerSource,
    video: PlayVideo = { type: 0, viewWidth: 0, viewHeight: 0 },
  ) {
    super(options, publisher.subscriberCodecs(), subscribeHeaderExtensions());
    this.video = video;
    this.wantedLayer = chooseLayer(video, publisher.layers);
    const layer = publisher.usableLayerNear(this.wantedLayer);
    this.rewriter = publisher.videoCodec === 'vp9' ? new SvcRewriter(layer) : new VideoRewriter(layer);
    this.stats.subscribers++;
  }

  /**
   * The player's Opus, and RED if it takes it, both with NACK: a player that asks for lost audio
   * gets it again from what was sent.
   */
  private negotiateAudio(t: RTCRtpTransceiver): void {
    const publisherTypes = this.publisher.audioFormat;
    const opus = t.codecs.find((c) => c.name.toLowerCase() === 'opus');
    const red =
      publisherTypes.red >= 0
        ? t.codecs.find((c) => c.name.toLowerCase() === 'red' && c.parameters === `${opus?.payloadType}/${opus?.payloadType}`)
        : undefined;
    t.codecs = opus ? (red ? [opus, red] : [opus]) : [];
    for (const codec of t.codecs) addNack(codec);
    this.audioFormat.opus = opus?.payloadType ?? -1;
    this.audioFormat.red = red?.payloadType ?? -1;
  }

  private listen(): void {
    const transceivers = this.pc.getTransceivers();
    const ssrc = { video: this.senders.video?.ssrc, audio: this.senders.audio?.ssrc };
    // Read at the transport (one for all, bundled): werift routes feedback by SSRC, which a player need not use
    // consistently (transport-cc names any media SSRC; werift players announce SSRCs of their own).
    transceivers[0]?.sender.dtlsTransport.onRtcp.subscribe((rtcp: RtcpPacket) => {
      if (ssrc.video !== undefined && asksForKeyFrame(rtcp, ssrc.video)) {
        this.stats.keyFrameRequestsReceived++;
        this.requestKeyFrame();
      } else if (rtcp instanceof RtcpTransportLayerFeedback) {
        const { feedback } = rtcp;
        if (feedback instanceof GenericNack && (feedback.mediaSourceSsrc === ssrc.video || feedback.mediaSourceSsrc === ssrc.audio)) {
          this.stats.nacksReceived++;
          this.resend(feedback.mediaSourceSsrc === ssrc.video ? 'video' : 'audio', feedback.lost);
        } else if (feedback instanceof TransportWideCC && this.allocator) {
          const results = twccResults(feedback);
          if (!results) return;
          this.allocator.onFeedback(results, performance.now());
          this.pacer.setRate(this.allocator.pacingBps);
          this.retarget();
        }
      }
    });
  }

  linkQuality(): LinkQuality {
    return { lossFraction: this.allocator?.lossFraction, rttMs: this.rttMs() };
  }

  setVideo(video: PlayVideo): void {
    this.video = video;
    this.retarget();
  }

  setMuted({ video, audio }: PlayMuted): void {
    this.audioMuted = audio;
    if (video === this.videoMuted) return;
    this.videoMuted = video;
    this.rewriter.setPaused(video);
    if (!video) this.requestKeyFrame();
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
      // Only if the move waits for one: a move down a VP9 stream's spatial layers does not.
      const awaited = this.rewriter.needsKeyFrame();
      if (awaited !== undefined) this.publisher.requestKeyFrame(awaited);
    } else if (!wantedChanged) {
      return;
    }
    this.publisher.layersInUseChanged();
  }

  /** In automatic mode, what the player's link carries for video and the layer its view asks for. */
  videoBudget(): VideoBudget | undefined {
    if (!this.allocator || this.video.type !== 0) return undefined;
    // A player that gets no video counts for no layer.
    if (this.videoMuted) return { wanted: -1, bps: 0 };
    return { wanted: chooseLayer(this.video, this.publisher.layers), bps: this.allocator.videoBudgetBps(performance.now()) };
  }

  /** The layers this player uses, a bit per layer: the one it gets, the one it is moving to, and the one it wants. */
  layersInUse(): number {
    return (1 << this.wantedLayer) | this.layersForwarded();
  }

  /** The layers this player gets or waits for a keyframe of, a bit per layer. */
  layersForwarded(): number {
    return this.rewriter.layersForwarded();
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

  /**
   * An audio packet as the player takes it: RED as it came (its blocks' payload type the player's
   * Opus), else Opus (a RED packet's primary block).
   */
  sendAudio({ rtp, red, level }: AudioPacket, sentAt: bigint, nowMs: number): void {
    const forwarder = this.forwarders.audio;
    const types = this.audioFormat;
    if (!this.connected || !forwarder?.ready || types.opus < 0 || this.audioMuted) return;
    const { header } = rtp;
    let stripped = false;
    if (types.red >= 0) {
      // More redundancy than the publisher's for a lossy link (a RED packet of our own), or none for a full one.
      const frame = red ? rtp.payload.subarray(red.at(-1)!.start) : rtp.payload;
      const redundancy = this.allocator?.audioRedundancy(frame.length, nowMs);
      if (redundancy !== undefined && redundancy > (red?.length ?? 1) - 1) {
        const encoded = this.redEncoder.encode(frame, header.timestamp, redundancy, types.opus);
        rtp = new RtpPacket(header, encoded.payload);
        red = encoded.blocks;
      } else if (redundancy === 0 && red && red.length > 1) {
        red = red.slice(-1);
        stripped = true;
      }
      this.redEncoder.push(header.timestamp, frame);
    }
    const asRed = red !== undefined && types.red >= 0;
    const out = this.header(header.marker, asRed ? types.red : types.opus, forwarder.ssrc, header.sequenceNumber, header.timestamp);
    if (!red) {
      out.prefixLength = out.replaced = 0;
    } else if (!asRed) {
      out.prefixLength = 0;
      out.replaced = red.at(-1)!.start;
    } else if (this.publisher.audioFormat.opus === types.opus && !stripped) {
      out.prefixLength = out.replaced = 0;
    } else {
      out.prefixLength = writeRedHeader(red, types.opus, out.prefix);
      out.replaced = red[0]!.start;
    }
    this.setExtensions('audio', 0, level);
    this.sent.audio.record(this.out, rtp, 0, nowMs);
    const datagram = forwarder.seal(out, rtp, sentAt, true);
    if (asRed) this.stats.redPacketsSent++;
    this.pacer.send('audio', datagram, this.stampedSequenceNumber(), nowMs);
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
    this.sent.video.record(this.out, packet, layer, nowMs);
    const datagram = forwarder.seal(out, packet, sentAt, true);
    this.pacer.send('video', datagram, this.stampedSequenceNumber(), nowMs);
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

  /** `audioLevel`: the audio level extension's byte, -1 for none. */
  private setExtensions(kind: Kind, layer: number, audioLevel = -1): void {
    const { extensions } = this.out;
    const ids = this.extensionIds[kind];
    extensions.audioLevelId = audioLevel >= 0 ? ids.audioLevel : 0;
    extensions.audioLevel = audioLevel;
    extensions.transportCcId = ids.transportCc;
    extensions.transportSequenceNumber = this.nextTransportSequenceNumber(kind);
    extensions.layerId = ids.layer;
    extensions.layer = layer;
  }

  /** Puts a datagram on the transport (bundled: one for audio and video), counts its RTP bytes and tells the allocator. */
  private transmit(kind: PacketKind, datagram: Buffer, transportSequenceNumber: number, nowMs: number): void {
    const forwarder = (this.forwarders.video ?? this.forwarders.audio)!;
    forwarder.transmit(datagram);
    const bytes = datagram.length - forwarder.srtpOverheadBytes;
    if (kind === 'audio' || kind === 'video') {
      this.stats.packetsSent++;
      this.stats.bytesSent += bytes;
    } else if (kind === 'retransmission') {
      this.stats.retransmissionsSent++;
    }
    if (transportSequenceNumber >= 0) this.allocator?.onPacketSent(kind, transportSequenceNumber, bytes, nowMs);
  }

  /** The transport-wide sequence number the outgoing packet carries, -1 for none. */
  private stampedSequenceNumber(): number {
    const { extensions } = this.out;
    return extensions.transportCcId ? extensions.transportSequenceNumber : -1;
  }

  /**
   * Sends again what the player lost (as RTX when negotiated), each packet at most once per
   * interval and a few times in all, and with an estimate, within the retransmission budget and
   * twice on a very lossy link.
   */
  private resend(kind: Kind, lost: number[]): void {
    const now = performance.now();
    const sent = this.sent[kind];
    for (const sequenceNumber of lost) {
      const slot = sent.find(sequenceNumber);
      if (slot < 0) continue;
      const resends = sent.resends(slot);
      if (resends >= MAX_RESENDS || (resends > 0 && now - sent.sentAtMs(slot) < RESEND_INTERVAL_MS)) continue;
      const copies = this.allocator?.takeRetransmission(sent.source(slot).payload.length + RTX_OVERHEAD_BYTES, now) ?? 1;
      if (copies === 0) {
        this.stats.retransmissionsRefused++;
        continue;
      }
      sent.resent(slot, now);
      for (let i = 0; i < copies; i++) this.sendCopy(kind, slot, 'retransmission', now);
    }
  }

  /**
   * Pads the stream for a probe with RTX copies of recent packets: at least `bytes`, unless there
   * is nothing to copy; none while media waits in the pacer (undefined).
   */
  private sendPadding(bytes: number): number | undefined {
    if (this.pacer.busy) return undefined;
    const newest = this.rewriter.lastSequenceNumber;
    if (newest === undefined || !this.forwarders.video?.ready) return 0;
    const now = performance.now();
    let sent = 0;
    for (let tried = 0; sent < bytes && tried < PADDING_SOURCE_PACKETS; tried++) {
      this.paddingCursor = (this.paddingCursor + 1) % PADDING_SOURCE_PACKETS;
      const sequenceNumber = (newest - this.paddingCursor + 0x10000) & 0xffff;
      const slot = this.sent.video.find(sequenceNumber);
      if (slot >= 0) sent += this.sendCopy('video', slot, 'padding', now);
    }
    return sent;
  }

  /**
   * Sends a copy of a packet the player got: video as RTX when negotiated, else (and audio) as it
   * was; padding needs RTX. Returns the bytes sent.
   */
  private sendCopy(kind: Kind, slot: number, purpose: 'retransmission' | 'padding', nowMs: number): number {
    const forwarder = this.forwarders[kind];
    if (!forwarder?.ready) return 0;
    const rtx = kind === 'video' ? forwarder.nextRtx() : undefined;
    if (!rtx && purpose === 'padding') return 0;
    const sent = this.sent[kind];
    const { out } = this;
    // RTX (RFC 4588) carries the original sequence number, then the payload as first sent.
    sent.restore(slot, out, rtx ? 2 : 0);
    out.ssrc = forwarder.ssrc;
    if (rtx) {
      out.prefix.writeUInt16BE(out.sequenceNumber, 0);
      out.payloadType = rtx.payloadType;
      out.ssrc = rtx.ssrc;
      out.sequenceNumber = rtx.sequenceNumber;
    }
    this.setExtensions(kind, sent.layer(slot));
    const datagram = forwarder.seal(out, sent.source(slot), 0n, false);
    this.pacer.send(purpose, datagram, this.stampedSequenceNumber(), nowMs);
    return datagram.length;
  }

  /** Both senders' reports in one compound packet (werift would send one per sender, each on a timer of its own). */
  private sendReports(): void {
    const packets = [...(this.forwarders.video?.senderReport() ?? []), ...(this.forwarders.audio?.senderReport() ?? [])];
    const transport = (this.senders.video ?? this.senders.audio)?.dtlsTransport;
    if (packets.length === 0 || !transport || transport.state !== 'connected') return;
    dtlsTransportInternals(transport)
      .sendRtcp(packets)
      .catch(() => undefined);
  }

  protected onClose(): void {
    clearInterval(this.senderReports);
    this.stats.subscribers--;
    this.pacer.close();
    this.allocator?.close();
    for (const sender of Object.values(this.senders)) sender.stop();
  }
}
