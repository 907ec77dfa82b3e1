/** Which simulcast layer a player gets, by what it asked for and the size of its view. */
import type { PlayVideo } from './types.js';
import type { VideoLayer } from './videoLayer.js';

/** VideoStreamType: the smallest layer, or the largest. */
const SMALL = 1;
const BIG = 2;

/**
 * The layer a player gets: forced by its VideoStreamType, else the smallest layer that covers
 * its view (a 160-px tile never gets 720p), else the largest. Fitted into the view, a layer
 * covers it when it fills the view's width or its height without being scaled up.
 */
export function chooseLayer(video: PlayVideo, layers: readonly Pick<VideoLayer, 'width' | 'height'>[]): number {
  const top = layers.length - 1;
  if (video.type === SMALL) return 0;
  if (video.type === BIG || (video.viewWidth === 0 && video.viewHeight === 0)) return top;
  const largest = layers[top]!;
  for (let i = 0; i < top; i++) {
    // A layer not seen yet is taken to be the largest halved per side for each step down.
    const scale = 2 ** (top - i);
    const { width, height } = layers[i]!.width > 0 ? layers[i]! : { width: largest.width / scale, height: largest.height / scale };
    if (width >= video.viewWidth || height >= video.viewHeight) return i;
  }
  return top;
}
