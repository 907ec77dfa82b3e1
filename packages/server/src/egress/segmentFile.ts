/**
 * One recorded file: a container (mediabunny's muxers) written append-only as frames come, so
 * that whatever happens to the server the file on disk plays up to its last cluster. Frames are
 * written in order through one promise chain; the first failure (a full disk) fails the file.
 */
import { once } from 'node:events';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import {
  ALL_FORMATS,
  Conversion,
  EncodedAudioPacketSource,
  FilePathSource,
  Input,
  EncodedPacket,
  EncodedVideoPacketSource,
  FilePathTarget,
  MkvOutputFormat,
  OggOutputFormat,
  Output,
  StreamTarget,
  WebMOutputFormat,
  type StreamTargetChunk,
} from 'mediabunny';
import type { AssembledFrame } from '../media/index.js';

export type RecordFormat = 'webm' | 'mkv' | 'ogg';
export type VideoCodecName = 'vp8' | 'h264';

/** The tracks of a file: audio is Opus, video one of the recorded codecs. */
export interface FileTracks {
  audio: boolean;
  video: VideoCodecName | undefined;
}

/** The formats that can hold these tracks, the first the one chosen when none is asked for. */
export function formatsFor(tracks: FileTracks): RecordFormat[] {
  if (!tracks.video) return ['ogg', 'webm', 'mkv'];
  return tracks.video === 'vp8' ? ['webm', 'mkv'] : ['mkv'];
}

const OPUS_CHANNELS = 2;
const OPUS_PRE_SKIP = 312;

/** The Opus identification header (RFC 7845 §5.1) that Matroska and Ogg carry as the codec's private data. */
function opusHead(): Uint8Array {
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'ascii');
  head.writeUInt8(1, 8);
  head.writeUInt8(OPUS_CHANNELS, 9);
  head.writeUInt16LE(OPUS_PRE_SKIP, 10);
  head.writeUInt32LE(48_000, 12);
  return head;
}

type VideoConfig = NonNullable<NonNullable<Parameters<EncodedVideoPacketSource['add']>[1]>['decoderConfig']>;

/** A pipe as mediabunny writes to it: in order (append-only output), waiting while the pipe is full. */
function pipeInto(pipe: Writable): WritableStream<StreamTargetChunk> {
  return new WritableStream<StreamTargetChunk>({
    write: async ({ data }) => {
      if (pipe.destroyed) throw new Error('the pipe closed');
      if (!pipe.write(data)) await once(pipe, 'drain');
    },
    close: () => new Promise<void>((resolve) => pipe.end(resolve)),
    abort: () => void pipe.destroy(),
  });
}

const hex = (byte: number): string => byte.toString(16).padStart(2, '0');

export class SegmentFile {
  private readonly output: Output;
  private readonly audio: EncodedAudioPacketSource | undefined;
  private readonly video: EncodedVideoPacketSource | undefined;
  private chain: Promise<void>;
  private failure: Error | undefined;
  /** The file, opened by the first write; closed when the output ends or fails (mediabunny's own file target leaks it on a write error). */
  private handle: Promise<FileHandle> | undefined;
  private audioStarted = false;
  private videoStarted = false;
  /** Frames written, by kind. */
  readonly frames = { audio: 0, video: 0 };
  /** The largest picture size written. */
  width = 0;
  height = 0;
  /** Media time written so far (s). */
  endSec = 0;

  /** The file written, or none when piped. */
  readonly path: string | undefined;

  constructor(
    /** A file's path, or a pipe (a live stream to another program, e.g. ffmpeg's input). */
    destination: string | Writable,
    readonly format: RecordFormat,
    readonly tracks: FileTracks,
    /** Told once, when a write fails. */
    private readonly onFailure: (err: Error) => void,
  ) {
    const options = { appendOnly: true };
    const container =
      format === 'ogg' ? new OggOutputFormat() : format === 'webm' ? new WebMOutputFormat(options) : new MkvOutputFormat(options);
    this.path = typeof destination === 'string' ? destination : undefined;
    const writable =
      typeof destination === 'string'
        ? new WritableStream<StreamTargetChunk>({
            write: async ({ data, position }) => {
              const handle = await (this.handle ??= open(destination, 'w'));
              await handle.write(data, 0, data.byteLength, position);
            },
            close: () => this.closeFile(),
            abort: () => this.closeFile(),
          })
        : pipeInto(destination);
    this.output = new Output({ format: container, target: new StreamTarget(writable, { chunked: false }) });
    if (tracks.video) {
      this.video = new EncodedVideoPacketSource(tracks.video === 'vp8' ? 'vp8' : 'avc');
      this.output.addVideoTrack(this.video);
    }
    if (tracks.audio) {
      this.audio = new EncodedAudioPacketSource('opus');
      this.output.addAudioTrack(this.audio);
    }
    this.chain = this.output.start();
    this.queue(() => Promise.resolve());
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Writes a frame at `timeSec` of the file, lasting `durationSec`. */
  write(kind: 'audio' | 'video', frame: AssembledFrame, timeSec: number, durationSec: number): void {
    if (this.failure) return;
    this.endSec = Math.max(this.endSec, timeSec + durationSec);
    const packet = new EncodedPacket(frame.data, frame.keyFrame ? 'key' : 'delta', timeSec, durationSec);
    if (kind === 'audio' && this.audio) {
      const audio = this.audio;
      const meta = this.audioStarted
        ? undefined
        : { decoderConfig: { codec: 'opus', sampleRate: 48_000, numberOfChannels: OPUS_CHANNELS, description: opusHead() } };
      this.audioStarted = true;
      this.frames.audio++;
      this.queue(() => audio.add(packet, meta));
    } else if (kind === 'video' && this.video) {
      const video = this.video;
      if (frame.width > this.width) ({ width: this.width, height: this.height } = frame);
      const meta = this.videoStarted ? undefined : { decoderConfig: this.videoConfig(frame) };
      this.videoStarted = true;
      this.frames.video++;
      this.queue(() => video.add(packet, meta));
    }
  }

  private videoConfig(frame: AssembledFrame): VideoConfig {
    const size = { codedWidth: frame.width, codedHeight: frame.height };
    if (this.tracks.video === 'vp8') return { codec: 'vp8', ...size };
    const avcC = frame.avcC!;
    return { codec: `avc1.${hex(avcC[1]!)}${hex(avcC[2]!)}${hex(avcC[3]!)}`, ...size, description: avcC };
  }

  /**
   * Finishes the file (a track that got nothing is closed empty), then rewrites a Matroska file
   * whole with its duration and seek index, which a file written append-only lacks; resolves with
   * its size, or rejects with why it failed.
   */
  async finish(): Promise<{ sizeBytes: number }> {
    this.queue(async () => {
      if (!this.audioStarted) this.audio?.close();
      if (!this.videoStarted) this.video?.close();
      await this.output.finalize();
      if (this.format !== 'ogg' && this.path) await this.rewriteIndexed(this.path);
    });
    await this.chain;
    if (this.failure) throw this.failure;
    return { sizeBytes: this.path ? (await stat(this.path)).size : 0 };
  }

  private async rewriteIndexed(path: string): Promise<void> {
    const indexed = `${path}.indexed`;
    try {
      const input = new Input({ source: new FilePathSource(path), formats: ALL_FORMATS });
      const format = this.format === 'webm' ? new WebMOutputFormat() : new MkvOutputFormat();
      const output = new Output({ format, target: new FilePathTarget(indexed) });
      const conversion = await Conversion.init({ input, output, showWarnings: false });
      await conversion.execute();
      input.dispose();
      await rename(indexed, path);
    } finally {
      await rm(indexed, { force: true });
    }
  }

  private async closeFile(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await (await handle?.catch(() => undefined))?.close();
  }

  private queue(step: () => Promise<void>): void {
    this.chain = this.chain
      .then(() => (this.failure ? undefined : step()))
      .catch((err: unknown) => {
        if (this.failure) return;
        this.failure = err instanceof Error ? err : new Error(String(err));
        this.onFailure(this.failure);
        void this.output.cancel().catch(() => undefined);
        void this.closeFile().catch(() => undefined);
      });
  }
}
