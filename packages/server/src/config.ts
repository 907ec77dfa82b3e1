import { randomBytes } from 'node:crypto';
import type { WebhookOptions } from './webhooks/dispatcher.js';
import type { RecordingOptions } from './egress/recordings.js';
import type { MixTimings } from './egress/mixTask.js';
import type { TurnOptions } from './auth/turnCredentials.js';

/** A serverSecret: 32 printable ASCII characters. */
export const SERVER_SECRET_PATTERN = /^[\x21-\x7e]{32}$/;

export interface AppConfig {
  appID: number;
  /** 64 hex characters; clients prove knowledge of it, it is never sent. */
  appSign: string;
  /** 32 ASCII characters; signs tokens and server-API calls. */
  serverSecret: string;
  callbackUrl?: string;
  callbackSecret?: string;
}

export interface MediaOptions {
  /** Address the media sockets bind to and announce. Defaults to the signalling host. */
  listenIp?: string;
  /** Address (or host name, resolved at startup) announced in ICE candidates when the server is behind NAT. */
  announcedIp?: string;
  /**
   * The one UDP port that carries every client's media (ICE multiplexed by username fragment and
   * remote address); 0 (the default) lets the system pick one.
   */
  udpPort?: number;
  /** A UDP port per peer connection from this range, instead of one port for all. */
  portRange?: [number, number];
  /** A TCP port for ICE over TCP (clients whose networks block UDP); without it, none. */
  tcpPort?: number;
  /**
   * A client's media transport from which nothing (no RTP, no RTCP) has come for this long, after
   * media flowed, is stalled: the client is told to restart its ICE (default 3 s).
   */
  mediaStallMs?: number;
  /** A client's media transport that has not connected (ICE and DTLS) this long after its offer is closed (default 15 s). */
  connectTimeoutMs?: number;
  /**
   * How forwarded packets are sealed and sent: `native` (the default) by the addon built at
   * install, where it was built (else TypeScript, as the startup log says), or `typescript`.
   */
  fastPath?: 'native' | 'typescript';
  /**
   * Media worker threads, to forward on more than one core: each takes its own ports (`udpPort` + i,
   * `tcpPort` + i; or its share of `portRange`), and each publication with its players lives on
   * one of them. 0 (the default): media runs on the main thread, on one port. Not on a node of a
   * cluster.
   */
  workers?: number;
}

export interface ServerOptions {
  host?: string;
  port?: number;
  /** The http(s) URL clients use (behind a proxy, the proxy's): logged at startup with its signalling URL, and what `parley doctor --config` checks. */
  publicUrl?: string;
  /**
   * Reverse proxies in front of the server (addresses or CIDR ranges): their X-Forwarded-For names
   * the client, for the per-address limits and the logs. Empty (the default): the socket's peer is the client.
   */
  behindProxy?: string[];
  /** A certificate (PEM, with its chain) and key: the server then serves https and wss itself. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  apps: AppConfig[];
  /** A client silent for this long is removed from its room (vendor default 90 s). */
  heartbeatTimeoutMs?: number;
  media?: MediaOptions;
  /** A TURN server (coturn with `use-auth-secret`) whose credentials clients get at login; without it, none. */
  turn?: TurnOptions;
  /** Folder served at `/` (the web demo). `false` serves nothing. */
  staticDir?: string | false;
  /** Dev mode exposes `/dev-config.json` with the dev app's credentials for the demo page. */
  devMode?: boolean;
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  limits?: Partial<Limits>;
  /** Webhook delivery timings and bounds; the defaults follow the spec (retries after 2, 4, 8, 16, 32 s). */
  webhooks?: Partial<WebhookOptions>;
  /** How often rooms are told their online user count when it changed (vendor: 30 s). */
  onlineCountIntervalMs?: number;
  /** How often users are told how the server sees their links and those of whom they play (onNetworkQuality; 3 s). */
  networkQualityIntervalMs?: number;
  /** How often rooms' active speakers are judged (from their audio's levels) and told when they changed (0.5 s). */
  activeSpeakerIntervalMs?: number;
  /** One node of a cluster whose room state is in Redis; without it, one process with its state in memory. */
  cluster?: ClusterOptions;
  /** Where recordings (StartRecord) are written, and what runs for each finished file; without it StartRecord is refused. */
  recording?: RecordingOptions;
  /** Mixing's timings (the vendor's: a task ends 90 s after its last input went). */
  mixing?: Partial<MixTimings>;
}

export interface ClusterOptions {
  /** redis:// or rediss:// (env PARLEY_REDIS_URL in the configuration file's place). */
  redisUrl: string;
  /** This node's name in the cluster and its logs (default hostname-pid). */
  nodeId?: string;
  /** How long the node's lease lasts unless renewed (default 3 s; renewed at a third of it). */
  leaseMs?: number;
  /** How the other nodes reach this node: the address its relay port is bound to (default: the media's listen address). */
  internalAddress?: string;
  /** UDP port of the node-to-node relay of streams (default 0: one the system picks, shown in the node registry). */
  relayPort?: number;
}

export interface Limits {
  /** Signalling frames one connection may send per second, and in a burst. */
  framesPerSecond: number;
  frameBurst: number;
  /** A connection that has this many frames refused for rate is closed. */
  maxRateLimitedFrames: number;
  /** Frames all connections from one IP address may send per second, and in a burst. */
  framesPerSecondPerIp: number;
  frameBurstPerIp: number;
  /** New signalling connections one IP address may open per second, and in a burst (beyond: HTTP 429). */
  connectionsPerSecondPerIp: number;
  connectionBurstPerIp: number;
  /** Logins (and resumes) one IP address may make per second, and in a burst. */
  loginsPerSecondPerIp: number;
  loginBurstPerIp: number;
  /** Streams one session may publish at once (each is a peer connection on the server). */
  maxPublicationsPerSession: number;
  /** Streams one session may play at once. */
  maxPlaysPerSession: number;
  /** Bytes waiting to be sent to one client beyond which it is disconnected as too slow (4001). */
  maxUnsentBytes: number;
  /** Messages (broadcast, barrage, custom commands, room extra info) one room may carry per second, and in a burst. */
  roomMessagesPerSecond: number;
  roomMessageBurst: number;
  /** Keys of room extra info per room (1002017 beyond). */
  maxRoomExtraInfoKeys: number;
}

export const DEFAULT_LIMITS: Limits = {
  framesPerSecond: 50,
  frameBurst: 200,
  maxRateLimitedFrames: 1000,
  framesPerSecondPerIp: 500,
  frameBurstPerIp: 2000,
  connectionsPerSecondPerIp: 10,
  connectionBurstPerIp: 100,
  loginsPerSecondPerIp: 20,
  loginBurstPerIp: 50,
  maxPublicationsPerSession: 4,
  maxPlaysPerSession: 64,
  maxUnsentBytes: 4 * 1024 * 1024,
  roomMessagesPerSecond: 50,
  roomMessageBurst: 100,
  maxRoomExtraInfoKeys: 10,
};

export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 90_000;
export const DEFAULT_ONLINE_COUNT_INTERVAL_MS = 30_000;
export const DEFAULT_NETWORK_QUALITY_INTERVAL_MS = 3_000;
export const DEFAULT_ACTIVE_SPEAKER_INTERVAL_MS = 500;
export const DEFAULT_PORT = 7800;

/** The well-known app of dev mode. Production mode refuses these credentials. */
export const DEV_APP: AppConfig = {
  appID: 1234567890,
  appSign: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  serverSecret: '0123456789abcdef0123456789abcdef',
};

export function randomApp(appID: number): AppConfig {
  return { appID, appSign: randomBytes(32).toString('hex'), serverSecret: randomBytes(16).toString('hex') };
}
