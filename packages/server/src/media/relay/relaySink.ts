/**
 * The publisher's node's end of a relay: a sink of the publication's fanout, like a player's
 * subscriber, that sends the stream on to one other node. Audio always, and of the video the
 * layers that node's players get (or, after its keyframe request, are about to get). Packets keep
 * their sequence numbers under the relay's own SSRCs, so the other node's NACKs name them; they
 * are answered from what was sent. Its keyframe requests go to the publisher's layer.
 */
import { EventEmitter } from 'node:events';
import { GenericNack, RtcpPayloadSpecificFeedback, RtcpTransportLayerFeedback, type RtcpPacket, type RtpPacket } from 'werift';
import type { AudioPacket } from '../werift/audioReceiver.js';
import type { LayerFanout, LayerSink } from '../werift/layerFanout.js';
import type { LayerSource } from '../werift/layerSource.js';
import { asksForKeyFrame } from '../werift/keyFrames.js';
import type { MediaStats } from '../core/types.js';
import { randomSsrc, type DescriptionMessage, type OpenMessage, type RelayCodec } from './relayProtocol.js';

/** Packets kept per relayed SSRC for NACKs, by sequence number modulo this: about a second of video. */
const SENT_HISTORY = 1024;

/** The publication as its relay needs it: what a player's subscriber needs, and the fanout to join. */
export type RelayOrigin = LayerSource & { readonly fanout: LayerFanout };

export class RelaySink implements LayerSink {
  readonly observer = new EventEmitter<{ closed: [] }>();
  readonly audioSsrc = randomSsrc();
  readonly videoSsrcs: number[];
  /** What the other node uses and forwards (bits per layer), as its last `open` said. */
  private used = 1;
  private forwarded = 1;
  /** Layers asked for by keyframe request since that `open`: the other node is switching to them. */
  private requested = 0;
  private readonly sent = new Map<number, Array<Buffer | undefined>>();
  private closed = false;
  /** A VP9 stream's spatial layers are one RTP stream, relayed whole as one (see sendVideo). */
  private readonly wholeStream: boolean;
  lastOpenMs = performance.now();

  constructor(
    readonly relayID: string,
    private readonly origin: RelayOrigin,
    private readonly stats: MediaStats,
    /** Sends a datagram to the other node. */
    private readonly send: (datagram: Buffer) => void,
    /** Sends the relay's description to the other node. */
    private readonly describe: (description: DescriptionMessage) => void,
    /** The other node is told the relay ended, unless it ended it. */
    private readonly ended: () => void,
  ) {
    this.wholeStream = origin.videoCodec === 'vp9';
    const streamSsrc = this.wholeStream ? randomSsrc() : undefined;
    this.videoSsrcs = origin.layers.map(() => streamSsrc ?? randomSsrc());
    for (const ssrc of [this.audioSsrc, ...this.videoSsrcs]) this.sent.set(ssrc, new Array<Buffer | undefined>(SENT_HISTORY));
  }

  /** The other node still wants the relay: its layers, and an answer. */
  opened({ used, forwarded }: OpenMessage): void {
    this.lastOpenMs = performance.now();
    const changed = used !== this.used || forwarded !== this.forwarded;
    this.used = used;
    this.forwarded = forwarded;
    this.requested = 0;
    if (changed) this.origin.layersInUseChanged();
    this.layersChanged();
  }

  layersChanged(): void {
    if (this.closed) return;
    const now = performance.now();
    const usable = this.origin.fanout.usableLayers;
    this.describe({
      type: 'description',
      relayID: this.relayID,
      ...codecsOf(this.origin),
      audioFormat: this.origin.audioFormat,
      videoCodec: this.origin.videoCodec,
      audioSsrc: this.audioSsrc,
      videoSsrcs: this.videoSsrcs,
      layers: this.origin.layers.map((layer) => ({
        usable: (usable & (1 << layer.index)) !== 0,
        width: layer.width,
        height: layer.height,
        temporalLayers: layer.temporalLayers,
        bps: [0, 1, 2].map((tid) => Math.round(layer.bitrateBps(now, tid))) as [number, number, number],
      })),
    });
  }

  layersInUse(): number {
    return this.used;
  }

  /** The other node's players take the layers as they come: their budgets are not known here. */
  videoBudget(): undefined {
    return undefined;
  }

  layersForwarded(): number {
    return this.forwarded | this.requested;
  }

  sendAudio({ rtp }: AudioPacket): void {
    this.relay(rtp, this.audioSsrc);
  }

  /**
   * A VP9 stream goes whole while the other node forwards any of it: a spatial layer's frames need
   * those below, and a stream with gaps where the layers above were would have the other node ask
   * for them in vain.
   */
  sendVideo(layer: number, rtp: RtpPacket): void {
    const forwarded = this.layersForwarded();
    if (this.wholeStream ? forwarded !== 0 : forwarded & (1 << layer)) this.relay(rtp, this.videoSsrcs[layer]!);
  }

  private relay(rtp: RtpPacket, ssrc: number): void {
    const datagram = rtp.serialize();
    datagram.writeUInt32BE(ssrc, 8);
    this.sent.get(ssrc)![rtp.header.sequenceNumber % SENT_HISTORY] = datagram;
    this.stats.relayPacketsSent++;
    this.send(datagram);
  }

  /** Feedback from the other node: keyframe requests for a layer, NACKs for what the relay lost. */
  onRtcp(rtcp: RtcpPacket): void {
    if (rtcp instanceof RtcpPayloadSpecificFeedback) {
      const layer = this.videoSsrcs.findIndex((ssrc) => asksForKeyFrame(rtcp, ssrc));
      if (layer < 0) return;
      this.requested |= 1 << layer;
      this.origin.requestKeyFrame(layer);
    } else if (rtcp instanceof RtcpTransportLayerFeedback && rtcp.feedback instanceof GenericNack) {
      const sent = this.sent.get(rtcp.feedback.mediaSourceSsrc);
      if (!sent) return;
      for (const sequenceNumber of rtcp.feedback.lost) {
        const datagram = sent[sequenceNumber % SENT_HISTORY];
        if (datagram && datagram.readUInt16BE(2) === sequenceNumber) {
          this.stats.relayRetransmissionsSent++;
          this.send(datagram);
        }
      }
    }
  }

  /** Ends the relay; `byOther`: the other node ended it (it is not told). */
  close(byOther = false): void {
    if (this.closed) return;
    this.closed = true;
    if (!byOther) this.ended();
    this.observer.emit('closed');
  }
}

function codecsOf(origin: LayerSource): Pick<DescriptionMessage, 'audioCodecs' | 'videoCodecs'> {
  const { audio, video } = origin.subscriberCodecs();
  const plain = ({ mimeType, clockRate, channels, parameters, rtcpFeedback }: (typeof audio)[number]): RelayCodec => ({
    mimeType,
    clockRate,
    ...(channels !== undefined && { channels }),
    ...(parameters !== undefined && { parameters }),
    rtcpFeedback: rtcpFeedback.map(({ type, parameter }) => ({ type, ...(parameter !== undefined && { parameter }) })),
  });
  return { audioCodecs: audio.map(plain), videoCodecs: video.map(plain) };
}
