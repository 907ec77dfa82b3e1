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

/** Reads an H264 RBSP bit by bit: fixed-width fields and Exp-Golomb codes (H.264 section 9.1). */
class RbspReader {
  private bit = 0;
  constructor(private readonly bytes: Uint8Array) {}

  u(bits: number): number {
    let value = 0;
    for (let i = 0; i < bits; i++) {
      const byte = this.bytes[this.bit >> 3];
      if (byte === undefined) throw new RangeError('SPS cut short');
      value = value * 2 + ((byte >> (7 - (this.bit & 7))) & 1);
      this.bit++;
    }
    return value;
  }

  ue(): number {
    let zeros = 0;
    while (this.u(1) === 0) if (++zeros > 31) throw new RangeError('Exp-Golomb code too long');
    return 2 ** zeros - 1 + this.u(zeros);
  }

  se(): number {
    const code = this.ue();
    return code % 2 === 1 ? (code + 1) / 2 : -code / 2;
  }
}

/** Profiles whose SPS carries chroma format, bit depths and scaling matrices. */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/** The picture size an H264 SPS NAL unit (header byte included) declares, cropping applied; undefined if it cannot be read. */
export function h264SpsSize(nal: Uint8Array): { width: number; height: number } | undefined {
  // The RBSP: the NAL payload without its emulation prevention bytes (00 00 03 → 00 00).
  const rbsp: number[] = [];
  for (let i = 1; i < nal.length; i++) {
    if (nal[i] === 3 && i >= 3 && nal[i - 1] === 0 && nal[i - 2] === 0 && rbsp.length >= 2) continue;
    rbsp.push(nal[i]!);
  }
  try {
    const r = new RbspReader(Uint8Array.from(rbsp));
    const profile = r.u(8);
    r.u(16); // constraint flags, level
    r.ue(); // seq_parameter_set_id
    let chromaFormat = 1;
    if (HIGH_PROFILES.has(profile)) {
      chromaFormat = r.ue();
      if (chromaFormat === 3) r.u(1);
      r.ue();
      r.ue();
      r.u(1);
      if (r.u(1)) {
        for (let list = 0; list < (chromaFormat === 3 ? 12 : 8); list++) {
          if (!r.u(1)) continue;
          let last = 8;
          let next = 8;
          for (let j = 0; j < (list < 6 ? 16 : 64) && next !== 0; j++) {
            next = (last + r.se() + 256) % 256;
            if (next !== 0) last = next;
          }
        }
      }
    }
    r.ue(); // log2_max_frame_num_minus4
    const pocType = r.ue();
    if (pocType === 0) {
      r.ue();
    } else if (pocType === 1) {
      r.u(1);
      r.se();
      r.se();
      for (let i = r.ue(); i > 0; i--) r.se();
    }
    r.ue(); // max_num_ref_frames
    r.u(1);
    const widthInMbs = r.ue() + 1;
    const heightInMapUnits = r.ue() + 1;
    const frameMbsOnly = r.u(1);
    if (!frameMbsOnly) r.u(1);
    r.u(1);
    const [left, right, top, bottom] = r.u(1) ? [r.ue(), r.ue(), r.ue(), r.ue()] : [0, 0, 0, 0];
    const cropX = chromaFormat === 0 || chromaFormat === 3 ? 1 : 2;
    const cropY = (chromaFormat === 1 ? 2 : 1) * (2 - frameMbsOnly);
    const width = widthInMbs * 16 - (left + right) * cropX;
    const height = (2 - frameMbsOnly) * heightInMapUnits * 16 - (top + bottom) * cropY;
    return width > 0 && height > 0 ? { width, height } : undefined;
  } catch {
    return undefined;
  }
}

/** The picture size of the SPS an H264 RTP payload carries (alone or in a STAP-A), or undefined. */
export function h264FrameSize(payload: Uint8Array): { width: number; height: number } | undefined {
  const type = (payload[0] ?? 0) & 0x1f;
  if (type === NAL_SPS) return h264SpsSize(payload);
  if (type !== NAL_STAP_A) return undefined;
  for (let at = 1; at + 2 < payload.length;) {
    const nalSize = (payload[at]! << 8) | payload[at + 1]!;
    if (nalSize === 0 || at + 2 + nalSize > payload.length) return undefined;
    if ((payload[at + 2]! & 0x1f) === NAL_SPS) return h264SpsSize(payload.subarray(at + 2, at + 2 + nalSize));
    at += 2 + nalSize;
  }
  return undefined;
}

/** Spatial layers a VP9 scalability structure can describe (N_S is 3 bits, the SFU uses the first three). */
const VP9_MAX_SPATIAL_LAYERS = 8;

/**
 * A VP9 payload descriptor (RFC 9628) as `parseVp9` fills it in; one instance is reused for every
 * packet. Chromium sends one for each layer frame of an SVC picture (spatial layers share the RTP
 * stream and the picture's timestamp), its layer indices in every packet.
 */
export class Vp9Descriptor {
  /** PictureID, -1 when absent. */
  pictureId = -1;
  /** P: the layer frame references an earlier picture (of its own spatial layer). */
  interPicture = false;
  /** B and E: the packet starts, or ends, a layer frame. */
  startOfFrame = false;
  endOfFrame = false;
  /** TID and SID (0 without layer indices). */
  temporalLayer = 0;
  spatialLayer = 0;
  /** U: a switching-up point, later frames of this temporal layer reference none before it of that layer. */
  switchingUp = false;
  /** D: the layer frame references the spatial layer below in the same picture. */
  interLayer = false;
  /** Spatial layers the scalability structure announces, 0 when the packet has none. */
  spatialLayers = 0;
  /** Each spatial layer's size from the scalability structure (when it has them), smallest first. */
  readonly widths = new Uint16Array(VP9_MAX_SPATIAL_LAYERS);
  readonly heights = new Uint16Array(VP9_MAX_SPATIAL_LAYERS);

  /** The packet starts a keyframe: the first layer frame of a picture that references no earlier picture. */
  get keyFrame(): boolean {
    return this.startOfFrame && !this.interPicture && this.spatialLayer === 0;
  }
}

/**
 * Reads `payload`'s VP9 payload descriptor into `into`, flexible mode or not. False when the
 * payload is too short for its descriptor or carries no VP9 data after it.
 */
export function parseVp9(payload: Uint8Array, into: Vp9Descriptor): boolean {
  const size = payload.length;
  into.spatialLayers = 0;
  if (size < 2) return false;
  const first = payload[0]!;
  const flexible = (first & 0x10) !== 0;
  into.interPicture = (first & 0x40) !== 0;
  into.startOfFrame = (first & 0x08) !== 0;
  into.endOfFrame = (first & 0x04) !== 0;
  into.pictureId = -1;
  into.temporalLayer = into.spatialLayer = 0;
  into.switchingUp = into.interLayer = false;
  let at = 1;
  if (first & 0x80) {
    if (payload[at]! & 0x80) {
      if (size < at + 2) return false;
      into.pictureId = ((payload[at]! & 0x7f) << 8) | payload[at + 1]!;
      at += 2;
    } else {
      into.pictureId = payload[at]!;
      at += 1;
    }
  }
  if (first & 0x20) {
    if (size <= at) return false;
    const layers = payload[at]!;
    into.temporalLayer = layers >> 5;
    into.switchingUp = (layers & 0x10) !== 0;
    into.spatialLayer = (layers >> 1) & 0x07;
    into.interLayer = (layers & 0x01) !== 0;
    // TL0PICIDX follows in non-flexible mode.
    at += flexible ? 1 : 2;
  }
  if (flexible && into.interPicture) {
    // Up to three reference differences, each with N set when another follows.
    for (let i = 0; i < 3; i++) {
      if (size <= at) return false;
      if ((payload[at++]! & 0x01) === 0) break;
    }
  }
  if (first & 0x02) {
    at = readScalabilityStructure(payload, at, into);
    if (at < 0) return false;
  }
  return at < size;
}

/** Reads a scalability structure at `at` into `into`; returns the offset after it, -1 when cut short. */
function readScalabilityStructure(payload: Uint8Array, at: number, into: Vp9Descriptor): number {
  const size = payload.length;
  if (size <= at) return -1;
  const header = payload[at++]!;
  const layers = (header >> 5) + 1;
  into.spatialLayers = layers;
  if (header & 0x10) {
    if (size < at + 4 * layers) return -1;
    for (let i = 0; i < layers; i++, at += 4) {
      into.widths[i] = (payload[at]! << 8) | payload[at + 1]!;
      into.heights[i] = (payload[at + 2]! << 8) | payload[at + 3]!;
    }
  } else {
    into.widths.fill(0);
    into.heights.fill(0);
  }
  if (header & 0x08) {
    if (size <= at) return -1;
    const pictures = payload[at++]!;
    for (let i = 0; i < pictures; i++) {
      if (size <= at) return -1;
      at += 1 + ((payload[at]! >> 2) & 0x03);
    }
    if (at > size) return -1;
  }
  return at;
}
