/**
 * The simulcast layers a publisher sends: up to three RID-named encodings of one camera, smallest
 * first (quarter, half and full resolution), as LiveKit and libwebrtc lay them out. Small
 * captures get fewer layers: a layer under 180 lines is not worth its bits.
 */

export interface SimulcastLayer {
  /** The RTP stream id that names the layer on the wire. */
  rid: string;
  /** How much smaller than the capture, per side. */
  scaleResolutionDownBy: number;
  /** Encoder ceiling, bits per second. */
  maxBitrate: number;
}

/** Lines of the smallest layer worth sending on its own. */
const MIN_LAYER_HEIGHT = 180;
const RIDS_BY_COUNT: Record<number, string[]> = { 1: ['f'], 2: ['h', 'f'], 3: ['q', 'h', 'f'] };

/** The encoder ceiling for a layer of this size (libwebrtc's simulcast defaults). */
export function defaultBitrate(width: number, height: number): number {
  const pixels = width * height;
  return pixels <= 320 * 180 ? 200_000 : pixels <= 640 * 360 ? 700_000 : pixels <= 960 * 540 ? 1_200_000 : 2_500_000;
}

/** The RIDs of `count` layers, smallest first. */
export const simulcastRids = (count: number): string[] => RIDS_BY_COUNT[Math.max(1, Math.min(3, count))]!;

/** How many layers a capture of this height carries, at most `wanted`. */
export function layerCount(height: number, wanted = 3): number {
  let count = 1;
  while (count < Math.min(3, wanted) && height / 2 ** count >= MIN_LAYER_HEIGHT) count++;
  return count;
}

/**
 * The layers for a capture of `width`×`height`, smallest first. `fullBitrate` caps the largest
 * layer (the app's choice); the others, and the largest by default, take libwebrtc's defaults for
 * their size.
 */
export function simulcastLayers(width: number, height: number, fullBitrate?: number, wanted = 3): SimulcastLayer[] {
  const count = layerCount(height, wanted);
  return simulcastRids(count).map((rid, i) => {
    const scale = 2 ** (count - 1 - i);
    const bitrate = defaultBitrate(width / scale, height / scale);
    return { rid, scaleResolutionDownBy: scale, maxBitrate: i === count - 1 && fullBitrate ? fullBitrate : bitrate };
  });
}
