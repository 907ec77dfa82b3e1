import type { IceServer, LivenessSample, Scenario } from '@parley/protocol';
import type { MediaSample } from './quality.js';
import type { CaptureState } from './captureControls.js';
import type { VideoConfig } from './videoConfig.js';
import type { AudioConfig } from './audioConfig.js';
import type { DeviceChange, DeviceInfo, DeviceKind } from './deviceWatch.js';

/**
 * What differs between the browser and Node.js: the WebSocket, and the media (camera and
 * `<video>` elements in the browser, encoded custom capture and render in Node). The engine and
 * its state machines are written against these interfaces only.
 */

/** The subset of the WHATWG WebSocket that both `ws` and browsers provide. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

/** VP9 is sent as spatial layers of one stream (SVC), the others as simulcast layers. */
export type VideoCodec = 'VP8' | 'VP9' | 'H264';

export type TransportState = 'connected' | 'failed';

/** How a publish transport sends video. */
export interface PublishMedia {
  videoCodec: VideoCodec;
  /** Simulcast layers for encoded custom capture (Node.js); browsers choose by capture size. */
  simulcastLayers?: number;
}

/** One WebRTC peer connection to the server, for one published or played stream. */
/** A capture that cannot be had (no such device, permission refused): retrying will not help until the user acts. */
export class CaptureError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface MediaTransport {
  /** A complete offer (all candidates gathered); rejects with a CaptureError when what it sends cannot be captured. */
  createOffer(): Promise<string>;
  applyAnswer(sdp: string): Promise<void>;
  /**
   * A new offer for the same transport with fresh ICE credentials (an ICE restart): once its
   * answer is applied, connectivity checks start over while DTLS, SRTP and the media go on.
   */
  restartIce(): Promise<string>;
  /**
   * What has authenticated on this transport so far: the media the server must send (RTP on a
   * play transport, RTCP on a publish transport, all that comes back), every packet, and what
   * the server's sender reports say it sent. What tells that the media path is alive: RTCP alone
   * on a play transport, while the server reports sending, is a path that carries no media.
   */
  mediaProgress(): Promise<LivenessSample>;
  /**
   * Called with 'connected' once up, and with 'failed' when its ICE fails; after an ICE restart
   * it may be 'connected' again (a closed transport stays 'failed').
   */
  onStateChange(listener: (state: TransportState) => void): void;
  /** What it has sent and received so far, for quality reports. */
  stats(): Promise<MediaSample>;
  /** The sound level (0–100) of what it sends (publish) or plays (play), now. */
  soundLevel(): Promise<number>;
  /** Play transports that play sound: applies the stream's volume (0–200 %) or the speaker's mute. */
  applyVolume?(): void;
  /** Publish transports with simulcast: which layers some player uses (smallest first); the others pause. */
  setActiveLayers?(active: boolean[]): void;
  /** Publish transports that encode: the most each layer (smallest first) is to be encoded at, in bits per second, 0 for as configured. */
  setLayerBitrates?(maxBitrates: number[]): void;
  close(): void;
}

/** The browser's processing of captured sound. */
export interface AudioProcessing {
  echoCancellation: boolean;
  noiseSuppression: boolean;
  autoGainControl: boolean;
}

/** A view to render into; browser only. */
export interface Canvas {
  view: unknown;
  /** ViewMode: AspectFit (default), AspectFill or ScaleToFill. */
  viewMode?: number;
}

export interface PlaySink {
  streamID: string;
  canvas?: Canvas;
  /** Called once when the first video frame is shown or delivered. */
  onFirstVideoFrame(): void;
  /** The view's size in pixels, whenever it changes (browser); it caps the layer the server picks. */
  onViewSize(width: number, height: number): void;
  /** The resolution of the video received, whenever it changes. */
  onVideoSize(width: number, height: number): void;
  /** The stream's playback volume, 0–200 (%). */
  volume(): number;
}

export interface EncodedVideoFrameParams {
  codec: 'vp8';
  isKeyFrame: boolean;
  width: number;
  height: number;
  /** Simulcast layer: 0 the smallest … n−1 the largest. Sending: which layer the frame belongs to (default 0). */
  layer?: number;
}

export interface EncodedAudioFrameParams {
  codec: 'opus';
  /** Sending: the frame's sound level (0–100), sent with it (RFC 6464) for players' sound level monitors and the server. */
  audioLevel?: number;
}

export interface CustomVideoRenderHandler {
  onRemoteVideoFrameEncodedDataReceived?(
    data: Uint8Array,
    params: EncodedVideoFrameParams,
    referenceTimeMillisecond: number,
    streamID: string,
  ): void;
}

export interface CustomAudioRenderHandler {
  onRemoteAudioFrameEncodedDataReceived?(
    data: Uint8Array,
    params: EncodedAudioFrameParams,
    referenceTimeMillisecond: number,
    streamID: string,
  ): void;
}

/** Encoded custom capture and render (Node.js): the app brings and takes encoded frames. */
export interface CustomMediaIO {
  /** Returns 0, or an error code when the frame cannot be sent. */
  sendVideo(channel: number, frame: Uint8Array, params: EncodedVideoFrameParams, referenceTimeMillisecond: number): number;
  sendAudio(channel: number, frame: Uint8Array, params: EncodedAudioFrameParams, referenceTimeMillisecond: number): number;
  videoRenderHandler: CustomVideoRenderHandler | null;
  audioRenderHandler: CustomAudioRenderHandler | null;
}

export interface MediaBackend {
  /** Present where encoded custom capture and render are supported. */
  readonly custom?: CustomMediaIO;
  /** Node.js: the datagrams its transports dropped (unauthenticated, replayed, malformed), by reason. */
  readonly drops?: Readonly<Record<string, number>>;
  /**
   * A peer connection to the server, using `iceServers` (TURN) beside the server's own addresses.
   * Undefined when this platform cannot send `videoCodec` (the publisher then reports UnsupportedRequest).
   */
  createPublishTransport(channel: number, media: PublishMedia, iceServers: IceServer[]): MediaTransport | undefined;
  createPlayTransport(sink: PlaySink, iceServers: IceServer[]): MediaTransport;
  startPreview(canvas: Canvas | undefined, channel: number): Promise<number>;
  /** Applies a channel's capture state: its camera on or off, its microphone muted, what its publish transports send. */
  applyCapture(channel: number, state: CaptureState): void;
  /** Mutes (or unmutes) everything played. */
  muteSpeaker(muted: boolean): void;
  /** The microphone's volume as sent, 0–200 (%), where the platform captures one (browsers). */
  setCaptureVolume?(volume: number): void;
  /** Encodes a channel's sound as `config` says: a lower bitrate now, the rest from the next publish. */
  applyAudioConfig(channel: number, config: AudioConfig): void;
  /** Captures and encodes a channel's video as `config` says, now if publishing (no renegotiation). */
  applyVideoConfig(channel: number, config: VideoConfig): void;
  /**
   * Shares a screen, window or tab (the user picks) as `channel`'s capture: 0, or an error code
   * (UnsupportedRequest where there is no screen; the exception type when refused). `onEnded`
   * is called when the share ends from outside (the browser's own stop button).
   */
  startScreenCapture?(
    channel: number,
    captureAudio: boolean,
    onEnded: () => void,
  ): Promise<{ code: 0 } | { code: number; exception: number }>;
  /** Ends a screen share and releases it. */
  stopScreenCapture?(channel: number): void;
  /** The cameras, microphones or speakers there are (browsers). */
  listDevices?(kind: DeviceKind): Promise<DeviceInfo[]>;
  /** Uses a camera (for `channel`), microphone or speaker, switching at once: 0 or an error code. */
  useDevice?(kind: DeviceKind, deviceID: string, channel: number): Promise<number>;
  /** Shows the local preview mirrored or not. */
  mirrorPreview(mirrored: boolean): void;
  /** The microphone's processing (enableAEC, enableANS, enableAGC), now and for later captures. */
  applyAudioProcessing(processing: AudioProcessing): void;
  stopPreview(channel: number): void;
  /** Releases devices and everything else the backend holds; resolves when all is released. */
  destroy(): Promise<void>;
}

export interface Platform {
  /** How long a broken connection is retried (vendor defaults: 5 min web, 20 min native). */
  defaultReconnectWindowMs: number;
  createSocket(url: string): SocketLike;
  /** HMAC-SHA256 of `message` under `key`, as hex (login and resume proofs). */
  hmacSha256Hex(key: Uint8Array, message: string): Promise<string>;
  createMedia(options: {
    scenario: Scenario;
    keyFrameRequested(channel: number, layer: number): void;
    /** A camera, microphone or speaker was plugged in or out. */
    deviceChanged(change: DeviceChange): void;
  }): MediaBackend;
  /** Browsers: calls `listener` when the page is being closed or left; returns what stops it. */
  onPageHide?(listener: () => void): () => void;
}
