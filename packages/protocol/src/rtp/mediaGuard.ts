/**
 * What a peer connection accepts from the network, as RFC 6347 §4.1.2.7 and RFC 3711 ask: what it
 * cannot authenticate is dropped and counted, and changes nothing. Anyone who can send datagrams
 * from a peer's address (its own network, a spoofed source) reaches the media stack; werift 0.24
 * would let them end a call:
 *
 * - DTLS: werift takes a record of an unknown type, or an alert it cannot decrypt (plaintext, or
 *   a forged epoch-1 one whose first bytes parse as an alert), as a close; a ClientHello on an
 *   established association restarts the server's handshake, and a HelloVerifyRequest the
 *   client's. Once the handshake is over, only records of the current epoch (1: werift never
 *   rekeys) that authenticate and are not replays are taken. As in OpenSSL, a past epoch's records
 *   are discarded: a WebRTC peer makes a new association on a new transport, never on this one.
 *   A real close_notify (or fatal alert) from the peer still closes.
 * - SRTP and SRTCP: werift has no replay window; a replayed packet would reach players again.
 * - STUN: werift answers binding requests and acts on them (nomination, role switch, consent)
 *   without checking MESSAGE-INTEGRITY.
 * - Datagrams that are none of STUN, DTLS, RTP or RTCP (RFC 7983's first byte).
 *
 * It also counts the RTP and RTCP packets that authenticated, and reads the packet counts of the
 * sender reports among them: what media liveness is judged by.
 */
import { hasValidIntegrity, isStunRequest, requestUfrag } from './stun.js';
import { onEachTransport } from './iceAgents.js';
import { extendSequence, ReplayWindow } from './replayWindow.js';

export const MEDIA_DROP_REASONS = [
  /** First byte of no protocol of RFC 7983, or empty. */
  'unknown-protocol',
  /** A STUN request without a USERNAME of ours or a MESSAGE-INTEGRITY under its password. */
  'stun-unauthenticated',
  /** A DTLS record that does not fit its datagram. */
  'dtls-malformed',
  /** A DTLS content type other than change_cipher_spec, alert, handshake and application_data. */
  'dtls-unknown-type',
  /** After the handshake, a record of another epoch than the current one (plaintext ones included). */
  'dtls-wrong-epoch',
  'dtls-unauthenticated',
  'dtls-replay',
  'srtp-unauthenticated',
  'srtp-replay',
  'srtcp-unauthenticated',
  'srtcp-replay',
] as const;
export type MediaDropReason = (typeof MEDIA_DROP_REASONS)[number];
export type MediaDrops = Record<MediaDropReason, number>;

export const noMediaDrops = (): MediaDrops => Object.fromEntries(MEDIA_DROP_REASONS.map((reason) => [reason, 0])) as MediaDrops;

/** RTP and RTCP packets that authenticated, and what the sender reports among them say was sent. */
export interface MediaReceived {
  rtp: number;
  rtcp: number;
  /** The packet counts of the peer's latest sender reports, by SSRC. */
  readonly reportedSent: Map<number, number>;
}

/** Thrown from SRTP and SRTCP decryption for what is dropped: werift's receive path drops the packet (its caller catches and logs). */
class DroppedPacket extends Error {}

/** libwebrtc's SRTP replay window for video: retransmissions arrive well behind the newest packet. */
const SRTP_REPLAY_WINDOW = 1024;
const DTLS_REPLAY_WINDOW = 64;
const CONTENT_TYPES = new Set([20, 21, 22, 23]);
const ALERT = 21;
const HANDSHAKE = 22;
const APPLICATION_DATA = 23;
const RECORD_HEADER_BYTES = 13;
/** werift's epoch once the handshake is done. */
const CURRENT_EPOCH = 1;
/** werift's AEAD SRTP profile; its other (AES-CM with HMAC-SHA1-80) has a 10-byte tag after the SRTCP index. */
const PROFILE_AEAD_AES_128_GCM = 7;

/** werift 0.24's ICE `Connection` and UDP `StunProtocol`, as far as its receive path and credentials go. */
interface IceAgent {
  localUsername: string;
  localPassword: string;
  userHistory: Record<string, string>;
  ensureProtocol(protocol: object): void;
}
interface UdpProtocol {
  datagramReceived(data: Buffer, addr: unknown): void;
}

/** werift 0.24's `DtlsSocket` (the base of its DTLS client and server). */
interface DtlsSocket {
  connected: boolean;
  transport: { socket: { onData: (data: Buffer) => void } };
  cipher: { decryptPacket(record: DtlsRecord): Buffer };
  srtp: { srtpProfile?: number };
  onData: { execute(data: Buffer): void };
  onClose: { execute(): void };
}
/** What werift's `CipherContext.decryptPacket` reads of a record (a `DtlsPlaintext`). */
interface DtlsRecord {
  recordLayerHeader: {
    contentType: number;
    protocolVersion: { major: number; minor: number };
    epoch: number;
    sequenceNumber: number;
    contentLen: number;
  };
  fragment: Buffer;
}
interface SrtpSession {
  decrypt(packet: Buffer): Buffer;
}
/** werift 0.24's `RTCDtlsTransport`. */
interface DtlsTransport {
  dtls?: DtlsSocket;
  srtp: SrtpSession;
  srtcp: SrtpSession;
  start(): Promise<void>;
  updateSrtpSession(): void;
  iceTransport: { connection: object };
}

/**
 * Guards every transport `pc` makes (see the module comment), counting what it drops in `drops`
 * (which several peer connections may share). Returns what authenticated, for liveness.
 */
export function guardMedia<T extends object>(pc: T, drops: MediaDrops): { pc: T; received: MediaReceived } {
  const received: MediaReceived = { rtp: 0, rtcp: 0, reportedSent: new Map() };
  onEachTransport(pc, (created) => {
    const transport = created as DtlsTransport;
    guardIceAgent(transport.iceTransport.connection as IceAgent, drops);
    const start = transport.start.bind(transport);
    transport.start = () => {
      // werift makes its DTLS socket synchronously at the start of `start`.
      const started = start();
      if (transport.dtls) guardDtls(transport.dtls, drops);
      return started;
    };
    const updateSrtpSession = transport.updateSrtpSession.bind(transport);
    transport.updateSrtpSession = () => {
      updateSrtpSession();
      guardSrtp(transport, drops, received);
    };
  });
  return { pc, received };
}

function guardIceAgent(agent: IceAgent, drops: MediaDrops): void {
  const passwordOf = (ufrag: string): string | undefined =>
    agent.userHistory[ufrag] ?? (ufrag === agent.localUsername ? agent.localPassword : undefined);
  const ensureProtocol = agent.ensureProtocol.bind(agent);
  agent.ensureProtocol = (created) => {
    ensureProtocol(created);
    const protocol = created as Partial<UdpProtocol>;
    if (typeof protocol.datagramReceived !== 'function') return; // TCP and TURN protocols receive otherwise
    const datagramReceived = protocol.datagramReceived.bind(protocol);
    protocol.datagramReceived = (data, addr) => {
      const first = data[0];
      if (first === undefined || !(first < 4 || (first >= 20 && first < 64) || (first >= 128 && first < 192))) {
        drops['unknown-protocol']++;
        return;
      }
      if (first < 4 && isStunRequest(data)) {
        const ufrag = requestUfrag(data);
        const password = ufrag === undefined ? undefined : passwordOf(ufrag);
        if (password === undefined || !hasValidIntegrity(data, password)) {
          drops['stun-unauthenticated']++;
          return;
        }
      }
      datagramReceived(data, addr);
    };
  };
}

function guardDtls(socket: DtlsSocket, drops: MediaDrops): void {
  const werifts = socket.transport.socket.onData;
  const replays = new ReplayWindow(DTLS_REPLAY_WINDOW);
  socket.transport.socket.onData = (data) => {
    for (let start = 0; start < data.length;) {
      if (data.length - start < RECORD_HEADER_BYTES) {
        drops['dtls-malformed']++;
        return;
      }
      const end = start + RECORD_HEADER_BYTES + data.readUInt16BE(start + 11);
      if (end > data.length) {
        drops['dtls-malformed']++;
        return;
      }
      const record = data.subarray(start, end);
      start = end;
      if (!CONTENT_TYPES.has(record[0]!)) drops['dtls-unknown-type']++;
      // The handshake: werift's own rules, as it is unauthenticated until Finished anyway.
      else if (!socket.connected) werifts(record);
      else acceptRecord(socket, record, replays, drops, werifts);
    }
  };
}

/** A record after the handshake: authenticated, not a replay, of the current epoch. */
function acceptRecord(socket: DtlsSocket, record: Buffer, replays: ReplayWindow, drops: MediaDrops, werifts: (data: Buffer) => void): void {
  const contentType = record[0]!;
  const epoch = record.readUInt16BE(3);
  const sequenceNumber = record.readUIntBE(5, 6);
  if (epoch !== CURRENT_EPOCH) {
    drops['dtls-wrong-epoch']++;
    return;
  }
  if (!replays.fresh(sequenceNumber)) {
    drops['dtls-replay']++;
    return;
  }
  let plaintext: Buffer;
  try {
    plaintext = socket.cipher.decryptPacket({
      recordLayerHeader: {
        contentType,
        protocolVersion: { major: record[1]!, minor: record[2]! },
        epoch,
        sequenceNumber,
        contentLen: record.length - RECORD_HEADER_BYTES,
      },
      fragment: record.subarray(RECORD_HEADER_BYTES),
    });
  } catch {
    drops['dtls-unauthenticated']++;
    return;
  }
  replays.accept(sequenceNumber);
  if (contentType === APPLICATION_DATA) socket.onData.execute(plaintext);
  // A retransmitted Finished (ours was lost): werift answers with its last flight again.
  else if (contentType === HANDSHAKE) werifts(record);
  // close_notify or a fatal alert ends the association; warnings do not.
  else if (contentType === ALERT && (plaintext[0] === 2 || plaintext[1] === 0)) socket.onClose.execute();
}

function guardSrtp(transport: DtlsTransport, drops: MediaDrops, received: MediaReceived): void {
  const rtpWindows = new Map<number, { highest: number; window: ReplayWindow }>();
  const rtcpWindows = new Map<number, ReplayWindow>();
  const rtcpTagBytes = transport.dtls?.srtp.srtpProfile === PROFILE_AEAD_AES_128_GCM ? 0 : 10;

  const rtp = transport.srtp;
  const decryptRtp = rtp.decrypt.bind(rtp);
  rtp.decrypt = (packet) => {
    if (packet.length < 12) return dropped(drops, 'srtp-unauthenticated');
    const ssrc = packet.readUInt32BE(8);
    const state = rtpWindows.get(ssrc);
    const index = extendSequence(packet.readUInt16BE(2), state?.highest ?? -1);
    if (state && !state.window.fresh(index)) return dropped(drops, 'srtp-replay');
    let plain: Buffer;
    try {
      plain = decryptRtp(packet);
    } catch {
      return dropped(drops, 'srtp-unauthenticated');
    }
    if (state) {
      state.window.accept(index);
      state.highest = Math.max(state.highest, index);
    } else {
      const window = new ReplayWindow(SRTP_REPLAY_WINDOW);
      window.accept(index);
      rtpWindows.set(ssrc, { highest: index, window });
    }
    received.rtp++;
    return plain;
  };

  const rtcp = transport.srtcp;
  const decryptRtcp = rtcp.decrypt.bind(rtcp);
  rtcp.decrypt = (packet) => {
    const indexAt = packet.length - rtcpTagBytes - 4;
    if (indexAt < 8) return dropped(drops, 'srtcp-unauthenticated');
    const ssrc = packet.readUInt32BE(4);
    const index = packet.readUInt32BE(indexAt) & 0x7fffffff;
    const window = rtcpWindows.get(ssrc);
    if (window && !window.fresh(index)) return dropped(drops, 'srtcp-replay');
    let plain: Buffer;
    try {
      plain = decryptRtcp(packet);
    } catch {
      return dropped(drops, 'srtcp-unauthenticated');
    }
    if (window) window.accept(index);
    else {
      const fresh = new ReplayWindow(SRTP_REPLAY_WINDOW);
      fresh.accept(index);
      rtcpWindows.set(ssrc, fresh);
    }
    received.rtcp++;
    readSenderReports(plain, received.reportedSent);
    return plain;
  };
}

const SENDER_REPORT = 200;

/** Takes the sender's packet count of each sender report in a compound RTCP packet (RFC 3550 §6.4.1). */
function readSenderReports(compound: Buffer, latest: Map<number, number>): void {
  for (let offset = 0; offset + 4 <= compound.length;) {
    const end = offset + 4 * (compound.readUInt16BE(offset + 2) + 1);
    if (compound[offset + 1] === SENDER_REPORT && end <= compound.length && end - offset >= 28) {
      latest.set(compound.readUInt32BE(offset + 4), compound.readUInt32BE(offset + 20));
    }
    offset = end;
  }
}

function dropped(drops: MediaDrops, reason: MediaDropReason): never {
  drops[reason]++;
  throw new DroppedPacket(reason);
}
