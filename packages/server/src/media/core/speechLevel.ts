/**
 * How loud a publisher speaks, from the level its audio packets carry (RFC 6464): the mean sound
 * level (0–100) of the frames that came between two readings. The room logic reads it at its
 * own pace to tell rooms who speaks; the packet path only adds.
 */
import { soundLevelFromByte } from '@parley/protocol';

export class SpeechLevel {
  private sum = 0;
  private frames = 0;

  /** An audio frame's level extension byte; -1 (unknown) is skipped. */
  add(levelByte: number): void {
    if (levelByte < 0) return;
    this.sum += soundLevelFromByte(levelByte);
    this.frames++;
  }

  /** The mean level since the previous reading (0 when nothing came), and starts over. */
  read(): number {
    const mean = this.frames > 0 ? Math.round(this.sum / this.frames) : 0;
    this.sum = 0;
    this.frames = 0;
    return mean;
  }
}
