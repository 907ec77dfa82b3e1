/**
 * One played stream's state machine: NoPlay → PlayRequesting → Playing. A stream that does not
 * exist (yet), or stops, keeps the player in PlayRequesting (1004002) until it appears again or
 * stopPlayingStream is called; an interrupted play (media stalled or broke, signalling broke)
 * goes back to PlayRequesting (1004020) while its media link recovers (mediaLink.ts). Refusals
 * end in NoPlay.
 */
import {
  carriesMedia,
  ErrorCode,
  PlayerState,
  RemoteDeviceState,
  VideoStreamType,
  type PlayMuted,
  type PlayVideo,
  type StreamDevices,
} from '@parley/protocol';
import type { EngineContext, RoomLink } from './context.js';
import type { Canvas, MediaTransport, PlaySink } from './platform.js';
import { MediaLink, type MediaNotice } from './mediaLink.js';
import { playQuality } from './quality.js';

export class Player {
  private state = PlayerState.NoPlay;
  private lastCode = 0;
  private readonly link: MediaLink;
  private waitingForStream = false;
  private firstFrameSeen = false;
  /** What the server is asked for: the layer type and the view's size (which caps it in automatic mode). */
  private video: PlayVideo;
  /** What the latest play request asked for. */
  private requestedVideo: PlayVideo | undefined;
  /** setPlayVolume: 0–200 (%). */
  private volume = 100;
  /** What the app does not want to receive (mutePlayStreamVideo/Audio). */
  private muted: PlayMuted = { video: false, audio: false };
  /** The camera and microphone states last reported for this play, undefined until Playing. */
  private reportedDevices: StreamDevices | undefined;
  private videoSize = { width: 0, height: 0 };

  constructor(
    private readonly ctx: EngineContext,
    /** The room whose stream it plays. */
    readonly room: RoomLink,
    readonly streamID: string,
    private canvas: Canvas | undefined,
    /** Called when the player is back in NoPlay, so the engine can forget it. */
    private readonly onEnded: (player: Player) => void,
    videoType: VideoStreamType = VideoStreamType.Default,
  ) {
    this.video = { type: videoType, viewWidth: 0, viewHeight: 0 };
    this.link = new MediaLink(
      ctx,
      {
        role: 'play',
        streamID: () => streamID,
        signalling: () => room.activeSignalling,
        createTransport: (attempt) => this.createTransport(attempt),
        exchange: (signalling, sdp, attempt) =>
          signalling.request('play', { streamID, sdp, attempt, video: (this.requestedVideo = this.video), muted: this.muted }),
        mediaDue: () => carriesMedia(room.devicesOf(streamID), this.muted),
        flowing: () => {
          this.transition(PlayerState.Playing, 0);
          this.reportDevices(room.devicesOf(streamID));
          // The view may have been sized while the play was set up.
          if (this.video !== this.requestedVideo) this.sendVideo();
        },
        interrupted: () => this.transition(PlayerState.PlayRequesting, ErrorCode.PlayInterrupted),
        failed: (code, message) => {
          if (code === ErrorCode.StreamNotFound) return this.waitForStream(code);
          void this.room.activeSignalling?.request('unplay', { streamID });
          this.end(code, message);
        },
        quality: (from, to) => ctx.hub.emit('playerQualityUpdate', streamID, playQuality(from, to)),
      },
      // Players wait as long as the app wants them to: the backoff only spaces the attempts.
      { interruptedCode: ErrorCode.PlayInterrupted, maxRetryDelayMs: ctx.timeouts.playRetryIntervalMs },
    );
  }

  start(): void {
    this.transition(PlayerState.PlayRequesting, 0);
    this.link.connect();
  }

  updateCanvas(canvas: Canvas | undefined): void {
    if (canvas === this.canvas) return;
    this.canvas = canvas;
    if (this.state !== PlayerState.NoPlay) this.link.connect();
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
    void this.room.activeSignalling?.request('playVideo', { streamID: this.streamID, video: this.video });
  }

  /** mutePlayStreamVideo / mutePlayStreamAudio: the server stops forwarding it (now if playing, else from the play). */
  setMuted(kind: keyof PlayMuted, mute: boolean): void {
    if (this.muted[kind] === mute) return;
    this.muted = { ...this.muted, [kind]: mute };
    if (this.state === PlayerState.Playing)
      void this.room.activeSignalling?.request('mutePlay', { streamID: this.streamID, muted: this.muted });
  }

  setVolume(volume: number): void {
    this.volume = volume;
    this.link.transport?.applyVolume?.();
  }

  /** The stream's camera or microphone changed: reported while playing. */
  devicesChanged(devices: StreamDevices): void {
    if (this.reportedDevices) this.reportDevices(devices);
  }

  private reportDevices(devices: StreamDevices): void {
    const before = this.reportedDevices;
    this.reportedDevices = devices;
    if (before?.camera !== devices.camera) this.ctx.hub.emit('remoteCameraStateUpdate', this.streamID, devices.camera as RemoteDeviceState);
    if (before?.microphone !== devices.microphone) {
      this.ctx.hub.emit('remoteMicStateUpdate', this.streamID, devices.microphone as RemoteDeviceState);
    }
    if (before?.speaker !== devices.speaker)
      this.ctx.hub.emit('remoteSpeakerStateUpdate', this.streamID, devices.speaker as RemoteDeviceState);
  }

  /** The sound level of what is played now; 0 when not playing. */
  soundLevel(): Promise<number> {
    const transport = this.link.transport;
    return this.state === PlayerState.Playing && transport ? transport.soundLevel().catch(() => 0) : Promise.resolve(0);
  }

  /** The stream was (re)announced in the room: a waiting player asks again now. */
  streamAppeared(): void {
    if (this.waitingForStream) this.link.connect();
  }

  /** The server ended the play it set up for `attempt`: the stream is gone (1004002) or is being re-published. */
  remoteStopped(attempt: number, code: number): void {
    if (this.state === PlayerState.NoPlay || attempt !== this.link.attempt) return;
    if (code === ErrorCode.StreamNotFound) return this.waitForStream(code);
    this.transition(PlayerState.PlayRequesting, ErrorCode.PlayInterrupted);
    this.link.retryLater();
  }

  /** The server receives nothing from our transport (its RTCP). */
  mediaNotice(notice: MediaNotice): void {
    this.link.serverNotice(notice);
  }

  /** Back in the room after a reconnect: play again unless the server still has our play and its transport is kept. */
  resumed(playing: string[]): void {
    if (this.state === PlayerState.NoPlay) return;
    if (playing.includes(this.streamID) && this.link.resume()) return;
    // Still waiting for the stream is not an interruption.
    if (!this.waitingForStream) this.transition(PlayerState.PlayRequesting, ErrorCode.PlayInterrupted);
    this.link.connect();
  }

  stop(): void {
    if (this.state === PlayerState.NoPlay) return;
    this.link.stop();
    void this.room.activeSignalling?.request('unplay', { streamID: this.streamID });
    this.end(0);
  }

  /** The room is gone: stop without telling the server. */
  abandon(errorCode: number): void {
    if (this.state === PlayerState.NoPlay) return;
    this.link.stop();
    this.end(errorCode);
  }

  private createTransport(attempt: number): MediaTransport {
    this.waitingForStream = false;
    this.firstFrameSeen = false;
    const sink: PlaySink = {
      streamID: this.streamID,
      canvas: this.canvas,
      onFirstVideoFrame: () => {
        if (attempt !== this.link.attempt || this.firstFrameSeen) return;
        this.firstFrameSeen = true;
        this.ctx.hub.emit('playerRecvVideoFirstFrame', this.streamID);
      },
      onViewSize: (viewWidth, viewHeight) => {
        if (attempt === this.link.attempt) this.updateVideo({ ...this.video, viewWidth, viewHeight });
      },
      volume: () => this.volume,
      onVideoSize: (width, height) => {
        if (attempt !== this.link.attempt || (width === this.videoSize.width && height === this.videoSize.height)) return;
        this.videoSize = { width, height };
        this.ctx.hub.emit('playerVideoSizeChanged', this.streamID, width, height);
      },
    };
    return this.ctx.media.createPlayTransport(sink, this.room.iceServers);
  }

  /** Stays in PlayRequesting; asks again when the stream is announced, and now and then anyway. */
  private waitForStream(code: number): void {
    this.transition(PlayerState.PlayRequesting, code);
    this.link.retryLater();
    this.waitingForStream = true;
  }

  private end(code: number, message = ''): void {
    this.reportedDevices = undefined;
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
