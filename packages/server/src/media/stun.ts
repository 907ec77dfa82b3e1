/**
 * What the shared media sockets read of a STUN message to find its ICE agent: whether a datagram
 * is a STUN binding request, and the local part of its USERNAME ("ours:theirs", RFC 8445 §7.2.2).
 * Integrity is the agent's to check; this only routes.
 */
const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const USERNAME = 0x0006;
const HEADER_BYTES = 20;

export function isBindingRequest(packet: Buffer): boolean {
  return packet.length >= HEADER_BYTES && packet.readUInt16BE(0) === BINDING_REQUEST && packet.readUInt32BE(4) === MAGIC_COOKIE;
}

/** The local ufrag a binding request is addressed to, or undefined for anything else. */
export function bindingRequestUfrag(packet: Buffer): string | undefined {
  if (!isBindingRequest(packet)) return undefined;
  const end = Math.min(packet.length, HEADER_BYTES + packet.readUInt16BE(2));
  for (let offset = HEADER_BYTES; offset + 4 <= end;) {
    const type = packet.readUInt16BE(offset);
    const length = packet.readUInt16BE(offset + 2);
    const value = offset + 4;
    if (value + length > end) return undefined;
    if (type === USERNAME) {
      const username = packet.toString('utf8', value, value + length);
      const colon = username.indexOf(':');
      return colon > 0 ? username.slice(0, colon) : undefined;
    }
    offset = value + length + ((4 - (length % 4)) % 4);
  }
  return undefined;
}
