/**
 * RED (RFC 2198) for audio: each packet carries the newest Opus frame (the primary) after copies
 * of the one or two frames before it, so the frame of a lost packet arrives with the next one.
 * Players that negotiated RED get the packets as the publisher sent them; for the others the
 * primary is unwrapped, and a frame lost on the way to the server is taken from the redundancy
 * of the packet after it.
 */

/** One block of a RED payload, as offsets into it. */
export interface RedBlock {
  payloadType: number;
  /** RTP timestamp units before the packet's own (0 for the primary). */
  timestampOffset: number;
  start: number;
  end: number;
}

/** Four bytes per redundant block, one for the primary. */
const REDUNDANT_HEADER_BYTES = 4;
/** The most blocks a RED payload may have: libwebrtc sends 2 to 4, and a player's copy keeps a header of up to 30 bytes (sentHistory.ts). */
export const MAX_RED_BLOCKS = 8;

/**
 * The blocks of a RED payload, oldest first and the primary last; undefined when malformed
 * (lengths past the end, no primary, more than MAX_RED_BLOCKS). The redundant blocks of libwebrtc's encoder are the packets
 * sent just before: the last redundant block is the previous sequence number's frame.
 */
export function parseRed(payload: Buffer): RedBlock[] | undefined {
  const headers: Array<{ payloadType: number; timestampOffset: number; length: number }> = [];
  let at = 0;
  for (;;) {
    if (at >= payload.length || headers.length === MAX_RED_BLOCKS) return undefined;
    const first = payload[at]!;
    if ((first & 0x80) === 0) {
      headers.push({ payloadType: first & 0x7f, timestampOffset: 0, length: -1 });
      at += 1;
      break;
    }
    if (at + REDUNDANT_HEADER_BYTES > payload.length) return undefined;
    const word = payload.readUInt32BE(at);
    headers.push({ payloadType: first & 0x7f, timestampOffset: (word >>> 10) & 0x3fff, length: word & 0x3ff });
    at += REDUNDANT_HEADER_BYTES;
  }
  const blocks: RedBlock[] = [];
  for (const header of headers) {
    const end = header.length < 0 ? payload.length : at + header.length;
    if (end > payload.length) return undefined;
    blocks.push({ payloadType: header.payloadType, timestampOffset: header.timestampOffset, start: at, end });
    at = end;
  }
  return blocks;
}

/** Bytes of the RED header before the blocks. */
export const redHeaderLength = (blocks: readonly RedBlock[]): number => blocks[0]!.start;

/**
 * Writes the RED header of `blocks` into `into` with every block's payload type set to
 * `payloadType` (a player may number Opus differently from the publisher); returns its length.
 */
export function writeRedHeader(blocks: readonly RedBlock[], payloadType: number, into: Buffer): number {
  let at = 0;
  for (let i = 0; i < blocks.length - 1; i++, at += REDUNDANT_HEADER_BYTES) {
    const block = blocks[i]!;
    writeRedundantHeader(into, at, payloadType, block.timestampOffset, block.end - block.start);
  }
  into[at++] = payloadType;
  return at;
}

function writeRedundantHeader(into: Buffer, at: number, payloadType: number, timestampOffset: number, length: number): void {
  into.writeUInt32BE((((0x80 | payloadType) << 24) | (timestampOffset << 10) | length) >>> 0, at);
}

/** RED's limits: a redundant block's timestamp offset has 14 bits, its length 10. */
const MAX_TIMESTAMP_OFFSET = 0x3fff;
const MAX_BLOCK_BYTES = 0x3ff;
/** The most earlier frames a packet repeats. */
export const MAX_REDUNDANCY = 3;

/**
 * Builds RED payloads for one player that repeat the frames it got just before (more than a
 * browser's one, on a lossy link): the frame of a lost packet then arrives with any of the next
 * few, without a round trip.
 */
export class RedEncoder {
  /** The last frames the player got, oldest first. */
  private readonly frames: Array<{ timestamp: number; data: Buffer }> = [];

  /** A frame the player got, in whatever form. */
  push(timestamp: number, data: Buffer): void {
    this.frames.push({ timestamp, data });
    if (this.frames.length > MAX_REDUNDANCY) this.frames.shift();
  }

  /**
   * A RED payload of `primary` (at `timestamp`) after up to `redundancy` of the frames before it,
   * those RED can carry; every block of Opus `payloadType`. With its blocks, as parseRed gives them.
   */
  encode(primary: Buffer, timestamp: number, redundancy: number, payloadType: number): { payload: Buffer; blocks: RedBlock[] } {
    const earlier = this.frames.slice(-redundancy).filter(({ timestamp: t, data }) => {
      const offset = (timestamp - t) >>> 0;
      return offset > 0 && offset <= MAX_TIMESTAMP_OFFSET && data.length > 0 && data.length <= MAX_BLOCK_BYTES;
    });
    const headerBytes = REDUNDANT_HEADER_BYTES * earlier.length + 1;
    const payload = Buffer.allocUnsafe(headerBytes + earlier.reduce((sum, f) => sum + f.data.length, 0) + primary.length);
    const blocks: RedBlock[] = [];
    let header = 0;
    let body = headerBytes;
    for (const { timestamp: t, data } of earlier) {
      const timestampOffset = (timestamp - t) >>> 0;
      writeRedundantHeader(payload, header, payloadType, timestampOffset, data.length);
      header += REDUNDANT_HEADER_BYTES;
      blocks.push({ payloadType, timestampOffset, start: body, end: body + data.length });
      body += data.copy(payload, body);
    }
    payload[header] = payloadType;
    primary.copy(payload, body);
    blocks.push({ payloadType, timestampOffset: 0, start: body, end: payload.length });
    return { payload, blocks };
  }
}
