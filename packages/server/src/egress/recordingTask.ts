/**
 * One recording task (StartRecord): the room's streams, or those it names, each recorded to its
 * own files (single-stream mode), with a JSON manifest beside them that lists every file and
 * where it begins on the room's timeline. It ends when stopped, after MaxIdleTime without a
 * stream to record, after MaxRecordTime, or when a file cannot be written.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StreamInfo } from '@parley/protocol';
import type { FileTracks, RecordFormat } from './segmentFile.js';
import { FileLane, type LaneTimings, type RecordedFile } from './fileLane.js';
import type { StreamFeed } from './streamFeed.js';
import type { RoomMix } from './roomMix.js';

/** StreamType: what of each stream is recorded, and in how many files. */
export const RecordStreamType = { Audio: 1, Video: 2, AudioAndVideo: 3, AudioAndVideoApart: 4 } as const;
export type RecordStreamType = (typeof RecordStreamType)[keyof typeof RecordStreamType];

/** Why a task ended (the `quit_reason` of record_status's abnormal end). */
export const RecordQuitReason = { Stopped: 0, MaxIdleTime: 3, MaxRecordTime: 4, FileWriteFailed: 1001, MixFailed: 1002 } as const;
export type RecordQuitReason = (typeof RecordQuitReason)[keyof typeof RecordQuitReason];

export interface RecordTaskParams {
  taskId: string;
  appID: number;
  roomId: string;
  /** 1: each stream to its own files; 2: the room's streams mixed, to one file (see `mixed`). */
  recordMode: 1 | 2;
  streamType: RecordStreamType;
  /** Only these streams; every stream of the room when empty. */
  streamIds: string[];
  format: RecordFormat | undefined;
  maxIdleMs: number;
  maxRecordMs: number;
  /** The task's folder: its files and manifest.json. */
  dir: string;
}

/** A task records, then finishes its files (stopping), then has ended. */
export type TaskState =
  | { kind: 'recording' }
  | { kind: 'stopping'; reason: RecordQuitReason; failure?: string }
  | { kind: 'ended'; reason: RecordQuitReason; endedAt: number; failure?: string };

/** What a task needs of the rest of the server: the streams it records, and where it reports. */
export interface TaskHooks {
  /** Lends the stream's feed (shared with the other tasks that record it); undefined while it has no media here. */
  lease(appID: number, streamID: string): Promise<StreamFeed | undefined>;
  release(appID: number, streamID: string): void;
  /** A file opened or finished. */
  fileChanged(task: RecordingTask, file: RecordedFile): void;
  /** The task ended (once). */
  ended(task: RecordingTask): void;
}

interface RecordedStream {
  feed: StreamFeed;
  lanes: FileLane[];
}

const safeName = (s: string): string => s.replace(/[^0-9A-Za-z_.-]/g, '-');

export class RecordingTask {
  private taskState: TaskState = { kind: 'recording' };
  private readonly streams = new Map<string, RecordedStream>();
  /** Streams being leased (their feeds are opening). */
  private readonly opening = new Set<string>();
  readonly files: RecordedFile[] = [];
  readonly beganAt = Date.now();
  private idleSinceMs: number | undefined = performance.now();
  /** Segments so far, by stream and file kind: a stream that comes back goes on counting. */
  private readonly segments = new Map<string, number>();
  private manifestWrite: Promise<void> = Promise.resolve();
  private ending: Promise<void> | undefined;

  constructor(
    readonly params: RecordTaskParams,
    private readonly timings: LaneTimings,
    private readonly hooks: TaskHooks,
    /** Mixed mode: the room's mix, whose stream is the one recorded. */
    private readonly mixed?: RoomMix,
  ) {}

  get state(): TaskState {
    return this.taskState;
  }

  /** The room's streams now: records those it should and does not yet. */
  async sync(streams: readonly StreamInfo[]): Promise<void> {
    if (this.taskState.kind !== 'recording') return;
    await this.mixed?.follow(streams);
    if (this.mixed?.failed) return void this.end(RecordQuitReason.MixFailed, this.mixed.failed);
    const { appID } = this.params;
    const streamIds = this.mixed ? [this.mixed.options.streamID] : this.params.streamIds;
    for (const stream of streams) {
      const id = stream.streamID;
      if ((streamIds.length > 0 && !streamIds.includes(id)) || this.streams.has(id) || this.opening.has(id)) continue;
      this.opening.add(id);
      try {
        const feed = await this.hooks.lease(appID, id);
        if (!feed) continue;
        if (this.taskState.kind !== 'recording' || feed.closed) {
          this.hooks.release(appID, id);
          continue;
        }
        this.record(stream, feed);
      } finally {
        this.opening.delete(id);
      }
    }
  }

  private record(stream: StreamInfo, feed: StreamFeed): void {
    const id = stream.streamID;
    const { streamType, taskId, roomId, dir, format } = this.params;
    const audio = feed.audio && streamType !== RecordStreamType.Video;
    const video = streamType !== RecordStreamType.Audio ? feed.video : undefined;
    const groups: FileTracks[] =
      streamType === RecordStreamType.AudioAndVideoApart
        ? [
            { audio, video: undefined },
            { audio: false, video },
          ]
        : [{ audio, video }];
    const naming = (tracks: FileTracks) => {
      const key = `${id}/${tracks.audio ? 'A' : ''}${tracks.video ? 'V' : ''}`;
      return {
        dir,
        prefix: [taskId, roomId, stream.user.userID, id].map(safeName).join('_'),
        streamId: id,
        userId: stream.user.userID,
        userName: stream.user.userName,
        format,
        nextSegment: () => {
          const next = (this.segments.get(key) ?? 0) + 1;
          this.segments.set(key, next);
          return next;
        },
      };
    };
    const owner = { changed: (file: RecordedFile, failure?: Error) => this.fileChanged(file, failure) };
    const lanes = groups
      .filter((tracks) => tracks.audio || tracks.video)
      .map((tracks) => new FileLane(feed, tracks, naming(tracks), this.timings, owner));
    const onFrame = (kind: 'audio' | 'video', frame: Parameters<FileLane['onFrame']>[1]): void => {
      for (const lane of lanes) lane.onFrame(kind, frame);
    };
    const onLayerChanged = (): void => lanes.forEach((lane) => lane.videoLayerChanged());
    feed.observer.on('frame', onFrame);
    feed.observer.on('videoLayerChanged', onLayerChanged);
    // Its media went (the publisher stopped, or is re-establishing): its files end; a new feed begins new segments.
    feed.observer.once('closed', () => {
      feed.observer.off('frame', onFrame);
      feed.observer.off('videoLayerChanged', onLayerChanged);
      if (this.streams.get(id)?.feed !== feed) return;
      this.streams.delete(id);
      this.hooks.release(this.params.appID, id);
      for (const lane of lanes) void lane.close();
    });
    this.streams.set(id, { feed, lanes });
    feed.requestKeyFrame();
  }

  private fileChanged(file: RecordedFile, failure?: Error): void {
    if (!this.files.includes(file)) this.files.push(file);
    this.hooks.fileChanged(this, file);
    this.writeManifest();
    if (failure && this.taskState.kind === 'recording') void this.end(RecordQuitReason.FileWriteFailed, failure.message);
  }

  /** Called on the service's timer: segments open and lapse; idle and length limits. */
  tick(now: number): void {
    if (this.taskState.kind !== 'recording') return;
    for (const { lanes } of this.streams.values()) for (const lane of lanes) lane.tick(now);
    // Mixed mode is idle when the room has nothing to mix, whatever the mix's own stream does.
    if (this.mixed ? this.mixed.hasInputs : this.streams.size > 0) this.idleSinceMs = undefined;
    else this.idleSinceMs ??= now;
    if (this.idleSinceMs !== undefined && now - this.idleSinceMs >= this.params.maxIdleMs) void this.end(RecordQuitReason.MaxIdleTime);
    else if (Date.now() - this.beganAt >= this.params.maxRecordMs) void this.end(RecordQuitReason.MaxRecordTime);
  }

  /** Ends the task: every open file is finished, then the manifest written a last time. Idempotent: resolves when it has ended. */
  end(reason: RecordQuitReason, failure?: string): Promise<void> {
    return (this.ending ??= this.finish(reason, failure));
  }

  private async finish(reason: RecordQuitReason, failure: string | undefined): Promise<void> {
    const why = { reason, ...(failure !== undefined && { failure }) };
    this.taskState = { kind: 'stopping', ...why };
    const closing: Promise<void>[] = [];
    for (const [id, { lanes }] of this.streams) {
      for (const lane of lanes) closing.push(lane.close());
      this.hooks.release(this.params.appID, id);
    }
    this.streams.clear();
    await Promise.all([...closing, this.mixed?.stop()]);
    this.taskState = { kind: 'ended', endedAt: Date.now(), ...why };
    this.writeManifest();
    await this.manifestWrite;
    this.hooks.ended(this);
  }

  /** Rewritten whole on every change, through a rename: a reader never sees half of one. */
  private writeManifest(): void {
    const path = join(this.params.dir, 'manifest.json');
    const manifest = JSON.stringify(this.manifest(), null, 2);
    this.manifestWrite = this.manifestWrite
      .then(async () => {
        await writeFile(`${path}.tmp`, manifest);
        await rename(`${path}.tmp`, path);
      })
      .catch(() => undefined); // a full disk fails the files too, which ends the task
  }

  manifest(): Record<string, unknown> {
    const { taskId, appID, roomId, streamType } = this.params;
    const state = this.taskState;
    return {
      taskId,
      appId: appID,
      roomId,
      recordMode: this.params.recordMode,
      streamType,
      beginTimestamp: this.beganAt,
      endTimestamp: state.kind === 'ended' ? state.endedAt : null,
      // Each file's beginTimestamp is its time 0 on its sender's clock; offsetMs places it on the task's timeline.
      files: this.files.map((f) => ({ ...f, offsetMs: f.beginTimestamp - this.beganAt })),
    };
  }
}
