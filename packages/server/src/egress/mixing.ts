/**
 * The server's mixing tasks (StartMix / StopMix): by app and task ID, each publishing its mix as
 * a stream of the room of its first input, and what they report (mix_start, mix_stop). Starting
 * a running task's ID again updates its inputs and layout. Tasks live on the node that started them.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { MixPublisher } from './mixOutput.js';
import { MixTask, type MixEndReason, type MixInput, type MixParams, type MixTimings } from './mixTask.js';
import { ErrorCode, MixerInputContentType, isCdnUrl, validateStreamID, type MixerTask, type ServerMessage } from '@parley/protocol';
import { fail, ok, type Outcome } from '../outcome.js';
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
  /** Sends a message to a session connected here (the one that started a task). */
  tell(sessionID: string, message: ServerMessage): void;
}

const CONTENT: Record<MixerInputContentType, MixInput['content']> = {
  [MixerInputContentType.Audio]: 'audio',
  [MixerInputContentType.Video]: 'both',
  [MixerInputContentType.VideoOnly]: 'video',
};

/** The SDK's MixerTask as a task's parameters: one streamID output at most, the rest rtmp:// URLs; bitrates from kbit/s. */
function mixParamsOf(appID: number, task: MixerTask): Outcome<MixParams> {
  const video = task.videoConfig ?? { width: 640, height: 360, fps: 15, bitrate: 800 };
  if (task.inputList.length === 0) return fail(ErrorCode.MixerInputListInvalid, 'the input list is empty');
  if (task.outputList.length === 0) return fail(ErrorCode.MixerOutputListInvalid, 'the output list is empty');
  const urls = task.outputList.filter((o) => isCdnUrl(o.target)).map((o) => o.target);
  const streams = task.outputList.filter((o) => !urls.includes(o.target)).map((o) => o.target);
  if (streams.length > 1 || streams.some((s) => validateStreamID(s) !== ErrorCode.Success)) {
    return fail(ErrorCode.MixerNoOutputTarget, 'an output is one streamID, or rtmp:// URLs');
  }
  const outside = task.inputList.find(
    ({ layout: l }) => l.width === 0 || l.height === 0 || l.x + l.width > video.width || l.y + l.height > video.height,
  );
  if (outside) return fail(ErrorCode.MixerInputParametersError, `the layout of ${outside.streamID} is not within the canvas`);
  return ok({
    taskID: task.taskID,
    appID,
    inputs: task.inputList.map(({ streamID, contentType, layout }) => ({
      streamID,
      content: CONTENT[(contentType ?? MixerInputContentType.Video) as MixerInputContentType],
      rect: { left: layout.x, top: layout.y, width: layout.width, height: layout.height },
    })),
    outputStreamID: streams[0] ?? `mix_${task.taskID.replace(/[^0-9A-Za-z_-]/g, '_')}`,
    outputUrls: urls,
    video: { width: video.width, height: video.height, fps: video.fps, bitrateBps: video.bitrate * 1000 },
    audioBitrateBps: (task.audioConfig?.bitrate ?? 64) * 1000,
  });
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

  /**
   * Starts a task, or updates the running one of that ID; refused when an input is not live or the
   * mix cannot be published. `startedBy`: the session that asked (startMixerTask), told of its relays.
   */
  async start(params: MixParams, startedBy?: string): Promise<MixStart> {
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
    const roomID = params.roomID ?? rooms[0]!;
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
            fps: p.video.fps,
          }),
        relayStates: (infoList) => {
          if (startedBy) this.server.tell(startedBy, { type: 'mixerRelayCdnState', taskID, infoList });
        },
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

  /** startMixerTask: the SDK's task, checked as the vendor's SDK does, started for `session`. */
  async startFor(session: { appID: number; sessionID: string }, task: MixerTask): Promise<Outcome<Record<string, never>>> {
    const params = mixParamsOf(session.appID, task);
    if (params.code !== 0) return params;
    const started = await this.start(params.data, session.sessionID);
    if ('refused' in started)
      return fail(started.code === 'input' ? ErrorCode.MixerInputParametersError : ErrorCode.MixerInnerError, started.refused);
    return ok({});
  }

  /** stopMixerTask. */
  async stopFor(session: { appID: number }, taskID: string): Promise<Outcome<Record<string, never>>> {
    const task = this.task(session.appID, taskID);
    if (!task) return fail(ErrorCode.MixerInputParametersError, `no mixing task ${taskID}`);
    await task.end('stopped');
    return ok({});
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
