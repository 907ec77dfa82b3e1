/**
 * SRTP's AES-128-GCM (RFC 7714) for what the forwarding path sends: the header written in place
 * is authenticated, and a payload that starts with other bytes (a rewritten descriptor, an RTX
 * header) is encrypted in two pieces rather than copied. And for what it receives: the opener.
 * The TypeScript ones make a cipher per packet (Node has no other way); the native ones keep one
 * OpenSSL context per key.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { SRTP_GCM_TAG_BYTES, type SrtpGcmOpener } from '@parley/protocol/rtp';

export interface GcmSealer {
  /**
   * Fills `datagram` after its first `headerBytes` (the RTP header, authenticated) with the
   * encryption of `prefix[0, prefixLength)` then `payload[payloadStart, end)`, then the tag.
   * `datagram` is exactly that long.
   */
  seal(
    datagram: Buffer,
    headerBytes: number,
    prefix: Buffer,
    prefixLength: number,
    payload: Buffer,
    payloadStart: number,
    ssrc: number,
    rolloverCounter: number,
    sequenceNumber: number,
  ): void;
}

/** Scratch space for the IV, which createCipheriv copies. */
const iv = Buffer.alloc(12);

/** IV = salt XOR (0x0000 || SSRC || ROC || SEQ), RFC 7714 section 8.1, into `iv`. */
function writeIv(salt: Buffer, ssrc: number, rolloverCounter: number, sequenceNumber: number): Buffer {
  iv.writeUInt16BE(0, 0);
  iv.writeUInt32BE(ssrc >>> 0, 2);
  iv.writeUInt32BE(rolloverCounter >>> 0, 6);
  iv.writeUInt16BE(sequenceNumber, 10);
  for (let i = 0; i < 12; i++) iv[i]! ^= salt[i]!;
  return iv;
}

export class TypeScriptGcmSealer implements GcmSealer {
  constructor(
    private readonly key: Buffer,
    private readonly salt: Buffer,
  ) {}

  seal(
    datagram: Buffer,
    headerBytes: number,
    prefix: Buffer,
    prefixLength: number,
    payload: Buffer,
    payloadStart: number,
    ssrc: number,
    rolloverCounter: number,
    sequenceNumber: number,
  ): void {
    const cipher = createCipheriv('aes-128-gcm', this.key, writeIv(this.salt, ssrc, rolloverCounter, sequenceNumber));
    cipher.setAAD(datagram.subarray(0, headerBytes));
    let at = headerBytes;
    if (prefixLength > 0) at += cipher.update(prefix.subarray(0, prefixLength)).copy(datagram, at);
    at += cipher.update(payloadStart > 0 ? payload.subarray(payloadStart) : payload).copy(datagram, at);
    at += cipher.final().copy(datagram, at);
    cipher.getAuthTag().copy(datagram, at);
  }
}

export class TypeScriptGcmOpener implements SrtpGcmOpener {
  constructor(
    private readonly key: Buffer,
    private readonly salt: Buffer,
  ) {}

  open(plain: Buffer, packet: Buffer, headerBytes: number, ssrc: number, rolloverCounter: number, sequenceNumber: number): boolean {
    const tagAt = packet.length - SRTP_GCM_TAG_BYTES;
    const decipher = createDecipheriv('aes-128-gcm', this.key, writeIv(this.salt, ssrc, rolloverCounter, sequenceNumber));
    decipher.setAAD(packet.subarray(0, headerBytes));
    decipher.setAuthTag(packet.subarray(tagAt));
    packet.copy(plain, 0, 0, headerBytes);
    try {
      const at = headerBytes + decipher.update(packet.subarray(headerBytes, tagAt)).copy(plain, headerBytes);
      decipher.final().copy(plain, at);
      return true;
    } catch {
      return false; // the tag does not match
    }
  }
}
