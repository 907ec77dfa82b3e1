/**
 * One played stream's state machine: NoPlay → PlayRequesting → Playing. A stream that does not
 * exist (yet), or stops, keeps the player in PlayRequesting (1004002) until it appears again or
 * stopPlayingStream is called; other failures end in NoPlay.
 */
import { ErrorCode, PlayerState } from '@parley/protocol';
import type { EngineContext } from './context.js';
import type { Canvas, MediaTransport } from './platform.js';
import { negotiate } from './negotiation.js';

export class Player {
  private state = PlayerState.NoPlay;
  private lastCode = 0;
  private transport: MediaTransport | undefined;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private waitingForStream = false;
  private firstFrameSeen = false;

  constructor(
    private readonly ctx: EngineContext,
    readonly streamID: string,
    private canvas: Canvas | undefined,
    /** Called when the player is back in NoPlay, so the engine can forget it. */
    private readonly onEnded: (player: Player) => void,
  ) {}

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

  /** The stream was (re)announced in the room: a waiting player asks again now. */
  streamAppeared(): void {
    if (this.waitingForStream) this.request();
  }

  /** The server ended the play it set up for `attempt` (the stream stopped). */
  remoteStopped(attempt: number, code: number): void {
    if (this.state === PlayerState.NoPlay || attempt !== this.attempt) return;
    this.release();
    this.waitForStream(code);
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
    if (!signalling) return this.abandon(ErrorCode.NotLoggedIn);
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
    });
    this.transport = transport;
    void negotiate(
      transport,
      (sdp) => signalling.request('play', { streamID: this.streamID, sdp, attempt }),
      this.ctx.timeouts.mediaConnectTimeoutMs,
      ErrorCode.PlayInterrupted,
    ).then((result) => {
      if (attempt !== this.attempt) return;
      if (result.code === ErrorCode.StreamNotFound) {
        this.release();
        return this.waitForStream(result.code);
      }
      if (result.code !== 0) {
        this.release();
        void signalling.request('unplay', { streamID: this.streamID });
        return this.end(result.code, 'message' in result ? result.message : '');
      }
      this.transition(PlayerState.Playing, 0);
      transport.onStateChange((state) => {
        if (state === 'failed' && attempt === this.attempt) {
          this.release();
          this.transition(PlayerState.PlayRequesting, ErrorCode.PlayInterrupted);
          this.request();
        }
      });
    });
  }

  private waitForStream(code: number): void {
    this.transition(PlayerState.PlayRequesting, code);
    this.waitingForStream = true;
    this.retryTimer = setTimeout(() => this.request(), this.ctx.timeouts.playRetryIntervalMs);
  }

  private release(): void {
    this.attempt++;
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
