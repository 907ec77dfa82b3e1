/**
 * The forwarding fast path: writes a publisher's RTP packets onto a player's werift RTCRtpSender
 * without werift's sendRtp. Per packet and player that saves a parse, two header objects and a
 * serialisation, an extension rebuild, a clock read, three promises and three buffer copies: the
 * header is written straight into the datagram, AES-GCM encrypts the payload next to it, and the
 * datagram goes to the ICE pair's socket. werift still answers NACKs (from the publisher's
 * history, shared by all its players) and sends the RTCP sender reports (from the counters
 * written here).
 */
import { createCipheriv } from 'node:crypto';
import type { Socket } from 'node:dgram';
import { RtpHeader, RtpPacket, type RTCRtpSender } from 'werift';

/** werift 0.24 keeps this many packets per sender for NACKs, indexed by sequence number modulo it. */
const RTP_HISTORY_SIZE = 128;
/** SRTP protection profile 0x0007, SRTP_AEAD_AES_128_GCM (RFC 7714). */
const AEAD_AES_128_GCM = 7;
const GCM_TAG_BYTES = 16;

interface SrtpSsrcState {
  rolloverCounter: number;
  lastSequenceNumber: number;
}

/** werift's SRTP context for what we send. */
interface SrtpContextInternals {
  profile: number;
  srtpSessionKey: Buffer;
  srtpSessionSalt: Buffer;
  getSrtpSsrcState(ssrc: number): SrtpSsrcState;
  updateRolloverCount(sequenceNumber: number, state: SrtpSsrcState): void;
  encryptRtp(payload: Buffer, header: RtpHeader): Buffer;
}

interface CandidatePairInternals {
  remoteCandidate: { host: string; port: number };
  packetsSent: number;
  bytesSent: number;
  protocol: { transport: { type: string; closed: boolean; socket?: Socket } };
}

/** The parts of werift 0.24's RTCRtpSender and its transports that this path reads and writes. */
interface SenderInternals {
  ssrc: number;
  codec?: { payloadType: number };
  dtlsTransport: {
    state: string;
    srtp: { localContext: SrtpContextInternals };
    iceTransport: {
      connection: {
        nominated?: CandidatePairInternals;
        canSendApplicationData(): boolean;
        send(data: Buffer): Promise<void>;
      };
    };
    bytesSent: number;
    packetsSent: number;
  };
  rtpCache: Array<RtpPacket | undefined>;
  sequenceNumber?: number;
  timestamp?: number;
  ntpTimestamp: bigint;
  rtpTimestamp: number;
  octetCount: number;
  packetCount: number;
  headerBytesSent: number;
  runRtcp(): Promise<void>;
}

/**
 * A publisher track's last packets, as received, by sequence number modulo werift's history size.
 * Players' packets differ from these only in SSRC and payload type, so one history serves all.
 */
export class PacketHistory {
  private readonly packets = new Array<RtpPacket | undefined>(RTP_HISTORY_SIZE);

  add(packet: RtpPacket): void {
    this.packets[packet.header.sequenceNumber % RTP_HISTORY_SIZE] = packet;
  }

  get(index: number): RtpPacket | undefined {
    return this.packets[index];
  }
}

/** Scratch space for the IV, which createCipheriv copies. */
const iv = Buffer.alloc(12);

/**
 * `payload` as an SRTP packet under `context` (AES-GCM, RFC 7714): `source`'s marker, sequence
 * number, timestamp and CSRCs with `ssrc` and `payloadType`, no extension, no padding. The header
 * is written straight into the datagram and the ciphertext and tag next to it.
 */
export function sealGcm(
  context: Pick<SrtpContextInternals, 'srtpSessionKey' | 'srtpSessionSalt'>,
  rolloverCounter: number,
  source: RtpHeader,
  ssrc: number,
  payloadType: number,
  payload: Buffer,
): Buffer {
  const { csrc } = source;
  const headerBytes = 12 + 4 * csrc.length;
  const datagram = Buffer.allocUnsafe(headerBytes + payload.length + GCM_TAG_BYTES);
  datagram[0] = 0x80 | csrc.length; // version 2, no padding, no extension
  datagram[1] = (source.marker ? 0x80 : 0) | payloadType;
  datagram.writeUInt16BE(source.sequenceNumber, 2);
  datagram.writeUInt32BE(source.timestamp, 4);
  datagram.writeUInt32BE(ssrc, 8);
  for (let i = 0; i < csrc.length; i++) datagram.writeUInt32BE(csrc[i]!, 12 + 4 * i);

  // IV = salt XOR (0x0000 || SSRC || ROC || SEQ), RFC 7714 section 8.1.
  const salt = context.srtpSessionSalt;
  iv.writeUInt16BE(0, 0);
  iv.writeUInt32BE(ssrc, 2);
  iv.writeUInt32BE(rolloverCounter >>> 0, 6);
  iv.writeUInt16BE(source.sequenceNumber, 10);
  for (let i = 0; i < 12; i++) iv[i]! ^= salt[i]!;
  const cipher = createCipheriv('aes-128-gcm', context.srtpSessionKey, iv);
  cipher.setAAD(datagram.subarray(0, headerBytes));
  const encrypted = cipher.update(payload);
  cipher.final();
  encrypted.copy(datagram, headerBytes);
  cipher.getAuthTag().copy(datagram, headerBytes + encrypted.length);
  return datagram;
}

export class ForwardingSender {
  private readonly sender: SenderInternals;
  private reporting = false;
  /** Cached per SRTP context (a new DTLS handshake brings a new one). */
  private srtp?: { context: SrtpContextInternals; state: SrtpSsrcState; gcm: boolean };

  constructor(sender: RTCRtpSender, history: PacketHistory) {
    this.sender = sender as unknown as SenderInternals;
    // werift looks up the packets a NACK asks for here; they are built from the shared history
    // only when asked for.
    const rewrite = (packet: RtpPacket | undefined): RtpPacket | undefined => packet && this.asOwn(packet);
    this.sender.rtpCache = new Proxy([], {
      get: (target, key) => (typeof key === 'string' && /^\d+$/.test(key) ? rewrite(history.get(Number(key))) : Reflect.get(target, key)),
      set: () => true,
    });
  }

  /**
   * Sends `packet` as this sender's: its SSRC and payload type, no header extensions (their ids
   * are per peer connection) and no padding bytes (a padding-only packet goes as an empty one),
   * sequence number and timestamp untouched. Returns the RTP bytes sent (header and payload), 0
   * if the sender cannot send yet.
   */
  send(packet: RtpPacket, sentAt: bigint): number {
    const { sender } = this;
    const { dtlsTransport, codec } = sender;
    const connection = dtlsTransport.iceTransport.connection;
    if (!codec || dtlsTransport.state !== 'connected' || !connection.canSendApplicationData()) return 0;
    const { header, payload } = packet;
    const headerBytes = 12 + 4 * header.csrc.length;
    sender.sequenceNumber = header.sequenceNumber;
    sender.timestamp = sender.rtpTimestamp = header.timestamp;
    sender.ntpTimestamp = sentAt;
    sender.octetCount += payload.length;
    sender.packetCount = (sender.packetCount + 1) >>> 0;
    sender.headerBytesSent += headerBytes;
    if (!this.reporting) {
      this.reporting = true;
      void sender.runRtcp();
    }

    const datagram = this.encrypt(header, payload, codec.payloadType);
    dtlsTransport.bytesSent += datagram.length;
    dtlsTransport.packetsSent++;
    const pair = connection.nominated!;
    const { transport } = pair.protocol;
    if (transport.type === 'udp' && transport.socket) {
      if (transport.closed) return 0;
      pair.packetsSent++;
      pair.bytesSent += datagram.length;
      transport.socket.send(datagram, pair.remoteCandidate.port, pair.remoteCandidate.host);
    } else {
      void connection.send(datagram).catch(() => undefined);
    }
    return headerBytes + payload.length;
  }

  /** The SRTP packet: AES-GCM written here, other profiles by werift's cipher. */
  private encrypt(source: RtpHeader, payload: Buffer, payloadType: number): Buffer {
    const { ssrc, dtlsTransport } = this.sender;
    const context = dtlsTransport.srtp.localContext;
    if (this.srtp?.context !== context) {
      this.srtp = { context, state: context.getSrtpSsrcState(ssrc), gcm: context.profile === AEAD_AES_128_GCM };
    }
    const { state, gcm } = this.srtp;
    if (!gcm) return context.encryptRtp(payload, this.ownHeader(source, payloadType));
    context.updateRolloverCount(source.sequenceNumber, state);
    return sealGcm(context, state.rolloverCounter, source, ssrc, payloadType, payload);
  }

  private ownHeader(source: RtpHeader, payloadType: number): RtpHeader {
    return new RtpHeader({
      marker: source.marker,
      payloadType,
      sequenceNumber: source.sequenceNumber,
      timestamp: source.timestamp,
      ssrc: this.sender.ssrc,
      csrc: source.csrc,
      csrcLength: source.csrc.length,
    });
  }

  /** The publisher's packet as this sender sent it, for werift to retransmit. */
  private asOwn(packet: RtpPacket): RtpPacket | undefined {
    const { codec } = this.sender;
    return codec && new RtpPacket(this.ownHeader(packet.header, codec.payloadType), packet.payload);
  }
}
