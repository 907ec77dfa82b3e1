/**
 * One played stream's state machine: NoPlay → PlayRequesting → Playing. A stream that does not
 * exist (yet), or stops, keeps the player in PlayRequesting (1004002) until it appears again or
 * stopPlayingStream is called; an interrupted play (media or signalling broke) goes back to
 * PlayRequesting (1004020) and is retried. Refusals end in NoPlay.
 */
import { ErrorCode, PlayerState, VideoStreamType, type PlayVideo } from '@parley/protocol';
import type { EngineContext } from './context.js';
import type { Canvas, MediaTransport } from './platform.js';
import { negotiate } from './negotiation.js';
import { ReconnectPolicy } from './reconnectPolicy.js';
import { playQuality, QualityMonitor } from './quality.js';

const RETRYABLE = new Set<number>([ErrorCode.PlayInterrupted, ErrorCode.Disconnected, ErrorCode.ConnectionBroken]);

export class Player {
  private state = PlayerState.NoPlay;
  private lastCode = 0;
  private transport: MediaTransport | undefined;
  /** Reports the quality while playing. */
  private quality: QualityMonitor | undefined;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retries = 0;
  private readonly backoff: ReconnectPolicy;
  private waitingForStream = false;
  private firstFrameSeen = false;
  /** What the server is asked for: the layer type and the view's size (which caps it in automatic mode). */
  private video: PlayVideo;
  private videoSize = { width: 0, height: 0 };

  constructor(
    private readonly ctx: EngineContext,
    readonly streamID: string,
    private canvas: Canvas | undefined,
    /** Called when the player is back in NoPlay, so the engine can forget it. */
    private readonly onEnded: (player: Player) => void,
    videoType: VideoStreamType = VideoStreamType.Default,
  ) {
    this.video = { type: videoType, viewWidth: 0, viewHeight: 0 };
    // Players wait as long as the app wants them to: the backoff only spaces the attempts.
    this.backoff = new ReconnectPolicy({ windowMs: Infinity, maxDelayMs: ctx.timeouts.playRetryIntervalMs });
  }

  start(): void {
    this.transition(PlayerState.PlayRequesting, 0);
    this.request();
  }

  updateCanvas(canvas: Canvas | undefined): void {
    if (canvas === this.canvas) return;
    this.canvas = canvas;
    if (this.state !== PlayerState.NoPlay) {
      this.release();
      this.request();
    }
  }

  /** setPlayStreamVideoType: applies now if playing, else to the next play request. */
  setVideoType(type: VideoStreamType): void {
    this.updateVideo({ ...this.video, type });
  }

  private updateVideo(video: PlayVideo): void {
    const { type, viewWidth, viewHeight } = this.video;
    if (video.type === type && video.viewWidth === viewWidth && video.viewHeight === viewHeight) return;
    this.video = video;
    if (this.state === PlayerState.Playing) this.sendVideo();
  }

  private sendVideo(): void {
    void this.ctx.loggedInSignalling()?.request('playVideo', { streamID: this.streamID, video: this.video });
  }

  /** The sound level of what is played now; 0 when not playing. */
  soundLevel(): Promise<number> {
    return this.state === PlayerState.Playing && this.transport ? this.transport.soundLevel().catch(() => 0) : Promise.resolve(0);
  }

  /** The stream was (re)announced in the room: a waiting player asks again now. */
  streamAppeared(): void {
    if (this.waitingForStream) this.request();
  }

  /** The server ended the play it set up for `attempt`: the stream is gone (1004002) or is being re-published. */
  remoteStopped(attempt: number, code: number): void {
    if (this.state === PlayerState.NoPlay || attempt !== this.attempt) return;
    this.release();
    if (code === ErrorCode.StreamNotFound) this.waitForStream(code);
    else this.retryLater(ErrorCode.PlayInterrupted);
  }

  /** Back in the room after a reconnect: play again unless the server still has our play. */
  resumed(playing: string[]): void {
    if (this.state === PlayerState.NoPlay) return;
    if (this.state === PlayerState.Playing && playing.includes(this.streamID)) return;
    if (this.waitingForStream) return this.request(); // still waiting for the stream, not interrupted
    this.release();
    this.transition(PlayerState.PlayRequesting, ErrorCode.PlayInterrupted);
    this.request();
  }

  stop(): void {
    if (this.state === PlayerState.NoPlay) return;
    this.release();
    void this.ctx.loggedInSignalling()?.request('unplay', { streamID: this.streamID });
    this.end(0);
  }

  /** The room is gone: stop without telling the server. */
  abandon(errorCode: number): void {
    if (this.state === PlayerState.NoPlay) return;
    this.release();
    this.end(errorCode);
  }

  private request(): void {
    clearTimeout(this.retryTimer);
    this.waitingForStream = false;
    const signalling = this.ctx.loggedInSignalling();
    if (!signalling) return; // reconnecting: resumed() will ask again
    const attempt = ++this.attempt;
    this.firstFrameSeen = false;
    const transport = this.ctx.media.createPlayTransport({
      streamID: this.streamID,
      canvas: this.canvas,
      onFirstVideoFrame: () => {
        if (attempt !== this.attempt || this.firstFrameSeen) return;
        this.firstFrameSeen = true;
        this.ctx.hub.emit('playerRecvVideoFirstFrame', this.streamID);
      },
      onViewSize: (viewWidth, viewHeight) => {
        if (attempt === this.attempt) this.updateVideo({ ...this.video, viewWidth, viewHeight });
      },
      onVideoSize: (width, height) => {
        if (attempt !== this.attempt || (width === this.videoSize.width && height === this.videoSize.height)) return;
        this.videoSize = { width, height };
        this.ctx.hub.emit('playerVideoSizeChanged', this.streamID, width, height);
      },
    });
    this.transport = transport;
    let requested: PlayVideo | undefined;
    void negotiate(
      transport,
      (sdp) => signalling.request('play', { streamID: this.streamID, sdp, attempt, video: (requested = this.video) }),
      this.ctx.timeouts.mediaConnectTimeoutMs,
      ErrorCode.PlayInterrupted,
    ).then((result) => {
      if (attempt !== this.attempt) return;
      if (result.code === 0) {
        this.retries = 0;
        this.transition(PlayerState.Playing, 0);
        this.quality = new QualityMonitor(
          () => transport.stats(),
          this.ctx.timeouts.qualityIntervalMs,
          (from, to) => this.ctx.hub.emit('playerQualityUpdate', this.streamID, playQuality(from, to)),
        );
        // The view may have been sized while the play was set up.
        if (this.video !== requested) this.sendVideo();
        transport.onStateChange((state) => {
          if (state === 'failed' && attempt === this.attempt) {
            this.release();
            this.retryLater(ErrorCode.PlayInterrupted);
          }
        });
        return;
      }
      this.release();
      if (result.code === ErrorCode.StreamNotFound) return this.waitForStream(result.code);
      if (RETRYABLE.has(result.code)) return this.retryLater(ErrorCode.PlayInterrupted);
      void signalling.request('unplay', { streamID: this.streamID });
      this.end(result.code, 'message' in result ? result.message : '');
    });
  }

  /** Stays in PlayRequesting; asks again when the stream is announced, and now and then anyway. */
  private waitForStream(code: number): void {
    this.retryLater(code);
    this.waitingForStream = true;
  }

  private retryLater(code: number): void {
    this.transition(PlayerState.PlayRequesting, code);
    const delay = this.backoff.nextDelay(++this.retries, 0)!;
    this.retryTimer = setTimeout(() => this.request(), delay);
  }

  private release(): void {
    this.attempt++;
    this.quality?.close();
    this.quality = undefined;
    clearTimeout(this.retryTimer);
    this.waitingForStream = false;
    this.transport?.close();
    this.transport = undefined;
  }

  private end(code: number, message = ''): void {
    this.transition(PlayerState.NoPlay, code, message);
    this.onEnded(this);
  }

  /** Reports a change of state, or of error code within the same state; repeats are not reported. */
  private transition(state: PlayerState, errorCode: number, message = ''): void {
    if (state === this.state && errorCode === this.lastCode) return;
    this.state = state;
    this.lastCode = errorCode;
    this.ctx.hub.emit('playerStateUpdate', this.streamID, state, errorCode, message ? JSON.stringify({ message }) : '');
  }
}
