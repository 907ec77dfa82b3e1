import { DEFAULT_MEDIA_STALL_MS, type IceServer, type StreamDevices } from '@parley/protocol';
import type { EventHub } from './events.js';
import type { MediaBackend } from './platform.js';
import type { SignallingClient } from './signalling.js';

export interface Timeouts {
  /** WebSocket open + server hello. */
  connectTimeoutMs: number;
  /** One signalling request. */
  requestTimeoutMs: number;
  /** ICE + DTLS of one media transport. */
  mediaConnectTimeoutMs: number;
  /** How often a player waiting for a stream that does not exist asks again (it also asks when the stream appears). */
  playRetryIntervalMs: number;
  /** How often publishers and players report their quality. */
  qualityIntervalMs: number;
  /** A connected transport that receives nothing (no RTP, no RTCP) for this long is stalled: its ICE is restarted. */
  mediaStallMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  mediaConnectTimeoutMs: 15_000,
  playRetryIntervalMs: 5_000,
  qualityIntervalMs: 3_000,
  mediaStallMs: DEFAULT_MEDIA_STALL_MS,
};

/** What publishers and players need from the engine. */
export interface EngineContext {
  readonly hub: EventHub;
  readonly media: MediaBackend;
  readonly timeouts: Timeouts;
  /** How long interrupted publishing is retried before giving up (the reconnect window). */
  readonly retryWindowMs: number;
}

/** The room a publisher or player works in (Room is one). */
export interface RoomLink {
  readonly id: string;
  /** The signalling client while logged in (not while reconnecting), else null. */
  readonly activeSignalling: SignallingClient | null;
  /** A stream's camera and microphone as the room knows them. */
  devicesOf(streamID: string): StreamDevices;
  /** TURN servers with this session's credentials, from the latest login or resume (none if the server has no TURN). */
  readonly iceServers: IceServer[];
}
