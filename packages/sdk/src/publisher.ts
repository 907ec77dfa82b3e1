/**
 * One publish channel's state machine: NoPublish → PublishRequesting → Publishing, and back to
 * NoPublish on stop, failure or logout. Every transition is reported once through
 * onPublisherStateUpdate.
 */
import { ErrorCode, PublisherState, validateStreamID } from '@parley/protocol';
import type { EngineContext } from './context.js';
import type { MediaTransport, VideoCodec } from './platform.js';
import { negotiate } from './negotiation.js';

export interface PublishConfig {
  /** Shown to players in onRoomStreamUpdate; < 1024 bytes. */
  extraInfo?: string;
  /** Video codec to send; VP8 by default. H264 needs a browser that encodes it. */
  videoCodec?: VideoCodec;
}

export class Publisher {
  private state = PublisherState.NoPublish;
  private streamID: string | undefined;
  private transport: MediaTransport | undefined;
  /** Bumped on every start/stop so that an abandoned attempt's results are ignored. */
  private attempt = 0;

  constructor(
    private readonly ctx: EngineContext,
    readonly channel: number,
  ) {}

  start(streamID: string, config: PublishConfig): void {
    if (this.state !== PublisherState.NoPublish) {
      // Re-publishing the same stream is a no-op; another one on a busy channel is refused.
      if (streamID !== this.streamID) this.report(streamID, PublisherState.NoPublish, ErrorCode.ChannelAlreadyPublishing);
      return;
    }
    const invalid = validateStreamID(streamID);
    if (invalid) return this.report(streamID, PublisherState.NoPublish, invalid);
    const signalling = this.ctx.loggedInSignalling();
    if (!signalling) return this.report(streamID, PublisherState.NoPublish, ErrorCode.NotLoggedIn);

    const transport = this.ctx.media.createPublishTransport(this.channel, config.videoCodec ?? 'VP8');
    if (!transport) return this.report(streamID, PublisherState.NoPublish, ErrorCode.UnsupportedRequest);
    const attempt = ++this.attempt;
    this.streamID = streamID;
    this.transport = transport;
    this.transition(PublisherState.PublishRequesting, 0);
    const extraInfo = config.extraInfo ?? '';
    void negotiate(
      transport,
      (sdp) => signalling.request('publish', { streamID, sdp, extraInfo }),
      this.ctx.timeouts.mediaConnectTimeoutMs,
      ErrorCode.PublishInterrupted,
    ).then((result) => {
      if (attempt !== this.attempt) return;
      if (result.code !== 0) return this.fail(result.code, 'message' in result ? result.message : '');
      this.transition(PublisherState.Publishing, 0);
      transport.onStateChange((state) => {
        if (state === 'failed' && attempt === this.attempt) this.fail(ErrorCode.PublishInterrupted, 'media connection lost');
      });
    });
  }

  stop(): void {
    if (this.state === PublisherState.NoPublish) return;
    const streamID = this.streamID!;
    this.release();
    void this.ctx.loggedInSignalling()?.request('unpublish', { streamID });
    this.transition(PublisherState.NoPublish, 0, streamID);
  }

  /** The room is gone (logout, kick-out): stop without telling the server. */
  abandon(errorCode: number): void {
    if (this.state === PublisherState.NoPublish) return;
    const streamID = this.streamID!;
    this.release();
    this.transition(PublisherState.NoPublish, errorCode, streamID);
  }

  private fail(code: number, message: string): void {
    const streamID = this.streamID!;
    this.release();
    // Let the server drop whatever it reserved for this attempt.
    void this.ctx.loggedInSignalling()?.request('unpublish', { streamID });
    this.transition(PublisherState.NoPublish, code, streamID, message);
  }

  private release(): void {
    this.attempt++;
    this.transport?.close();
    this.transport = undefined;
    this.streamID = undefined;
  }

  private transition(state: PublisherState, errorCode: number, streamID = this.streamID!, message = ''): void {
    this.state = state;
    this.report(streamID, state, errorCode, message);
  }

  private report(streamID: string, state: PublisherState, errorCode: number, message = ''): void {
    this.ctx.hub.emit('publisherStateUpdate', streamID, state, errorCode, message ? JSON.stringify({ message }) : '');
  }
}
