/**
 * Media in Node.js: no camera or screen, so the app brings encoded frames (custom capture) and
 * takes encoded frames (custom render). Each transport is a werift peer connection.
 */
import {
  GenericNack,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RTP_EXTENSION_URI,
  RtcpPayloadSpecificFeedback,
  RtcpSenderInfo,
  RtcpSrPacket,
  RtcpTransportLayerFeedback,
  RtpHeader,
  RtpPacket,
  useOPUS,
  useSdesMid,
  useAudioLevelIndication,
  useSdesRTPStreamId,
  useVP8,
  RTCRtpHeaderExtensionParameters,
  type RtcpPacket,
  type RTCDtlsTransport,
  type RTCRtpTransceiver,
  type MediaStreamTrack,
  type PeerConfig,
  type RTCRtpSender,
  type RTCSessionDescription,
} from 'werift';
import {
  AUDIO_LEVEL_URI,
  audioLevelByte,
  ErrorCode,
  SIMULCAST_LAYER_EXTENSION_URI,
  soundLevelFromByte,
  type IceServer,
  type LivenessSample,
} from '@parley/protocol';
import {
  checkPairInUse,
  checkWeriftInternalsOnce,
  dtlsSocketInternals,
  guardMedia,
  livenessSample,
  NackGenerator,
  noMediaDrops,
  ntpNow,
  rtpReceiverInternals,
  rtpSenderInternals,
  withoutDefaultStunServer,
  type MediaDrops,
  type MediaReceived,
} from '@parley/protocol/rtp';
import type {
  CustomMediaIO,
  CustomAudioRenderHandler,
  CustomVideoRenderHandler,
  EncodedAudioFrameParams,
  EncodedVideoFrameParams,
  MediaBackend,
  MediaTransport,
  PlaySink,
  PublishMedia,
} from '../platform.js';
import { simulcastRids } from '../simulcast.js';
import { PeerTransport } from '../peerTransport.js';
import { FreezeCounter, type MediaSample } from '../quality.js';
import { packetizeVp8 } from './vp8.js';
import { Vp8FrameAssembler } from './frameAssembler.js';
import { SequenceUnwrapper } from './unwrap.js';

const VIDEO_CLOCK_KHZ = 90;
/** How often the video layers' sender reports go (libwebrtc's interval for video). */
const VIDEO_REPORT_INTERVAL_MS = 1000;
const AUDIO_CLOCK_KHZ = 48;
const PLI_COUNT = 1;
const FIR_COUNT = 4;
/** A played stream whose audio sent no level for this long is silent. */
const SILENT_AFTER_MS = 500;
/** How long a missing video packet may take to be retransmitted before its frame is dropped. */
const MAX_REPAIR_WAIT_MS = 500;

function peerConfig(iceServers: IceServer[]): Partial<PeerConfig> {
  return {
    codecs: {
      audio: [useOPUS()],
      video: [useVP8(), new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000 })],
    },
    // The MID and, for simulcast, the RID name what each packet carries; audio packets carry their level.
    headerExtensions: { audio: [useSdesMid(), useAudioLevelIndication()], video: [useSdesMid(), useSdesRTPStreamId()] },
    // werift uses the first TURN URL (falling back from UDP to TCP itself).
    iceServers: iceServers.map(({ urls, username, credential }) => ({ urls: urls[0]!, username, credential })),
    iceUseIpv6: false,
    bundlePolicy: 'max-bundle',
    // Loopback is excluded by default; a server on 127.0.0.1 is only reachable through it.
    iceAdditionalHostAddresses: ['127.0.0.1'],
  };
}

/**
 * Nothing received for this long on a connected transport: its pair in use is checked, and again
 * as long as the quiet lasts (as libwebrtc pings a connection that stopped receiving), so that a
 * NAT that moved us shows the server our new address within about this long, not at the next
 * consent check 4-6 s on.
 */
const QUIET_CHECK_MS = 1000;

/**
 * A new DTLS association on a transport whose ICE restarted to a server with another certificate,
 * as libwebrtc makes when a renegotiation changes the remote fingerprint. werift keeps its
 * association across ICE restarts: the old one is detached from the ICE transport (closing it
 * would close ICE too), the handshake runs again, and SRTP takes the new keys.
 */
async function restartDtls(transport: RTCDtlsTransport): Promise<void> {
  if (transport.dtls) dtlsSocketInternals(transport.dtls).transport.socket.onData = () => undefined;
  transport.state = 'new';
  await transport.start();
  transport.updateSrtpSession();
}

/** A werift peer connection to the server. */
abstract class WeriftTransport extends PeerTransport<RTCSessionDescription> {
  protected readonly pc: RTCPeerConnection;
  private readonly received: MediaReceived;
  private readonly quietChecks: ReturnType<typeof setInterval>;
  /** The server's DTLS fingerprint in the latest answer. */
  private remoteFingerprint: string | undefined;

  constructor(
    iceServers: IceServer[],
    drops: MediaDrops,
    onClosed: (closing: Promise<void>) => void,
    headerExtensions?: PeerConfig['headerExtensions'],
  ) {
    super(onClosed);
    const guarded = guardMedia(
      withoutDefaultStunServer(new RTCPeerConnection({ ...peerConfig(iceServers), ...(headerExtensions && { headerExtensions }) })),
      drops,
    );
    this.pc = guarded.pc;
    this.received = guarded.received;
    this.pc.connectionStateChange.subscribe((s) => this.connectionStateChanged(s));
    let heard = { packets: 0, atMs: performance.now() };
    this.quietChecks = setInterval(() => {
      const { packets } = livenessSample(this.received, this.receives);
      const now = performance.now();
      if (packets !== heard.packets) heard = { packets, atMs: now };
      else if (now - heard.atMs >= QUIET_CHECK_MS) {
        const agent = this.pc.getTransceivers()[0]?.sender.dtlsTransport?.iceTransport.connection;
        if (agent) checkPairInUse(agent);
        heard.atMs = now;
      }
    }, QUIET_CHECK_MS / 4).unref();
  }

  /** Transceivers are added in the constructor, where their event subscriptions must be made. */
  protected async prepare(): Promise<void> {}

  protected async gatheringComplete(): Promise<void> {
    if (this.pc.iceGatheringState !== 'complete') await this.pc.iceGatheringStateChange.watch((s) => s === 'complete');
  }

  /**
   * After an ICE restart's answer werift starts no checks (its DTLS is still up): they are
   * started here, and their outcome is the transport's state (werift's own connection state
   * stays 'failed' after a failed restart). An answer with another fingerprint than the last
   * (the server moved the media to another of its threads) then gets a new DTLS association.
   */
  override async applyAnswer(sdp: string): Promise<void> {
    const fingerprint = /^a=fingerprint:(.+)$/m.exec(sdp)?.[1]?.trim();
    const newServer = this.remoteFingerprint !== undefined && fingerprint !== this.remoteFingerprint;
    this.remoteFingerprint = fingerprint;
    await super.applyAnswer(sdp);
    const transport = this.pc.getTransceivers()[0]?.sender.dtlsTransport;
    // A restart drops the nominated pair (werift's ICE state is no guide: it says 'completed' once gathered).
    if (transport?.state === 'connected' && !transport.iceTransport.connection.nominated) {
      transport.iceTransport
        .start()
        .then(() => (newServer ? restartDtls(transport) : undefined))
        .then(
          () => this.connectionStateChanged('connected'),
          () => this.connectionStateChanged('failed'),
        );
    }
  }

  /** Counted as they authenticate: werift's getStats gathers everything and costs a bot real CPU. */
  override async mediaProgress(): Promise<LivenessSample> {
    return livenessSample(this.received, this.receives);
  }

  protected closePeer(): Promise<void> {
    clearInterval(this.quietChecks);
    return this.pc.close();
  }
}

/** Packets of each layer kept to answer the server's NACKs. */
const SENT_HISTORY = 512;

/** One simulcast layer's RTP stream as this publisher sends it. */
class LayerStream {
  // Random start in the lower half, as libwebrtc does, so a stream does not wrap early.
  sequenceNumber = 1 + Math.floor(Math.random() * 0x7fff);
  pictureId = Math.floor(Math.random() * 0x8000);
  readonly sent = new Array<RtpPacket | undefined>(SENT_HISTORY);
  /** False while no player uses this layer: its frames are not sent. */
  active = true;
  /** The MID and RID elements every packet carries, known once the answer is applied. */
  extensions: Array<{ id: number; payload: Buffer }> = [];
  /** What went out first-hand (werift's sender does not see these packets, so its statistics miss them). */
  framesSent = 0;
  bytesSent = 0;
  packetsSent = 0;
  /** The last packet sent first-hand: its RTP timestamp and when it went (NTP), for sender reports. */
  lastTimestamp = 0;
  lastSentAt = 0n;

  constructor(
    readonly ssrc: number,
    /** The RTP stream id naming the layer; none without simulcast. */
    readonly rid: string | undefined,
  ) {}
}

class NodePublishTransport extends WeriftTransport {
  protected readonly receives = 'rtcp';
  private readonly video: RTCRtpSender;
  private readonly audio: RTCRtpSender;
  private readonly layers: LayerStream[];
  private audioSeq = 1 + Math.floor(Math.random() * 0x7fff);
  /** The sound level the app gave with its last audio frame. */
  private capturedLevel = 0;
  private reportTimer: NodeJS.Timeout | undefined;

  constructor(
    layerCount: number,
    private readonly keyFrameRequested: (layer: number) => void,
    iceServers: IceServer[],
    drops: MediaDrops,
    onClosed: (closing: Promise<void>) => void,
  ) {
    super(iceServers, drops, onClosed);
    const videoTransceiver = this.pc.addTransceiver('video', { direction: 'sendonly' });
    this.video = videoTransceiver.sender;
    this.audio = this.pc.addTransceiver('audio', { direction: 'sendonly' }).sender;
    this.layers =
      layerCount > 1
        ? simulcastRids(layerCount).map((rid) => new LayerStream(randomSsrc(), rid))
        : [new LayerStream(this.video.ssrc, undefined)];
  }

  /** With simulcast the offer names the layers (RIDs, smallest first) instead of one SSRC. */
  override async createOffer(): Promise<string> {
    const sdp = await super.createOffer();
    if (this.layers.length === 1) return sdp;
    const rids = this.layers.map((l) => l.rid!);
    return mapMediaSection(sdp, 'video', (lines) => [
      ...lines.filter((l) => !l.startsWith('a=ssrc')),
      ...rids.map((rid) => `a=rid:${rid} send`),
      `a=simulcast:send ${rids.join(';')}`,
    ]);
  }

  override async applyAnswer(sdp: string): Promise<void> {
    await super.applyAnswer(sdp);
    const transceiver = this.pc.getTransceivers().find((t) => t.sender === this.video)!;
    const id = (uri: string): number | undefined => transceiver.headerExtensions.find((e) => e.uri === uri)?.id;
    const [midId, ridId, mid] = [id(RTP_EXTENSION_URI.sdesMid), id(RTP_EXTENSION_URI.sdesRTPStreamID), transceiver.mid];
    for (const stream of this.layers) {
      stream.extensions = [
        ...(midId !== undefined && mid ? [{ id: midId, payload: Buffer.from(mid) }] : []),
        ...(ridId !== undefined && stream.rid ? [{ id: ridId, payload: Buffer.from(stream.rid) }] : []),
      ];
    }
    // Keyframe requests and NACKs name a layer's SSRC, which werift's sender does not know.
    this.video.dtlsTransport.onRtcp.subscribe((rtcp) => this.onRtcp(rtcp));
    clearInterval(this.reportTimer);
    this.reportTimer = setInterval(() => this.reportVideo(), VIDEO_REPORT_INTERVAL_MS);
    this.reportTimer.unref();
  }

  private onRtcp(rtcp: RtcpPacket): void {
    const layerOf = (ssrc: number): number => this.layers.findIndex((l) => l.ssrc === ssrc);
    if (rtcp instanceof RtcpPayloadSpecificFeedback) {
      const feedback = rtcp.feedback as { mediaSsrc?: number; fir?: Array<{ ssrc: number }> };
      const count = rtcp.feedback.count;
      const ssrcs = count === PLI_COUNT ? [feedback.mediaSsrc ?? -1] : count === FIR_COUNT ? (feedback.fir ?? []).map((e) => e.ssrc) : [];
      for (const layer of new Set(ssrcs.map(layerOf))) if (layer >= 0) this.keyFrameRequested(layer);
    } else if (rtcp instanceof RtcpTransportLayerFeedback && rtcp.feedback instanceof GenericNack) {
      const stream = this.layers[layerOf(rtcp.feedback.mediaSourceSsrc)];
      if (!stream) return;
      for (const seq of rtcp.feedback.lost) {
        const packet = stream.sent[seq % SENT_HISTORY];
        if (packet?.header.sequenceNumber === seq) this.transmit(packet);
      }
    }
  }

  setActiveLayers(active: boolean[]): void {
    this.layers.forEach((layer, i) => (layer.active = active[i] ?? true));
  }

  /** Returns false when `layer` does not exist. */
  sendVideo(frame: Uint8Array, layer: number, referenceTimeMs: number): boolean {
    const stream = this.layers[layer];
    if (!stream) return false;
    if (!stream.active) return true; // paused: no player uses it
    const timestamp = Math.round(referenceTimeMs * VIDEO_CLOCK_KHZ) >>> 0;
    const payloads = packetizeVp8(frame, stream.pictureId);
    stream.pictureId = (stream.pictureId + 1) & 0x7fff;
    stream.framesSent++;
    const sentAt = ntpNow();
    payloads.forEach((payload, i) => {
      const header = new RtpHeader({
        sequenceNumber: stream.sequenceNumber,
        timestamp,
        marker: i === payloads.length - 1,
        payloadType: this.video.codec?.payloadType ?? 0,
        ssrc: stream.ssrc,
        extensions: stream.extensions,
      });
      stream.sequenceNumber = (stream.sequenceNumber + 1) & 0xffff;
      const packet = new RtpPacket(header, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
      stream.sent[header.sequenceNumber % SENT_HISTORY] = packet;
      stream.bytesSent += header.serializeSize + packet.payload.length;
      stream.packetsSent++;
      stream.lastTimestamp = timestamp;
      stream.lastSentAt = sentAt;
      this.transmit(packet);
    });
    return true;
  }

  /**
   * Sender reports of the video layers, whose packets bypass werift's sender (which reports only
   * what it sent itself): receivers, recordings among them, sync audio and video by them.
   */
  private reportVideo(): void {
    if (this.pc.connectionState === 'closed') {
      clearInterval(this.reportTimer);
      return;
    }
    const dtls = this.video.dtlsTransport;
    if (dtls?.state !== 'connected') return;
    const reports = this.layers
      .filter((l) => l.packetsSent > 0)
      .map(
        (l) =>
          new RtcpSrPacket({
            ssrc: l.ssrc,
            senderInfo: new RtcpSenderInfo({
              ntpTimestamp: l.lastSentAt,
              rtpTimestamp: l.lastTimestamp,
              packetCount: l.packetsSent >>> 0,
              octetCount: l.bytesSent >>> 0,
            }),
          }),
      );
    if (reports.length > 0) void dtls.sendRtcp(reports).catch(() => undefined);
  }

  async soundLevel(): Promise<number> {
    return this.capturedLevel;
  }

  override async stats(): Promise<MediaSample> {
    const sample = await super.stats();
    sample.framesSent = Math.max(...this.layers.map((l) => l.framesSent));
    sample.videoBytesSent = this.layers.reduce((sum, l) => sum + l.bytesSent, 0);
    sample.videoCodec = 'video/VP8';
    return sample;
  }

  private transmit(packet: RtpPacket): void {
    const dtls = this.video.dtlsTransport;
    if (dtls?.state !== 'connected') return;
    void dtls.sendRtp(packet.payload, packet.header).catch(() => undefined);
  }

  /** `soundLevel` (0–100), when the app gave one, goes in the audio level extension. */
  sendAudio(frame: Uint8Array, referenceTimeMs: number, soundLevel: number | undefined): void {
    const timestamp = Math.round(referenceTimeMs * AUDIO_CLOCK_KHZ) >>> 0;
    const levelId = this.pc
      .getTransceivers()
      .find((t) => t.sender === this.audio)
      ?.headerExtensions.find((e) => e.uri === AUDIO_LEVEL_URI)?.id;
    this.capturedLevel = soundLevel ?? 0;
    const extensions =
      soundLevel !== undefined && levelId !== undefined ? [{ id: levelId, payload: Buffer.from([audioLevelByte(soundLevel)]) }] : [];
    const header = new RtpHeader({ sequenceNumber: this.audioSeq, timestamp, marker: false, payloadType: 0, ssrc: 0, extensions });
    this.audioSeq = (this.audioSeq + 1) & 0xffff;
    void this.audio.sendRtp(new RtpPacket(header, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength))).catch(() => undefined);
    // werift stamps its sender reports with a malformed NTP fraction (the decimal digits of the
    // seconds): its own sending of the packet above (synchronous) has just set it, and is corrected.
    rtpSenderInternals(this.audio).ntpTimestamp = ntpNow();
  }
}

const randomSsrc = (): number => (1 + Math.floor(Math.random() * 0xfffffffe)) >>> 0;

/** Rewrites the lines of the first `kind` media section. */
function mapMediaSection(sdp: string, kind: 'audio' | 'video', map: (lines: string[]) => string[]): string {
  const sections = sdp.split(/\r\n(?=m=)/);
  const index = sections.findIndex((section) => section.startsWith(`m=${kind} `));
  if (index < 0) return sdp;
  const lines = sections[index]!.split('\r\n').filter((line) => line !== '');
  sections[index] = map(lines).join('\r\n') + (index === sections.length - 1 ? '\r\n' : '');
  return sections.join('\r\n');
}

class NodePlayTransport extends WeriftTransport {
  protected readonly receives = 'rtp';
  private assembler: Vp8FrameAssembler | undefined;
  private nacks: NackGenerator | undefined;
  /** The sound level of the last audio packet that carried one. */
  private remoteLevel = { level: 0, atMs: -Infinity };
  /** Frames handed to the app, and its freezes: what a browser's decoder and renderer would count. */
  private framesDelivered = 0;
  private readonly freezes = new FreezeCounter();

  constructor(
    sink: PlaySink,
    custom: NodeCustomMedia,
    iceServers: IceServer[],
    drops: MediaDrops,
    onClosed: (closing: Promise<void>) => void,
  ) {
    super(iceServers, drops, onClosed, {
      audio: [useAudioLevelIndication()],
      video: [new RTCRtpHeaderExtensionParameters({ uri: SIMULCAST_LAYER_EXTENSION_URI })],
    });
    const { streamID } = sink;
    this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.pc.addTransceiver('audio', { direction: 'recvonly' });
    this.pc
      .getTransceivers()
      .forEach((t) =>
        t.onTrack.subscribe((track) =>
          t.kind === 'video' ? this.receiveVideo(track, t, sink, custom) : this.receiveAudio(track, t, streamID, custom),
        ),
      );
  }

  private receiveVideo(track: MediaStreamTrack, transceiver: RTCRtpTransceiver, sink: PlaySink, custom: NodeCustomMedia): void {
    const { receiver } = transceiver;
    const timestamps = new SequenceUnwrapper(32);
    this.assembler = new Vp8FrameAssembler({
      maxWaitMs: MAX_REPAIR_WAIT_MS,
      onKeyFrameNeeded: () => {
        if (track.ssrc !== undefined) void receiver.sendRtcpPLI(track.ssrc).catch(() => undefined);
      },
      onFrame: (frame) => {
        this.framesDelivered++;
        this.freezes.onFrame(performance.now());
        sink.onFirstVideoFrame();
        if (frame.isKeyFrame) sink.onVideoSize(frame.width, frame.height);
        const params: EncodedVideoFrameParams = {
          codec: 'vp8',
          isKeyFrame: frame.isKeyFrame,
          width: frame.width,
          height: frame.height,
          layer: frame.layer,
        };
        custom.videoRenderHandler?.onRemoteVideoFrameEncodedDataReceived?.(
          frame.data,
          params,
          timestamps.unwrap(frame.rtpTimestamp) / VIDEO_CLOCK_KHZ,
          sink.streamID,
        );
      },
    });
    // werift's generator asks every 5 ms and gives up after 55 ms, before a packet the server
    // itself had to repair from the publisher can arrive; ours keeps asking as long as the
    // assembler waits (and compares sequence numbers across the 16-bit wrap).
    const nacks = (this.nacks = new NackGenerator((mediaSourceSsrc, lost) => {
      const nack = new GenericNack({ senderSsrc: receiver.rtcpSsrc, mediaSourceSsrc, lost });
      void receiver.dtlsTransport.sendRtcp([new RtcpTransportLayerFeedback({ feedback: nack })]).catch(() => undefined);
    }));
    rtpReceiverInternals(receiver).nack.addPacket = (packet) =>
      nacks.onPacket(packet.header.ssrc, packet.header.sequenceNumber, performance.now());
    const assembler = this.assembler;
    track.onReceiveRtp.subscribe((rtp) => {
      // The extension id is the one our offer chose, known once the answer is applied.
      const layerId = transceiver.headerExtensions.find((e) => e.uri === SIMULCAST_LAYER_EXTENSION_URI)?.id;
      const layer = rtp.header.extensions.find((e) => e.id === layerId)?.payload[0] ?? 0;
      assembler.push(rtp.header.sequenceNumber, rtp.header.timestamp, rtp.header.marker, rtp.payload, layer);
    });
  }

  private receiveAudio(track: MediaStreamTrack, transceiver: RTCRtpTransceiver, streamID: string, custom: NodeCustomMedia): void {
    const seq = new SequenceUnwrapper(16);
    const timestamps = new SequenceUnwrapper(32);
    let last = -Infinity;
    track.onReceiveRtp.subscribe((rtp) => {
      const levelId = transceiver.headerExtensions.find((e) => e.uri === AUDIO_LEVEL_URI)?.id;
      const level = rtp.header.extensions.find((e) => e.id === levelId)?.payload[0];
      if (level !== undefined) this.remoteLevel = { level: soundLevelFromByte(level), atMs: performance.now() };
      const ext = seq.unwrap(rtp.header.sequenceNumber);
      if (ext <= last) return; // audio is not retransmitted: a late packet is stale
      last = ext;
      const ms = timestamps.unwrap(rtp.header.timestamp) / AUDIO_CLOCK_KHZ;
      custom.audioRenderHandler?.onRemoteAudioFrameEncodedDataReceived?.(new Uint8Array(rtp.payload), { codec: 'opus' }, ms, streamID);
    });
  }

  /** The stream's sound level: of its last audio packet, 0 once none came for a while. */
  async soundLevel(): Promise<number> {
    return performance.now() - this.remoteLevel.atMs <= SILENT_AFTER_MS ? this.remoteLevel.level : 0;
  }

  override async stats(): Promise<MediaSample> {
    const sample = await super.stats();
    sample.framesReceived = sample.framesDecoded = this.framesDelivered;
    sample.freezeCount = this.freezes.count;
    sample.freezeSeconds = this.freezes.seconds;
    return sample;
  }

  protected override onClose(): void {
    this.assembler?.close();
    this.nacks?.close();
  }
}

class NodeCustomMedia implements CustomMediaIO {
  videoRenderHandler: CustomVideoRenderHandler | null = null;
  audioRenderHandler: CustomAudioRenderHandler | null = null;
  readonly publishers = new Map<number, NodePublishTransport>();

  sendVideo(channel: number, frame: Uint8Array, params: EncodedVideoFrameParams, referenceTimeMillisecond: number): number {
    if (params.codec !== 'vp8') return ErrorCode.UnsupportedRequest;
    const publisher = this.publishers.get(channel);
    if (!publisher) return ErrorCode.NotLoggedIn;
    return publisher.sendVideo(frame, params.layer ?? 0, referenceTimeMillisecond) ? 0 : ErrorCode.UnsupportedRequest;
  }

  sendAudio(channel: number, frame: Uint8Array, params: EncodedAudioFrameParams, referenceTimeMillisecond: number): number {
    if (params.codec !== 'opus') return ErrorCode.UnsupportedRequest;
    const publisher = this.publishers.get(channel);
    if (!publisher) return ErrorCode.NotLoggedIn;
    publisher.sendAudio(frame, referenceTimeMillisecond, params.audioLevel);
    return 0;
  }
}

export class NodeMedia implements MediaBackend {
  readonly custom = new NodeCustomMedia();
  /** What every transport of this engine dropped as unauthenticated, replayed or malformed, by reason. */
  readonly drops = noMediaDrops();
  private readonly transports = new Set<WeriftTransport>();
  private readonly closing = new Set<Promise<void>>();

  /** Throws, naming what is missing, when the installed werift lacks the internals its transports rely on. */
  constructor(private readonly events: { keyFrameRequested(channel: number, layer: number): void }) {
    checkWeriftInternalsOnce();
  }

  /** Encoded custom capture sends VP8 only. */
  createPublishTransport(
    channel: number,
    { videoCodec, simulcastLayers = 1 }: PublishMedia,
    iceServers: IceServer[],
  ): MediaTransport | undefined {
    if (videoCodec !== 'VP8') return undefined;
    const transport = new NodePublishTransport(
      simulcastLayers,
      (layer) => this.events.keyFrameRequested(channel, layer),
      iceServers,
      this.drops,
      (closing) => {
        this.forget(transport, closing);
        if (this.custom.publishers.get(channel) === transport) this.custom.publishers.delete(channel);
      },
    );
    this.custom.publishers.set(channel, transport);
    this.transports.add(transport);
    return transport;
  }

  createPlayTransport(sink: PlaySink, iceServers: IceServer[]): MediaTransport {
    const transport = new NodePlayTransport(sink, this.custom, iceServers, this.drops, (closing) => this.forget(transport, closing));
    this.transports.add(transport);
    return transport;
  }

  /** No camera in Node.js: preview is a no-op that succeeds. */
  async startPreview(): Promise<number> {
    return 0;
  }

  stopPreview(): void {}

  /** No devices here: the engine drops the app's frames of what is muted. */
  applyCapture(): void {}

  /** No speaker: the app renders what it receives. */
  muteSpeaker(): void {}

  /** The app encodes its own frames: nothing to capture, process or preview. */
  applyVideoConfig(): void {}
  applyAudioConfig(): void {}
  mirrorPreview(): void {}
  applyAudioProcessing(): void {}

  private forget(transport: WeriftTransport, closing: Promise<void>): void {
    this.transports.delete(transport);
    this.closing.add(closing);
    void closing.then(() => this.closing.delete(closing));
  }

  /** Resolves once every peer connection (sockets included) is shut. */
  async destroy(): Promise<void> {
    for (const transport of [...this.transports]) transport.close();
    await Promise.all(this.closing);
  }
}
