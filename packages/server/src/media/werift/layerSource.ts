/**
 * What a player's peer connection (WeriftSubscriber) needs of the publisher whose media it
 * forwards: its layers and formats, and a way to tell it what players want. The publisher
 * implements it; the subscriber knows nothing else of it, so the two do not import each other.
 */
import type { RTCRtpCodecParameters } from 'werift';
import type { AudioFormat } from './audioReceiver.js';
import type { VideoLayer } from '../core/videoLayer.js';
import type { VideoCodec } from '../core/videoRewriter.js';

export type Kind = 'audio' | 'video';

export interface LayerSource {
  /** Its simulcast layers, or a VP9 stream's spatial layers, smallest first (one without either). */
  readonly layers: readonly VideoLayer[];
  /** How its audio comes (RED -1 when it sends none; Opus -1 before negotiation). */
  readonly audioFormat: AudioFormat;
  readonly videoCodec: VideoCodec;
  /** The codecs a subscriber must offer its player: exactly what the publisher sends. */
  subscriberCodecs(): { audio: RTCRtpCodecParameters[]; video: RTCRtpCodecParameters[] };
  /** The highest usable layer at most `layer`, else the lowest usable above it, else `fallback`. */
  usableLayerNear(layer: number, fallback?: number): number;
  /** A subscriber's choice of layers changed (layers no player uses pause: dynacast). */
  layersInUseChanged(): void;
  requestKeyFrame(layer: number): void;
}
