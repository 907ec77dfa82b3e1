/**
 * The files one recording makes of one stream's tracks (both in one file, or each in its own):
 * a file's segments one after another. A segment opens once each track it wants has a frame to
 * start with (video: a keyframe of the stream's largest layer) and its place on the sender's clock
 * (a sender report), or once
 * the sync wait is over with what has come by then; it ends when one of its tracks stops for the
 * lapse time, when a track it lacks starts, when the stream goes, or when the recording stops.
 * Times in a file are the sender's clock from the file's first frame: audio and video stay in sync
 * in a file, and the manifest places each file on the room's timeline.
 */
import { join } from 'node:path';
import type { AssembledFrame } from '../media/index.js';
import { SegmentFile, formatsFor, type FileTracks, type RecordFormat } from './segmentFile.js';
import type { StreamFeed, TrackKind } from './streamFeed.js';

export interface LaneTimings {
  /** How long a segment waits for its tracks' first frames and sender reports before it opens with what it has (ms). */
  syncWaitMs: number;
  /** A track of an open segment silent this long ends the segment (ms). */
  lapseMs: number;
}

/** A recorded file as DescribeRecordStatus and the manifest report it. */
export interface RecordedFile {
  fileName: string;
  streamId: string;
  userId: string;
  userName: string;
  /** Numbered from 1 per stream and file of the stream (audio and video files count separately). */
  segment: number;
  tracks: TrackKind[];
  format: RecordFormat;
  /** The sender's clock at the file's time 0 (Unix ms). */
  beginTimestamp: number;
  /** What placed the file's frames on that clock: the sender's RTCP reports, or their arrival at the server. */
  clock: 'rtcp-sr' | 'arrival';
  /** The server's clock when the file opened (Unix ms). */
  openedAt: number;
  durationMs: number;
  sizeBytes: number;
  width: number;
  height: number;
  status: 'recording' | 'ready' | 'failed';
}

export interface LaneOwner {
  /** A file opened, or finished (ready or failed). */
  changed(file: RecordedFile, failure?: Error): void;
}

type Held = { kind: TrackKind; frame: AssembledFrame; arrivedMs: number };

type LaneState =
  | { kind: 'waiting'; held: Held[]; sinceMs: number | undefined }
  | {
      kind: 'writing';
      file: SegmentFile;
      record: RecordedFile;
      originMs: number;
      lastFrameMs: Partial<Record<TrackKind, number>>;
      lastTimeSec: Partial<Record<TrackKind, number>>;
    }
  | { kind: 'closed' };

/** Audio held while a segment waits: beyond this the oldest goes (a video track that never starts). */
const MAX_HELD = 2000;
const VIDEO_FRAME_SEC = 1 / 30;
/** A silent 20 ms Opus frame (CELT, full band): fills an Ogg file's gaps, whose timing comes from frame durations alone. */
const OPUS_SILENCE = Uint8Array.of(0xf8, 0xff, 0xfe);

/** The duration of an Opus packet from its TOC byte (RFC 6716 §3.1). */
export function opusDurationSec(packet: Uint8Array): number {
  const toc = packet[0] ?? 0;
  const config = toc >> 3;
  const frameMs = config < 12 ? [10, 20, 40, 60][config % 4]! : config < 16 ? [10, 20][config % 2]! : [2.5, 5, 10, 20][config % 4]!;
  const code = toc & 3;
  const frames = code === 0 ? 1 : code < 3 ? 2 : (packet[1] ?? 0) & 0x3f;
  return (frameMs * frames) / 1000;
}

/**
 * A frame's time in a file (s): whole milliseconds from the file's origin, as Matroska stores them,
 * and only forward in a track: a sender report that moves the clock back a little, or two frames
 * sent in the same millisecond, are absorbed. Negative: before the file began.
 */
export function fileTimeSec(unixMs: number, originMs: number, lastSec: number | undefined): number {
  const time = Math.round(unixMs - originMs) / 1000;
  return lastSec !== undefined && time <= lastSec ? (Math.round(lastSec * 1000) + 1) / 1000 : time;
}

export const frameDurationSec = (kind: TrackKind, frame: AssembledFrame): number =>
  kind === 'audio' ? opusDurationSec(frame.data) : VIDEO_FRAME_SEC;

export class FileLane {
  private state: LaneState = { kind: 'waiting', held: [], sinceMs: undefined };

  constructor(
    private readonly feed: StreamFeed,
    /** The tracks this lane's files take (those the stream has). */
    private readonly wanted: FileTracks,
    private readonly naming: {
      dir: string;
      prefix: string;
      streamId: string;
      userId: string;
      userName: string;
      format: RecordFormat | undefined;
      /** The number of the next segment of this stream's files of these tracks (the task counts across the stream's feeds). */
      nextSegment: () => number;
    },
    private readonly timings: LaneTimings,
    private readonly owner: LaneOwner,
  ) {}

  private wants(kind: TrackKind): boolean {
    return kind === 'audio' ? this.wanted.audio : this.wanted.video !== undefined;
  }

  /** A frame that can begin a file: any audio frame; a video keyframe that says its size (H264: with its SPS and PPS). */
  private startable(kind: TrackKind, frame: AssembledFrame): boolean {
    return kind === 'audio' || (frame.keyFrame && frame.width > 0 && (this.wanted.video !== 'h264' || frame.avcC !== undefined));
  }

  onFrame(kind: TrackKind, frame: AssembledFrame): void {
    if (!this.wants(kind)) return;
    const state = this.state;
    const now = performance.now();
    if (state.kind === 'waiting') {
      const started = state.held.some((h) => h.kind === kind);
      if (!started && !this.startable(kind, frame)) {
        if (kind === 'video') this.feed.requestKeyFrame();
        return;
      }
      state.held.push({ kind, frame, arrivedMs: now });
      state.sinceMs ??= now;
      if (state.held.length > MAX_HELD)
        state.held.splice(
          state.held.findIndex((h) => h.kind === 'audio'),
          1,
        );
      this.tryOpen(now);
    } else if (state.kind === 'writing') {
      if (!state.record.tracks.includes(kind)) {
        // A track this segment lacks started: the next segment takes it too.
        this.endSegment();
        this.onFrame(kind, frame);
        return;
      }
      this.write(state, kind, frame, now);
    }
  }

  /**
   * The stream's video moved to another layer: video frames held for a segment not yet open are
   * of the old one, whose timestamps the feed's clock no longer places. An open segment goes on
   * at the new layer's keyframe.
   */
  videoLayerChanged(): void {
    const state = this.state;
    if (state.kind !== 'waiting') return;
    state.held = state.held.filter((h) => h.kind !== 'video');
    if (state.held.length === 0) state.sinceMs = undefined;
  }

  /** Opens a waiting segment when it may, ends a writing one whose track stopped. */
  tick(now: number): void {
    const state = this.state;
    if (state.kind === 'waiting') this.tryOpen(now);
    else if (state.kind === 'writing') {
      const lapsed = state.record.tracks.some((kind) => now - (state.lastFrameMs[kind] ?? now) >= this.timings.lapseMs);
      if (lapsed) this.endSegment();
    }
  }

  private tryOpen(now: number): void {
    const state = this.state;
    if (state.kind !== 'waiting' || state.sinceMs === undefined) return;
    const kinds = (['audio', 'video'] as const).filter((k) => this.wants(k));
    // Also on the largest layer: a simulcast publisher's larger layers may start a moment after the smallest.
    const ready =
      kinds.every((k) => state.held.some((h) => h.kind === k) && this.feed.senderTimed(k)) &&
      (!this.wanted.video || this.feed.videoOnLargestLayer);
    if (!ready && now - state.sinceMs < this.timings.syncWaitMs) return;
    const present = kinds.filter((k) => state.held.some((h) => h.kind === k));
    const held = state.held;
    const tracks: FileTracks = { audio: present.includes('audio'), video: present.includes('video') ? this.wanted.video : undefined };
    const unixOf = (h: Held): number => this.feed.unixMsOf(h.kind, h.frame.timestamp);
    // A file with video starts at its keyframe; audio before it is left out.
    const first = held.find((h) => h.kind === (tracks.video ? 'video' : 'audio'))!;
    const originMs = unixOf(first);
    const asked = this.naming.format;
    const format = asked && formatsFor(tracks).includes(asked) ? asked : formatsFor(tracks)[0]!;
    const segment = this.naming.nextSegment();
    const type = tracks.video ? (tracks.audio ? 'VA' : 'V') : 'A';
    const openedAt = Date.now();
    const fileName = `${this.naming.prefix}_${type}_${utcStamp(openedAt)}_${segment}.${format}`;
    const record: RecordedFile = {
      fileName,
      streamId: this.naming.streamId,
      userId: this.naming.userId,
      userName: this.naming.userName,
      segment,
      tracks: present,
      format,
      beginTimestamp: Math.round(originMs),
      clock: present.every((k) => this.feed.senderTimed(k)) ? 'rtcp-sr' : 'arrival',
      openedAt,
      durationMs: 0,
      sizeBytes: 0,
      width: 0,
      height: 0,
      status: 'recording',
    };
    const file = new SegmentFile(join(this.naming.dir, fileName), format, tracks, () => this.endSegment());
    const writing: LaneState = { kind: 'writing', file, record, originMs, lastFrameMs: {}, lastTimeSec: {} };
    this.state = writing;
    this.owner.changed(record);
    const ordered = held.filter((h) => unixOf(h) >= originMs).sort((a, b) => unixOf(a) - unixOf(b));
    for (const h of ordered) this.write(writing, h.kind, h.frame, h.arrivedMs);
  }

  private write(state: Extract<LaneState, { kind: 'writing' }>, kind: TrackKind, frame: AssembledFrame, now: number): void {
    state.lastFrameMs[kind] = now;
    const last = state.lastTimeSec[kind];
    const time = fileTimeSec(this.feed.unixMsOf(kind, frame.timestamp), state.originMs, last);
    if (time < 0) return;
    if (kind === 'audio' && state.file.format === 'ogg' && last !== undefined) {
      for (let gap = last + 0.02; gap + 0.02 <= time; gap += 0.02) {
        state.file.write('audio', { ...frame, data: OPUS_SILENCE }, gap, 0.02);
      }
    }
    state.lastTimeSec[kind] = time;
    state.file.write(kind, frame, time, frameDurationSec(kind, frame));
  }

  /** Ends the open segment, if any; the lane waits for frames to open the next. */
  endSegment(): void {
    const state = this.state;
    if (state.kind !== 'writing') return;
    this.state = { kind: 'waiting', held: [], sinceMs: undefined };
    void this.finishFile(state);
  }

  /** Ends the open segment and takes no more frames; resolves when its file is finished. */
  async close(): Promise<void> {
    const state = this.state;
    this.state = { kind: 'closed' };
    if (state.kind === 'writing') await this.finishFile(state);
  }

  private async finishFile({ file, record }: Extract<LaneState, { kind: 'writing' }>): Promise<void> {
    try {
      const { sizeBytes } = await file.finish();
      Object.assign(record, { sizeBytes, status: 'ready' });
      this.fill(record, file);
      this.owner.changed(record);
    } catch (err) {
      record.status = 'failed';
      this.fill(record, file);
      this.owner.changed(record, err instanceof Error ? err : new Error(String(err)));
    }
  }

  private fill(record: RecordedFile, file: SegmentFile): void {
    record.durationMs = Math.round(file.endSec * 1000);
    record.width = file.width;
    record.height = file.height;
  }
}

/** UTC as YYYYMMDDHHmmssSSS, for file names. */
function utcStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:TZ.]/g, '');
}
