/**
 * What the SFU reads from video RTP payloads, without allocating: the VP8 payload descriptor
 * (RFC 7741) and keyframe header (RFC 6386 section 9.1), and whether an H264 packet (RFC 6184)
 * starts a keyframe.
 */

/**
 * A VP8 payload descriptor as `parseVp8` fills it in. One instance is reused for every packet,
 * so the values hold until the next parse.
 */
export class Vp8Descriptor {
  /** Bytes of the descriptor; the VP8 payload starts after them. */
  length = 0;
  /** S: the packet carries the start of a partition. */
  startOfPartition = false;
  /** PID: the partition the packet's first byte belongs to. */
  partitionIndex = 0;
  /** PictureID, -1 when absent. */
  pictureId = -1;
  /** 7 or 15 when PictureID is present (the M bit), 0 when absent. */
  pictureIdBits = 0;
  /** TL0PICIDX, -1 when absent. */
  tl0PicIdx = -1;
  /** TID, -1 when absent (T = 0). */
  temporalLayer = -1;
  /** Y: the frame depends only on base layer frames, so a player can start receiving this temporal layer here. */
  layerSync = false;
  /** KEYIDX, -1 when absent (K = 0). */
  keyIdx = -1;
  /** The packet starts a keyframe: S = 1, PID = 0 and the VP8 frame tag's P bit is 0. */
  keyFrame = false;
  /** The frame size from the keyframe header; 0 unless the packet starts a keyframe and holds its header. */
  width = 0;
  height = 0;
  /** Where the rewritable fields are in the descriptor, for `writeVp8Descriptor`. */
  pictureIdAt = 0;
  tl0PicIdxAt = 0;
  keyIdxAt = 0;
}

/**
 * Reads `payload`'s VP8 payload descriptor into `into`. False when the payload is too short for
 * its descriptor or has no VP8 data after it (such a packet is not forwarded).
 */
export function parseVp8(payload: Uint8Array, into: Vp8Descriptor): boolean {
  const size = payload.length;
  if (size < 1) return false;
  const first = payload[0]!;
  into.startOfPartition = (first & 0x10) !== 0;
  into.partitionIndex = first & 0x07;
  into.pictureId = -1;
  into.pictureIdBits = 0;
  into.tl0PicIdx = -1;
  into.temporalLayer = -1;
  into.layerSync = false;
  into.keyIdx = -1;
  into.keyFrame = false;
  into.width = 0;
  into.height = 0;
  let at = 1;
  if (first & 0x80) {
    if (size < 2) return false;
    const extensions = payload[1]!;
    at = 2;
    if (extensions & 0x80) {
      if (size <= at) return false;
      into.pictureIdAt = at;
      if (payload[at]! & 0x80) {
        if (size <= at + 1) return false;
        into.pictureId = ((payload[at]! & 0x7f) << 8) | payload[at + 1]!;
        into.pictureIdBits = 15;
        at += 2;
      } else {
        into.pictureId = payload[at]!;
        into.pictureIdBits = 7;
        at += 1;
      }
    }
    if (extensions & 0x40) {
      if (size <= at) return false;
      into.tl0PicIdxAt = at;
      into.tl0PicIdx = payload[at]!;
      at += 1;
    }
    if (extensions & 0x30) {
      if (size <= at) return false;
      const tidKeyIdx = payload[at]!;
      // RFC 7741: TID and Y are to be ignored when T = 0, KEYIDX when K = 0.
      if (extensions & 0x20) {
        into.temporalLayer = tidKeyIdx >> 6;
        into.layerSync = (tidKeyIdx & 0x20) !== 0;
      }
      if (extensions & 0x10) {
        into.keyIdxAt = at;
        into.keyIdx = tidKeyIdx & 0x1f;
      }
      at += 1;
    }
  }
  if (size <= at) return false;
  into.length = at;
  into.keyFrame = into.startOfPartition && into.partitionIndex === 0 && (payload[at]! & 0x01) === 0;
  // A keyframe starts with the 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and
  // height (little-endian, the top 2 bits are the scaling mode).
  if (into.keyFrame && size >= at + 10 && payload[at + 3] === 0x9d && payload[at + 4] === 0x01 && payload[at + 5] === 0x2a) {
    into.width = (payload[at + 6]! | (payload[at + 7]! << 8)) & 0x3fff;
    into.height = (payload[at + 8]! | (payload[at + 9]! << 8)) & 0x3fff;
  }
  return true;
}

/**
 * Writes `payload`'s descriptor (as parsed into `descriptor`) into `out` with the PictureID,
 * TL0PICIDX and KEYIDX replaced by the given values (a value whose field the descriptor lacks is
 * ignored), and returns its length. The PictureID keeps the source's width, so the length is the
 * source's and `payload.subarray(length)` follows it unchanged.
 */
export function writeVp8Descriptor(
  payload: Uint8Array,
  descriptor: Vp8Descriptor,
  out: Uint8Array,
  pictureId: number,
  tl0PicIdx: number,
  keyIdx: number,
): number {
  const { length } = descriptor;
  for (let i = 0; i < length; i++) out[i] = payload[i]!;
  if (descriptor.pictureIdBits === 15) {
    out[descriptor.pictureIdAt] = 0x80 | (pictureId >> 8);
    out[descriptor.pictureIdAt + 1] = pictureId & 0xff;
  } else if (descriptor.pictureIdBits === 7) {
    out[descriptor.pictureIdAt] = pictureId & 0x7f;
  }
  if (descriptor.tl0PicIdx >= 0) out[descriptor.tl0PicIdxAt] = tl0PicIdx;
  if (descriptor.keyIdx >= 0) out[descriptor.keyIdxAt] = (payload[descriptor.keyIdxAt]! & 0xe0) | keyIdx;
  return length;
}

/** What an H264 packet is, as far as switching layers goes. */
export type H264PacketKind = 'keyFrameStart' | 'other' | 'malformed';

const NAL_IDR = 5;
const NAL_SPS = 7;
const NAL_STAP_A = 24;
const NAL_FU_A = 28;

/**
 * Whether an H264 RTP payload (packetization mode 0 or 1) starts a keyframe: a single NAL unit
 * that is an IDR slice or an SPS, a STAP-A aggregating one of those (libwebrtc sends SPS and PPS
 * aggregated ahead of the IDR), or the first fragment of an IDR or SPS in an FU-A. 'malformed'
 * when the payload is empty or a STAP-A or FU-A is cut short.
 */
export function inspectH264(payload: Uint8Array): H264PacketKind {
  const size = payload.length;
  if (size < 1) return 'malformed';
  const type = payload[0]! & 0x1f;
  if (type === NAL_STAP_A) {
    if (size < 4) return 'malformed';
    let keyFrame = false;
    let at = 1;
    while (at < size) {
      if (at + 2 >= size) return 'malformed';
      const nalSize = (payload[at]! << 8) | payload[at + 1]!;
      if (nalSize === 0 || at + 2 + nalSize > size) return 'malformed';
      const nalType = payload[at + 2]! & 0x1f;
      if (nalType === NAL_SPS || nalType === NAL_IDR) keyFrame = true;
      at += 2 + nalSize;
    }
    return keyFrame ? 'keyFrameStart' : 'other';
  }
  if (type === NAL_FU_A) {
    if (size < 3) return 'malformed';
    const fuHeader = payload[1]!;
    const nalType = fuHeader & 0x1f;
    return (fuHeader & 0x80) !== 0 && (nalType === NAL_IDR || nalType === NAL_SPS) ? 'keyFrameStart' : 'other';
  }
  return type === NAL_IDR || type === NAL_SPS ? 'keyFrameStart' : 'other';
}
