/**
 * A sink of a publication's fanout that hands its packets to the server itself (recordings) rather
 * than to a peer: audio as plain Opus, each frame once (RED taken apart, what it recovers
 * included), and video of the largest usable layer, which it moves to when that changes. Holding
 * that layer in use keeps the publisher sending it (dynacast).
 */
import { EventEmitter } from 'node:events';
import type { RtpPacket } from 'werift';
import type { MediaTap, TappedPacket } from '../core/types.js';
import type { AudioPacket } from './audioReceiver.js';
import type { LayerFanout, LayerSink } from './layerFanout.js';
import type { LayerSource } from './layerSource.js';

export class StreamTap implements LayerSink, MediaTap {
  readonly observer = new EventEmitter<{ packet: [TappedPacket]; closed: [] }>();
  private layer: number;
  private ended = false;

  constructor(
    private readonly source: LayerSource,
    private readonly fanout: LayerFanout,
    readonly audio: boolean,
    readonly videoCodec: MediaTap['videoCodec'],
  ) {
    const top = source.layers.length - 1;
    this.layer = source.usableLayerNear(top, top);
  }

  get closed(): boolean {
    return this.ended;
  }

  get onLargestLayer(): boolean {
    return this.layer === this.source.layers.length - 1;
  }

  sendAudio({ rtp, red }: AudioPacket): void {
    const { header } = rtp;
    // The primary block of a RED packet is its last (recovered frames came before as plain packets).
    const primary = red?.[red.length - 1];
    const payload = primary ? rtp.payload.subarray(primary.start, primary.end) : rtp.payload;
    if (payload.length === 0) return;
    this.observer.emit('packet', {
      kind: 'audio',
      layer: 0,
      sequenceNumber: header.sequenceNumber,
      timestamp: header.timestamp,
      marker: header.marker,
      payload,
      senderClock: this.fanout.senderClockOf(header.ssrc),
    });
  }

  sendVideo(layer: number, rtp: RtpPacket): void {
    if (layer !== this.layer || this.videoCodec === undefined) return;
    const { header } = rtp;
    this.observer.emit('packet', {
      kind: 'video',
      layer,
      sequenceNumber: header.sequenceNumber,
      timestamp: header.timestamp,
      marker: header.marker,
      payload: rtp.payload,
      senderClock: this.fanout.senderClockOf(header.ssrc),
    });
  }

  layersInUse(): number {
    return 1 << this.layer;
  }

  layersForwarded(): number {
    return 1 << this.layer;
  }

  /** Moves to the largest usable layer when that changed; the recording waits for its keyframe. */
  layersChanged(): void {
    const top = this.source.layers.length - 1;
    const best = this.source.usableLayerNear(top, this.layer);
    if (best === this.layer) return;
    this.layer = best;
    this.source.layersInUseChanged();
    this.requestKeyFrame();
  }

  videoBudget(): undefined {
    return undefined;
  }

  requestKeyFrame(): void {
    if (!this.ended && this.videoCodec !== undefined) this.source.requestKeyFrame(this.layer);
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.observer.emit('closed');
  }
}
