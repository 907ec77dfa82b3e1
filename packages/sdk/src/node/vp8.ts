/**
 * VP8 RTP payload format (RFC 7741): splitting an encoded frame into packets with a payload
 * descriptor carrying a 15-bit PictureID, and reading descriptors back.
 */

/** Payload bytes per packet: keeps each SRTP packet well under a 1280-byte path MTU. */
export const MAX_VP8_PAYLOAD = 1100;
const DESCRIPTOR_BYTES = 4;

/** Splits one frame into RTP payloads; the first carries S=1, all carry the picture id. */
export function packetizeVp8(frame: Uint8Array, pictureId: number): Uint8Array[] {
  const chunk = MAX_VP8_PAYLOAD - DESCRIPTOR_BYTES;
  const payloads: Uint8Array[] = [];
  for (let offset = 0; offset < frame.length || offset === 0; offset += chunk) {
    const end = Math.min(frame.length, offset + chunk);
    const payload = new Uint8Array(DESCRIPTOR_BYTES + end - offset);
    payload[0] = 0x80 | (offset === 0 ? 0x10 : 0); // X, S (partition 0)
    payload[1] = 0x80; // I: PictureID present
    payload[2] = 0x80 | ((pictureId >> 8) & 0x7f); // M: 15-bit PictureID
    payload[3] = pictureId & 0xff;
    payload.set(frame.subarray(offset, end), DESCRIPTOR_BYTES);
    payloads.push(payload);
    if (frame.length === 0) break;
  }
  return payloads;
}

export interface Vp8Descriptor {
  /** First packet of a frame (S=1 and partition 0). */
  frameStart: boolean;
  /** Offset of the VP8 bitstream bytes within the payload. */
  headerSize: number;
}

/** Reads the payload descriptor; undefined if the payload is too short to hold one. */
export function readVp8Descriptor(payload: Uint8Array): Vp8Descriptor | undefined {
  if (payload.length < 1) return undefined;
  const b0 = payload[0]!;
  let size = 1;
  if (b0 & 0x80) {
    if (payload.length < 2) return undefined;
    const x = payload[1]!;
    size = 2;
    if (x & 0x80) {
      if (payload.length < size + 1) return undefined;
      size += payload[size]! & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    }
    if (x & 0x40) size += 1; // TL0PICIDX
    if (x & 0x30) size += 1; // TID/KEYIDX
  }
  if (payload.length < size) return undefined;
  return { frameStart: (b0 & 0x10) !== 0 && (b0 & 0x07) === 0, headerSize: size };
}

export interface Vp8FrameInfo {
  isKeyFrame: boolean;
  /** Only known from keyframes. */
  width?: number;
  height?: number;
}

/** Reads the frame tag (and, for keyframes, the dimensions) of a VP8 frame (RFC 6386 §9.1). */
export function readVp8FrameInfo(frame: Uint8Array): Vp8FrameInfo {
  const isKeyFrame = frame.length > 0 && (frame[0]! & 0x01) === 0;
  if (!isKeyFrame || frame.length < 10 || frame[3] !== 0x9d || frame[4] !== 0x01 || frame[5] !== 0x2a) {
    return { isKeyFrame };
  }
  return { isKeyFrame, width: (frame[6]! | (frame[7]! << 8)) & 0x3fff, height: (frame[8]! | (frame[9]! << 8)) & 0x3fff };
}
