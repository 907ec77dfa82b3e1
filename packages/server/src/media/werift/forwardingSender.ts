/**
 * The forwarding fast path: writes packets onto a player's werift RTCRtpSender without werift's
 * sendRtp. Per packet and player that saves a parse, two header objects and a serialisation, an
 * extension rebuild, a clock read, three promises and three buffer copies: the header (with the
 * player's own numbering and extensions) is written straight into the datagram, AES-GCM encrypts
 * the payload next to it, and the datagram goes to the ICE pair's socket (the fast path seals and
 * sends: see media/fastpath). The RTCP sender reports are made from the counters written here.
 */
import {
  compactNtp,
  RtcpSenderInfo,
  RtcpSourceDescriptionPacket,
  RtcpSrPacket,
  RtpHeader,
  SourceDescriptionChunk,
  SourceDescriptionItem,
  type RtcpPacket,
  type RtpPacket,
  type RTCDtlsTransport,
  type RTCRtpSender,
} from 'werift';
import {
  iceAgentInternals,
  protocolInternals,
  rtpSenderInternals,
  SRTP_GCM_TAG_BYTES,
  type RtpSenderInternals,
} from '@parley/protocol/rtp';
import { ipv4Number } from '../fastpath/datagramBatch.js';
import type { FastPath } from '../fastpath/fastPath.js';
import type { GcmSealer } from '../fastpath/gcmSealer.js';

/** SRTP protection profile 0x0007, SRTP_AEAD_AES_128_GCM (RFC 7714). */
const AEAD_AES_128_GCM = 7;
/** The tag of the other profile werift offers, SRTP_AES128_CM_HMAC_SHA1_80. */
const HMAC_SHA1_80_TAG_BYTES = 10;

/** werift's SRTP context for what a sender sends. */
type SrtpContext = RTCDtlsTransport['srtp']['localContext'];
type SrtpSsrcState = ReturnType<SrtpContext['getSrtpSsrcState']>;

/** One-byte-header RTP extension elements (RFC 8285) the SFU writes: the transport-wide sequence number, the simulcast layer, the audio level. */
export interface OutgoingExtensions {
  /** Negotiated id of transport-cc, 0 when not negotiated. */
  transportCcId: number;
  transportSequenceNumber: number;
  /** Negotiated id of the simulcast-layer extension, 0 when not negotiated or not video. */
  layerId: number;
  layer: number;
  /** Negotiated id of the audio level extension (RFC 6464), 0 when not negotiated, not audio or the level is unknown. */
  audioLevelId: number;
  audioLevel: number;
}

/** A packet as a player gets it: the header fields that differ from the source's, and a payload that may start with other bytes. */
export interface OutgoingPacket {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  /** Bytes sent in place of the payload's first `replaced` bytes (a rewritten descriptor, an RTX header). */
  readonly prefix: Buffer;
  prefixLength: number;
  replaced: number;
  extensions: OutgoingExtensions;
}

export const outgoingPacket = (): OutgoingPacket => ({
  marker: false,
  payloadType: 0,
  sequenceNumber: 0,
  timestamp: 0,
  ssrc: 0,
  prefix: Buffer.alloc(32),
  prefixLength: 0,
  replaced: 0,
  extensions: { transportCcId: 0, transportSequenceNumber: 0, layerId: 0, layer: 0, audioLevelId: 0, audioLevel: 0 },
});

/** Bytes of the extension block (header and padded elements) for these elements, 0 for none. */
function extensionBytes({ transportCcId, layerId, audioLevelId }: OutgoingExtensions): number {
  const elements = (transportCcId ? 3 : 0) + (layerId ? 2 : 0) + (audioLevelId ? 2 : 0);
  return elements === 0 ? 0 : 4 + ((elements + 3) & ~3);
}

/** Writes the RTP header of `out` (with `csrc` and its extensions) at the start of `datagram`; returns its length. */
function writeHeader(datagram: Buffer, out: OutgoingPacket, csrc: readonly number[]): number {
  const extension = extensionBytes(out.extensions);
  datagram[0] = 0x80 | (extension ? 0x10 : 0) | csrc.length; // version 2, no padding
  datagram[1] = (out.marker ? 0x80 : 0) | out.payloadType;
  datagram.writeUInt16BE(out.sequenceNumber, 2);
  datagram.writeUInt32BE(out.timestamp >>> 0, 4);
  datagram.writeUInt32BE(out.ssrc >>> 0, 8);
  let at = 12;
  for (let i = 0; i < csrc.length; i++, at += 4) datagram.writeUInt32BE(csrc[i]!, at);
  if (!extension) return at;
  const { transportCcId, transportSequenceNumber, layerId, layer, audioLevelId, audioLevel } = out.extensions;
  const end = at + extension;
  datagram.writeUInt16BE(0xbede, at);
  datagram.writeUInt16BE((extension - 4) / 4, at + 2);
  at += 4;
  if (transportCcId) {
    datagram[at++] = (transportCcId << 4) | 1;
    datagram.writeUInt16BE(transportSequenceNumber, at);
    at += 2;
  }
  if (layerId) {
    datagram[at++] = layerId << 4;
    datagram[at++] = layer;
  }
  if (audioLevelId) {
    datagram[at++] = audioLevelId << 4;
    datagram[at++] = audioLevel;
  }
  datagram.fill(0, at, end);
  return end;
}

/** Bytes of `out`'s payload: the prefix, then the source payload after what the prefix replaces. */
const payloadBytes = (out: OutgoingPacket, payload: Buffer): number => out.prefixLength + payload.length - out.replaced;

/**
 * `out` with `payload` as an SRTP packet under `sealer`'s key (AES-GCM, RFC 7714). The header is
 * written straight into the datagram and the ciphertext and tag next to it; the payload is
 * encrypted in two pieces (prefix, then the rest) rather than copied.
 */
export function sealGcm(sealer: GcmSealer, rolloverCounter: number, out: OutgoingPacket, csrc: readonly number[], payload: Buffer): Buffer {
  const headerBytes = 12 + 4 * csrc.length + extensionBytes(out.extensions);
  const datagram = Buffer.allocUnsafe(headerBytes + payloadBytes(out, payload) + SRTP_GCM_TAG_BYTES);
  writeHeader(datagram, out, csrc);
  sealer.seal(datagram, headerBytes, out.prefix, out.prefixLength, payload, out.replaced, out.ssrc, rolloverCounter, out.sequenceNumber);
  return datagram;
}

/**
 * Sends packets on a player's werift RTCRtpSender without werift's sendRtp. Its RTCP sender
 * report comes from the counters written here (`senderReport`, sent by the owner with the other
 * sender's in one compound packet); NACKs are answered by the caller, which knows which source
 * packet each of the player's sequence numbers was.
 */
export class ForwardingSender {
  private readonly sender: RtpSenderInternals;
  /** Cached per SRTP context (a new DTLS handshake brings a new one), per SSRC (media and RTX); a sealer for AES-GCM. */
  private srtp?: { context: SrtpContext; states: Map<number, SrtpSsrcState>; gcm: GcmSealer | undefined };
  /** The selected pair's remote address, as the fast path takes it. */
  private remote?: { host: string; port: number; ipv4: number };

  constructor(
    sender: RTCRtpSender,
    private readonly fastPath: FastPath,
  ) {
    // werift answers NACKs from what its own sendRtp sent, which is nothing: they are the caller's.
    this.sender = rtpSenderInternals(sender);
  }

  get ssrc(): number {
    return this.sender.ssrc;
  }

  /** The negotiated payload type, undefined until negotiated. */
  get payloadType(): number | undefined {
    return this.sender.codec?.payloadType;
  }

  /** RTX as negotiated with the player: its payload type and SSRC, and the next RTX sequence number (advanced here). */
  nextRtx(): { payloadType: number; ssrc: number; sequenceNumber: number } | undefined {
    const { sender } = this;
    if (sender.rtxPayloadType === undefined) return undefined;
    const sequenceNumber = sender.rtxSequenceNumber;
    sender.rtxSequenceNumber = (sequenceNumber + 1) & 0xffff;
    return { payloadType: sender.rtxPayloadType, ssrc: sender.rtxSsrc, sequenceNumber };
  }

  /** Whether packets can go out now (DTLS up, a pair nominated). */
  get ready(): boolean {
    const { dtlsTransport, codec } = this.sender;
    return (
      !!codec && dtlsTransport.state === 'connected' && iceAgentInternals(dtlsTransport.iceTransport.connection).canSendApplicationData()
    );
  }

  /**
   * `out` with `source`'s CSRCs and payload as the SRTP datagram to send, once the caller has seen
   * `ready`. `media` (first transmissions) updates the counters werift's sender reports are made from.
   */
  seal(out: OutgoingPacket, source: RtpPacket, sentAt: bigint, media: boolean): Buffer {
    const { sender } = this;
    const { payload, header } = source;
    if (media) {
      sender.sequenceNumber = out.sequenceNumber;
      sender.timestamp = sender.rtpTimestamp = out.timestamp;
      sender.ntpTimestamp = sentAt;
      sender.octetCount += payloadBytes(out, payload);
      sender.packetCount = (sender.packetCount + 1) >>> 0;
      sender.headerBytesSent += 12 + 4 * header.csrc.length + extensionBytes(out.extensions);
    }
    return this.encrypt(out, header.csrc, payload);
  }

  /**
   * This sender's report (and its CNAME) as of now, none before it sent media. Noted on the
   * sender as werift's own reports are, for the round trip werift takes from receiver reports.
   */
  senderReport(): RtcpPacket[] {
    const { sender } = this;
    if (sender.packetCount === 0) return [];
    const { ssrc, ntpTimestamp, rtpTimestamp, packetCount, octetCount, cname } = sender;
    sender.lastSRtimestamp = compactNtp(ntpTimestamp);
    sender.lastSentSRTimestamp = Date.now() / 1000;
    const report = new RtcpSrPacket({ ssrc, senderInfo: new RtcpSenderInfo({ ntpTimestamp, rtpTimestamp, packetCount, octetCount }) });
    if (!cname) return [report];
    const items = [new SourceDescriptionItem({ type: 1, text: cname })];
    return [report, new RtcpSourceDescriptionPacket({ chunks: [new SourceDescriptionChunk({ source: ssrc, items })] })];
  }

  /** Bytes SRTP adds to an RTP packet (its authentication tag) under the context `seal` used last. */
  get srtpOverheadBytes(): number {
    return this.srtp && !this.srtp.gcm ? HMAC_SHA1_80_TAG_BYTES : SRTP_GCM_TAG_BYTES;
  }

  /** Puts a datagram sealed by `seal` on the transport's selected pair (shared by every sender of a bundled transport). */
  transmit(datagram: Buffer): void {
    const { dtlsTransport } = this.sender;
    const connection = dtlsTransport.iceTransport.connection;
    const pair = connection.nominated;
    if (!pair) return;
    dtlsTransport.bytesSent += datagram.length;
    dtlsTransport.packetsSent++;
    const { transport } = protocolInternals(pair.protocol);
    if (transport?.type === 'udp' && transport.socket) {
      if (transport.closed) return;
      pair.packetsSent++;
      pair.bytesSent += datagram.length;
      const { host, port } = pair.remoteCandidate;
      let { remote } = this;
      if (remote?.host !== host || remote.port !== port) this.remote = remote = { host, port, ipv4: ipv4Number(host) };
      this.fastPath.send(transport.socket, datagram, remote.ipv4, host, port);
    } else {
      void connection.send(datagram).catch(() => undefined);
    }
  }

  /** The SRTP packet: AES-GCM by the fast path, other profiles by werift's cipher. */
  private encrypt(out: OutgoingPacket, csrc: number[], payload: Buffer): Buffer {
    const context = this.sender.dtlsTransport.srtp.localContext;
    if (this.srtp?.context !== context) {
      const gcm =
        context.profile === AEAD_AES_128_GCM ? this.fastPath.gcmSealer(context.srtpSessionKey, context.srtpSessionSalt) : undefined;
      this.srtp = { context, states: new Map(), gcm };
    }
    const { states, gcm } = this.srtp;
    if (!gcm) return context.encryptRtp(this.plainPayload(out, payload), this.header(out, csrc));
    let state = states.get(out.ssrc);
    if (!state) states.set(out.ssrc, (state = context.getSrtpSsrcState(out.ssrc)));
    context.updateRolloverCount(out.sequenceNumber, state);
    return sealGcm(gcm, state.rolloverCounter, out, csrc, payload);
  }

  private plainPayload(out: OutgoingPacket, payload: Buffer): Buffer {
    if (out.prefixLength === 0 && out.replaced === 0) return payload;
    return Buffer.concat([out.prefix.subarray(0, out.prefixLength), payload.subarray(out.replaced)]);
  }

  private header(out: OutgoingPacket, csrc: number[]): RtpHeader {
    const bytes = Buffer.alloc(12 + 4 * csrc.length + extensionBytes(out.extensions));
    writeHeader(bytes, out, csrc);
    return RtpHeader.deSerialize(bytes);
  }
}
