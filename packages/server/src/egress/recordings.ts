/**
 * The server's recordings (the server API's StartRecord, StopRecord, DescribeRecordStatus): tasks
 * by ID, each in its own folder under `recording.dir`, the feeds of the streams they record
 * (one per stream, shared), what they report (record_status), and the command run for each
 * finished file. Tasks live on the node that started them.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { StreamInfo } from '@parley/protocol';
import type { RecordedFile } from './fileLane.js';
import { RecordingTask, RecordQuitReason, type RecordTaskParams } from './recordingTask.js';
import type { StreamFeeds } from './streamFeeds.js';
import type { Mixing } from './mixing.js';
import { RoomMix, type RoomMixOptions } from './roomMix.js';

/** Mixed mode's picture unless StartRecord's MixConfig says otherwise: 720p at 15 fps (the vendor's rate). */
const DEFAULT_MIX_VIDEO: RoomMixOptions['video'] = { width: 1280, height: 720, fps: 15, bitrateBps: 1_500_000 };

export interface RecordingOptions {
  /** Where tasks' folders go. */
  dir: string;
  /** Run through /bin/sh for each finished file, with the file's path as $1 (and in PARLEY_RECORDING_FILE). */
  onFileReady?: string;
  /** How long a segment waits for its tracks and sender reports (ms, default 5000: a browser's first audio report may take that). */
  syncWaitMs?: number;
  /** A track silent this long ends its file's segment (ms, default 3000). */
  lapseMs?: number;
  /** How often a task looks for new streams in its room (ms, default 1000). */
  pollMs?: number;
  /** How long an onFileReady command may run (ms, default 10 minutes). */
  commandTimeoutMs?: number;
}

/** record_status's event_type: the vendor's values, and 100 for a task that started (which it does not report). */
export const RecordEventType = { FileReady: 1, AbnormalEnd: 2, Finished: 5, Started: 100 } as const;
export type RecordEventType = (typeof RecordEventType)[keyof typeof RecordEventType];

export interface RecordStatusEvent {
  appID: number;
  roomID: string;
  taskID: string;
  /** Numbers the task's events from 0. */
  sequence: number;
  eventType: RecordEventType;
  timeMs: number;
  detail: Record<string, unknown>;
}

/** DescribeRecordStatus's Status. */
export const RecordStatus = { Recording: 2, Ended: 3, EndedAbnormally: 4 } as const;

/** What the room service gives recordings: the room's streams. */
export interface RecordingRooms {
  streamsOf(appID: number, roomID: string): Promise<StreamInfo[]>;
  /** Streams announced here, for a prompt start (others are found by polling). */
  onStreamCreated(listener: (appID: number, roomID: string) => void): void;
}

const TICK_MS = 250;
const ENDED_TASKS_KEPT_MS = 3 * 24 * 3600_000;

export class Recordings {
  readonly observer = new EventEmitter<{ recordStatus: [RecordStatusEvent] }>();
  private readonly tasks = new Map<string, RecordingTask>();
  private readonly sequences = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly poller: NodeJS.Timeout;
  private readonly options: Required<Omit<RecordingOptions, 'onFileReady'>> & Pick<RecordingOptions, 'onFileReady'>;

  constructor(
    private readonly rooms: RecordingRooms,
    /** The stream feeds, shared with the other egress (CDN relays). */
    private readonly feeds: StreamFeeds,
    /** Mixed mode's mixes. */
    private readonly mixing: Mixing,
    options: RecordingOptions,
    private readonly log: Logger,
  ) {
    this.options = {
      syncWaitMs: 5000,
      lapseMs: 3000,
      pollMs: 1000,
      commandTimeoutMs: 600_000,
      ...options,
    };
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const [id, task] of this.tasks) {
        task.tick(now);
        // An ended task is described for three days, as the vendor's are.
        if (task.state.kind === 'ended' && Date.now() - task.state.endedAt > ENDED_TASKS_KEPT_MS) {
          this.tasks.delete(id);
          this.sequences.delete(id);
        }
      }
    }, TICK_MS);
    this.poller = setInterval(() => {
      for (const task of this.tasks.values()) if (task.state.kind === 'recording') void this.sync(task);
    }, this.options.pollMs);
    rooms.onStreamCreated((appID, roomID) => {
      for (const task of this.tasks.values()) if (task.params.appID === appID && task.params.roomId === roomID) void this.sync(task);
    });
  }

  /** Starts a task (mixed mode: with the picture's size and rate); rejects when its folder cannot be made. */
  async start(params: Omit<RecordTaskParams, 'taskId' | 'dir'>, mixVideo?: RoomMixOptions['video']): Promise<RecordingTask> {
    const taskId = randomBytes(8).toString('hex');
    const dir = join(this.options.dir, taskId);
    await mkdir(dir, { recursive: true });
    const mixed =
      params.recordMode === 2
        ? new RoomMix(this.mixing, {
            appID: params.appID,
            roomID: params.roomId,
            taskID: `rec_${taskId}`,
            streamID: `rec_${taskId}`,
            video: mixVideo ?? DEFAULT_MIX_VIDEO,
          })
        : undefined;
    const task = new RecordingTask(
      { ...params, taskId, dir },
      this.options,
      {
        lease: (appID, streamID) => this.feeds.lease(appID, streamID),
        release: (appID, streamID) => this.feeds.release(appID, streamID),
        fileChanged: (t, file) => this.fileChanged(t, file),
        ended: (t) => this.ended(t),
      },
      mixed,
    );
    this.tasks.set(taskId, task);
    this.report(task, RecordEventType.Started, {});
    this.log.info({ appID: params.appID, roomID: params.roomId, taskId }, 'recording started');
    await this.sync(task);
    return task;
  }

  /** The task, if this app has one of that ID. */
  task(appID: number, taskId: string): RecordingTask | undefined {
    const task = this.tasks.get(taskId);
    return task?.params.appID === appID ? task : undefined;
  }

  private async sync(task: RecordingTask): Promise<void> {
    try {
      await task.sync(await this.rooms.streamsOf(task.params.appID, task.params.roomId));
    } catch (err) {
      this.log.warn({ err, taskId: task.params.taskId }, 'recording could not look up its streams');
    }
  }

  private fileChanged(task: RecordingTask, file: RecordedFile): void {
    if (file.status === 'recording') return;
    const path = join(task.params.dir, file.fileName);
    if (file.status === 'ready') {
      this.report(task, RecordEventType.FileReady, { upload_status: 1, file_info: [fileInfo(file)] });
      this.runFileCommand(task, path);
    } else {
      this.log.warn({ taskId: task.params.taskId, file: path }, 'recorded file failed');
    }
  }

  private ended(task: RecordingTask): void {
    const state = task.state;
    if (state.kind !== 'ended') return;
    const abnormal = state.reason !== RecordQuitReason.Stopped;
    this.report(task, abnormal ? RecordEventType.AbnormalEnd : RecordEventType.Finished, abnormal ? { quit_reason: state.reason } : {});
    this.log.info({ taskId: task.params.taskId, reason: state.reason, failure: state.failure }, 'recording ended');
  }

  private report(task: RecordingTask, eventType: RecordEventType, detail: Record<string, unknown>): void {
    const { taskId, appID, roomId } = task.params;
    const sequence = this.sequences.get(taskId) ?? 0;
    this.sequences.set(taskId, sequence + 1);
    this.observer.emit('recordStatus', { appID, roomID: roomId, taskID: taskId, sequence, eventType, timeMs: Date.now(), detail });
  }

  private runFileCommand(task: RecordingTask, path: string): void {
    const command = this.options.onFileReady;
    if (!command) return;
    const child = spawn('/bin/sh', ['-c', command, 'parley-recording', path], {
      stdio: 'ignore',
      env: { ...process.env, PARLEY_RECORDING_FILE: path, PARLEY_RECORDING_TASK: task.params.taskId },
      timeout: this.options.commandTimeoutMs,
    });
    child.once('error', (err) => this.log.warn({ err, file: path }, 'recording.onFileReady could not run'));
    child.once('exit', (code, signal) => {
      if (code !== 0) this.log.warn({ file: path, code, signal }, 'recording.onFileReady failed');
    });
  }

  /** Ends every task (their files are finished). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.poller);
    await Promise.all([...this.tasks.values()].map((task) => task.end(RecordQuitReason.Stopped)));
  }
}

/** A file as DescribeRecordStatus lists it (the vendor's fields). */
export function recordFileFields(file: RecordedFile): Record<string, unknown> {
  return {
    UserId: file.userId,
    UserName: file.userName,
    StreamId: file.streamId,
    FileId: file.fileName,
    OutputFileFormat: file.format,
    FileSize: file.sizeBytes,
    Duration: file.durationMs,
    ResolutionWidth: file.width,
    ResolutionHeight: file.height,
    MediaTrackType: file.tracks.length === 2 ? 3 : file.tracks[0] === 'audio' ? 1 : 2,
    BeginTimestamp: file.beginTimestamp,
    Segment: file.segment,
    Status: file.status === 'recording' ? 1 : file.status === 'ready' ? 3 : 5,
  };
}

/** The same, as record_status's file_info (snake case). */
function fileInfo(file: RecordedFile): Record<string, unknown> {
  const fields = recordFileFields(file);
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k.replace(/(?<=[a-z])([A-Z])/g, '_$1').toLowerCase(), v]));
}
