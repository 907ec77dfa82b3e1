/**
 * Media in Node.js: no camera or screen, so the app brings encoded frames (custom capture) and
 * takes encoded frames (custom render). Each transport is a werift peer connection.
 */
import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtcpPayloadSpecificFeedback,
  RtpHeader,
  RtpPacket,
  useOPUS,
  useVP8,
  type MediaStreamTrack,
  type PeerConfig,
  type RTCRtpReceiver,
  type RTCRtpSender,
  type RTCSessionDescription,
} from 'werift';
import { ErrorCode } from '@parley/protocol';
import type {
  CustomMediaIO,
  CustomAudioRenderHandler,
  CustomVideoRenderHandler,
  EncodedAudioFrameParams,
  EncodedVideoFrameParams,
  MediaBackend,
  MediaTransport,
  PlaySink,
  VideoCodec,
} from '../platform.js';
import { PeerTransport } from '../peerTransport.js';
import { packetizeVp8 } from './vp8.js';
import { Vp8FrameAssembler } from './frameAssembler.js';
import { SequenceUnwrapper } from './unwrap.js';

const VIDEO_CLOCK_KHZ = 90;
const AUDIO_CLOCK_KHZ = 48;
const FIR_COUNT = 4;
/** How long a missing video packet may take to be retransmitted before its frame is dropped. */
const MAX_REPAIR_WAIT_MS = 500;

function peerConfig(): Partial<PeerConfig> {
  return {
    codecs: {
      audio: [useOPUS()],
      video: [useVP8(), new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000 })],
    },
    iceServers: [],
    iceUseIpv6: false,
    bundlePolicy: 'max-bundle',
    // Loopback is excluded by default; a server on 127.0.0.1 is only reachable through it.
    iceAdditionalHostAddresses: ['127.0.0.1'],
  };
}

/** A werift peer connection to the server. */
abstract class WeriftTransport extends PeerTransport<RTCSessionDescription> {
  protected readonly pc = new RTCPeerConnection(peerConfig());

  constructor(onClosed: (closing: Promise<void>) => void) {
    super(onClosed);
    this.pc.connectionStateChange.subscribe((s) => this.connectionStateChanged(s));
  }

  /** Transceivers are added in the constructor, where their event subscriptions must be made. */
  protected async prepare(): Promise<void> {}

  protected async gatheringComplete(): Promise<void> {
    if (this.pc.iceGatheringState !== 'complete') await this.pc.iceGatheringStateChange.watch((s) => s === 'complete');
  }

  protected closePeer(): Promise<void> {
    return this.pc.close();
  }
}

class NodePublishTransport extends WeriftTransport {
  private readonly video: RTCRtpSender;
  private readonly audio: RTCRtpSender;
  // Random start in the lower half, as libwebrtc does, so a stream does not wrap early.
  private videoSeq = 1 + Math.floor(Math.random() * 0x7fff);
  private audioSeq = 1 + Math.floor(Math.random() * 0x7fff);
  private pictureId = Math.floor(Math.random() * 0x8000);

  constructor(keyFrameRequested: () => void, onClosed: (closing: Promise<void>) => void) {
    super(onClosed);
    this.video = this.pc.addTransceiver('video', { direction: 'sendonly' }).sender;
    this.audio = this.pc.addTransceiver('audio', { direction: 'sendonly' }).sender;
    this.video.onPictureLossIndication.subscribe(keyFrameRequested);
    this.video.onRtcp.subscribe((rtcp) => {
      if (rtcp instanceof RtcpPayloadSpecificFeedback && rtcp.feedback.count === FIR_COUNT) keyFrameRequested();
    });
  }

  sendVideo(frame: Uint8Array, referenceTimeMs: number): void {
    const timestamp = Math.round(referenceTimeMs * VIDEO_CLOCK_KHZ) >>> 0;
    const payloads = packetizeVp8(frame, this.pictureId);
    this.pictureId = (this.pictureId + 1) & 0x7fff;
    payloads.forEach((payload, i) => {
      const header = new RtpHeader({
        sequenceNumber: this.videoSeq,
        timestamp,
        marker: i === payloads.length - 1,
        payloadType: 0,
        ssrc: 0,
      });
      this.videoSeq = (this.videoSeq + 1) & 0xffff;
      void this.video
        .sendRtp(new RtpPacket(header, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)))
        .catch(() => undefined);
    });
  }

  sendAudio(frame: Uint8Array, referenceTimeMs: number): void {
    const timestamp = Math.round(referenceTimeMs * AUDIO_CLOCK_KHZ) >>> 0;
    const header = new RtpHeader({ sequenceNumber: this.audioSeq, timestamp, marker: false, payloadType: 0, ssrc: 0 });
    this.audioSeq = (this.audioSeq + 1) & 0xffff;
    void this.audio.sendRtp(new RtpPacket(header, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength))).catch(() => undefined);
  }
}

class NodePlayTransport extends WeriftTransport {
  private assembler: Vp8FrameAssembler | undefined;

  constructor(sink: PlaySink, custom: NodeCustomMedia, onClosed: (closing: Promise<void>) => void) {
    super(onClosed);
    const { streamID } = sink;
    this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.pc.addTransceiver('audio', { direction: 'recvonly' });
    this.pc
      .getTransceivers()
      .forEach((t) =>
        t.onTrack.subscribe((track) =>
          t.kind === 'video' ? this.receiveVideo(track, t.receiver, sink, custom) : this.receiveAudio(track, streamID, custom),
        ),
      );
  }

  private receiveVideo(track: MediaStreamTrack, receiver: RTCRtpReceiver, sink: PlaySink, custom: NodeCustomMedia): void {
    const timestamps = new SequenceUnwrapper(32);
    this.assembler = new Vp8FrameAssembler({
      maxWaitMs: MAX_REPAIR_WAIT_MS,
      onKeyFrameNeeded: () => {
        if (track.ssrc !== undefined) void receiver.sendRtcpPLI(track.ssrc).catch(() => undefined);
      },
      onFrame: (frame) => {
        sink.onFirstVideoFrame();
        const params: EncodedVideoFrameParams = { codec: 'vp8', isKeyFrame: frame.isKeyFrame, width: frame.width, height: frame.height };
        custom.videoRenderHandler?.onRemoteVideoFrameEncodedDataReceived?.(
          frame.data,
          params,
          timestamps.unwrap(frame.rtpTimestamp) / VIDEO_CLOCK_KHZ,
          sink.streamID,
        );
      },
    });
    const assembler = this.assembler;
    track.onReceiveRtp.subscribe((rtp) => assembler.push(rtp.header.sequenceNumber, rtp.header.timestamp, rtp.header.marker, rtp.payload));
  }

  private receiveAudio(track: MediaStreamTrack, streamID: string, custom: NodeCustomMedia): void {
    const seq = new SequenceUnwrapper(16);
    const timestamps = new SequenceUnwrapper(32);
    let last = -Infinity;
    track.onReceiveRtp.subscribe((rtp) => {
      const ext = seq.unwrap(rtp.header.sequenceNumber);
      if (ext <= last) return; // audio is not retransmitted: a late packet is stale
      last = ext;
      const ms = timestamps.unwrap(rtp.header.timestamp) / AUDIO_CLOCK_KHZ;
      custom.audioRenderHandler?.onRemoteAudioFrameEncodedDataReceived?.(new Uint8Array(rtp.payload), { codec: 'opus' }, ms, streamID);
    });
  }

  protected override onClose(): void {
    this.assembler?.close();
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
    publisher.sendVideo(frame, referenceTimeMillisecond);
    return 0;
  }

  sendAudio(channel: number, frame: Uint8Array, params: EncodedAudioFrameParams, referenceTimeMillisecond: number): number {
    if (params.codec !== 'opus') return ErrorCode.UnsupportedRequest;
    const publisher = this.publishers.get(channel);
    if (!publisher) return ErrorCode.NotLoggedIn;
    publisher.sendAudio(frame, referenceTimeMillisecond);
    return 0;
  }
}

export class NodeMedia implements MediaBackend {
  readonly custom = new NodeCustomMedia();
  private readonly transports = new Set<WeriftTransport>();
  private readonly closing = new Set<Promise<void>>();

  constructor(private readonly events: { keyFrameRequested(channel: number): void }) {}

  /** Encoded custom capture sends VP8 only. */
  createPublishTransport(channel: number, videoCodec: VideoCodec): MediaTransport | undefined {
    if (videoCodec !== 'VP8') return undefined;
    const transport = new NodePublishTransport(
      () => this.events.keyFrameRequested(channel),
      (closing) => {
        this.forget(transport, closing);
        if (this.custom.publishers.get(channel) === transport) this.custom.publishers.delete(channel);
      },
    );
    this.custom.publishers.set(channel, transport);
    this.transports.add(transport);
    return transport;
  }

  createPlayTransport(sink: PlaySink): MediaTransport {
    const transport = new NodePlayTransport(sink, this.custom, (closing) => this.forget(transport, closing));
    this.transports.add(transport);
    return transport;
  }

  /** No camera in Node.js: preview is a no-op that succeeds. */
  async startPreview(): Promise<number> {
    return 0;
  }

  stopPreview(): void {}

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
