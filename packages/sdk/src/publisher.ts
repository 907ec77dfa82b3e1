/**
 * One publish channel's state machine: NoPublish → PublishRequesting → Publishing, and back to
 * NoPublish on stop, a refusal, logout or kick-out. An interrupted publish (media connection lost,
 * signalling broken) goes back to PublishRequesting with 1003020 and is retried with backoff until
 * it publishes again, or the retry window ends it with 1003021.
 */
import { ErrorCode, PublisherState, validateStreamID } from '@parley/protocol';
import type { EngineContext } from './context.js';
import type { MediaTransport, VideoCodec } from './platform.js';
import { negotiate } from './negotiation.js';
import { ReconnectPolicy } from './reconnectPolicy.js';
import { publishQuality, QualityMonitor } from './quality.js';

export interface PublishConfig {
  /** Shown to players in onRoomStreamUpdate; < 1024 bytes. */
  extraInfo?: string;
  /** Video codec to send; VP8 by default. H264 needs a browser that encodes it. */
  videoCodec?: VideoCodec;
  /**
   * Encoded custom capture (Node.js): how many simulcast layers the app sends (1–3); each frame
   * then names its `layer`, 0 the smallest. Browsers pick layers from the capture size.
   */
  simulcastLayers?: number;
}

/** Failures that a new attempt may fix; anything else is a refusal. */
const RETRYABLE = new Set<number>([ErrorCode.PublishInterrupted, ErrorCode.Disconnected, ErrorCode.ConnectionBroken]);

export class Publisher {
  private state = PublisherState.NoPublish;
  private lastCode = 0;
  private currentStreamID: string | undefined;
  private config: PublishConfig = {};
  private transport: MediaTransport | undefined;
  /** Reports the quality while publishing. */
  private quality: QualityMonitor | undefined;
  /** Bumped on every attempt and stop so that an abandoned attempt's results are ignored. */
  private attempt = 0;
  private retry: { policy: ReconnectPolicy; since: number; count: number; timer?: ReturnType<typeof setTimeout> } | undefined;

  constructor(
    private readonly ctx: EngineContext,
    readonly channel: number,
  ) {}

  /** The stream being published (or being set up), if any. */
  get streamID(): string | undefined {
    return this.currentStreamID;
  }

  start(streamID: string, config: PublishConfig): void {
    if (this.state !== PublisherState.NoPublish) {
      // Re-publishing the same stream is a no-op; another one on a busy channel is refused.
      if (streamID !== this.currentStreamID) this.report(streamID, PublisherState.NoPublish, ErrorCode.ChannelAlreadyPublishing);
      return;
    }
    const invalid = validateStreamID(streamID);
    if (invalid) return this.report(streamID, PublisherState.NoPublish, invalid);
    if (!this.ctx.loggedInSignalling()) return this.report(streamID, PublisherState.NoPublish, ErrorCode.NotLoggedIn);
    this.currentStreamID = streamID;
    this.config = config;
    this.transition(PublisherState.PublishRequesting, 0);
    this.publish();
  }

  stop(): void {
    if (this.state === PublisherState.NoPublish) return;
    const streamID = this.currentStreamID!;
    this.release();
    void this.ctx.loggedInSignalling()?.request('unpublish', { streamID });
    this.end(0, streamID);
  }

  /** New extra info for the stream: sent now by the caller, and used if the stream is published again. */
  setExtraInfo(extraInfo: string): void {
    this.config = { ...this.config, extraInfo };
  }

  /** The sound level of what is sent now; 0 when not publishing. */
  soundLevel(): Promise<number> {
    return this.state === PublisherState.Publishing && this.transport ? this.transport.soundLevel().catch(() => 0) : Promise.resolve(0);
  }

  /** The server says which simulcast layers some player uses (smallest first); the others pause. */
  setActiveLayers(streamID: string, active: boolean[]): void {
    if (streamID === this.currentStreamID) this.transport?.setActiveLayers?.(active);
  }

  /** The room is gone (logout, kick-out): stop without telling the server. */
  abandon(errorCode: number): void {
    if (this.state === PublisherState.NoPublish) return;
    const streamID = this.currentStreamID!;
    this.release();
    this.end(errorCode, streamID);
  }

  /** Back in the room after a reconnect: publish again unless the server still has our stream. */
  resumed(publishing: string[]): void {
    if (this.state === PublisherState.NoPublish) return;
    const intact = this.state === PublisherState.Publishing && publishing.includes(this.currentStreamID!);
    if (!intact) this.interrupt(true);
  }

  private publish(): void {
    const signalling = this.ctx.loggedInSignalling();
    if (!signalling) return; // reconnecting: resumed() will call again
    const transport = this.ctx.media.createPublishTransport(this.channel, {
      videoCodec: this.config.videoCodec ?? 'VP8',
      simulcastLayers: this.config.simulcastLayers,
    });
    if (!transport) return this.fail(ErrorCode.UnsupportedRequest, '');
    const attempt = ++this.attempt;
    const streamID = this.currentStreamID!;
    this.transport = transport;
    void negotiate(
      transport,
      (sdp) => signalling.request('publish', { streamID, sdp, extraInfo: this.config.extraInfo ?? '' }),
      this.ctx.timeouts.mediaConnectTimeoutMs,
      ErrorCode.PublishInterrupted,
    ).then((result) => {
      if (attempt !== this.attempt) return;
      if (result.code !== 0) {
        if (RETRYABLE.has(result.code)) return this.interrupt(false);
        return this.fail(result.code, 'message' in result ? result.message : '');
      }
      this.retry = undefined;
      this.transition(PublisherState.Publishing, 0);
      this.quality = new QualityMonitor(
        () => transport.stats(),
        this.ctx.timeouts.qualityIntervalMs,
        (from, to) => this.ctx.hub.emit('publisherQualityUpdate', streamID, publishQuality(from, to)),
      );
      transport.onStateChange((state) => {
        if (state === 'failed' && attempt === this.attempt) this.interrupt(false);
      });
    });
  }

  /** Media or signalling broke: back to PublishRequesting (1003020) and try again after a backoff. */
  private interrupt(now: boolean): void {
    this.closeTransport();
    this.transition(PublisherState.PublishRequesting, ErrorCode.PublishInterrupted);
    this.retry ??= { policy: new ReconnectPolicy({ windowMs: this.ctx.retryWindowMs }), since: Date.now(), count: 0 };
    clearTimeout(this.retry.timer);
    const delay = now ? 0 : this.retry.policy.nextDelay(this.retry.count++, Date.now() - this.retry.since);
    if (delay === null) return this.fail(ErrorCode.PublishRetryTimeout, 'publish retry window exceeded');
    this.retry.timer = setTimeout(() => this.publish(), delay);
  }

  private fail(code: number, message: string): void {
    const streamID = this.currentStreamID!;
    this.release();
    // Let the server drop whatever it still holds for this stream.
    void this.ctx.loggedInSignalling()?.request('unpublish', { streamID });
    this.end(code, streamID, message);
  }

  private closeTransport(): void {
    this.attempt++;
    this.quality?.close();
    this.quality = undefined;
    this.transport?.close();
    this.transport = undefined;
  }

  private release(): void {
    this.closeTransport();
    clearTimeout(this.retry?.timer);
    this.retry = undefined;
  }

  private end(code: number, streamID: string, message = ''): void {
    this.currentStreamID = undefined;
    this.transition(PublisherState.NoPublish, code, streamID, message);
  }

  /** Reports a change of state, or of error code within the same state; repeats are not reported. */
  private transition(state: PublisherState, errorCode: number, streamID = this.currentStreamID!, message = ''): void {
    if (state === this.state && errorCode === this.lastCode) return;
    this.state = state;
    this.lastCode = errorCode;
    this.report(streamID, state, errorCode, message);
  }

  private report(streamID: string, state: PublisherState, errorCode: number, message = ''): void {
    this.ctx.hub.emit('publisherStateUpdate', streamID, state, errorCode, message ? JSON.stringify({ message }) : '');
  }
}
