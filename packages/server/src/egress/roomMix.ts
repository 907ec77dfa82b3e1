/**
 * A room's streams mixed into one in a grid that follows them as they come and go: the picture
 * of a mixed-mode recording (RecordMode 2). Each change of the room's streams updates the mixing
 * task (the same stream goes on); the task starts with the room's first stream.
 */
import type { StreamInfo } from '@parley/protocol';
import type { Mixing } from './mixing.js';
import type { MixInput } from './mixTask.js';

export interface RoomMixOptions {
  appID: number;
  roomID: string;
  /** The mixing task's ID, and the mixed stream's. */
  taskID: string;
  streamID: string;
  video: { width: number; height: number; fps: number; bitrateBps: number };
}

/** `count` cells of a grid as near square as they fit, in even pixels, row by row. */
export function gridLayout(count: number, width: number, height: number): Array<MixInput['rect']> {
  const columns = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / columns);
  const even = (n: number): number => Math.floor(n / 2) * 2;
  const cell = { width: even(width / columns), height: even(height / rows) };
  return Array.from({ length: count }, (_, i) => ({
    left: (i % columns) * cell.width,
    top: Math.floor(i / columns) * cell.height,
    ...cell,
  }));
}

export class RoomMix {
  private inputs: string[] = [];
  private failure: string | undefined;

  constructor(
    private readonly mixing: Mixing,
    readonly options: RoomMixOptions,
  ) {}

  /** Whether the room has streams to mix (its idle time counts otherwise). */
  get hasInputs(): boolean {
    return this.inputs.length > 0;
  }

  /** Why the mix could not start, if it could not. */
  get failed(): string | undefined {
    return this.failure;
  }

  /** The room's streams now: the mix follows them (its own stream aside). */
  async follow(streams: readonly StreamInfo[]): Promise<void> {
    const { appID, roomID, taskID, streamID, video } = this.options;
    const inputs = streams.map((s) => s.streamID).filter((id) => id !== streamID);
    if (inputs.join('\n') === this.inputs.join('\n')) return;
    this.inputs = inputs;
    if (inputs.length === 0) return; // the task goes on black until it ends, or streams come back
    const rects = gridLayout(inputs.length, video.width, video.height);
    const started = await this.mixing.start({
      taskID,
      appID,
      roomID,
      inputs: inputs.map((id, i) => ({ streamID: id, content: 'both', rect: rects[i]! })),
      outputStreamID: streamID,
      outputUrls: [],
      video,
      audioBitrateBps: 64_000,
    });
    if ('refused' in started) {
      // A stream that went meanwhile: the next look tries again.
      this.inputs = [];
      if (started.code === 'failed') this.failure = started.refused;
    }
  }

  async stop(): Promise<void> {
    await this.mixing.task(this.options.appID, this.options.taskID)?.end('stopped');
  }
}
