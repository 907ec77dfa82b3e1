/**
 * The server's media plane as the rest of the server uses it. Inside, by layer: core/ (RTP parsing
 * and rewriting, congestion control, layer choice; no WebRTC stack), sockets/ (the ICE agents'
 * shared UDP and TCP ports), werift/ (the peer connections, on werift), relay/ (a cluster's
 * node-to-node relay of streams, feeding werift/'s subscribers) and workers/ (the plane on media
 * worker threads, each running werift/'s). Each layer imports only those before it.
 */
export type {
  MediaPlane,
  MediaPublisher,
  MediaSubscriber,
  MediaTap,
  TappedPacket,
  SenderClock,
  MediaEndpoint,
  MediaStats,
  MediaRelayPlane,
  RelayAddress,
  RelayStream,
} from './core/types.js';
export { SdpError, RelayUnavailable, emptyMediaStats } from './core/types.js';
export { FrameAssembler, type AssembledFrame, type FrameCodec } from './core/frameAssembler.js';
export { WeriftMediaPlane, type WeriftPlaneOptions } from './werift/weriftPlane.js';
export { WorkerMediaPlane, type WorkerPlaneOptions } from './workers/workerPlane.js';
