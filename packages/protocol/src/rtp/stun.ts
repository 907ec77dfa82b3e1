/**
 * What the media sockets read of STUN (RFC 5389) themselves: whether a datagram is a binding
 * request, the local part of its USERNAME ("ours:theirs", RFC 8445 §7.2.2), and whether its
 * MESSAGE-INTEGRITY holds under a password (ICE's short-term credentials).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const USERNAME = 0x0006;
const MESSAGE_INTEGRITY = 0x0008;
const HEADER_BYTES = 20;
const INTEGRITY_BYTES = 20;

const isStun = (packet: Buffer): boolean => packet.length >= HEADER_BYTES && packet[0]! < 0x40 && packet.readUInt32BE(4) === MAGIC_COOKIE;

export function isBindingRequest(packet: Buffer): boolean {
  return isStun(packet) && packet.readUInt16BE(0) === BINDING_REQUEST;
}

/** A STUN request of any method (its class bits C1 and C0 both 0). */
export function isStunRequest(packet: Buffer): boolean {
  return isStun(packet) && (packet.readUInt16BE(0) & 0x0110) === 0;
}

/** Calls `visit` with each attribute's type and value offsets until it returns true; false if the attributes are malformed. */
function eachAttribute(packet: Buffer, visit: (type: number, value: number, length: number) => boolean): boolean {
  const end = HEADER_BYTES + packet.readUInt16BE(2);
  if (end > packet.length) return false;
  for (let offset = HEADER_BYTES; offset + 4 <= end;) {
    const type = packet.readUInt16BE(offset);
    const length = packet.readUInt16BE(offset + 2);
    const value = offset + 4;
    if (value + length > end) return false;
    if (visit(type, value, length)) return true;
    offset = value + length + ((4 - (length % 4)) % 4);
  }
  return true;
}

/** The local ufrag a STUN request is addressed to, or undefined for anything else. */
export function requestUfrag(packet: Buffer): string | undefined {
  if (!isStunRequest(packet)) return undefined;
  let ufrag: string | undefined;
  eachAttribute(packet, (type, value, length) => {
    if (type !== USERNAME) return false;
    const username = packet.toString('utf8', value, value + length);
    const colon = username.indexOf(':');
    if (colon > 0) ufrag = username.slice(0, colon);
    return true;
  });
  return ufrag;
}

/** The local ufrag a binding request is addressed to, or undefined for anything else. */
export function bindingRequestUfrag(packet: Buffer): string | undefined {
  return isBindingRequest(packet) ? requestUfrag(packet) : undefined;
}

/**
 * Whether `packet`'s MESSAGE-INTEGRITY is the HMAC-SHA1 under `password` of the message before
 * it, its length field counting up to the attribute's end (RFC 5389 §15.4).
 */
export function hasValidIntegrity(packet: Buffer, password: string): boolean {
  if (!isStun(packet)) return false;
  let valid = false;
  eachAttribute(packet, (type, value, length) => {
    if (type !== MESSAGE_INTEGRITY) return false;
    if (length !== INTEGRITY_BYTES) return true;
    const covered = Buffer.from(packet.subarray(0, value - 4));
    covered.writeUInt16BE(value + INTEGRITY_BYTES - HEADER_BYTES, 2);
    const expected = createHmac('sha1', password).update(covered).digest();
    valid = timingSafeEqual(expected, packet.subarray(value, value + INTEGRITY_BYTES));
    return true;
  });
  return valid;
}
