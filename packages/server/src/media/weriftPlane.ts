/**
 * SFU on werift: each publisher is one peer connection receiving audio+video; each subscriber is
 * one peer connection sending it on. RTP is relayed unchanged apart from what the outgoing
 * sender must own (SSRC, payload type); NACKs are answered from the publisher's history (with RTX
 * when negotiated), and keyframe requests travel from players back to the publisher.
 */
import {
  RTCRtpCodecParameters,
  RtcpPayloadSpecificFeedback,
  type RtpPacket,
  type MediaStreamTrack,
  type RTCOutboundRtpStreamStats,
  type RTCRtpReceiver,
  type RTCRtpSender,
  type RtcpPacket,
} from 'werift';
import { ForwardingSender, PacketHistory } from './forwardingSender.js';
import { UplinkFeedback } from './uplinkFeedback.js';
import { publishCodecs, publishHeaderExtensions, WeriftPeer, type NegotiatedCodecs, type PeerOptions } from './weriftPeer.js';
import { emptyMediaStats, type MediaPlane, type MediaPublisher, type MediaStats, type MediaSubscriber } from './types.js';

type Kind = 'audio' | 'video';
const PLI_COUNT = 1;
const FIR_COUNT = 4;
const KEYFRAME_REQUESTS = new Set([PLI_COUNT, FIR_COUNT]);

/** Whether a PLI (media SSRC) or FIR (SSRC in its entries; RFC 5104 sets the media SSRC to 0) asks `ssrc` for a keyframe. */
export function asksForKeyFrame(rtcp: RtcpPacket, ssrc: number): boolean {
  if (!(rtcp instanceof RtcpPayloadSpecificFeedback) || !KEYFRAME_REQUESTS.has(rtcp.feedback.count)) return false;
  const feedback = rtcp.feedback as { mediaSsrc?: number; fir?: Array<{ ssrc: number }> };
  return feedback.mediaSsrc === ssrc || (feedback.fir?.some((entry) => entry.ssrc === ssrc) ?? false);
}
/** Keyframe requests closer together than this are merged: one keyframe serves every player. */
const KEYFRAME_REQUEST_INTERVAL_MS = 100;

/** Milliseconds from the NTP epoch (1900) to the Unix epoch. */
const NTP_EPOCH_OFFSET_MS = 2_208_988_800_000;

/** Now as a 64-bit NTP timestamp (for RTCP sender reports). */
function ntpNow(): bigint {
  const ms = performance.timeOrigin + performance.now() + NTP_EPOCH_OFFSET_MS;
  const seconds = Math.floor(ms / 1000);
  return (BigInt(seconds) << 32n) | BigInt(Math.floor(((ms - seconds * 1000) / 1000) * 2 ** 32));
}

class WeriftPublisher extends WeriftPeer implements MediaPublisher {
  private readonly subscribers = new Set<WeriftSubscriber>();
  private readonly codecs: NegotiatedCodecs = {};
  /** What NACKs from players are answered from. */
  readonly histories: Record<Kind, PacketHistory> = { audio: new PacketHistory(), video: new PacketHistory() };
  private video?: { receiver: RTCRtpReceiver; track: MediaStreamTrack };
  private lastKeyFrameRequest = 0;
  private keyFrameTimer: NodeJS.Timeout | undefined;
  private feedback?: UplinkFeedback;

  static async create(options: PeerOptions, offer: string): Promise<WeriftPublisher> {
    const publisher = new WeriftPublisher(options);
    await publisher.negotiate(offer, (t) => {
      t.setDirection('recvonly');
      // Accept one codec per kind (the offerer's first we support) so the publisher cannot switch
      // to another one that players were not set up for.
      const primary = t.codecs.find((c) => c.name.toLowerCase() !== 'rtx');
      if (!primary) return;
      t.codecs = t.codecs.filter((c) => c === primary || (c.name.toLowerCase() === 'rtx' && c.parameters === `apt=${primary.payloadType}`));
      publisher.codecs[t.kind as Kind] = primary;
    });
    publisher.feedback = new UplinkFeedback(publisher.pc, publisher.pc.getTransceivers()[0]!.receiver.rtcpSsrc);
    return publisher;
  }

  private constructor(options: PeerOptions) {
    super(options, publishCodecs(), publishHeaderExtensions());
    this.stats.publishers++;
    // Tracks appear while the offer is applied, so listen before negotiating.
    this.pc.onTrack.subscribe((track) => {
      const transceiver = this.pc.getTransceivers().find((t) => t.receiver.tracks.includes(track));
      if (transceiver) this.onTrack(track.kind as Kind, track, transceiver.receiver);
    });
  }

  private onTrack(kind: Kind, track: MediaStreamTrack, receiver: RTCRtpReceiver): void {
    if (kind === 'video') this.video = { receiver, track };
    track.onReceiveRtp.subscribe((rtp) => this.forward(kind, rtp));
  }

  private forward(kind: Kind, rtp: RtpPacket): void {
    const { stats } = this;
    stats.packetsReceived++;
    stats.bytesReceived += rtp.header.serializeSize + rtp.payload.length + rtp.header.paddingSize;
    // Padding-only packets (bandwidth probes) go on too, empty: a gap in the sequence numbers
    // would hold players' frames back as if a packet were lost.
    this.histories[kind].add(rtp);
    if (this.subscribers.size === 0) return;
    const sentAt = ntpNow();
    for (const subscriber of this.subscribers) subscriber.send(kind, rtp, sentAt);
  }

  /** Asks the publisher for a keyframe; requests within the interval are merged into one at its end. */
  requestKeyFrame(): void {
    if (this.keyFrameTimer || this.closed) return;
    const wait = this.lastKeyFrameRequest + KEYFRAME_REQUEST_INTERVAL_MS - Date.now();
    if (wait > 0) {
      this.keyFrameTimer = setTimeout(() => {
        this.keyFrameTimer = undefined;
        this.requestKeyFrame();
      }, wait);
      return;
    }
    const ssrc = this.video?.track.ssrc;
    if (ssrc === undefined) return;
    this.lastKeyFrameRequest = Date.now();
    this.stats.keyFrameRequestsSent++;
    void this.video!.receiver.sendRtcpPLI(ssrc).catch(() => undefined);
  }

  async subscribe(offer: string): Promise<MediaSubscriber> {
    const subscriber = await WeriftSubscriber.create(this.options, offer, this);
    if (this.closed) {
      subscriber.close();
      return subscriber;
    }
    this.subscribers.add(subscriber);
    subscriber.observer.once('connected', () => this.requestKeyFrame());
    subscriber.observer.once('closed', () => this.subscribers.delete(subscriber));
    return subscriber;
  }

  /** The codecs a subscriber must offer its player: exactly what this publisher sends. */
  subscriberCodecs(): { audio: RTCRtpCodecParameters[]; video: RTCRtpCodecParameters[] } {
    const copy = (c: RTCRtpCodecParameters): RTCRtpCodecParameters =>
      new RTCRtpCodecParameters({
        mimeType: c.mimeType,
        clockRate: c.clockRate,
        channels: c.channels,
        parameters: c.parameters,
        rtcpFeedback: c.rtcpFeedback,
      });
    const { audio, video } = this.codecs;
    return {
      audio: audio ? [copy(audio)] : [],
      video: video ? [copy(video), new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000 })] : [],
    };
  }

  protected onClose(): void {
    this.stats.publishers--;
    clearTimeout(this.keyFrameTimer);
    this.feedback?.close();
    for (const subscriber of [...this.subscribers]) subscriber.close();
  }
}

class WeriftSubscriber extends WeriftPeer implements MediaSubscriber {
  private readonly senders: Partial<Record<Kind, RTCRtpSender>> = {};
  private readonly forwarders: Partial<Record<Kind, ForwardingSender>> = {};

  static async create(options: PeerOptions, offer: string, publisher: WeriftPublisher): Promise<WeriftSubscriber> {
    const subscriber = new WeriftSubscriber(options, publisher);
    await subscriber.negotiate(offer, (t) => {
      t.setDirection('sendonly');
      const kind = t.kind as Kind;
      subscriber.senders[kind] = t.sender;
      subscriber.forwarders[kind] = new ForwardingSender(t.sender, publisher.histories[kind]);
    });
    const { stats } = subscriber;
    for (const sender of Object.values(subscriber.senders)) {
      // werift answers NACKs itself; what it resent is read from its counters after each one.
      let resent = 0;
      sender.onGenericNack.subscribe(() => {
        stats.nacksReceived++;
        const outbound = sender.collectStats(0).find((s): s is RTCOutboundRtpStreamStats => s.type === 'outbound-rtp');
        const total = outbound?.retransmittedPacketsSent ?? resent;
        stats.retransmissionsSent += total - resent;
        resent = total;
      });
    }
    const video = subscriber.pc.getTransceivers().find((t) => t.kind === 'video');
    if (video) {
      const ssrc = video.sender.ssrc;
      const onKeyFrameRequest = (rtcp: RtcpPacket): void => {
        if (!asksForKeyFrame(rtcp, ssrc)) return;
        stats.keyFrameRequestsReceived++;
        publisher.requestKeyFrame();
      };
      // werift routes feedback by the sender SSRC first, so a player that announced SSRCs of its
      // own (werift does, even receive-only) has its PLI delivered to our receiver, not the sender.
      video.sender.onRtcp.subscribe(onKeyFrameRequest);
      video.receiver.onRtcp.subscribe(onKeyFrameRequest);
    }
    return subscriber;
  }

  private constructor(options: PeerOptions, publisher: WeriftPublisher) {
    super(options, publisher.subscriberCodecs());
    this.stats.subscribers++;
  }

  send(kind: Kind, packet: RtpPacket, sentAt: bigint): void {
    if (!this.connected) return;
    const bytes = this.forwarders[kind]?.send(packet, sentAt);
    if (!bytes) return;
    this.stats.packetsSent++;
    this.stats.bytesSent += bytes;
  }

  protected onClose(): void {
    this.stats.subscribers--;
    for (const sender of Object.values(this.senders)) sender.stop();
  }
}

export interface WeriftPlaneOptions {
  listenIp: string;
  announcedIp?: string;
  portRange?: [number, number];
  /** A peer connection that has not connected by then is closed. */
  connectTimeoutMs?: number;
}

export class WeriftMediaPlane implements MediaPlane {
  readonly stats: MediaStats = emptyMediaStats();
  private readonly peerOptions: PeerOptions;
  private readonly publishers = new Set<WeriftPublisher>();

  constructor(options: WeriftPlaneOptions) {
    this.peerOptions = { connectTimeoutMs: 15_000, ...options, stats: this.stats };
  }

  async publish(offer: string): Promise<MediaPublisher> {
    const publisher = await WeriftPublisher.create(this.peerOptions, offer);
    this.publishers.add(publisher);
    publisher.observer.once('closed', () => this.publishers.delete(publisher));
    return publisher;
  }

  async close(): Promise<void> {
    for (const publisher of [...this.publishers]) publisher.close();
  }
}
