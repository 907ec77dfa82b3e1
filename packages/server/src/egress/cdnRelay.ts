/**
 * One stream pushed to one RTMP URL (addPublishCdnUrl). ffmpeg does the pushing: it reads the
 * stream live from a pipe (Matroska, written as frames come), copies H264 or encodes VP8 to H264,
 * encodes Opus to AAC, and sends FLV. A push that fails or is cut is tried again after a backoff,
 * and its state says so; the stream's feed going (its publisher re-establishing media) waits for
 * the next one.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { StreamRelayCDNState, StreamRelayCDNUpdateReason, type StreamRelayCDNInfo } from '@parley/protocol';
import { LiveMux } from './liveMux.js';
import type { StreamFeed } from './streamFeed.js';

export interface CdnRelayOptions {
  /** The ffmpeg to run. */
  ffmpegPath: string;
  /** Waits before each new attempt after a failure (ms); the last repeats. */
  retryDelaysMs: readonly number[];
}

export const DEFAULT_CDN_RELAY_OPTIONS: CdnRelayOptions = { ffmpegPath: 'ffmpeg', retryDelaysMs: [500, 1000, 2000, 3000] };

type RelayState =
  /** Waiting for the stream's media, ffmpeg starting or connecting, or waiting to try again. */
  | { kind: 'requesting'; reason: StreamRelayCDNUpdateReason; sinceMs: number }
  /** ffmpeg is sending to the URL. */
  | { kind: 'relaying'; sinceMs: number }
  | { kind: 'stopped'; reason: StreamRelayCDNUpdateReason; sinceMs: number };

type Ffmpeg = ChildProcessByStdio<Writable, Readable, Readable>;

/** What a failed ffmpeg said, as the vendor's reasons name it. */
function reasonOf(stderr: string, wasRelaying: boolean): StreamRelayCDNUpdateReason {
  if (wasRelaying) return StreamRelayCDNUpdateReason.CDNServerDisconnected;
  if (/Connection refused|Cannot assign|No route|timed out|Name or service not known/i.test(stderr)) {
    return StreamRelayCDNUpdateReason.AccessPointError;
  }
  if (/handshake/i.test(stderr)) return StreamRelayCDNUpdateReason.HandshakeFailed;
  return StreamRelayCDNUpdateReason.ServerError;
}

export class CdnRelay {
  private state: RelayState = { kind: 'requesting', reason: StreamRelayCDNUpdateReason.None, sinceMs: Date.now() };
  private feed: StreamFeed | undefined;
  private ffmpeg: Ffmpeg | undefined;
  private mux: LiveMux | undefined;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly url: string,
    private readonly options: CdnRelayOptions,
    /** Told every change of state. */
    private readonly changed: () => void,
  ) {}

  info(): StreamRelayCDNInfo {
    const { state } = this;
    const code =
      state.kind === 'relaying'
        ? StreamRelayCDNState.Relaying
        : state.kind === 'requesting'
          ? StreamRelayCDNState.RelayRequesting
          : StreamRelayCDNState.NoRelay;
    const reason = state.kind === 'relaying' ? StreamRelayCDNUpdateReason.None : state.reason;
    return { url: this.url, state: code, updateReason: reason, stateTime: state.sinceMs };
  }

  /** The stream's media (a feed), or none while it is re-established: the push follows it. */
  attach(feed: StreamFeed | undefined): void {
    if (this.state.kind === 'stopped' || feed === this.feed) return;
    this.detach();
    this.feed = feed;
    if (feed) this.start();
  }

  private start(): void {
    const feed = this.feed;
    if (!feed || this.state.kind === 'stopped' || this.ffmpeg) return;
    const copy = feed.video === 'h264';
    const args = [
      ...['-hide_banner', '-loglevel', 'error', '-nostats', '-progress', 'pipe:1'],
      ...['-f', 'matroska', '-i', 'pipe:0'],
      ...(feed.video
        ? copy
          ? ['-c:v', 'copy']
          : ['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '60']
        : []),
      ...(feed.audio ? ['-c:a', 'aac', '-b:a', '128k'] : []),
      ...['-f', 'flv', this.url],
    ];
    const ffmpeg = spawn(this.options.ffmpegPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.ffmpeg = ffmpeg;
    let stderr = '';
    ffmpeg.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    ffmpeg.stdout.on('data', (chunk: Buffer) => {
      // ffmpeg's progress: bytes out means the URL took the stream.
      const size = /total_size=(\d+)/.exec(chunk.toString());
      if (size && Number(size[1]) > 0 && this.ffmpeg === ffmpeg && this.state.kind === 'requesting') {
        this.failures = 0;
        this.setState({ kind: 'relaying', sinceMs: Date.now() });
      }
    });
    ffmpeg.stdin.on('error', () => undefined); // a dead ffmpeg's pipe; its exit says why
    ffmpeg.once('error', () => undefined); // cannot be run: it exits (code -2) below
    ffmpeg.once('close', () => this.ffmpegEnded(ffmpeg, stderr));
    this.mux = new LiveMux(feed, ffmpeg.stdin, () => ffmpeg.stdin.end());
  }

  private ffmpegEnded(ffmpeg: Ffmpeg, stderr: string): void {
    if (this.ffmpeg !== ffmpeg) return;
    const wasRelaying = this.state.kind === 'relaying';
    this.ffmpeg = undefined;
    this.mux?.close();
    this.mux = undefined;
    if (this.state.kind === 'stopped') return;
    if (!this.feed || this.feed.closed) {
      // The stream's media went: the next feed starts a new push.
      this.setState({ kind: 'requesting', reason: StreamRelayCDNUpdateReason.None, sinceMs: Date.now() });
      return;
    }
    const delays = this.options.retryDelaysMs;
    const delay = delays[Math.min(this.failures++, delays.length - 1)]!;
    this.setState({ kind: 'requesting', reason: reasonOf(stderr, wasRelaying), sinceMs: Date.now() });
    this.retryTimer = setTimeout(() => this.start(), delay);
  }

  private detach(): void {
    clearTimeout(this.retryTimer);
    this.mux?.close();
    this.mux = undefined;
    const ffmpeg = this.ffmpeg;
    this.ffmpeg = undefined;
    ffmpeg?.stdin.end();
    ffmpeg?.kill('SIGINT'); // lets ffmpeg end the FLV stream properly
  }

  private setState(state: RelayState): void {
    this.state = state;
    this.changed();
  }

  /** Stops the push (removePublishCdnUrl, or the stream ended). Idempotent. */
  stop(reason = StreamRelayCDNUpdateReason.None): void {
    if (this.state.kind === 'stopped') return;
    this.detach();
    this.feed = undefined;
    this.setState({ kind: 'stopped', reason, sinceMs: Date.now() });
  }
}
