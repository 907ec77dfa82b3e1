/**
 * A publisher's peer connection: receives one audio track and one video track, the video as up
 * to three simulcast layers (RID-named, smallest first as the offer lists them) or as one VP9
 * stream of up to three spatial layers (SVC), and hands every packet to its subscribers, which
 * pick what each player gets. Keyframe requests go to the layer they name, merged when close
 * together.
 */
import {
  GenericNack,
  RTCRtpCodecParameters,
  RtcpSrPacket,
  RtcpTransportLayerFeedback,
  RtpHeader,
  type RtcpPacket,
  RtpPacket,
  type MediaStreamTrack,
  type RTCRtpReceiver,
  type RTCRtpTransceiver,
} from 'werift';
import { AUDIO_LEVEL_URI } from '@parley/protocol';
import { NackGenerator, peerConnectionInternals, rtpReceiverInternals } from '@parley/protocol/rtp';
import { UplinkFeedback } from './uplinkFeedback.js';
import { judgeLayers, KEYFRAME_RETRY_MS, VideoLayer } from '../core/videoLayer.js';
import { LayerCapControl } from '../core/layerCaps.js';
import { AudioReceiver, type AudioFormat } from './audioReceiver.js';
import { LayerFanout } from './layerFanout.js';
import type { VideoCodec } from '../core/videoRewriter.js';
import {
  addNack,
  publishCodecs,
  publishHeaderExtensions,
  withFormatParameters,
  WeriftPeer,
  type NegotiatedCodecs,
  type PeerOptions,
} from './weriftPeer.js';
import type { LinkQuality, MediaPublisher, MediaSubscriber, MediaTap, PlayVideo, PublisherEvents } from '../core/types.js';
import { WeriftSubscriber } from './weriftSubscriber.js';
import { StreamTap } from './streamTap.js';
import type { Kind, LayerSource } from './layerSource.js';

const NO_AUDIO: AudioFormat = { opus: -1, red: -1, levelId: 0 };

/** How often layers are checked for starting or stopping to flow, or starving. */
const LAYER_CHECK_INTERVAL_MS = 100;
/**
 * A layer no player uses is paused this long after the last one stopped using it: a player that
 * moves back soon (a resized view, a lifted cap) finds it still flowing. Resuming is immediate.
 */
const PAUSE_UNUSED_LAYER_AFTER_MS = 3000;

const REPAIRED_RID_URI = 'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id';
/** Spatial layers of a VP9 stream that players are moved between (the SDK sends up to three, as simulcast). */
const SPATIAL_LAYERS = 3;

const videoSection = (offer: string): string | undefined => offer.split(/\r?\n(?=m=)/).find((section) => section.startsWith('m=video '));

/** The name of the first format the offer's video section lists, in lower case ('' for none). */
export function firstVideoFormat(offer: string): string {
  const video = videoSection(offer) ?? '';
  const payloadType = /^m=video \S+ \S+ (\d+)/.exec(video)?.[1];
  return new RegExp(`^a=rtpmap:${payloadType} ([^/\\s]+)`, 'm').exec(video)?.[1]?.toLowerCase() ?? '';
}

/** A simulcast layer's SSRCs, as a publisher's packets showed them. */
export interface LayerSsrcs {
  rid: string;
  ssrc: number | undefined;
  rtxSsrc: number | undefined;
}

/** The RIDs the offer's video section sends, in its order (RFC 8853 `a=simulcast:send`); [] without simulcast. */
export function simulcastRids(offer: string): string[] {
  const video = videoSection(offer);
  const line = video?.split(/\r?\n/).find((l) => l.startsWith('a=simulcast:send '));
  if (!line) return [];
  // Each ';'-separated stream may list alternatives (','); the first names it. '~' marks one paused at first.
  return line
    .slice('a=simulcast:send '.length)
    .trim()
    .split(';')
    .map((stream) => stream.split(',')[0]!.replace(/^~/, ''))
    .filter((rid) => rid.length > 0);
}

export class WeriftPublisher extends WeriftPeer<PublisherEvents> implements MediaPublisher, LayerSource {
  protected readonly mediaKind = 'rtp';
  /** Its players' subscribers, and relays to other nodes. */
  readonly fanout: LayerFanout;
  private readonly codecs: NegotiatedCodecs = {};
  /** Set once the offer is applied; its payload types say which packets are audio. */
  private audio: AudioReceiver | undefined;
  private audioSsrc: number | undefined;
  /** Whether the publisher keeps its audio for retransmission (NACK negotiated for Opus). */
  private audioNack = false;
  private videoReceiver?: RTCRtpReceiver;
  /** Read per packet by every subscriber, so fixed once negotiated. */
  private negotiatedVideoCodec: VideoCodec = 'vp8';
  private feedback?: UplinkFeedback;
  private readonly nacks = new NackGenerator(
    (ssrc, lost) => this.sendNack(ssrc, lost),
    undefined,
    () => this.rttMs(),
  );
  /** Negotiated once: the video RTX payload type and the repaired-RID extension id (0: none). */
  private rtxPayloadType = -1;
  private repairedRidId = 0;
  /** Each simulcast layer's RTX stream, by its SSRC. */
  private readonly rtxLayers = new Map<number, VideoLayer>();
  /** Told when more of the simulcast layers' SSRCs are known: what another peer connection of this publisher needs to place its packets. */
  onLayerSsrcs: ((layers: LayerSsrcs[]) => void) | undefined;
  private reportedSsrcs = '';
  private readonly layerCheck: NodeJS.Timeout;
  /** The layers the publisher was last told to send, a bit per layer: all of them at first. */
  private activeLayers: number;
  private pauseTimer: NodeJS.Timeout | undefined;
  private readonly capControl: LayerCapControl;
  /** The NACK generator's counts at the previous linkQuality(). */
  private countsBefore = { expected: 0, skipped: 0 };

  /**
   * `known`: the layers' SSRCs as another peer connection of this publisher learned them (its
   * media moved here from another worker): a browser names a layer's RID in its packets only until
   * it hears RTCP for them, so a new peer connection could not place them otherwise.
   */
  static async create(options: PeerOptions, offer: string, known: readonly LayerSsrcs[] = []): Promise<WeriftPublisher> {
    const rids = simulcastRids(offer);
    // VP9 offered first without simulcast is taken as one stream of spatial layers. VP9 simulcast is
    // not taken: switching between simulcast layers is VP8's and H264's.
    const svc = rids.length === 0 && firstVideoFormat(offer) === 'vp9';
    const publisher = new WeriftPublisher(options, rids, svc);
    await publisher.negotiate(offer, (t) => {
      t.setDirection('recvonly');
      if (t.kind === 'audio') {
        publisher.negotiateAudio(t);
        return;
      }
      // Accept one codec per kind (the offerer's first we support) so the publisher cannot switch
      // to another one that players were not set up for.
      const name = (c: RTCRtpCodecParameters): string => c.name.toLowerCase();
      const primary = t.codecs.find((c) => (svc ? name(c) === 'vp9' : name(c) !== 'rtx' && name(c) !== 'vp9'));
      if (!primary) return;
      t.codecs = t.codecs.filter((c) => c === primary || (name(c) === 'rtx' && c.parameters === `apt=${primary.payloadType}`));
      publisher.codecs[t.kind as Kind] = primary;
      if (t.kind === 'video') publisher.negotiatedVideoCodec = name(primary) as VideoCodec;
      if (t.kind === 'video') {
        publisher.rtxPayloadType = t.codecs.find((c) => c !== primary)?.payloadType ?? -1;
        publisher.repairedRidId = t.headerExtensions.find((e) => e.uri === REPAIRED_RID_URI)?.id ?? 0;
      }
    });
    // Media flows only once the answer is out, so the tracks are all there: one per RID with simulcast.
    for (const t of publisher.pc.getTransceivers())
      for (const track of t.receiver.tracks) publisher.onTrack(t.kind as Kind, track, t.receiver);
    publisher.adoptSsrcs(known);
    publisher.feedback = new UplinkFeedback(publisher.pc, publisher.pc.getTransceivers()[0]!.receiver.rtcpSsrc);
    publisher.hookIngest();
    // Sender reports place each RTP stream on the sender's clock: recordings sync audio and video by them.
    publisher.pc.getTransceivers()[0]?.receiver.dtlsTransport.onRtcp.subscribe((rtcp: RtcpPacket) => {
      if (rtcp instanceof RtcpSrPacket)
        publisher.fanout.senderReport(rtcp.ssrc, rtcp.senderInfo.ntpTimestamp, rtcp.senderInfo.rtpTimestamp);
    });
    return publisher;
  }

  /**
   * Opus, wrapped in RED when the offer puts RED first (a browser sends RED only then), and
   * nothing else. The answer asks for in-band FEC and DTX (a sender uses them only when the
   * receiver's format parameters say so) and offers NACK: players' repairs reach back to the
   * publisher when the server lost a packet too.
   */
  private negotiateAudio(t: RTCRtpTransceiver): void {
    const first = t.codecs[0];
    const red = first?.name.toLowerCase() === 'red' ? first : undefined;
    const wrapped = red ? Number(red.parameters?.split('/')[0]) : NaN;
    const opus = t.codecs.find((c) => c.name.toLowerCase() === 'opus' && (!red || c.payloadType === wrapped));
    if (!opus) {
      t.codecs = [];
      return;
    }
    opus.parameters = withFormatParameters(opus.parameters, { useinbandfec: '1', usedtx: '1' });
    for (const codec of [red, opus]) if (codec) addNack(codec);
    t.codecs = red ? [red, opus] : [opus];
    this.codecs.audio = opus;
    this.codecs.audioRed = red;
    this.audioNack = true;
    const levelId = t.headerExtensions.find((e) => e.uri === AUDIO_LEVEL_URI)?.id ?? 0;
    this.audio = new AudioReceiver({ opus: opus.payloadType, red: red?.payloadType ?? -1, levelId });
  }

  /**
   * Sees every packet as it leaves SRTP: for transport-wide feedback, and to repair layers from
   * their RTX streams, which werift cannot place with simulcast (it maps RTX to media by SSRC
   * groups, which simulcast offers do not have; RFC 8852 names the repaired layer in each packet).
   * Our NACK generator replaces werift's (see nackGenerator.ts).
   */
  private hookIngest(): void {
    for (const t of this.pc.getTransceivers()) if (t.kind === 'video') rtpReceiverInternals(t.receiver).nack.addPacket = () => undefined;
    const { router } = peerConnectionInternals(this.pc);
    const route = router.routeRtp.bind(router);
    router.routeRtp = (packet) => {
      this.feedback?.record(packet);
      // Audio is taken here, RED and all (werift's receiver would unwrap it), and still routed for werift's receiver reports.
      if (this.audio && this.isAudio(packet.header.payloadType) && !this.forwardAudio(packet)) return; // malformed: werift's parser may throw
      if (!this.repairLayer(packet)) route(packet);
    };
  }

  /**
   * Forwards a layer's RTX packet as the packet it repairs; false for any other packet. The repair
   * counts as received in the receiver reports of the layer's SSRC, as libwebrtc counts it: the
   * publisher's loss-based congestion control reads their fraction lost, and werift counts only
   * what came on the SSRC itself, which on a lossy uplink says 30 % lost where repairs leave 1 %,
   * and the publisher's estimate collapses to its minimum.
   */
  private repairLayer(rtx: RtpPacket): boolean {
    const { header } = rtx;
    if (header.payloadType !== this.rtxPayloadType) return false;
    const simulcast = this.layers[0]!.rid !== undefined;
    if (simulcast && !this.repairedRidId) return false;
    const rid = simulcast ? header.extensions.find((e) => e.id === this.repairedRidId)?.payload.toString('ascii') : undefined;
    // A browser stops naming the repaired RID once it hears RTCP for the RTX stream: its SSRC says it then.
    const layer = !simulcast
      ? this.layers[0]
      : rid === undefined
        ? this.rtxLayers.get(header.ssrc)
        : this.layers.find((l) => l.rid === rid);
    if (layer && rid !== undefined) this.rtxLayers.set(header.ssrc, layer);
    const payloadType = this.codecs.video?.payloadType;
    // Padding-only RTX (a bandwidth probe) repairs nothing.
    if (!layer || layer.ssrc === undefined || payloadType === undefined || rtx.payload.length <= 2) return true;
    const repaired = new RtpHeader({
      ...header,
      ssrc: layer.ssrc,
      payloadType,
      sequenceNumber: rtx.payload.readUInt16BE(0),
      padding: false,
      paddingSize: 0,
    });
    const packet = new RtpPacket(repaired, rtx.payload.subarray(2));
    if (this.videoReceiver) rtpReceiverInternals(this.videoReceiver).remoteStreams[layer.ssrc]?.add(packet);
    this.forwardVideo(layer, packet);
    return true;
  }

  private sendNack(mediaSourceSsrc: number, lost: number[]): void {
    // One transport for all (bundled): any receiver sends the RTCP.
    const receiver = this.pc.getTransceivers()[0]?.receiver;
    if (!receiver || this.closed) return;
    if (mediaSourceSsrc === this.audioSsrc) {
      if (!this.audioNack || this.fanout.size === 0) return;
    } else {
      // Repairs of a layer no player gets (or one they are leaving) would take uplink from those they do get.
      // A VP9 stream's SSRC finds its smallest spatial layer, which every player of it gets.
      const layer = this.layers.find((l) => l.ssrc === mediaSourceSsrc);
      if (!layer || !this.fanout.worthRepairing(layer.index)) return;
    }
    this.stats.nacksSent++;
    const nack = new GenericNack({ senderSsrc: receiver.rtcpSsrc, mediaSourceSsrc, lost });
    void receiver.dtlsTransport.sendRtcp([new RtcpTransportLayerFeedback({ feedback: nack })]).catch(() => undefined);
  }

  private constructor(
    options: PeerOptions,
    rids: string[],
    /** Its video is one VP9 stream of spatial layers. */
    private readonly svc: boolean,
  ) {
    super(options, publishCodecs(), publishHeaderExtensions());
    const layers: VideoLayer[] = rids.map((rid, i) => new VideoLayer(i, rid));
    if (svc) for (let i = 0; i < SPATIAL_LAYERS; i++) layers.push(new VideoLayer(i, undefined, layers[i - 1]));
    if (layers.length === 0) layers.push(new VideoLayer(0, undefined));
    this.fanout = new LayerFanout(
      layers,
      this.stats,
      () => this.negotiatedVideoCodec,
      () => this.layersInUseChanged(),
    );
    this.stats.publishers++;
    this.layerCheck = setInterval(() => this.checkLayers(), LAYER_CHECK_INTERVAL_MS);
    this.layerCheck.unref();
    this.activeLayers = (1 << this.layers.length) - 1;
    this.capControl = new LayerCapControl(layers.length);
  }

  /** Smallest first; one layer without simulcast or SVC. */
  get layers(): readonly VideoLayer[] {
    return this.fanout.layers;
  }

  /**
   * A subscriber's layers changed: resumes at once the layers some player now uses, and pauses
   * the others a while later if still unused (dynacast). The smallest always stays on. A VP9
   * stream's spatial layers are one encoding, which cannot pause some of them.
   */
  layersInUseChanged(): void {
    if (this.layers.length < 2 || this.svc || this.closed) return;
    const used = this.fanout.usedLayers();
    if (used & ~this.activeLayers) this.announceActiveLayers(this.activeLayers | used);
    if (this.activeLayers & ~used) {
      this.pauseTimer ??= setTimeout(() => {
        this.pauseTimer = undefined;
        const stillUsed = this.fanout.usedLayers();
        if (stillUsed !== this.activeLayers) this.announceActiveLayers(stillUsed);
      }, PAUSE_UNUSED_LAYER_AFTER_MS);
    } else {
      clearTimeout(this.pauseTimer);
      this.pauseTimer = undefined;
    }
  }

  private announceActiveLayers(active: number): void {
    this.activeLayers = active;
    this.observer.emit(
      'activeLayers',
      this.layers.map((layer) => (active & (1 << layer.index)) !== 0),
    );
  }

  /**
   * Tells subscribers when a layer becomes usable or stops being so (what each player can get
   * changed), and the publisher when its players' links call for other layer caps.
   */
  private checkLayers(): void {
    this.fanout.setUsable(judgeLayers(this.layers, this.activeLayers));
    this.reportSsrcs();
    // A VP9 stream's spatial layers are one encoding, with one bitrate for them all.
    if (this.svc) return;
    const now = performance.now();
    const caps = this.capControl.update(
      this.layers.map((layer) => (this.activeLayers & (1 << layer.index) ? layer.bitrateBps(now) : undefined)),
      this.fanout.users(),
      now,
    );
    if (!caps) return;
    caps.forEach((cap, i) => (this.layers[i]!.capBps = cap));
    this.observer.emit('layerCaps', caps);
  }

  /** Tells `onLayerSsrcs` of the simulcast layers' SSRCs (media and RTX) when more of them are known. */
  private reportSsrcs(): void {
    if (!this.onLayerSsrcs || this.layers[0]!.rid === undefined) return;
    const rtx = new Map([...this.rtxLayers].map(([ssrc, layer]) => [layer, ssrc]));
    const layers = this.layers.flatMap((layer) =>
      layer.rid === undefined ? [] : [{ rid: layer.rid, ssrc: layer.ssrc, rtxSsrc: rtx.get(layer) }],
    );
    const key = JSON.stringify(layers);
    if (key === this.reportedSsrcs) return;
    this.reportedSsrcs = key;
    this.onLayerSsrcs(layers);
  }

  /** Places packets by the SSRCs another peer connection of this publisher learned (see `create`). */
  private adoptSsrcs(known: readonly LayerSsrcs[]): void {
    const receiver = this.videoReceiver;
    if (!receiver) return;
    const { router } = peerConnectionInternals(this.pc);
    for (const { rid, ssrc, rtxSsrc } of known) {
      const layer = this.layers.find((l) => l.rid === rid);
      const track = receiver.tracks.find((t) => t.rid === rid);
      if (!layer || !track) continue;
      if (ssrc !== undefined) {
        receiver.trackBySSRC[ssrc] = track;
        router.registerRtpReceiver(receiver, ssrc);
      }
      if (rtxSsrc !== undefined) this.rtxLayers.set(rtxSsrc, layer);
    }
  }

  usableLayerNear(layer: number, fallback = layer): number {
    return this.fanout.usableLayerNear(layer, fallback);
  }

  linkQuality(): LinkQuality {
    const counts = this.nacks.counts();
    const expected = counts.expected - this.countsBefore.expected;
    const skipped = counts.skipped - this.countsBefore.skipped;
    this.countsBefore = counts;
    return { lossFraction: expected > 0 ? skipped / expected : undefined, rttMs: this.rttMs() };
  }

  speechLevel(): number {
    return this.fanout.speechLevel();
  }

  /** How its audio comes (RED -1 when it sends none; Opus -1 before negotiation). */
  get audioFormat(): AudioFormat {
    return this.audio?.format ?? NO_AUDIO;
  }

  private isAudio(payloadType: number): boolean {
    const types = this.audio?.format;
    return payloadType === types?.opus || payloadType === types?.red;
  }

  private onTrack(kind: Kind, track: MediaStreamTrack, receiver: RTCRtpReceiver): void {
    if (kind === 'audio') return;
    this.videoReceiver = receiver;
    const layer = track.rid === undefined ? this.layers[0] : this.layers.find((l) => l.rid === track.rid);
    if (!layer) return;
    track.onReceiveRtp.subscribe((rtp) => this.forwardVideo(layer, rtp));
  }

  get videoCodec(): VideoCodec {
    return this.negotiatedVideoCodec;
  }

  /** Hands an audio packet, and what its redundancy recovers, to the players; false when it is malformed. */
  private forwardAudio(rtp: RtpPacket): boolean {
    const now = performance.now();
    const packets = this.fanout.forwardAudio(this.audio!, rtp, now);
    if (!packets) return false;
    this.audioSsrc = rtp.header.ssrc;
    for (const packet of packets) this.nacks.onPacket(rtp.header.ssrc, packet.rtp.header.sequenceNumber, now, packet.rtp === rtp);
    return true;
  }

  private forwardVideo(layer: VideoLayer, rtp: RtpPacket): void {
    const now = performance.now();
    this.nacks.onPacket(rtp.header.ssrc, rtp.header.sequenceNumber, now);
    this.fanout.forwardVideo(layer, rtp, now);
  }

  /** Asks the publisher for a keyframe of `layer`; requests within the interval are merged into one at its end. */
  requestKeyFrame(layer: number): void {
    // A keyframe begins to arrive a round trip after the request at best.
    if (!this.closed) this.layers[layer]?.requestKeyFrame(this.sendPli, Math.max(KEYFRAME_RETRY_MS, 3 * (this.rttMs() ?? 0)));
  }

  private readonly sendPli = (ssrc: number): void => {
    if (!this.videoReceiver) return;
    this.stats.keyFrameRequestsSent++;
    void this.videoReceiver.sendRtcpPLI(ssrc).catch(() => undefined);
  };

  async subscribe(offer: string, video?: PlayVideo): Promise<MediaSubscriber> {
    const subscriber = await WeriftSubscriber.create(this.options, offer, this, video);
    if (this.closed) {
      subscriber.close();
      return subscriber;
    }
    this.fanout.add(subscriber);
    return subscriber;
  }

  /** What its taps carry. */
  get tapFormat(): Pick<MediaTap, 'audio' | 'videoCodec'> {
    return { audio: this.codecs.audio !== undefined, videoCodec: this.codecs.video ? this.videoCodec : undefined };
  }

  tap(): MediaTap {
    const { audio, videoCodec } = this.tapFormat;
    const tap = new StreamTap(this, this.fanout, audio, videoCodec);
    if (this.closed) tap.close();
    else this.fanout.add(tap);
    return tap;
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
    const { audio, audioRed, video } = this.codecs;
    return {
      audio: audio ? [...(audioRed ? [copy(audioRed)] : []), copy(audio)] : [],
      video: video ? [copy(video), new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000 })] : [],
    };
  }

  setMediaDue(due: boolean): void {
    this.mediaDue = due;
  }

  protected onClose(): void {
    this.stats.publishers--;
    clearInterval(this.layerCheck);
    clearTimeout(this.pauseTimer);
    this.nacks.close();
    this.feedback?.close();
    this.fanout.close();
  }
}
