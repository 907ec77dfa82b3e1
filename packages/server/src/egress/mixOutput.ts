/**
 * The mixer's output as Parley publishes it: ffmpeg writes VP8 in IVF and Opus in Ogg to two pipes,
 * read here as they come, frame by frame, and sent by an engine of the Node.js SDK logged in to
 * the room as the mixer's user: the mixed stream is a stream like any other, and goes on while
 * ffmpeg is restarted under it (a new layout).
 */
import { ParleyEngine, PublisherState, type StreamRelayCDNInfo } from '@parley/sdk';
import { opusDurationSec } from './fileLane.js';

/** Frames of an IVF stream (a 32-byte file header, then a 12-byte header per frame) as its bytes come, with their times (ms). */
export class IvfReader {
  private buffer = Buffer.alloc(0);
  /** Milliseconds per tick of the frames' timestamps (the header's time base); undefined before the header. */
  private msPerTick: number | undefined;

  constructor(private readonly onFrame: (frame: Buffer, timeMs: number) => void) {}

  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (this.msPerTick === undefined) {
      if (this.buffer.length < 32) return;
      this.msPerTick = (1000 * this.buffer.readUInt32LE(20)) / this.buffer.readUInt32LE(16);
      this.buffer = this.buffer.subarray(this.buffer.readUInt16LE(6));
    }
    while (this.buffer.length >= 12) {
      const size = this.buffer.readUInt32LE(0);
      if (this.buffer.length < 12 + size) return;
      const timeMs = Number(this.buffer.readBigUInt64LE(4)) * this.msPerTick;
      this.onFrame(Buffer.from(this.buffer.subarray(12, 12 + size)), timeMs);
      this.buffer = this.buffer.subarray(12 + size);
    }
  }
}

/** Opus packets of an Ogg stream (RFC 7845) as its bytes come, without its two header packets. */
export class OggOpusReader {
  private buffer = Buffer.alloc(0);
  private partial: Buffer[] = [];
  private packets = 0;

  constructor(private readonly onPacket: (packet: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 27) return;
      if (this.buffer.toString('ascii', 0, 4) !== 'OggS') throw new Error('not an Ogg page');
      const segments = this.buffer[26]!;
      const headerSize = 27 + segments;
      if (this.buffer.length < headerSize) return;
      const lacing = this.buffer.subarray(27, headerSize);
      const bodySize = lacing.reduce((sum, n) => sum + n, 0);
      if (this.buffer.length < headerSize + bodySize) return;
      let at = headerSize;
      for (const length of lacing) {
        this.partial.push(this.buffer.subarray(at, at + length));
        at += length;
        if (length < 255) {
          const packet = Buffer.concat(this.partial);
          this.partial = [];
          if (this.packets++ >= 2) this.onPacket(packet);
        }
      }
      this.buffer = this.buffer.subarray(headerSize + bodySize);
    }
  }
}

const destroy = (engine: ParleyEngine): Promise<void> => new Promise((resolve) => ParleyEngine.destroyEngine(engine, resolve));

/** Whether a VP8 frame is a keyframe (its frame tag's P bit is 0), and its size if so. */
function vp8Frame(frame: Buffer): { keyFrame: boolean; width: number; height: number } {
  const keyFrame = frame.length >= 10 && (frame[0]! & 1) === 0;
  return keyFrame
    ? { keyFrame, width: frame.readUInt16LE(6) & 0x3fff, height: frame.readUInt16LE(8) & 0x3fff }
    : { keyFrame, width: 0, height: 0 };
}

export interface MixPublisherOptions {
  appID: number;
  appSign: string;
  /** The server's signalling URL. */
  server: string;
  roomID: string;
  userID: string;
  streamID: string;
  fps: number;
}

/** The mixed stream, published by the mixer's user. */
export class MixPublisher {
  private readonly engine: ParleyEngine;
  private width = 0;
  private height = 0;
  private readonly started = performance.now();
  /**
   * Frames are stamped with their time in ffmpeg's output (the video's timestamps, the audio's
   * durations added up) from where the current ffmpeg began: ffmpeg writes in bursts, and the
   * times it gives keep audio and video together where arrival times would not.
   */
  private base = 0;
  private audioMs = 0;
  private lastStampMs = 0;

  private constructor(
    engine: ParleyEngine,
    private readonly streamID: string,
    /** A video frame's time at the mix's rate. */
    private readonly frameMs: number,
  ) {
    this.engine = engine;
  }

  /** Logs in and publishes; rejects with the code when either is refused. */
  static async open({ appID, appSign, server, roomID, userID, streamID, fps }: MixPublisherOptions): Promise<MixPublisher> {
    const engine = ParleyEngine.createEngine({ appID, appSign, server });
    const publisher = new MixPublisher(engine, streamID, 1000 / fps);
    const login = await new Promise<number>((resolve) => engine.loginRoom(roomID, { userID, userName: userID }, {}, resolve));
    if (login !== 0) {
      await destroy(engine);
      throw new Error(`the mixer's user could not log in (${login})`);
    }
    const published = new Promise<number>((resolve) =>
      engine.on('publisherStateUpdate', (id, state, code) => {
        if (id === streamID && (state === PublisherState.Publishing || code !== 0)) resolve(code);
      }),
    );
    engine.startPublishingStream(streamID);
    const code = await published;
    if (code !== 0) {
      await destroy(engine);
      throw new Error(`the mixed stream could not be published (${code})`);
    }
    return publisher;
  }

  /** A new ffmpeg begins: its times count from now, a frame's time after what was sent. */
  begin(): void {
    this.base = Math.max(performance.now() - this.started, this.lastStampMs + this.frameMs);
    this.audioMs = 0;
  }

  private stamp(timeMs: number): number {
    this.lastStampMs = Math.max(this.lastStampMs, this.base + timeMs);
    return this.base + timeMs;
  }

  /** Pushes the mixed stream to an RTMP URL: a CDN relay of the mixer's user, which ends with the stream. */
  pushTo(url: string): void {
    this.engine.addPublishCdnUrl(this.streamID, url);
  }

  /** The relays' states (onMixerRelayCDNStateUpdate). */
  onRelayStates(listener: (infoList: StreamRelayCDNInfo[]) => void): void {
    this.engine.on('publisherRelayCDNStateUpdate', (_, infoList) => listener(infoList));
  }

  sendVideo(frame: Buffer, timeMs: number): void {
    const { keyFrame, width, height } = vp8Frame(frame);
    if (keyFrame) ({ width: this.width, height: this.height } = { width, height });
    if (this.width === 0) return; // no keyframe yet
    const params = { codec: 'vp8' as const, isKeyFrame: keyFrame, width: this.width, height: this.height };
    this.engine.sendCustomVideoCaptureEncodedData(frame, params, this.stamp(timeMs));
  }

  sendAudio(packet: Buffer): void {
    this.engine.sendCustomAudioCaptureEncodedData(packet, { codec: 'opus' }, this.stamp(this.audioMs));
    this.audioMs += opusDurationSec(packet) * 1000;
  }

  async close(): Promise<void> {
    await destroy(this.engine);
  }
}
