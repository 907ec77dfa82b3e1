/** VP9 RTP payloads for tests of what the SFU reads and forwards of VP9. */

export interface Vp9Fields {
  pictureId?: number;
  interPicture?: boolean;
  flexible?: boolean;
  start?: boolean;
  end?: boolean;
  temporalLayer?: number;
  switchingUp?: boolean;
  spatialLayer?: number;
  interLayer?: boolean;
  /** Non-flexible mode's TL0PICIDX. */
  tl0PicIdx?: number;
  /** Flexible mode's reference differences. */
  pDiffs?: number[];
  /** A scalability structure with these layer sizes, and these pictures' reference counts in its group. */
  sizes?: Array<[number, number]>;
  group?: number[];
}

/** A VP9 RTP payload: the descriptor (RFC 9628), then filler. */
export function vp9Payload(f: Vp9Fields): Buffer {
  const bytes: number[] = [];
  const flexible = f.flexible ?? true;
  const hasLayers = f.spatialLayer !== undefined || f.temporalLayer !== undefined;
  const hasSs = f.sizes !== undefined;
  bytes.push(
    (f.pictureId !== undefined ? 0x80 : 0) |
      (f.interPicture ? 0x40 : 0) |
      (hasLayers ? 0x20 : 0) |
      (flexible ? 0x10 : 0) |
      (f.start ? 0x08 : 0) |
      (f.end ? 0x04 : 0) |
      (hasSs ? 0x02 : 0),
  );
  if (f.pictureId !== undefined) bytes.push(0x80 | (f.pictureId >> 8), f.pictureId & 0xff);
  if (hasLayers) {
    bytes.push(((f.temporalLayer ?? 0) << 5) | (f.switchingUp ? 0x10 : 0) | ((f.spatialLayer ?? 0) << 1) | (f.interLayer ? 1 : 0));
    if (!flexible) bytes.push(f.tl0PicIdx ?? 0);
  }
  if (flexible && f.interPicture) {
    const diffs = f.pDiffs ?? [1];
    diffs.forEach((diff, i) => bytes.push((diff << 1) | (i < diffs.length - 1 ? 1 : 0)));
  }
  if (hasSs) {
    const sizes = f.sizes!;
    bytes.push(((sizes.length - 1) << 5) | 0x10 | (f.group ? 0x08 : 0));
    for (const [width, height] of sizes) bytes.push(width >> 8, width & 0xff, height >> 8, height & 0xff);
    if (f.group) {
      bytes.push(f.group.length);
      for (const references of f.group) {
        bytes.push(references << 2);
        for (let i = 0; i < references; i++) bytes.push(1);
      }
    }
  }
  while (bytes.length < 40) bytes.push(0x42);
  return Buffer.from(bytes);
}

/** A 720p camera's three spatial layers. */
export const SIZES: Array<[number, number]> = [
  [320, 180],
  [640, 360],
  [1280, 720],
];
