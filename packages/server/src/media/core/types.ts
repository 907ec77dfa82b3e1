/**
 * The media plane as the room logic sees it: publishers that accept an SDP offer and relay their
 * media, without transcoding, to subscribers. Nothing outside media/ knows which WebRTC stack
 * implements it (media/werift/ does).
 */
import type { EventEmitter } from 'node:events';
import type { StallCause } from '@parley/protocol';
import { noMediaDrops, type MediaDrops } from '@parley/protocol/rtp';

export interface EndpointEvents {
  /** ICE and DTLS are up; media can flow. */
  connected: [];
  /** The endpoint is gone (closed locally, transport failed, or its publisher closed). Emitted once. */
  closed: [];
  /**
   * The media the client must send (RTP from a publisher that has not muted, RTCP from a player)
   * has not arrived for the stall time since it last flowed: the path is dead one way or both,
   * or the client's sender is broken. Emitted once per stall (and again if a restart does not end it).
   */
  stalled: [];
  /**
   * The endpoint's media thread stopped and it waits for the client's ICE restart to continue on
   * another (a new DTLS association: the answer carries another fingerprint). Not a stall: the
   * client is to restart at once and show nothing. It closes if no restart comes in time.
   */
  moved: [];
}

/** How an endpoint's link is doing, as far as the server can tell: loss before repairs (0–1) and round trip (ms). */
export interface LinkQuality {
  lossFraction: number | undefined;
  rttMs: number | undefined;
}

export interface MediaEndpoint<Events extends EndpointEvents & Record<keyof Events, unknown[]> = EndpointEvents> {
  /** The SDP answer to the offer the endpoint was created with. */
  readonly answer: string;
  readonly observer: EventEmitter<Events>;
  readonly closed: boolean;
  /** ICE and DTLS came up (and it is not closed); one that `moved` counts until it closes or connects again. */
  readonly connected: boolean;
  /** A publisher's uplink since the previous call; a subscriber's downlink as estimated now. */
  linkQuality(): LinkQuality;
  /** Answers an ICE restart (an offer with new ICE credentials): the transport, and everything on it, stays. */
  restartIce(offer: string): Promise<string>;
  /**
   * Candidates the client found after its offer (trickle ICE: `candidate:` lines of SDP, with or
   * without their `a=`). Throws SdpError, adding none, if one cannot be parsed.
   */
  addRemoteCandidates(candidates: readonly string[]): void;
  close(): void;
}

/** What a player wants of a simulcast stream (VideoStreamType and its view's size, which caps the layer in automatic mode). */
export interface PlayVideo {
  type: 0 | 1 | 2;
  viewWidth: number;
  viewHeight: number;
}

export interface PublisherEvents extends EndpointEvents {
  /**
   * Which simulcast layers (smallest first) some player receives or is moving to: the publisher
   * may pause the others (dynacast). The smallest is always active, so a new player starts at once.
   */
  activeLayers: [active: boolean[]];
  /**
   * The bitrate each simulcast layer (smallest first) is to be encoded at most, in bits per
   * second, 0 for as configured: its players' links cannot take more (layerCaps).
   */
  layerCaps: [maxBitrates: number[]];
}

export interface MediaPublisher extends MediaEndpoint<PublisherEvents> {
  /** The mean sound level (0–100) its audio packets carried since the previous call (RFC 6464; 0 when none came). */
  speechLevel(): number;
  /** Creates a subscriber that receives this publisher's media, answering the player's offer. */
  subscribe(offer: string, video?: PlayVideo): Promise<MediaSubscriber>;
  /** Hands this publisher's packets to the server itself (a recording): audio, and video of its largest usable layer. */
  tap(): MediaTap;
  /** Whether the publisher must be sending RTP (it has not turned off or muted all it sends); its liveness is judged only then. */
  setMediaDue(due: boolean): void;
}

/** Where the sender's clock was at an RTP timestamp, as its last RTCP sender report said. */
export interface SenderClock {
  /** The sender's wall clock, Unix milliseconds. */
  readonly unixMs: number;
  readonly rtpTimestamp: number;
}

/** An RTP packet as a tap hands it on: audio as plain Opus (RED taken apart), video of one layer. */
export interface TappedPacket {
  readonly kind: 'audio' | 'video';
  /** The video layer it belongs to: a tap that moves to another layer starts another sequence. */
  readonly layer: number;
  readonly sequenceNumber: number;
  readonly timestamp: number;
  readonly marker: boolean;
  readonly payload: Buffer;
  /** The latest sender report of its RTP stream, if one came. */
  readonly senderClock: SenderClock | undefined;
}

export interface MediaTap {
  readonly observer: EventEmitter<{ packet: [TappedPacket]; closed: [] }>;
  /** The publisher sends audio (Opus, 48 kHz). */
  readonly audio: boolean;
  /** The video codec (undefined when it sends no video). */
  readonly videoCodec: 'vp8' | 'vp9' | 'h264' | undefined;
  /** Its video comes from the stream's largest layer (a publisher's larger layers may start a little later). */
  readonly onLargestLayer: boolean;
  readonly closed: boolean;
  /** Asks the publisher for a keyframe of the layer the tap takes. */
  requestKeyFrame(): void;
  close(): void;
}

/** What a player asked not to receive (mutePlayStreamVideo, mutePlayStreamAudio). */
export interface PlayMuted {
  video: boolean;
  audio: boolean;
}

export interface MediaSubscriber extends MediaEndpoint {
  /** The player changed its choice of layer or its view size. */
  setVideo(video: PlayVideo): void;
  /** Stops or resumes forwarding video or audio to the player (video resumes at a keyframe). */
  setMuted(muted: PlayMuted): void;
}

/**
 * What the media plane is carrying and has carried since it started, for metrics. The plane adds
 * to these plain numbers as it goes (on the packet path: increments only, nothing allocated or
 * looked up); readers sample them whenever they like.
 */
export interface MediaStats {
  /** Publisher endpoints open now (negotiating or connected). */
  publishers: number;
  /** Subscriber endpoints open now (negotiating or connected). */
  subscribers: number;
  /** RTP packets received from publishers, and their bytes (RTP header and payload). */
  packetsReceived: number;
  bytesReceived: number;
  /** RTP packets relayed to subscribers, and their bytes as relayed (RTP header and payload; first transmissions only). */
  packetsSent: number;
  bytesSent: number;
  /** Generic NACK feedback messages received from players. */
  nacksReceived: number;
  /** Generic NACK feedback messages sent to publishers, asking for packets lost on their uplinks. */
  nacksSent: number;
  /** RTP packets sent again to players in answer to their NACKs. */
  retransmissionsSent: number;
  /** Packets asked for by players and not sent again: the link's retransmission budget was spent. */
  retransmissionsRefused: number;
  /** Audio packets relayed to players as RED (RFC 2198), the publisher's or with more redundancy for a lossy link. */
  redPacketsSent: number;
  /** Audio frames lost on a publisher's uplink and taken from the redundancy of a later RED packet. */
  audioFramesRecovered: number;
  /** Stalls on connected endpoints (see EndpointEvents.stalled), by cause. */
  mediaStalls: Record<StallCause, number>;
  /** RTP packets sent to other nodes' relays (first transmissions), received from relays, and sent again in answer to their NACKs. */
  relayPacketsSent: number;
  relayPacketsReceived: number;
  relayRetransmissionsSent: number;
  /** Keyframe requests (PLI or FIR) received from players. */
  keyFrameRequestsReceived: number;
  /** Keyframe requests (PLI) sent to publishers; requests from several players close together are merged into one. */
  keyFrameRequestsSent: number;
  /** Datagrams the peer connections dropped as unauthenticated, replayed or malformed, by reason. */
  drops: MediaDrops;
  /** Pairs in use moved to a client's new address after its NAT rebound it (see WeriftPeer.followClientChecks). */
  natRebindings: number;
  /** Datagrams on the shared UDP port that belonged to no peer (an unknown ufrag, or an address none has checked). */
  unroutableDatagrams: number;
  /** Connections to the ICE-TCP port that named no peer in their first binding request. */
  unroutableTcpConnections: number;
}

export const emptyMediaStats = (): MediaStats => ({
  publishers: 0,
  subscribers: 0,
  packetsReceived: 0,
  bytesReceived: 0,
  packetsSent: 0,
  bytesSent: 0,
  nacksReceived: 0,
  redPacketsSent: 0,
  audioFramesRecovered: 0,
  nacksSent: 0,
  retransmissionsSent: 0,
  retransmissionsRefused: 0,
  mediaStalls: { silent: 0, 'rtcp-only': 0 },
  keyFrameRequestsReceived: 0,
  relayPacketsSent: 0,
  relayPacketsReceived: 0,
  relayRetransmissionsSent: 0,
  drops: noMediaDrops(),
  unroutableDatagrams: 0,
  natRebindings: 0,
  unroutableTcpConnections: 0,
  keyFrameRequestsSent: 0,
});

/** A publication as the nodes of a cluster name it to each other. */
export interface RelayStream {
  appID: number;
  streamID: string;
  publicationID: string;
}

/** Where a node takes the relays of other nodes' publications. */
export interface RelayAddress {
  host: string;
  port: number;
}

/** The node-to-node relay of a cluster's node: its publications to other nodes, theirs to it. */
export interface MediaRelayPlane {
  readonly address: RelayAddress;
  /** How this node finds the publications other nodes ask for. */
  serve(find: (stream: RelayStream) => MediaPublisher | undefined): void;
  /**
   * A publication of the node at `from`, relayed here and played as a local one: one relay per
   * publication whatever the number of players here. Rejects with RelayUnavailable when that node
   * does not answer or does not have it.
   */
  publisher(from: RelayAddress, stream: RelayStream): Promise<MediaPublisher>;
}

export interface MediaPlane {
  publish(offer: string): Promise<MediaPublisher>;
  /** Set on a node of a cluster. */
  readonly relay?: MediaRelayPlane;
  close(): Promise<void>;
  /** Live numbers, updated in place by the plane. */
  readonly stats: Readonly<MediaStats>;
}

/** A relay that cannot be opened: the publisher's node did not answer, or does not have the publication. */
export class RelayUnavailable extends Error {
  override readonly name = 'RelayUnavailable';
}

/** An offer the media plane cannot accept; the room logic maps it to InvalidSdp. */
export class SdpError extends Error {
  override readonly name = 'SdpError';
}
