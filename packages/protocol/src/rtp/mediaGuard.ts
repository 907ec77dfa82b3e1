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
 *   without checking MESSAGE-INTEGRITY, over UDP, ICE-TCP and TURN alike; nor does it notice a
 *   signed request replayed from another address.
 * - Datagrams that are none of STUN, DTLS, RTP or RTCP (RFC 7983's first byte).
 *
 * It also counts the RTP and RTCP packets that authenticated, and reads the packet counts of the
 * sender reports among them: what media liveness is judged by.
 */
import type { DtlsSocket, RTCDtlsTransport, RTCPeerConnection } from 'werift';
import { hasValidIntegrity, requestUfrag } from './stun.js';
import { onEachTransport } from './iceAgents.js';
import { dtlsSocketInternals, iceAgentInternals, protocolInternals, type IceAgentInternals } from './weriftInternals.js';
import { ReplayWindow } from './replayWindow.js';
import type { LivenessSample } from '../liveness.js';

export const MEDIA_DROP_REASONS = [
  /** First byte of no protocol of RFC 7983, or empty. */
  'unknown-protocol',
  /** A STUN request (over UDP, TCP or TURN) without a USERNAME of ours or a MESSAGE-INTEGRITY under its password. */
  'stun-unauthenticated',
  /** A signed STUN request the agent took before, again from another address. */
  'stun-replay',
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

/** libwebrtc's SRTP replay window for video: retransmissions arrive well behind the newest packet. */
const SRTP_REPLAY_WINDOW = 1024;
const DTLS_REPLAY_WINDOW = 64;
/** A peer resends its last flight after a second or so (werift, OpenSSL): more often than this is not a lost answer. */
const HANDSHAKE_ANSWER_INTERVAL_MS = 500;
const CONTENT_TYPES = new Set([20, 21, 22, 23]);
const ALERT = 21;
const HANDSHAKE = 22;
const APPLICATION_DATA = 23;
const RECORD_HEADER_BYTES = 13;
/** werift's epoch once the handshake is done. */
const CURRENT_EPOCH = 1;
/** werift's AEAD SRTP profile; its other (AES-CM with HMAC-SHA1-80) has a 10-byte tag after the SRTCP index. */
const PROFILE_AEAD_AES_128_GCM = 7;

/** What has authenticated so far, as liveness samples it: `media` is what the peer must send. */
export function livenessSample(received: MediaReceived, media: 'rtp' | 'rtcp'): LivenessSample {
  return { media: received[media], packets: received.rtp + received.rtcp, reportedSent: received.reportedSent };
}

/**
 * Opens AES-128-GCM SRTP (RFC 7714) under one session key: fills `plain` (the packet's length less
 * the tag) with the header and the payload, and says whether the packet authenticated.
 */
export interface SrtpGcmOpener {
  open(plain: Buffer, packet: Buffer, headerBytes: number, ssrc: number, rolloverCounter: number, sequenceNumber: number): boolean;
}

/** An opener for a session key and salt. */
export type SrtpGcmOpeners = (key: Buffer, salt: Buffer) => SrtpGcmOpener;

/**
 * Guards every transport `pc` makes (see the module comment), counting what it drops in `drops`
 * (which several peer connections may share). Returns what authenticated, for liveness.
 * `openers`: what opens AES-GCM SRTP in place of werift's cipher (which parses each header bit by
 * bit and makes a decipher per packet).
 */
export function guardMedia<T extends RTCPeerConnection>(
  pc: T,
  drops: MediaDrops,
  openers?: SrtpGcmOpeners,
): { pc: T; received: MediaReceived } {
  const received: MediaReceived = { rtp: 0, rtcp: 0, reportedSent: new Map() };
  onEachTransport(pc, (transport) => {
    guardIceAgent(iceAgentInternals(transport.iceTransport.connection), drops);
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
      guardSrtp(transport, drops, received, openers);
    };
  });
  return { pc, received };
}

function guardIceAgent(agent: IceAgentInternals, drops: MediaDrops): void {
  const passwordOf = (ufrag: string): string | undefined =>
    agent.userHistory[ufrag] ?? (ufrag === agent.localUsername ? agent.localPassword : undefined);
  const requests = new RecentRequests();
  const ensureProtocol = agent.ensureProtocol.bind(agent);
  agent.ensureProtocol = (protocol) => {
    ensureProtocol(protocol);
    const received = protocol.onRequestReceived;
    if (received) {
      const execute = received.execute;
      received.execute = (message, addr, data) => {
        const ufrag = requestUfrag(data);
        const password = ufrag === undefined ? undefined : passwordOf(ufrag);
        if (password === undefined || !hasValidIntegrity(data, password)) drops['stun-unauthenticated']++;
        else if (!requests.fresh(data, addr)) drops['stun-replay']++;
        else execute(message, addr, data);
      };
    }
    // UDP: what is no media protocol at all goes no further (TCP frames and TURN data come whole).
    const input = protocolInternals(protocol);
    const datagramReceived = input.datagramReceived?.bind(protocol);
    if (datagramReceived) {
      input.datagramReceived = (data, addr) => {
        const first = data[0];
        if (first === undefined || !(first < 4 || (first >= 20 && first < 64) || (first >= 128 && first < 192))) {
          drops['unknown-protocol']++;
          return;
        }
        datagramReceived(data, addr);
      };
    }
  };
}

/** Requests an agent took lately, by transaction ID: the same one again from elsewhere is a replay (a retransmission comes from the same address). */
class RecentRequests {
  private static readonly KEPT = 256;
  private readonly from = new Map<string, string>();

  fresh(request: Buffer, [host, port]: readonly [string, number]): boolean {
    const id = request.toString('hex', 8, 20);
    const address = `${host}:${port}`;
    const seen = this.from.get(id);
    if (seen !== undefined) return seen === address;
    this.from.set(id, address);
    if (this.from.size > RecentRequests.KEPT) this.from.delete(this.from.keys().next().value!);
    return true;
  }
}

function guardDtls(socket: DtlsSocket, drops: MediaDrops): void {
  const input = dtlsSocketInternals(socket).transport.socket;
  const werifts = input.onData;
  const records = new EstablishedRecords(socket, drops, werifts);
  input.onData = (data) => {
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
      else records.take(record);
    }
  };
}

/** After the handshake: records of the current epoch that authenticate and are not replays. */
class EstablishedRecords {
  private readonly replays = new ReplayWindow(DTLS_REPLAY_WINDOW);
  private lastHandshakeMs = -Infinity;

  constructor(
    private readonly socket: DtlsSocket,
    private readonly drops: MediaDrops,
    private readonly werifts: (data: Buffer) => void,
  ) {}

  take(record: Buffer): void {
    const { drops } = this;
    const contentType = record[0]!;
    const epoch = record.readUInt16BE(3);
    const sequenceNumber = record.readUIntBE(5, 6);
    if (epoch !== CURRENT_EPOCH) {
      drops['dtls-wrong-epoch']++;
      return;
    }
    let plaintext: Buffer;
    try {
      plaintext = dtlsSocketInternals(this.socket).cipher.decryptPacket({
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
    // werift resends a lost flight byte for byte, record numbers included: handshake records are
    // exempt from the window, and their answers limited in rate instead.
    if (contentType === HANDSHAKE) return this.handshakeAgain(record);
    if (!this.replays.take(sequenceNumber)) {
      drops['dtls-replay']++;
      return;
    }
    if (contentType === APPLICATION_DATA) this.socket.onData.execute(plaintext);
    // close_notify or a fatal alert ends the association; warnings do not.
    else if (contentType === ALERT && (plaintext[0] === 2 || plaintext[1] === 0)) this.socket.onClose.execute();
  }

  /** A Finished again (ours was lost): werift answers with its last flight again, at most this often. */
  private handshakeAgain(record: Buffer): void {
    const now = performance.now();
    if (now - this.lastHandshakeMs < HANDSHAKE_ANSWER_INTERVAL_MS) {
      this.drops['dtls-replay']++;
      return;
    }
    this.lastHandshakeMs = now;
    this.werifts(record);
  }
}

function guardSrtp(transport: RTCDtlsTransport, drops: MediaDrops, received: MediaReceived, openers?: SrtpGcmOpeners): void {
  const rtpWindows = new Map<number, ReplayWindow>();
  const rtcpWindows = new Map<number, ReplayWindow>();
  const gcm = transport.dtls?.srtp.srtpProfile === PROFILE_AEAD_AES_128_GCM;
  const rtcpTagBytes = gcm ? 0 : 10;

  const rtp = transport.srtp;
  const decryptRtp = gcm && openers ? openGcm(rtp.remoteContext, openers) : rtp.decrypt.bind(rtp);
  rtp.decrypt = (packet) => {
    let plain: Buffer;
    try {
      plain = decryptRtp(packet);
    } catch {
      return dropped(drops, 'srtp-unauthenticated');
    }
    // The packet's index as werift decrypted it: its rollover count for the SSRC, then the sequence number.
    const ssrc = packet.readUInt32BE(8);
    const rolloverCounter = rtp.remoteContext.srtpSSRCStates[ssrc]?.rolloverCounter ?? 0;
    if (!windowOf(rtpWindows, ssrc).take(rolloverCounter * 0x10000 + packet.readUInt16BE(2))) return dropped(drops, 'srtp-replay');
    received.rtp++;
    return plain;
  };

  const rtcp = transport.srtcp;
  const decryptRtcp = rtcp.decrypt.bind(rtcp);
  rtcp.decrypt = (packet) => {
    let plain: Buffer;
    try {
      plain = decryptRtcp(packet);
    } catch {
      return dropped(drops, 'srtcp-unauthenticated');
    }
    // The SRTCP index follows the packet (and precedes the tag of AES-CM profiles), E flag aside.
    const index = packet.readUInt32BE(packet.length - rtcpTagBytes - 4) & 0x7fffffff;
    if (!windowOf(rtcpWindows, packet.readUInt32BE(4)).take(index)) return dropped(drops, 'srtcp-replay');
    received.rtcp++;
    readSenderReports(plain, received.reportedSent);
    return plain;
  };
}

/** The tag of AES-GCM SRTP (RFC 7714). */
export const SRTP_GCM_TAG_BYTES = 16;

/** Bytes of an RTP header with its CSRCs and extension block, -1 when the packet is shorter than that. */
function rtpHeaderBytes(packet: Buffer): number {
  if (packet.length < 12) return -1;
  let bytes = 12 + 4 * (packet[0]! & 0x0f);
  if (packet[0]! & 0x10) {
    if (packet.length < bytes + 4) return -1;
    bytes += 4 + 4 * packet.readUInt16BE(bytes + 2);
  }
  return bytes <= packet.length ? bytes : -1;
}

type SrtpContext = RTCDtlsTransport['srtp']['remoteContext'];

/**
 * Decryption as werift's SRTP session does it (the same rollover counting, kept in its context),
 * by `openers`' opener for the context's key: throws for what does not authenticate.
 */
export function openGcm(context: SrtpContext, openers: SrtpGcmOpeners): (packet: Buffer) => Buffer {
  const opener = openers(context.srtpSessionKey, context.srtpSessionSalt);
  return (packet) => {
    const headerBytes = rtpHeaderBytes(packet);
    if (headerBytes < 0 || packet.length < headerBytes + SRTP_GCM_TAG_BYTES) throw DROPPED;
    const ssrc = packet.readUInt32BE(8);
    const sequenceNumber = packet.readUInt16BE(2);
    const known = context.srtpSSRCStates[ssrc];
    const state = known ?? { ssrc, rolloverCounter: 0, lastSequenceNumber: 0 };
    // The counter moves only for a packet that authenticates: what it was is put back otherwise.
    const { rolloverCounter, lastSequenceNumber, rolloverHasProcessed } = state;
    context.updateRolloverCount(sequenceNumber, state);
    const plain = Buffer.allocUnsafe(packet.length - SRTP_GCM_TAG_BYTES);
    if (!opener.open(plain, packet, headerBytes, ssrc, state.rolloverCounter, sequenceNumber)) {
      Object.assign(state, { rolloverCounter, lastSequenceNumber, rolloverHasProcessed });
      throw DROPPED;
    }
    if (!known) context.srtpSSRCStates[ssrc] = state;
    return plain;
  };
}

const windowOf = (windows: Map<number, ReplayWindow>, ssrc: number): ReplayWindow => {
  let window = windows.get(ssrc);
  if (!window) windows.set(ssrc, (window = new ReplayWindow(SRTP_REPLAY_WINDOW)));
  return window;
};

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

/**
 * Thrown from SRTP and SRTCP decryption for what is dropped: werift's receive path drops the
 * packet (its caller catches and logs). One error for every drop: a flood makes no stack traces.
 */
const DROPPED = new Error('dropped by the media guard');

function dropped(drops: MediaDrops, reason: MediaDropReason): never {
  drops[reason]++;
  throw DROPPED;
}
