/**
 * The server's mixing tasks (StartMix / StopMix): by app and task ID, each publishing its mix as
 * a stream of the room of its first input, and what they report (mix_start, mix_stop). Starting
 * a running task's ID again updates its inputs and layout. Tasks live on the node that started them.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { MixPublisher } from './mixOutput.js';
import { MixTask, type MixEndReason, type MixParams, type MixTimings } from './mixTask.js';
import type { StreamFeeds } from './streamFeeds.js';

export interface MixEvent {
  appID: number;
  roomID: string;
  taskID: string;
  streamID: string;
  timeMs: number;
}

export interface MixingEvents {
  mixStart: [MixEvent];
  mixStop: [MixEvent & { reason: MixEndReason }];
}

/** What mixing needs of the rest of the server. */
export interface MixingServer {
  /** The room a live stream is in. */
  roomOfStream(appID: number, streamID: string): Promise<string | undefined>;
  /** The app's appSign, with which the mixer's user logs in. */
  appSignOf(appID: number): string | undefined;
  /** The server's signalling URL (known once it listens). */
  signallingUrl(): string;
}

export const DEFAULT_MIX_TIMINGS: MixTimings = { allInputsGoneMs: 90_000, pollMs: 1000, restartDelayMs: 300 };

/** A started (or updated) task, or why not: an input is not live, or the mix could not be published. */
export type MixStart = { started: MixTask } | { refused: string; code: 'input' | 'failed' };

export class Mixing {
  readonly observer = new EventEmitter<MixingEvents>();
  private readonly tasks = new Map<string, { task: MixTask; roomID: string }>();
  private readonly timings: MixTimings;

  constructor(
    private readonly server: MixingServer,
    private readonly feeds: StreamFeeds,
    private readonly log: Logger,
    timings: Partial<MixTimings> = {},
  ) {
    this.timings = { ...DEFAULT_MIX_TIMINGS, ...timings };
  }

  /** Starts a task, or updates the running one of that ID; refused when an input is not live or the mix cannot be published. */
  async start(params: MixParams): Promise<MixStart> {
    const { appID, taskID } = params;
    const rooms = await Promise.all(params.inputs.map((i) => this.server.roomOfStream(appID, i.streamID)));
    const missing = params.inputs.find((_, i) => rooms[i] === undefined);
    if (missing) return { refused: `input stream ${missing.streamID} is not published`, code: 'input' };
    const key = `${appID}/${taskID}`;
    const running = this.tasks.get(key);
    if (running) {
      await running.task.update(params);
      return { started: running.task };
    }
    const roomID = rooms[0]!;
    const appSign = this.server.appSignOf(appID);
    if (!appSign) return { refused: `app ${appID} has no appSign for the mixer's user`, code: 'failed' };
    const task = new MixTask(
      params,
      this.feeds,
      this.timings,
      {
        openPublisher: (p) =>
          MixPublisher.open({
            appID,
            appSign,
            server: this.server.signallingUrl(),
            roomID,
            userID: `mixer_${taskID}`,
            streamID: p.outputStreamID,
          }),
        ended: (t) => this.ended(t, roomID),
      },
      this.log,
    );
    this.tasks.set(key, { task, roomID });
    try {
      await task.start();
    } catch (err) {
      this.tasks.delete(key);
      await task.end('failed');
      return { refused: (err as Error).message, code: 'failed' };
    }
    this.observer.emit('mixStart', { appID, roomID, taskID, streamID: params.outputStreamID, timeMs: Date.now() });
    this.log.info({ appID, taskID, roomID }, 'mixing started');
    return { started: task };
  }

  task(appID: number, taskID: string): MixTask | undefined {
    return this.tasks.get(`${appID}/${taskID}`)?.task;
  }

  private ended(task: MixTask, roomID: string): void {
    const { appID, taskID, outputStreamID } = task.taskParams;
    const key = `${appID}/${taskID}`;
    if (this.tasks.get(key)?.task !== task) return; // never started
    this.tasks.delete(key);
    const reason = task.state.kind === 'ended' ? task.state.reason : 'stopped';
    this.observer.emit('mixStop', { appID, roomID, taskID, streamID: outputStreamID, timeMs: Date.now(), reason });
    this.log.info({ appID, taskID, reason }, 'mixing ended');
  }

  async close(): Promise<void> {
    await Promise.all([...this.tasks.values()].map(({ task }) => task.end('stopped')));
  }
}
