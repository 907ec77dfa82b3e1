/**
 * The media plane as the room logic sees it: publishers that accept an SDP offer and relay their
 * media, without transcoding, to subscribers. Nothing outside this folder knows which WebRTC
 * stack implements it.
 */
import type { EventEmitter } from 'node:events';

export interface EndpointEvents {
  /** ICE and DTLS are up; media can flow. */
  connected: [];
  /** The endpoint is gone (closed locally, transport failed, or its publisher closed). Emitted once. */
  closed: [];
}

export interface MediaEndpoint {
  /** The SDP answer to the offer the endpoint was created with. */
  readonly answer: string;
  readonly observer: EventEmitter<EndpointEvents>;
  readonly closed: boolean;
  close(): void;
}

export interface MediaPublisher extends MediaEndpoint {
  /** Creates a subscriber that receives this publisher's media, answering the player's offer. */
  subscribe(offer: string): Promise<MediaSubscriber>;
}

export type MediaSubscriber = MediaEndpoint;

export interface MediaPlane {
  publish(offer: string): Promise<MediaPublisher>;
  close(): Promise<void>;
}

/** An offer the media plane cannot accept; the room logic maps it to InvalidSdp. */
export class SdpError extends Error {
  override readonly name = 'SdpError';
}
