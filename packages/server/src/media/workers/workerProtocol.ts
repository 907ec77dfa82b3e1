/**
 * What the main thread and a media worker tell each other (see WorkerMediaPlane and mediaWorker).
 * The main thread names every endpoint and tap itself, so no command waits for a name; only those
 * that answer SDP (publish, subscribe, restartIce) wait, for an `answered` or `refused`.
 */
import type { LinkQuality, MediaTap, PlayMuted, PlayVideo, TappedPacket } from '../core/types.js';
import type { WeriftPlaneOptions } from '../werift/weriftPlane.js';
import type { LayerSsrcs } from '../werift/weriftPublisher.js';

/** What a worker is started with: the plane's options (its own ports), and the board its stats go to. */
export interface MediaWorkerData {
  options: Omit<WeriftPlaneOptions, 'onSocketError' | 'relay'>;
  board: Float64Array;
}

/** What a tap of a publisher carries, known when it is published. */
export type TapFormat = Pick<MediaTap, 'audio' | 'videoCodec'>;

export type WorkerCommand =
  /** `layerSsrcs`: a moved publisher's, as its earlier worker reported them. */
  | { op: 'publish'; request: number; endpoint: number; offer: string; layerSsrcs?: LayerSsrcs[] }
  | { op: 'subscribe'; request: number; endpoint: number; publisher: number; offer: string; video: PlayVideo | undefined }
  | { op: 'restartIce'; request: number; endpoint: number; offer: string }
  | { op: 'addCandidates'; endpoint: number; candidates: readonly string[] }
  | { op: 'setMediaDue'; endpoint: number; due: boolean }
  | { op: 'setVideo'; endpoint: number; video: PlayVideo }
  | { op: 'setMuted'; endpoint: number; muted: PlayMuted }
  /** Asks for a `link` report: the endpoint's linkQuality() since the previous ask. */
  | { op: 'readLink'; endpoint: number }
  /** Asks for a `level` report: the publisher's speechLevel() since the previous ask. */
  | { op: 'readLevel'; endpoint: number }
  | { op: 'close'; endpoint: number }
  | { op: 'tap'; publisher: number; tap: number }
  | { op: 'tapKeyFrame'; tap: number }
  | { op: 'tapClose'; tap: number }
  /** Closes the worker's plane; the worker answers `shutDown`. */
  | { op: 'shutdown' }
  /** Ends the worker as a failure would (its endpoints move): its sockets close, and it exits reporting nothing. */
  | { op: 'fail' };

export type WorkerReport =
  | { op: 'ready'; udpPort: number | undefined; tcpPort: number | undefined; fastPathNote: string }
  | { op: 'failed'; message: string }
  /** `closed`: the endpoint was closed before it was answered (its publisher closed meanwhile). */
  | { op: 'answered'; request: number; answer: string; closed: boolean; tapFormat?: TapFormat }
  | { op: 'refused'; request: number; name: string; message: string }
  | { op: 'endpoint'; endpoint: number; event: 'connected' | 'closed' | 'stalled' }
  | { op: 'activeLayers'; endpoint: number; active: boolean[] }
  | { op: 'layerCaps'; endpoint: number; maxBitrates: number[] }
  /** A publisher's simulcast layers' SSRCs, when more of them are known: what a worker it moves to needs. */
  | { op: 'layerSsrcs'; endpoint: number; layers: LayerSsrcs[] }
  | { op: 'link'; endpoint: number; quality: LinkQuality }
  | { op: 'level'; endpoint: number; level: number }
  | { op: 'tapped'; tap: number; packet: TappedPacket; onLargestLayer: boolean }
  | { op: 'tapClosed'; tap: number }
  | { op: 'shutDown' };
