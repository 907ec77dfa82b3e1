/**
 * A stream as another program reads it live (ffmpeg: CDN relays, mixing): Matroska on a pipe,
 * from the stream's first keyframe (its first frame when it has no video), times on the sender's
 * clock.
 */
import type { Writable } from 'node:stream';
import type { AssembledFrame } from '../media/index.js';
import { fileTimeSec, frameDurationSec } from './fileLane.js';
import { SegmentFile } from './segmentFile.js';
import type { StreamFeed, TrackKind } from './streamFeed.js';

export class LiveMux {
  private file: SegmentFile | undefined;
  private originMs = 0;
  private readonly lastSec: Partial<Record<TrackKind, number>> = {};
  private readonly onFrame = (kind: TrackKind, frame: AssembledFrame): void => this.write(kind, frame);

  constructor(
    private readonly feed: StreamFeed,
    private readonly pipe: Writable,
    private readonly failed: () => void,
  ) {
    feed.observer.on('frame', this.onFrame);
    feed.requestKeyFrame();
  }

  private write(kind: TrackKind, frame: AssembledFrame): void {
    const { feed } = this;
    const unixMs = feed.unixMsOf(kind, frame.timestamp);
    if (!this.file) {
      const starts = feed.video ? kind === 'video' && frame.keyFrame && frame.width > 0 && (feed.video !== 'h264' || frame.avcC) : true;
      if (!starts) return;
      this.originMs = unixMs;
      this.file = new SegmentFile(this.pipe, feed.video === 'h264' ? 'mkv' : 'webm', { audio: feed.audio, video: feed.video }, this.failed);
    }
    const time = fileTimeSec(unixMs, this.originMs, this.lastSec[kind]);
    if (time < 0) return;
    this.lastSec[kind] = time;
    this.file.write(kind, frame, time, frameDurationSec(kind, frame));
  }

  close(): void {
    this.feed.observer.off('frame', this.onFrame);
    void this.file?.finish().catch(() => undefined);
  }
}
