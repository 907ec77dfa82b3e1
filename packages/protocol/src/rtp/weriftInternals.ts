/**
 * werift's internals that the server's and the Node.js SDK's media paths rely on: members its
 * typings keep private or leave out, and places where Parley puts objects of its own. They are
 * described here and nowhere else; other files reach them through the accessors below and never
 * cast werift's objects themselves. `checkWeriftInternals` builds the smallest werift objects that
 * carry them and checks each one, so that a werift whose internals moved stops the server and the
 * SDK at startup, naming what is missing, rather than failing calls later.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Socket as UdpSocket } from 'node:dgram';
import type { Socket as TcpSocket } from 'node:net';
import {
  classes,
  DtlsSocket,
  Message,
  methods,
  RTCPeerConnection,
  StunProtocol,
  TcpPassiveProtocol,
  type Address,
  type Candidate,
  type IceConnection,
  type Protocol,
  type RTCDtlsTransport,
  type RTCIceTransport,
  type RTCRtpReceiver,
  type RTCRtpSender,
  type RtpPacket,
  type Transport,
} from 'werift';

/** A class's public members (`keyof` leaves its private ones out). */
type PublicMembers<T> = Pick<T, keyof T>;

/** RTCPeerConnection: where it makes its ICE and DTLS transports, and its RTP router. */
export interface PeerConnectionInternals {
  secureManager: { createTransport(): RTCDtlsTransport };
  router: { routeRtp(packet: RtpPacket): void; registerRtpReceiver(receiver: RTCRtpReceiver, ssrc: number): void };
}

/** RTCDtlsTransport: its RTCP sender serialises each packet and nothing more, so bytes built elsewhere go out as they are. */
export interface DtlsTransportInternals {
  sendRtcp(packets: ReadonlyArray<{ serialize(): Buffer }>): Promise<unknown>;
}

/** RTCIceTransport: the gate a start sets and a failed start leaves set. */
export interface IceTransportInternals {
  waitStart?: unknown;
}

/** The ICE agent: werift's `Connection`, typed in its DTLS transport as the narrower `IceConnection`. */
export interface IceAgentInternals extends IceConnection {
  /** Passwords by local ufrag: the current one's and those of earlier generations. */
  userHistory: Record<string, string>;
  protocols: Protocol[];
  restart(): Promise<void>;
  ensureProtocol(protocol: Protocol): void;
  getCandidatePromises(addresses: string[], timeout?: number): Array<Promise<unknown>>;
  /** Starts consent over: fresh now, expiring 30 s after the last answer from here on. */
  queryConsent(): void;
  canSendApplicationData(): boolean;
  buildRequest(options: {
    nominate: boolean;
    localUsername: string;
    remoteUsername: string;
    iceControlling: boolean;
    localCandidate: Candidate;
  }): Message;
}

/** Any of the agent's protocols (UDP, ICE-TCP, TURN), beyond its typing `Protocol`. */
export interface ProtocolInternals {
  /** UDP's input, a datagram at a time (ICE-TCP frames and TURN data come whole). */
  datagramReceived?(data: Buffer, addr: Address): void;
  /** UDP's socket: werift's `UdpTransport`, or Parley's shared one in its place; ICE-TCP has none. */
  transport?: { readonly type: string; readonly closed: boolean; readonly socket?: UdpSocket };
}

/** werift's UDP protocol (`StunProtocol`): its input, and its transport, which may be replaced. */
export type StunProtocolInternals = Required<ProtocolInternals>;

/** werift's ICE-TCP passive protocol: taking over an accepted connection (protected in its typing). */
export interface TcpProtocolInternals {
  registerSocket(socket: TcpSocket, remoteAddr?: Address): unknown;
}

/** A STUN message: the names of its attributes. */
export interface MessageInternals {
  readonly attributesKeys: string[];
}

/** What werift's `CipherContext.decryptPacket` and `encryptPacket` read of a record (a `DtlsPlaintext`). */
export interface DtlsRecord {
  recordLayerHeader: {
    contentType: number;
    protocolVersion: { major: number; minor: number };
    epoch: number;
    sequenceNumber: number;
    contentLen: number;
  };
  fragment: Buffer;
}

/** DtlsSocket (the base of werift's DTLS client and server): its input, and its cipher as it reads records. */
export interface DtlsSocketInternals {
  transport: { socket: { onData: (data: Buffer) => void } };
  cipher: { decryptPacket(record: DtlsRecord): Buffer };
}

/** RTCRtpSender: the RTX state and the counters its RTCP sender reports are made from. */
export interface RtpSenderInternals extends PublicMembers<RTCRtpSender> {
  rtxPayloadType?: number;
  rtxSequenceNumber: number;
  sequenceNumber?: number;
  timestamp?: number;
  ntpTimestamp: bigint;
  rtpTimestamp: number;
  octetCount: number;
  packetCount: number;
  headerBytesSent: number;
  /** The last sender report's NTP time, compact, and when it went (seconds): werift's RTT from receiver reports. */
  lastSRtimestamp?: number;
  lastSentSRTimestamp?: number;
  cname?: string;
}

/** RTCRtpReceiver: its NACK generator, and what it calls on its transport-cc recorder. */
export interface RtpReceiverInternals {
  nack: { addPacket(packet: RtpPacket): void };
  receiverTWCC?: { twccRunning: boolean; handleTWCC(transportSequenceNumber: number): void };
  /** Per SSRC, what its receiver reports are made of (werift adds every packet it routes, before unwrapping RTX). */
  remoteStreams: Record<number, { add(packet: RtpPacket): void } | undefined>;
}

export const peerConnectionInternals = (pc: RTCPeerConnection): PeerConnectionInternals => pc as unknown as PeerConnectionInternals;
export const dtlsTransportInternals = (transport: RTCDtlsTransport): DtlsTransportInternals =>
  transport as unknown as DtlsTransportInternals;
export const iceTransportInternals = (transport: RTCIceTransport): IceTransportInternals => transport as unknown as IceTransportInternals;
export const iceAgentInternals = (agent: IceConnection): IceAgentInternals => agent as IceAgentInternals;
export const protocolInternals = (protocol: Protocol): ProtocolInternals => protocol as ProtocolInternals;
export const stunProtocolInternals = (protocol: StunProtocol): StunProtocolInternals => protocol as unknown as StunProtocolInternals;
export const tcpProtocolInternals = (protocol: TcpPassiveProtocol): TcpProtocolInternals => protocol as unknown as TcpProtocolInternals;
export const messageInternals = (message: Message): MessageInternals => message as unknown as MessageInternals;
export const dtlsSocketInternals = (socket: DtlsSocket): DtlsSocketInternals => socket as unknown as DtlsSocketInternals;
export const rtpSenderInternals = (sender: RTCRtpSender): RtpSenderInternals => sender as unknown as RtpSenderInternals;
export const rtpReceiverInternals = (receiver: RTCRtpReceiver): RtpReceiverInternals => receiver as unknown as RtpReceiverInternals;

/**
 * What a member must be: `declared` is a field that may still be undefined on a fresh object (werift
 * declares it, and sets it later); a nested table is an object with those members.
 */
type Expected = 'function' | 'object' | 'number' | 'bigint' | 'declared' | { readonly [member: string]: Expected };
/** An entry for every member of `T`, so a description and its check cannot drift apart. */
type ExpectedOf<T> = { readonly [K in keyof T]-?: Expected };

const PEER_CONNECTION: ExpectedOf<PeerConnectionInternals> = {
  secureManager: { createTransport: 'function' },
  router: { routeRtp: 'function', registerRtpReceiver: 'function' },
};
const DTLS_TRANSPORT: ExpectedOf<DtlsTransportInternals> = { sendRtcp: 'function' };
const ICE_TRANSPORT: ExpectedOf<IceTransportInternals> = { waitStart: 'declared' };
const ICE_AGENT: ExpectedOf<Omit<IceAgentInternals, keyof IceConnection>> = {
  userHistory: 'object',
  protocols: 'object',
  ensureProtocol: 'function',
  getCandidatePromises: 'function',
  queryConsent: 'function',
  canSendApplicationData: 'function',
  buildRequest: 'function',
};
const STUN_PROTOCOL: ExpectedOf<StunProtocolInternals> = { datagramReceived: 'function', transport: 'declared' };
const TCP_PROTOCOL: ExpectedOf<TcpProtocolInternals> = { registerSocket: 'function' };
const MESSAGE: ExpectedOf<MessageInternals> = { attributesKeys: 'object' };
const DTLS_SOCKET: ExpectedOf<DtlsSocketInternals> = {
  transport: { socket: { onData: 'function' } },
  cipher: { decryptPacket: 'function' },
};
const RTP_SENDER: ExpectedOf<Omit<RtpSenderInternals, keyof RTCRtpSender>> = {
  rtxPayloadType: 'declared',
  rtxSequenceNumber: 'number',
  sequenceNumber: 'declared',
  timestamp: 'declared',
  ntpTimestamp: 'bigint',
  rtpTimestamp: 'number',
  octetCount: 'number',
  packetCount: 'number',
  headerBytesSent: 'number',
  lastSRtimestamp: 'declared',
  lastSentSRTimestamp: 'declared',
  cname: 'declared',
};
const RTP_RECEIVER: ExpectedOf<RtpReceiverInternals> = {
  nack: { addPacket: 'function' },
  receiverTWCC: 'declared',
  remoteStreams: 'object',
};

/** The members of `object` that are not as `expected`, named from `path`. */
function missingMembers(path: string, object: object, expected: { readonly [member: string]: Expected }): string[] {
  return Object.entries(expected).flatMap(([member, kind]) => {
    const name = `${path}.${member}`;
    if (kind === 'declared') return member in object ? [] : [`${name} (a field)`];
    const value: unknown = (object as Record<string, unknown>)[member];
    if (typeof kind !== 'string')
      return value !== null && typeof value === 'object' ? missingMembers(name, value, kind) : [`${name} (an object)`];
    const actual = value === null ? 'null' : typeof value;
    return actual === kind ? [] : [`${name} (${kind === 'object' ? 'an object' : `a ${kind}`})`];
  });
}

/**
 * Checks that the installed werift has every internal described above, on the smallest objects
 * that carry them (a peer connection with one transceiver, and a few of werift's classes built
 * bare). Throws an Error naming the werift version Parley pins and each member that is missing.
 */
export function checkWeriftInternals(): void {
  const pc = new RTCPeerConnection();
  try {
    const { sender, receiver } = pc.addTransceiver('video');
    const transport = sender.dtlsTransport;
    const missing = [
      ...missingMembers('RTCPeerConnection', pc, PEER_CONNECTION),
      ...missingMembers('RTCDtlsTransport', transport, DTLS_TRANSPORT),
      ...missingMembers('RTCIceTransport', transport.iceTransport, ICE_TRANSPORT),
      ...missingMembers('Connection', transport.iceTransport.connection, ICE_AGENT),
      ...missingMembers('RTCRtpSender', sender, RTP_SENDER),
      ...missingMembers('RTCRtpReceiver', receiver, RTP_RECEIVER),
      ...missingMembers('StunProtocol', new StunProtocol(), STUN_PROTOCOL),
      ...missingMembers('TcpPassiveProtocol', TcpPassiveProtocol.prototype, TCP_PROTOCOL),
      ...missingMembers('Message', new Message(methods.BINDING, classes.REQUEST), MESSAGE),
      ...missingMembers('DtlsSocket', new DtlsSocket({ transport: idleTransport() }, DTLS_CLIENT), DTLS_SOCKET),
    ];
    if (missing.length === 0) return;
    const [pinned, installed] = [pinnedWeriftVersion(), installedWeriftVersion()];
    throw new Error(
      `werift ${installed} lacks internals that Parley's media relies on (it is written for werift ${pinned}, ` +
        `the version @parley/protocol pins): ${missing.join(', ')}.${installed === pinned ? '' : ` Install werift ${pinned}.`}`,
    );
  } finally {
    void pc.close().catch(() => undefined);
  }
}

let checked = false;

/** `checkWeriftInternals`, once per process: after it has passed, it is not run again. */
export function checkWeriftInternalsOnce(): void {
  if (checked) return;
  checkWeriftInternals();
  checked = true;
}

/** werift's DTLS client role (its `SessionType.CLIENT`). */
const DTLS_CLIENT = 1 as DtlsSocket['sessionType'];

/** A transport for a DTLS socket that is built to be looked at: it sends nothing. */
const idleTransport = (): Transport => ({
  type: 'udp',
  address: { address: '127.0.0.1', family: 'IPv4', port: 0 },
  closed: true,
  onData: () => undefined,
  send: async () => undefined,
  close: async () => undefined,
});

/** The version in @parley/protocol's package.json (two levels up from src/rtp and dist/rtp alike). */
function pinnedWeriftVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  return manifest.dependencies.werift ?? 'unknown';
}

/** The version in the installed werift's package.json, found above its entry point (its exports do not include the file). */
function installedWeriftVersion(): string {
  for (let dir = dirname(createRequire(import.meta.url).resolve('werift')); ; dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'werift') return manifest.version ?? 'unknown';
    } catch {
      // No package.json at this level.
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
