/**
 * Readers for the two containers a Node.js bot most often has encoded media in: IVF (VP8 frames,
 * as written by `ffmpeg -c:v libvpx out.ivf`) and Ogg Opus (`ffmpeg -c:a libopus out.ogg`).
 */

export interface IvfFrame {
  data: Uint8Array;
  /** In the file's timebase units. */
  pts: number;
}

export interface IvfFile {
  codec: string;
  width: number;
  height: number;
  /** Seconds per pts unit = timebaseNumerator / timebaseDenominator. */
  timebaseNumerator: number;
  timebaseDenominator: number;
  frames: IvfFrame[];
}

export function readIvf(bytes: Uint8Array): IvfFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = (offset: number, length: number): string => String.fromCharCode(...bytes.subarray(offset, offset + length));
  if (bytes.length < 32 || text(0, 4) !== 'DKIF') throw new Error('not an IVF file');
  const headerSize = view.getUint16(6, true);
  const file: IvfFile = {
    codec: text(8, 4),
    width: view.getUint16(12, true),
    height: view.getUint16(14, true),
    timebaseDenominator: view.getUint32(16, true),
    timebaseNumerator: view.getUint32(20, true),
    frames: [],
  };
  for (let offset = headerSize; offset + 12 <= bytes.length;) {
    const size = view.getUint32(offset, true);
    const pts = view.getUint32(offset + 4, true) + view.getUint32(offset + 8, true) * 2 ** 32;
    const start = offset + 12;
    if (start + size > bytes.length) throw new Error('truncated IVF frame');
    file.frames.push({ data: bytes.subarray(start, start + size), pts });
    offset = start + size;
  }
  return file;
}

/** The Opus packets of an Ogg Opus file, in order, without the OpusHead and OpusTags headers. */
export function readOggOpus(bytes: Uint8Array): Uint8Array[] {
  const packets: Uint8Array[] = [];
  let pending: Uint8Array[] = [];
  for (let offset = 0; offset + 27 <= bytes.length;) {
    if (bytes[offset] !== 0x4f || bytes[offset + 1] !== 0x67 || bytes[offset + 2] !== 0x67 || bytes[offset + 3] !== 0x53) {
      throw new Error('not an Ogg page');
    }
    const segments = bytes[offset + 26]!;
    const table = bytes.subarray(offset + 27, offset + 27 + segments);
    let body = offset + 27 + segments;
    for (const lacing of table) {
      pending.push(bytes.subarray(body, body + lacing));
      body += lacing;
      if (lacing < 255) {
        packets.push(concat(pending));
        pending = [];
      }
    }
    offset = body;
  }
  const isHeader = (p: Uint8Array): boolean => {
    const magic = String.fromCharCode(...p.subarray(0, 8));
    return magic === 'OpusHead' || magic === 'OpusTags';
  };
  return packets.filter((p) => !isHeader(p));
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
