/**
 * ParleyEngine: the public API. It validates arguments, then delegates to the room, publisher
 * and player state machines; runtime failures become error codes in callbacks, never throws.
 */
import {
  ErrorCode,
  PlayerState,
  PublishChannel,
  AudioConfigPreset,
  AudioDeviceType,
  RoomMode,
  RoomStateChangedReason,
  Scenario,
  ScreenCaptureExceptionType,
  VideoBufferType,
  VideoConfigPreset,
  VideoMirrorMode,
  VideoStreamType,
  validateMessage,
  validateRoomExtraInfo,
  validateRoomID,
  validateStreamExtraInfo,
  validateStreamID,
  validateUserID,
  validateUserName,
  isCdnUrl,
  type MixerTask,
  type User,
} from '@parley/protocol';
import { EventHub, type ParleyEventHandler, type ParleyEventName, type ParleyEvents } from './events.js';
import { DEFAULT_TIMEOUTS, type EngineContext, type Timeouts } from './context.js';
import type {
  AudioProcessing,
  Canvas,
  CustomAudioRenderHandler,
  CustomVideoRenderHandler,
  EncodedAudioFrameParams,
  EncodedVideoFrameParams,
  MediaBackend,
  Platform,
} from './platform.js';
import { Publisher, type PublishConfig } from './publisher.js';
import { CaptureControls } from './captureControls.js';
import { VIDEO_CONFIG_PRESETS, videoConfigOf, type VideoConfig } from './videoConfig.js';
import { AUDIO_CONFIG_PRESETS, audioConfigOf, type AudioConfig } from './audioConfig.js';
import { AUDIO_DEVICE_TYPE, type DeviceInfo } from './deviceWatch.js';
import { Player } from './player.js';
import { Room, type RoomConfig, type RoomCredentials } from './room.js';
import { ServerList } from './serverList.js';

export interface EngineProfile {
  appID: number;
  /** 64 hex characters; omit and pass a token in RoomConfig instead. */
  appSign?: string;
  scenario?: Scenario;
  /**
   * The server's signalling URL, `ws://host:port/ws` or `wss://…`; or the nodes of a cluster, in
   * the order to try them: a failed connect or a lost connection resumes the session at the next one.
   */
  server: string | string[];
  /** How long the SDK keeps retrying a broken connection before ReconnectFailed. */
  reconnectWindowMs?: number;
  /** Overrides of internal timeouts, mostly for tests. */
  timeouts?: Partial<Timeouts>;
}

export interface PlayerConfig {
  /** MultiRoom mode: the room the stream is in. */
  roomID?: string;
}

export interface CustomVideoCaptureConfig {
  bufferType: VideoBufferType;
}

/** 1000002 when the engine is not in the room a call names. */
const notLoggedIn = (room: Room | undefined): number => (room ? 0 : ErrorCode.NotLoggedIn);

function requireType(value: unknown, type: 'string' | 'number' | 'boolean' | 'object', name: string): void {
  if (typeof value !== type || value === null) throw new TypeError(`${name} must be a ${type}`);
}

/** How often startSoundLevelMonitor may report (the vendor's range). */
const SOUND_LEVEL_MIN_INTERVAL_MS = 100;
const SOUND_LEVEL_MAX_INTERVAL_MS = 3000;

export class ParleyEngine {
  private static platform: Platform | undefined;

  /** Set once by the platform entry point (browser or Node.js). */
  static usePlatform(platform: Platform): void {
    ParleyEngine.platform = platform;
  }

  static createEngine(profile: EngineProfile, handler: ParleyEventHandler | null = null): ParleyEngine {
    requireType(profile, 'object', 'profile');
    requireType(profile.appID, 'number', 'profile.appID');
    if (!Array.isArray(profile.server)) requireType(profile.server, 'string', 'profile.server');
    if (!ParleyEngine.platform) throw new Error('no platform: import from @parley/sdk, not its internals');
    return new ParleyEngine(ParleyEngine.platform, profile, handler);
  }

  static destroyEngine(engine: ParleyEngine, callback?: () => void): void {
    void engine.destroy().then(() => callback?.());
  }

  readonly scenario: Scenario;
  private readonly hub: EventHub;
  private readonly media: MediaBackend;
  private readonly credentials: RoomCredentials;
  private roomMode = RoomMode.SingleRoom;
  /** The rooms entered, by roomID in the order entered (one that ended stays until the next login); one unless MultiRoom. */
  private readonly rooms = new Map<string, Room>();
  private readonly publishers = new Map<number, Publisher>();
  private readonly players = new Map<string, Player>();
  private readonly controls = new CaptureControls();
  /** setVideoConfig per channel (the scenario's default until then). */
  private readonly videoConfigs = new Map<number, VideoConfig>();
  /** setAudioConfig per channel (StandardQuality until then). */
  private readonly audioConfigs = new Map<number, AudioConfig>();
  private readonly audioProcessing: AudioProcessing = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  /** setPlayStreamVideoType choices, kept for streams not played yet. */
  private readonly playVideoTypes = new Map<string, VideoStreamType>();
  private readonly context: EngineContext;
  private destroyed = false;
  private soundLevelTimer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    private readonly platform: Platform,
    profile: EngineProfile,
    handler: ParleyEventHandler | null,
  ) {
    this.scenario = profile.scenario ?? Scenario.Default;
    this.hub = new EventHub(handler);
    const timeouts = { ...DEFAULT_TIMEOUTS, ...profile.timeouts };
    this.media = platform.createMedia({
      scenario: this.scenario,
      keyFrameRequested: (channel, layer) => this.hub.emit('customVideoCaptureKeyFrameRequested', channel, layer),
      deviceChanged: ({ kind, updateType, device }) => {
        if (kind === 'videoinput') this.hub.emit('videoDeviceStateChanged', updateType, device);
        else this.hub.emit('audioDeviceStateChanged', updateType, AUDIO_DEVICE_TYPE[kind], device);
      },
    });
    this.credentials = {
      appID: profile.appID,
      appSign: profile.appSign,
      servers: new ServerList(Array.isArray(profile.server) ? profile.server : [profile.server]),
      reconnectWindowMs: profile.reconnectWindowMs ?? platform.defaultReconnectWindowMs,
    };
    this.context = { hub: this.hub, media: this.media, timeouts, retryWindowMs: this.credentials.reconnectWindowMs };
  }

  /** A room's state machine, telling the publishers and players in it what happens to it. */
  private createRoom(): Room {
    const publishersIn = (): Publisher[] => [...this.publishers.values()].filter((p) => p.room === room);
    const playersIn = (): Player[] => [...this.players.values()].filter((p) => p.room === room);
    const playerIn = (streamID: string): Player | undefined => playersIn().find((p) => p.streamID === streamID);
    const room: Room = new Room(
      this.platform,
      this.credentials,
      this.context.timeouts,
      this.hub,
      {
        streamAdded: (streamID) => playerIn(streamID)?.streamAppeared(),
        resumed: ({ publishing, playing }) => {
          for (const publisher of publishersIn()) publisher.resumed(publishing);
          for (const player of playersIn()) player.resumed(playing);
          // What the server still holds for us but we stopped while away.
          const signalling = room.activeSignalling;
          const ours = new Set(publishersIn().map((p) => p.streamID));
          for (const streamID of publishing) if (!ours.has(streamID)) void signalling?.request('unpublish', { streamID });
          for (const streamID of playing) if (!playerIn(streamID)) void signalling?.request('unplay', { streamID });
        },
        playStopped: (streamID, attempt, code) => playerIn(streamID)?.remoteStopped(attempt, code),
        publishStopped: (streamID, code) => {
          for (const publisher of publishersIn()) if (publisher.streamID === streamID) publisher.abandon(code);
        },
        publishLayers: (streamID, active) => {
          for (const publisher of publishersIn()) publisher.setActiveLayers(streamID, active);
        },
        publishBitrates: (streamID, maxBitrates) => {
          for (const publisher of publishersIn()) publisher.setLayerBitrates(streamID, maxBitrates);
        },
        streamDevicesChanged: (devices) => playerIn(devices.streamID)?.devicesChanged(devices),
        mediaNotice: (streamID, role, notice) => {
          if (role === 'play') playerIn(streamID)?.mediaNotice(notice);
          else for (const publisher of publishersIn()) publisher.mediaNotice(streamID, notice);
        },
        ended: (code) => {
          for (const publisher of publishersIn()) publisher.abandon(code);
          for (const player of playersIn()) player.abandon(code);
        },
      },
      this.roomMode === RoomMode.MultiRoom,
    );
    return room;
  }

  /** Room `roomID` while logging in, logged in or reconnecting. */
  private roomIn(roomID: string): Room | undefined {
    const room = this.rooms.get(roomID);
    return room?.isIn(roomID) ? room : undefined;
  }

  /** The first room entered that the engine is still in: where streams are published and played without a roomID. */
  private get mainRoom(): Room | undefined {
    return [...this.rooms.values()].find((room) => room.isIn(room.id));
  }

  /**
   * SingleRoom (the default): one room at a time. MultiRoom: loginRoom enters more rooms beside
   * the first, each with its own callbacks' roomID; publish and play configs name the room
   * (the first by default), and switchRoom is not available. Set it while in no room: 0, else
   * 1000093; 1000096 for an unknown mode.
   */
  setRoomMode(mode: RoomMode): number {
    if (mode !== RoomMode.SingleRoom && mode !== RoomMode.MultiRoom) return ErrorCode.InvalidParameter;
    if (this.mainRoom) return ErrorCode.UnsupportedRequest;
    this.roomMode = mode;
    return 0;
  }

  on<K extends ParleyEventName>(event: K, listener: (...args: ParleyEvents[K]) => void): this {
    this.hub.on(event, listener);
    return this;
  }

  off<K extends ParleyEventName>(event: K, listener?: (...args: ParleyEvents[K]) => void): this {
    this.hub.off(event, listener);
    return this;
  }

  setEventHandler(handler: ParleyEventHandler | null): void {
    this.hub.handler = handler;
  }

  loginRoom(roomID: string, user: User, config: RoomConfig = {}, callback?: (errorCode: number, extendedData: string) => void): void {
    requireType(roomID, 'string', 'roomID');
    requireType(user, 'object', 'user');
    requireType(user.userID, 'string', 'user.userID');
    const userName = user.userName ?? user.userID;
    requireType(userName, 'string', 'user.userName');
    const done = (code: number): void => callback?.(code, '');
    if (this.destroyed) return done(ErrorCode.Disconnected);
    const invalid = validateRoomID(roomID) || validateUserID(user.userID) || validateUserName(userName);
    if (invalid) {
      this.hub.emit('roomStateChanged', roomID, RoomStateChangedReason.LoginFailed, invalid, '');
      return done(invalid);
    }
    for (const [id, room] of this.rooms) if (room.idle) this.rooms.delete(id);
    if (this.rooms.has(roomID) || (this.roomMode === RoomMode.SingleRoom && this.rooms.size > 0)) return done(ErrorCode.RoomCountExceeded);
    const room = this.createRoom();
    this.rooms.set(roomID, room);
    void room.login(roomID, { userID: user.userID, userName }, config).then(done);
  }

  /**
   * Leaves `fromRoomID` and enters `toRoomID` as the same user with one call: the first room
   * reports Logout, the second Logining then Logined (or LoginFailed); publishing and playing stop
   * with the first. `config` (e.g. a token for the new room) replaces the first room's.
   */
  switchRoom(
    fromRoomID: string,
    toRoomID: string,
    config?: RoomConfig,
    callback?: (errorCode: number, extendedData: string) => void,
  ): void {
    requireType(fromRoomID, 'string', 'fromRoomID');
    requireType(toRoomID, 'string', 'toRoomID');
    if (this.roomMode === RoomMode.MultiRoom) return callback?.(ErrorCode.UnsupportedRequest, '');
    const room = this.roomIn(fromRoomID);
    const refused = validateRoomID(toRoomID) || notLoggedIn(room);
    if (refused) {
      this.hub.emit('roomStateChanged', toRoomID, RoomStateChangedReason.LoginFailed, refused, '');
      return callback?.(refused, '');
    }
    this.rooms.delete(fromRoomID);
    this.rooms.set(toRoomID, room!);
    void room!.switchTo(toRoomID, config).then((code) => callback?.(code, ''));
  }

  /** Replaces the token the room was entered with (see onRoomTokenWillExpire). */
  renewToken(roomID: string, token: string, callback?: (errorCode: number) => void): void {
    requireType(roomID, 'string', 'roomID');
    requireType(token, 'string', 'token');
    const room = this.rooms.get(roomID);
    if (!room) return callback?.(ErrorCode.NotLoggedIn);
    void room.renewToken(token).then((code) => callback?.(code));
  }

  /** Reliable and ordered, to everyone else in the room; sent after a reconnect if need be. */
  sendBroadcastMessage(roomID: string, message: string, callback?: (errorCode: number, messageID: number) => void): void {
    requireType(roomID, 'string', 'roomID');
    requireType(message, 'string', 'message');
    const room = this.roomIn(roomID);
    const refused = notLoggedIn(room) || validateMessage(message);
    if (refused) return callback?.(refused, 0);
    void room!.requests
      .send('broadcastMessage', { message })
      .then((reply) => callback?.(reply.code, 'data' in reply ? reply.data.messageID : 0));
  }

  /** Best effort: not sent while reconnecting, and may be skipped for receivers that are behind. */
  sendBarrageMessage(roomID: string, message: string, callback?: (errorCode: number, messageID: string) => void): void {
    requireType(roomID, 'string', 'roomID');
    requireType(message, 'string', 'message');
    const room = this.roomIn(roomID);
    const refused = notLoggedIn(room) || validateMessage(message);
    const signalling = room?.activeSignalling;
    if (refused || !signalling) return callback?.(refused || ErrorCode.Disconnected, '');
    void signalling
      .request('barrageMessage', { message })
      .then((reply) => callback?.(reply.code, 'data' in reply ? reply.data.messageID : ''));
  }

  /** To `toUserList`, or to everyone else in the room when it is null or empty; reliable like broadcast messages. */
  sendCustomCommand(roomID: string, command: string, toUserList: User[] | null, callback?: (errorCode: number) => void): void {
    requireType(roomID, 'string', 'roomID');
    requireType(command, 'string', 'command');
    const room = this.roomIn(roomID);
    const refused = notLoggedIn(room) || validateMessage(command);
    if (refused) return callback?.(refused);
    const toUserIDs = toUserList && toUserList.length > 0 ? toUserList.map((user) => user.userID) : null;
    void room!.requests.send('customCommand', { command, toUserIDs }).then((reply) => callback?.(reply.code));
  }

  /** Sets one key of the room's extra info; everyone else, and everyone who joins later, gets it. */
  setRoomExtraInfo(roomID: string, key: string, value: string, callback?: (errorCode: number) => void): void {
    requireType(roomID, 'string', 'roomID');
    requireType(key, 'string', 'key');
    requireType(value, 'string', 'value');
    const room = this.roomIn(roomID);
    const refused = notLoggedIn(room) || validateRoomExtraInfo(key, value);
    if (refused) return callback?.(refused);
    void room!.requests.send('setRoomExtraInfo', { key, value }).then((reply) => callback?.(reply.code));
  }

  /** Changes the extra info of the stream published on `channel` (1004002 if none). */
  setStreamExtraInfo(extraInfo: string, callback?: (errorCode: number) => void, channel: number = PublishChannel.Main): void {
    requireType(extraInfo, 'string', 'extraInfo');
    const publisher = this.publishers.get(channel);
    const streamID = publisher?.streamID;
    const room = streamID ? this.roomIn(publisher!.room!.id) : this.mainRoom;
    const refused = notLoggedIn(room) || validateStreamExtraInfo(extraInfo) || (streamID ? 0 : ErrorCode.StreamNotFound);
    if (refused) return callback?.(refused);
    publisher!.setExtraInfo(extraInfo);
    void room!.requests.send('setStreamExtraInfo', { streamID: streamID!, extraInfo }).then((reply) => callback?.(reply.code));
  }

  /**
   * Has the server push a stream this user publishes to an RTMP URL (H264 as it is, VP8 encoded to
   * H264, Opus to AAC), trying again when the URL fails or goes away; onPublisherRelayCDNStateUpdate
   * follows it. `callback` gets 0, or 1003040 (not this user's stream, too many URLs, a bad URL).
   */
  addPublishCdnUrl(streamID: string, targetURL: string, callback?: (errorCode: number) => void): void {
    this.updateCdnUrl('addCdnUrl', streamID, targetURL, callback);
  }

  removePublishCdnUrl(streamID: string, targetURL: string, callback?: (errorCode: number) => void): void {
    this.updateCdnUrl('removeCdnUrl', streamID, targetURL, callback);
  }

  /**
   * Starts mixing `task.inputList` by their layouts into one stream (`outputList`: a streamID, which
   * anyone in the room plays, and/or rtmp:// URLs); again with the same taskID, changes its inputs
   * or layout under the same stream. `callback` gets 0 or a 1005xxx code and what is wrong.
   */
  startMixerTask(task: MixerTask, callback?: (errorCode: number, extendedData: string) => void): void {
    requireType(task, 'object', 'task');
    const signalling = this.mixerSignalling(callback);
    void signalling?.request('startMixerTask', { task }).then((reply) => callback?.(reply.code, 'message' in reply ? reply.message : ''));
  }

  stopMixerTask(task: Pick<MixerTask, 'taskID'>, callback?: (errorCode: number) => void): void {
    requireType(task, 'object', 'task');
    const signalling = this.mixerSignalling(callback);
    void signalling?.request('stopMixerTask', { taskID: task.taskID }).then((reply) => callback?.(reply.code));
  }

  /** The main room's connection for mixer requests; undefined (and `callback` told why) when not logged in. */
  private mixerSignalling(callback?: (errorCode: number, extendedData: string) => void) {
    const signalling = this.mainRoom?.activeSignalling;
    const refused = notLoggedIn(this.mainRoom) || (signalling ? 0 : ErrorCode.Disconnected);
    if (refused) callback?.(refused, '');
    return refused ? undefined : signalling;
  }

  private updateCdnUrl(type: 'addCdnUrl' | 'removeCdnUrl', streamID: string, url: string, callback?: (errorCode: number) => void): void {
    requireType(streamID, 'string', 'streamID');
    requireType(url, 'string', 'targetURL');
    const publisher = [...this.publishers.values()].find((p) => p.streamID === streamID);
    const room = publisher?.room ? this.roomIn(publisher.room.id) : this.mainRoom;
    const refused = notLoggedIn(room) || (isCdnUrl(url) ? 0 : ErrorCode.PublisherUpdateCdnTargetError);
    const signalling = room?.activeSignalling;
    if (refused || !signalling) return callback?.(refused || ErrorCode.Disconnected);
    void signalling.request(type, { streamID, url }).then((reply) => callback?.(reply.code));
  }

  logoutRoom(roomID?: string): void {
    if (roomID !== undefined) requireType(roomID, 'string', 'roomID');
    if (roomID === undefined) for (const room of this.rooms.values()) void room.logout();
    else void this.rooms.get(roomID)?.logout();
  }

  startPreview(canvas?: Canvas, channel: number = PublishChannel.Main): void {
    void this.media.startPreview(canvas, channel);
  }

  stopPreview(channel: number = PublishChannel.Main): void {
    this.media.stopPreview(channel);
  }

  startPublishingStream(streamID: string, config: PublishConfig = {}, channel: number = PublishChannel.Main): void {
    requireType(streamID, 'string', 'streamID');
    if (config.roomID !== undefined) requireType(config.roomID, 'string', 'config.roomID');
    let publisher = this.publishers.get(channel);
    if (!publisher) this.publishers.set(channel, (publisher = new Publisher(this.context, channel, () => this.controls.devices(channel))));
    publisher.start(streamID, config, config.roomID === undefined ? this.mainRoom : this.roomIn(config.roomID));
  }

  stopPublishingStream(channel: number = PublishChannel.Main): void {
    this.publishers.get(channel)?.stop();
  }

  /** Turns the camera of `channel` on or off (the device itself); players see Disable while it is off. */
  enableCamera(enable: boolean, channel: number = PublishChannel.Main): void {
    requireType(enable, 'boolean', 'enable');
    if (this.controls.enableCamera(channel, enable)) this.captureChanged(channel);
  }

  /** Mutes the microphone (silence is captured, the device stays on); players see Mute. */
  muteMicrophone(mute: boolean): void {
    requireType(mute, 'boolean', 'mute');
    if (!this.controls.muteMicrophone(mute)) return;
    for (const channel of new Set([PublishChannel.Main, ...this.controls.knownChannels, ...this.publishers.keys()]))
      this.captureChanged(channel);
  }

  isMicrophoneMuted(): boolean {
    return this.controls.isMicrophoneMuted;
  }

  /** Mutes (or unmutes) everything played; players of this engine's streams see its speaker as Mute. */
  muteSpeaker(mute: boolean): void {
    requireType(mute, 'boolean', 'mute');
    if (!this.controls.muteSpeaker(mute)) return;
    this.media.muteSpeaker(mute);
    for (const channel of this.publishers.keys()) this.captureChanged(channel);
  }

  isSpeakerMuted(): boolean {
    return this.controls.isSpeakerMuted;
  }

  /** The playback volume of a played stream, 0–200 (%, 100 as received); 1004002 if not playing it, 1000096 out of range. */
  setPlayVolume(streamID: string, volume: number): number {
    requireType(streamID, 'string', 'streamID');
    requireType(volume, 'number', 'volume');
    if (!Number.isInteger(volume) || volume < 0 || volume > 200) return ErrorCode.InvalidParameter;
    const player = this.players.get(streamID);
    if (!player) return ErrorCode.StreamNotFound;
    player.setVolume(volume);
    return 0;
  }

  /**
   * The microphone's volume as sent, 0–200 (%, 100 as captured), at once and for later captures;
   * 1000096 out of range, 1000093 where the app brings its own encoded audio (Node.js).
   */
  setCaptureVolume(volume: number): number {
    requireType(volume, 'number', 'volume');
    if (!Number.isInteger(volume) || volume < 0 || volume > 200) return ErrorCode.InvalidParameter;
    if (!this.media.setCaptureVolume) return ErrorCode.UnsupportedRequest;
    this.media.setCaptureVolume(volume);
    return 0;
  }

  /** Stops (or resumes) sending video on `channel`, keeping the camera on; players see Mute. */
  mutePublishStreamVideo(mute: boolean, channel: number = PublishChannel.Main): void {
    requireType(mute, 'boolean', 'mute');
    if (this.controls.mutePublishVideo(channel, mute)) this.captureChanged(channel);
  }

  /** Stops (or resumes) sending audio on `channel`, keeping the microphone on; players see Mute. */
  mutePublishStreamAudio(mute: boolean, channel: number = PublishChannel.Main): void {
    requireType(mute, 'boolean', 'mute');
    if (this.controls.mutePublishAudio(channel, mute)) this.captureChanged(channel);
  }

  /**
   * What `channel` captures and encodes: a VideoConfigPreset or sizes, frame rate and bitrate.
   * Applies at once while publishing, without renegotiation (the simulcast layers follow the
   * encode size). 1000096 for a config that makes no sense.
   */
  setVideoConfig(configOrPreset: VideoConfig | VideoConfigPreset, channel: number = PublishChannel.Main): number {
    const config = videoConfigOf(configOrPreset);
    if (!config) return ErrorCode.InvalidParameter;
    this.videoConfigs.set(channel, config);
    this.media.applyVideoConfig(channel, config);
    return 0;
  }

  getVideoConfig(channel: number = PublishChannel.Main): VideoConfig {
    const scenarioDefault =
      this.scenario === Scenario.HighQualityVideoCall || this.scenario === Scenario.Broadcast
        ? VideoConfigPreset.Preset720P
        : VideoConfigPreset.Preset360P;
    return { ...(this.videoConfigs.get(channel) ?? VIDEO_CONFIG_PRESETS[scenarioDefault]) };
  }

  /** Node.js: the datagrams the media transports dropped as unauthenticated, replayed or malformed, by reason (empty in browsers). */
  getMediaDrops(): Record<string, number> {
    return { ...this.media.drops };
  }

  /** The cameras there are (none in Node.js). */
  async getVideoDeviceList(): Promise<DeviceInfo[]> {
    return (await this.media.listDevices?.('videoinput')) ?? [];
  }

  /** The microphones (Input) or speakers (Output) there are (none in Node.js). */
  async getAudioDeviceList(type: AudioDeviceType): Promise<DeviceInfo[]> {
    return (await this.media.listDevices?.(type === AudioDeviceType.Output ? 'audiooutput' : 'audioinput')) ?? [];
  }

  /**
   * Captures `channel` from this camera from now on; while publishing the track is replaced
   * without renegotiation. 0, 1000097 for an unknown device, 1000098 when permission is refused.
   */
  async useVideoDevice(deviceID: string, channel: number = PublishChannel.Main): Promise<number> {
    requireType(deviceID, 'string', 'deviceID');
    return (await this.media.useDevice?.('videoinput', deviceID, channel)) ?? ErrorCode.UnsupportedRequest;
  }

  /** Uses this microphone (Input) or speaker (Output) from now on, as useVideoDevice does. */
  async useAudioDevice(type: AudioDeviceType, deviceID: string): Promise<number> {
    requireType(deviceID, 'string', 'deviceID');
    const kind = type === AudioDeviceType.Output ? 'audiooutput' : 'audioinput';
    return (await this.media.useDevice?.(kind, deviceID, PublishChannel.Main)) ?? ErrorCode.UnsupportedRequest;
  }

  /**
   * Shares a screen, window or tab (the browser asks the user which) as the auxiliary channel's
   * capture: publish it with startPublishingStream(streamID, config, PublishChannel.Aux), beside
   * the camera. Resolves with 0 or an error code (1000093 where there is nothing to share, or
   * when refused: onScreenCaptureExceptionOccurred says which). When the share ends from outside
   * its stream is stopped and onScreenCaptureExceptionOccurred(Ended) fires.
   */
  async startScreenCapture(config: { captureAudio?: boolean } = {}): Promise<number> {
    const start = this.media.startScreenCapture;
    if (!start) return ErrorCode.UnsupportedRequest;
    const result = await start.call(this.media, PublishChannel.Aux, config.captureAudio ?? false, () => {
      this.stopScreenCapture();
      this.hub.emit('screenCaptureExceptionOccurred', ScreenCaptureExceptionType.Ended);
    });
    if ('exception' in result) this.hub.emit('screenCaptureExceptionOccurred', result.exception);
    return result.code;
  }

  /** Ends screen sharing and the stream publishing it. */
  stopScreenCapture(): void {
    this.stopPublishingStream(PublishChannel.Aux);
    this.media.stopScreenCapture?.(PublishChannel.Aux);
  }

  /**
   * How `channel` encodes its sound: an AudioConfigPreset or `{ bitrate (kbit/s), channel }`.
   * While publishing a lower bitrate applies at once, a higher one and stereo from the next
   * publish. 1000096 for a config outside Opus's range.
   */
  setAudioConfig(configOrPreset: AudioConfig | AudioConfigPreset, channel: number = PublishChannel.Main): number {
    const config = audioConfigOf(configOrPreset);
    if (!config) return ErrorCode.InvalidParameter;
    this.audioConfigs.set(channel, config);
    this.media.applyAudioConfig(channel, config);
    return 0;
  }

  getAudioConfig(channel: number = PublishChannel.Main): AudioConfig {
    return { ...(this.audioConfigs.get(channel) ?? AUDIO_CONFIG_PRESETS[AudioConfigPreset.StandardQuality]) };
  }

  /** Mirrors the local preview (OnlyPreviewMirror, the default, and NoMirror); mirroring what is sent is not supported (1000093). */
  setVideoMirrorMode(mode: VideoMirrorMode): number {
    if (mode !== VideoMirrorMode.OnlyPreviewMirror && mode !== VideoMirrorMode.NoMirror) return ErrorCode.UnsupportedRequest;
    this.media.mirrorPreview(mode === VideoMirrorMode.OnlyPreviewMirror);
    return 0;
  }

  /** The browser's echo cancellation, noise suppression and automatic gain of the microphone (all on by default). */
  enableAEC(enable: boolean): void {
    this.setAudioProcessing('echoCancellation', enable);
  }

  enableANS(enable: boolean): void {
    this.setAudioProcessing('noiseSuppression', enable);
  }

  enableAGC(enable: boolean): void {
    this.setAudioProcessing('autoGainControl', enable);
  }

  private setAudioProcessing(key: keyof AudioProcessing, enable: boolean): void {
    requireType(enable, 'boolean', 'enable');
    this.audioProcessing[key] = enable;
    this.media.applyAudioProcessing(this.audioProcessing);
  }

  /** Applies a channel's capture state to its devices and what it sends, and tells its players, without renegotiating. */
  private captureChanged(channel: number): void {
    this.media.applyCapture(channel, this.controls.state(channel));
    const publisher = this.publishers.get(channel);
    const room = publisher?.room && this.rooms.get(publisher.room.id);
    if (publisher?.streamID && room?.activeSignalling)
      void room.requests.send('setStreamDevices', { streamID: publisher.streamID, ...this.controls.devices(channel) });
  }

  /**
   * Plays `streamID` into `canvas`. In MultiRoom mode `config.roomID` names the room it is in; by
   * default the room that announced it, else the first room entered.
   */
  startPlayingStream(streamID: string, canvas?: Canvas, config: PlayerConfig = {}): void {
    requireType(streamID, 'string', 'streamID');
    if (config.roomID !== undefined) requireType(config.roomID, 'string', 'config.roomID');
    const existing = this.players.get(streamID);
    if (existing) return existing.updateCanvas(canvas);
    const invalid = validateStreamID(streamID);
    const room =
      config.roomID !== undefined
        ? this.roomIn(config.roomID)
        : ([...this.rooms.values()].find((r) => r.isIn(r.id) && r.announces(streamID)) ?? this.mainRoom);
    const refused = invalid || (room?.activeSignalling ? 0 : ErrorCode.NotLoggedIn);
    if (refused) {
      this.hub.emit('playerStateUpdate', streamID, PlayerState.NoPlay, refused, '');
      return;
    }
    const player = new Player(
      this.context,
      room!,
      streamID,
      canvas,
      (p) => {
        if (this.players.get(streamID) === p) this.players.delete(streamID);
      },
      this.playVideoTypes.get(streamID),
    );
    this.players.set(streamID, player);
    player.start();
  }

  /**
   * Which simulcast layer to receive of `streamID`: Default lets the server choose by network and
   * view size, Small the smallest, Big the largest. Before or while playing.
   */
  setPlayStreamVideoType(streamID: string, streamType: VideoStreamType): void {
    requireType(streamID, 'string', 'streamID');
    if (![VideoStreamType.Default, VideoStreamType.Small, VideoStreamType.Big].includes(streamType)) return;
    if (streamType === VideoStreamType.Default) this.playVideoTypes.delete(streamID);
    else this.playVideoTypes.set(streamID, streamType);
    this.players.get(streamID)?.setVideoType(streamType);
  }

  stopPlayingStream(streamID: string): void {
    requireType(streamID, 'string', 'streamID');
    this.players.get(streamID)?.stop();
  }

  /** Stops (or resumes) receiving the video of a played stream: the server stops forwarding it. 1004002 if not playing it. */
  mutePlayStreamVideo(streamID: string, mute: boolean): number {
    return this.mutePlay(streamID, 'video', mute);
  }

  /** Stops (or resumes) receiving the audio of a played stream: the server stops forwarding it. 1004002 if not playing it. */
  mutePlayStreamAudio(streamID: string, mute: boolean): number {
    return this.mutePlay(streamID, 'audio', mute);
  }

  private mutePlay(streamID: string, kind: 'video' | 'audio', mute: boolean): number {
    requireType(streamID, 'string', 'streamID');
    requireType(mute, 'boolean', 'mute');
    const player = this.players.get(streamID);
    if (!player) return ErrorCode.StreamNotFound;
    player.setMuted(kind, mute);
    return 0;
  }

  // Encoded custom capture and render (Node.js).

  enableCustomVideoCapture(enable: boolean, config: CustomVideoCaptureConfig = { bufferType: VideoBufferType.EncodedData }): number {
    if (!enable) return 0;
    return this.media.custom && config.bufferType === VideoBufferType.EncodedData ? 0 : ErrorCode.UnsupportedRequest;
  }

  enableCustomVideoRender(enable: boolean, config: CustomVideoCaptureConfig = { bufferType: VideoBufferType.EncodedData }): number {
    return this.enableCustomVideoCapture(enable, config);
  }

  sendCustomVideoCaptureEncodedData(
    data: Uint8Array,
    params: EncodedVideoFrameParams,
    referenceTimeMillisecond: number,
    channel: number = PublishChannel.Main,
  ): number {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    if (!this.media.custom) return ErrorCode.UnsupportedRequest;
    // Muted or camera off: taken and dropped, as a camera's frames would be.
    return this.controls.state(channel).sendVideo ? this.media.custom.sendVideo(channel, data, params, referenceTimeMillisecond) : 0;
  }

  sendCustomAudioCaptureEncodedData(
    data: Uint8Array,
    params: EncodedAudioFrameParams,
    referenceTimeMillisecond: number,
    channel: number = PublishChannel.Main,
  ): number {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    if (!this.media.custom) return ErrorCode.UnsupportedRequest;
    const { sendAudio, microphone } = this.controls.state(channel);
    return sendAudio && microphone ? this.media.custom.sendAudio(channel, data, params, referenceTimeMillisecond) : 0;
  }

  setCustomVideoRenderHandler(handler: CustomVideoRenderHandler | null): void {
    if (this.media.custom) this.media.custom.videoRenderHandler = handler;
  }

  setCustomAudioRenderHandler(handler: CustomAudioRenderHandler | null): void {
    if (this.media.custom) this.media.custom.audioRenderHandler = handler;
  }

  /**
   * Reports the sound level (0–100) of the microphone (or of the audio the app sends) and of every
   * played stream every `millisecond` (100–3000; 100 by default): onCapturedSoundLevelUpdate and
   * onRemoteSoundLevelUpdate.
   */
  startSoundLevelMonitor(millisecond = 100): void {
    requireType(millisecond, 'number', 'millisecond');
    this.stopSoundLevelMonitor();
    if (this.destroyed) return;
    const interval = Math.min(SOUND_LEVEL_MAX_INTERVAL_MS, Math.max(SOUND_LEVEL_MIN_INTERVAL_MS, millisecond));
    this.soundLevelTimer = setInterval(() => void this.reportSoundLevels(), interval);
  }

  stopSoundLevelMonitor(): void {
    clearInterval(this.soundLevelTimer);
    this.soundLevelTimer = undefined;
  }

  private async reportSoundLevels(): Promise<void> {
    const captured = (await this.publishers.get(PublishChannel.Main)?.soundLevel()) ?? 0;
    const remote: Record<string, number> = {};
    for (const [streamID, player] of this.players) remote[streamID] = await player.soundLevel();
    if (!this.soundLevelTimer) return;
    this.hub.emit('capturedSoundLevelUpdate', captured);
    this.hub.emit('remoteSoundLevelUpdate', remote);
  }

  private async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.stopSoundLevelMonitor();
    await Promise.all([...this.rooms.values()].map((room) => room.logout()));
    for (const publisher of this.publishers.values()) publisher.abandon(0);
    for (const player of [...this.players.values()]) player.abandon(0);
    await this.media.destroy();
  }
}
