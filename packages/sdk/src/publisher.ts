/**
 * One publish channel's state machine: NoPublish → PublishRequesting → Publishing, and back to
 * NoPublish on stop, a refusal, logout or kick-out. An interrupted publish (media stalled or
 * connection lost, signalling broken) goes back to PublishRequesting with 1003020 while its media
 * link recovers (mediaLink.ts), until it publishes again or the retry window ends it with 1003021.
 */
import { carriesMedia, ErrorCode, PublisherState, validateStreamID } from '@parley/protocol';
import type { EngineContext, RoomLink } from './context.js';
import type { VideoCodec } from './platform.js';
import { MediaLink, type MediaNotice } from './mediaLink.js';
import type { SignallingClient } from './signalling.js';
import type { Devices } from './captureControls.js';
import { publishQuality } from './quality.js';

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
  /** MultiRoom mode: the room to publish in (the first room entered by default). */
  roomID?: string;
}

export class Publisher {
  private state = PublisherState.NoPublish;
  private lastCode = 0;
  private currentStreamID: string | undefined;
  private config: PublishConfig = {};
  /** The room of the stream being published, while there is one. */
  private currentRoom: RoomLink | undefined;
  private readonly link: MediaLink;

  constructor(
    private readonly ctx: EngineContext,
    readonly channel: number,
    /** What players are to be told of the channel's camera and microphone. */
    devices: () => Devices,
  ) {
    this.link = new MediaLink(
      ctx,
      {
        role: 'publish',
        streamID: () => this.currentStreamID!,
        signalling: () => this.signalling,
        createTransport: () =>
          ctx.media.createPublishTransport(
            channel,
            { videoCodec: this.config.videoCodec ?? 'VP8', simulcastLayers: this.config.simulcastLayers },
            this.currentRoom?.iceServers ?? [],
          ),
        exchange: (signalling, sdp) =>
          signalling.request('publish', {
            streamID: this.currentStreamID!,
            sdp,
            extraInfo: this.config.extraInfo ?? '',
            devices: devices(),
          }),
        mediaDue: () => carriesMedia(devices()),
        flowing: () => this.transition(PublisherState.Publishing, 0),
        interrupted: () => this.transition(PublisherState.PublishRequesting, ErrorCode.PublishInterrupted),
        failed: (code, message) => this.fail(code, message),
        quality: (from, to) => ctx.hub.emit('publisherQualityUpdate', this.currentStreamID!, publishQuality(from, to)),
      },
      { interruptedCode: ErrorCode.PublishInterrupted, giveUp: { afterMs: ctx.retryWindowMs, code: ErrorCode.PublishRetryTimeout } },
    );
  }

  /** The stream being published (or being set up), if any. */
  get streamID(): string | undefined {
    return this.currentStreamID;
  }

  /** The room it is published in, if any. */
  get room(): RoomLink | undefined {
    return this.currentRoom;
  }

  private get signalling(): SignallingClient | null {
    return this.currentRoom?.activeSignalling ?? null;
  }

  /** Publishes `streamID` in `room` (undefined: not in the room the config names, or in none). */
  start(streamID: string, config: PublishConfig, room: RoomLink | undefined): void {
    if (this.state !== PublisherState.NoPublish) {
      // Re-publishing the same stream is a no-op; another one on a busy channel is refused.
      if (streamID !== this.currentStreamID) this.report(streamID, PublisherState.NoPublish, ErrorCode.ChannelAlreadyPublishing);
      return;
    }
    const invalid = validateStreamID(streamID);
    if (invalid) return this.report(streamID, PublisherState.NoPublish, invalid);
    if (!room?.activeSignalling) return this.report(streamID, PublisherState.NoPublish, ErrorCode.NotLoggedIn);
    this.currentStreamID = streamID;
    this.currentRoom = room;
    this.config = config;
    this.transition(PublisherState.PublishRequesting, 0);
    this.link.connect();
  }

  stop(): void {
    if (this.state === PublisherState.NoPublish) return;
    const streamID = this.currentStreamID!;
    this.link.stop();
    void this.signalling?.request('unpublish', { streamID });
    this.end(0, streamID);
  }

  /** New extra info for the stream: sent now by the caller, and used if the stream is published again. */
  setExtraInfo(extraInfo: string): void {
    this.config = { ...this.config, extraInfo };
  }

  /** The sound level of what is sent now; 0 when not publishing. */
  soundLevel(): Promise<number> {
    const transport = this.link.transport;
    return this.state === PublisherState.Publishing && transport ? transport.soundLevel().catch(() => 0) : Promise.resolve(0);
  }

  /** The server says which simulcast layers some player uses (smallest first); the others pause. */
  setActiveLayers(streamID: string, active: boolean[]): void {
    if (streamID === this.currentStreamID) this.link.transport?.setActiveLayers?.(active);
  }

  /** The server says how much each layer's players can take (bits per second, 0: no limit). */
  setLayerBitrates(streamID: string, maxBitrates: number[]): void {
    if (streamID === this.currentStreamID) this.link.transport?.setLayerBitrates?.(maxBitrates);
  }

  /** The server receives nothing from our transport for `streamID`. */
  mediaNotice(streamID: string, notice: MediaNotice): void {
    if (streamID === this.currentStreamID) this.link.serverNotice(notice);
  }

  /** The room is gone (logout, kick-out): stop without telling the server. */
  abandon(errorCode: number): void {
    if (this.state === PublisherState.NoPublish) return;
    const streamID = this.currentStreamID!;
    this.link.stop();
    this.end(errorCode, streamID);
  }

  /**
   * Back in the room after a reconnect: publish again unless the server still has our stream and
   * its transport is kept (an ICE restart under way goes on: its players notice nothing).
   */
  resumed(publishing: string[]): void {
    if (this.state === PublisherState.NoPublish) return;
    if (publishing.includes(this.currentStreamID!) && this.link.resume()) return;
    this.transition(PublisherState.PublishRequesting, ErrorCode.PublishInterrupted);
    this.link.connect();
  }

  private fail(code: number, message: string): void {
    const streamID = this.currentStreamID!;
    this.link.stop();
    // Let the server drop whatever it still holds for this stream.
    void this.signalling?.request('unpublish', { streamID });
    this.end(code, streamID, message);
  }

  private end(code: number, streamID: string, message = ''): void {
    this.currentStreamID = undefined;
    this.currentRoom = undefined;
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
