/**
 * One mixing task (StartMix, startMixerTask): its inputs composed by their layout on a background
 * of the output's size, their audio mixed, encoded and sent to its outputs: a Parley stream
 * (published by the mixer's user, see mixOutput.ts) and/or RTMP URLs. ffmpeg does the decoding,
 * composing and encoding; it is started again when the inputs that have media, or the layout,
 * change, while the Parley stream goes on. An input without media leaves its area black; the task
 * ends when all its inputs have been gone for the idle time (the vendor's 90 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { StreamRelayCDNInfo } from '@parley/protocol';
import { LiveMux } from './liveMux.js';
import { IvfReader, MixPublisher, OggOpusReader } from './mixOutput.js';
import type { StreamFeed } from './streamFeed.js';
import type { StreamFeeds } from './streamFeeds.js';

export interface MixInput {
  streamID: string;
  /** What of it goes into the mix: its audio, both, or its video. */
  content: 'audio' | 'both' | 'video';
  /** Where it goes in the output picture (pixels). */
  rect: { left: number; top: number; width: number; height: number };
}

export interface MixParams {
  taskID: string;
  appID: number;
  /** The room the mixed stream is published in: that of the first input unless given. */
  roomID?: string;
  inputs: MixInput[];
  /** The Parley stream the mix is published as (one is made up when the task names only URLs). */
  outputStreamID: string;
  /** RTMP URLs the mixed stream is pushed to, as a CDN relay of it. */
  outputUrls: string[];
  video: { width: number; height: number; fps: number; bitrateBps: number };
  audioBitrateBps: number;
}

export interface MixTimings {
  /** How long after the last input went the task ends (ms; the vendor's 90 s). */
  allInputsGoneMs: number;
  /** How often inputs without media are looked at again (ms). */
  pollMs: number;
  /** Changes closer together than this restart ffmpeg once (ms). */
  restartDelayMs: number;
}

export type MixState = { kind: 'mixing' } | { kind: 'ended'; reason: MixEndReason };
export type MixEndReason = 'stopped' | 'inputsGone' | 'failed';

export interface MixHooks {
  /** Opens the mixed stream's publisher (the mixer's user in the room of the first input). */
  openPublisher(params: MixParams): Promise<MixPublisher>;
  /** The states of its RTMP outputs changed. */
  relayStates(infoList: StreamRelayCDNInfo[]): void;
  ended(task: MixTask): void;
}

export class MixTask {
  private taskState: MixState = { kind: 'mixing' };
  private readonly feeds = new Map<string, StreamFeed>();
  private ffmpeg: ChildProcess | undefined;
  private muxes: LiveMux[] = [];
  private publisher: MixPublisher | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly poller: NodeJS.Timeout;
  private goneSinceMs: number | undefined;

  constructor(
    private params: MixParams,
    private readonly streamFeeds: StreamFeeds,
    private readonly timings: MixTimings,
    private readonly hooks: MixHooks,
    private readonly log: Logger,
  ) {
    this.poller = setInterval(() => void this.poll(), timings.pollMs);
  }

  get state(): MixState {
    return this.taskState;
  }

  get taskParams(): Readonly<MixParams> {
    return this.params;
  }

  /** Opens the mixed stream, leases the inputs' feeds, and starts ffmpeg; rejects when the stream cannot be published. */
  async start(): Promise<void> {
    this.publisher = await this.hooks.openPublisher(this.params);
    this.publisher.onRelayStates((infoList) => this.hooks.relayStates(infoList));
    for (const url of this.params.outputUrls) this.publisher.pushTo(url);
    await this.poll();
    this.restart();
  }

  /** A running task's new inputs or layout (the same taskID): the picture changes, the output goes on. */
  async update(params: MixParams): Promise<void> {
    const wanted = new Set(params.inputs.map((i) => i.streamID));
    for (const streamID of [...this.feeds.keys()]) if (!wanted.has(streamID)) this.release(streamID);
    this.params = { ...params, outputStreamID: this.params.outputStreamID, outputUrls: this.params.outputUrls };
    await this.poll();
    this.scheduleRestart();
  }

  /** Leases the feeds of inputs that have none; ends the task when all have been gone long enough. */
  private async poll(): Promise<void> {
    if (this.taskState.kind !== 'mixing') return;
    for (const { streamID } of this.params.inputs) {
      if (this.feeds.has(streamID)) continue;
      const feed = await this.streamFeeds.lease(this.params.appID, streamID);
      if (!feed) continue;
      if (this.taskState.kind !== 'mixing' || this.feeds.has(streamID)) {
        this.streamFeeds.release(this.params.appID, streamID);
        continue;
      }
      this.feeds.set(streamID, feed);
      feed.observer.once('closed', () => {
        if (this.feeds.get(streamID) !== feed) return;
        this.feeds.delete(streamID);
        this.streamFeeds.release(this.params.appID, streamID);
        this.scheduleRestart();
      });
      this.scheduleRestart();
    }
    const now = performance.now();
    if (this.feeds.size > 0) this.goneSinceMs = undefined;
    else this.goneSinceMs ??= now;
    if (this.goneSinceMs !== undefined && now - this.goneSinceMs >= this.timings.allInputsGoneMs) void this.end('inputsGone');
  }

  private release(streamID: string): void {
    if (!this.feeds.delete(streamID)) return;
    this.streamFeeds.release(this.params.appID, streamID);
  }

  private scheduleRestart(): void {
    if (this.taskState.kind !== 'mixing') return;
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => this.restart(), this.timings.restartDelayMs);
  }

  /** ffmpeg for the inputs that have media now, with the layout as it is now. */
  private restart(): void {
    this.stopFfmpeg();
    if (this.taskState.kind !== 'mixing') return;
    const live = this.params.inputs.filter((i) => this.feeds.has(i.streamID));
    const { args, audioOutFd } = ffmpegArgs(
      this.params,
      live.map((i) => ({ ...i, feed: this.feeds.get(i.streamID)! })),
    );
    const inputFds = live.map((_, i) => 3 + i);
    const stdio = ['ignore', 'pipe', 'pipe', ...inputFds.map(() => 'pipe'), 'pipe'] as Array<'pipe' | 'ignore'>;
    const ffmpeg = spawn('ffmpeg', args, { stdio });
    this.ffmpeg = ffmpeg;
    let stderr = '';
    ffmpeg.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    ffmpeg.once('error', () => undefined);
    ffmpeg.once('close', (code, signal) => {
      if (this.ffmpeg !== ffmpeg || this.taskState.kind !== 'mixing') return;
      this.log.warn({ taskID: this.params.taskID, code, signal, stderr }, 'mixer ffmpeg ended; starting it again');
      this.scheduleRestart();
    });
    this.muxes = live.map((input, i) => {
      const pipe = ffmpeg.stdio[inputFds[i]!] as Writable;
      pipe.on('error', () => undefined); // ffmpeg went: its close starts it again
      return new LiveMux(this.feeds.get(input.streamID)!, pipe, () => pipe.destroy());
    });
    const publisher = this.publisher!;
    publisher.begin();
    const video = new IvfReader((frame, timeMs) => publisher.sendVideo(frame, timeMs));
    const audio = new OggOpusReader((packet) => publisher.sendAudio(packet));
    ffmpeg.stdout!.on('data', (chunk: Buffer) => video.push(chunk));
    (ffmpeg.stdio[audioOutFd] as Readable).on('data', (chunk: Buffer) => audio.push(chunk));
  }

  private stopFfmpeg(): void {
    clearTimeout(this.restartTimer);
    for (const mux of this.muxes) mux.close();
    this.muxes = [];
    const ffmpeg = this.ffmpeg;
    this.ffmpeg = undefined;
    ffmpeg?.kill('SIGINT');
  }

  /** Ends the task (StopMix, inputs gone, or it could not start). Idempotent. */
  async end(reason: MixEndReason): Promise<void> {
    if (this.taskState.kind !== 'mixing') return;
    this.taskState = { kind: 'ended', reason };
    clearInterval(this.poller);
    this.stopFfmpeg();
    for (const streamID of [...this.feeds.keys()]) this.release(streamID);
    await this.publisher?.close();
    this.hooks.ended(this);
  }
}

/**
 * ffmpeg's arguments: the live inputs on pipes 3…, a black background of the output's size, each
 * input scaled into its rectangle, the audio mixed over silence (so that it never waits for an
 * input), paced to real time (with no input the sources would run ahead), encoded as VP8 in IVF on
 * stdout and Opus in Ogg on the pipe after the inputs' (`audioOutFd`), flushed packet by packet.
 */
function ffmpegArgs(params: MixParams, live: Array<MixInput & { feed: StreamFeed }>): { args: string[]; audioOutFd: number } {
  const { width, height, fps, bitrateBps } = params.video;
  // Live inputs: probing reads no further than their codecs' parameters (no frame rate to estimate),
  // as what it reads stays queued ahead of the mix for good.
  const inputs = live.flatMap((_, i) => ['-fpsprobesize', '0', '-fflags', 'nobuffer', '-f', 'matroska', '-i', `pipe:${3 + i}`]);
  const filters = [`color=c=black:s=${width}x${height}:r=${fps}[bg0]`, 'anullsrc=r=48000:cl=stereo[silence]'];
  const pictures = live.map((input, i) => ({ ...input, i })).filter((input) => input.content !== 'audio' && input.feed.video);
  pictures.forEach(({ rect, i }, n) => {
    filters.push(`[${i}:v]scale=${rect.width}:${rect.height},setpts=PTS-STARTPTS[in${n}]`);
    filters.push(`[bg${n}][in${n}]overlay=${rect.left}:${rect.top}:eof_action=pass:repeatlast=0[bg${n + 1}]`);
  });
  const sounds = live.map((input, i) => ({ ...input, i })).filter((input) => input.content !== 'video' && input.feed.audio);
  filters.push(
    `[silence]${sounds.map(({ i }) => `[${i}:a]`).join('')}amix=inputs=${sounds.length + 1}:duration=first:normalize=0,arealtime[a]`,
  );
  filters.push(`[bg${pictures.length}]realtime[v]`);
  const audioOutFd = 3 + live.length;
  const args = [
    ...['-hide_banner', '-loglevel', 'error', '-nostats', ...inputs, '-filter_complex', filters.join(';')],
    ...['-map', '[v]', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', String(bitrateBps)],
    // No look-ahead: libvpx would hold 25 frames back by default.
    ...['-g', String(fps), '-auto-alt-ref', '0', '-lag-in-frames', '0', '-flush_packets', '1', '-f', 'ivf', 'pipe:1'],
    ...['-map', '[a]', '-c:a', 'libopus', '-b:a', String(params.audioBitrateBps), '-frame_duration', '20'],
    ...['-application', 'lowdelay', '-page_duration', '20000', '-flush_packets', '1', '-f', 'ogg', `pipe:${audioOutFd}`],
  ];
  return { args, audioOutFd };
}
