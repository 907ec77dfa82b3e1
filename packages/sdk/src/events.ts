import type { PlayStreamQuality, PublishStreamQuality } from './quality.js';
import type { DeviceInfo } from './deviceWatch.js';
import type {
  AudioDeviceType,
  BarrageMessageInfo,
  BroadcastMessageInfo,
  PlayerState,
  PublisherState,
  RemoteDeviceState,
  RoomExtraInfo,
  ScreenCaptureExceptionType,
  RoomStateChangedReason,
  StreamInfo,
  StreamQualityLevel,
  StreamRelayCDNInfo,
  UpdateType,
  User,
} from '@parley/protocol';

export type Stream = StreamInfo;

/** A user speaking in the room, as the server hears it: its stream and that stream's sound level (0–100). */
export interface ActiveSpeaker {
  userID: string;
  streamID: string;
  soundLevel: number;
}

/** Engine events: emitter name → arguments. The handler object gets the same as `on<Name>`. */
export interface ParleyEvents {
  roomStateChanged: [roomID: string, reason: RoomStateChangedReason, errorCode: number, extendedData: string];
  roomUserUpdate: [roomID: string, updateType: UpdateType, userList: User[]];
  roomStreamUpdate: [roomID: string, updateType: UpdateType, streamList: Stream[], extendedData: string];
  publisherStateUpdate: [streamID: string, state: PublisherState, errorCode: number, extendedData: string];
  playerStateUpdate: [streamID: string, state: PlayerState, errorCode: number, extendedData: string];
  /** The room token expires in `remainSeconds`: get a new one and call renewToken. */
  roomTokenWillExpire: [roomID: string, remainSeconds: number];
  /** The first video frame of a played stream was rendered (browser) or delivered (custom render). */
  playerRecvVideoFirstFrame: [streamID: string];
  /** The resolution of a played stream changed (a new simulcast layer, or the publisher's capture). */
  playerVideoSizeChanged: [streamID: string, width: number, height: number];
  /** The CDN relays of a published stream (addPublishCdnUrl) changed state: every URL's state, reason and time. */
  publisherRelayCDNStateUpdate: [streamID: string, infoList: StreamRelayCDNInfo[]];
  /** The RTMP outputs of a mixing task this user started (startMixerTask) changed state. */
  mixerRelayCDNStateUpdate: [taskID: string, infoList: StreamRelayCDNInfo[]];
  /** Every few seconds while publishing (3 s by default): rates, round trip, loss and a level. */
  publisherQualityUpdate: [streamID: string, quality: PublishStreamQuality];
  /** Every few seconds while playing (3 s by default): rates, round trip, loss, delay, freezes and a level. */
  playerQualityUpdate: [streamID: string, quality: PlayStreamQuality];
  /**
   * Every few seconds (3 s by default): how the server sees the links of the local user ('') and
   * of each user whose stream is played, up (publishing) and down (playing); Unknown where the
   * user has no link that way.
   */
  networkQuality: [userID: string, upstreamQuality: StreamQualityLevel, downstreamQuality: StreamQualityLevel];
  /**
   * Who speaks in the room now, loudest first, as the server hears every published stream (its
   * audio's level, RFC 6464): sent when that changes, whether or not the streams are played.
   */
  activeSpeakerUpdate: [roomID: string, speakers: ActiveSpeaker[]];
  /** A played stream's camera: on playing, and whenever its publisher turns it off (Disable), mutes it (Mute) or back (Open). */
  remoteCameraStateUpdate: [streamID: string, state: RemoteDeviceState];
  /** A played stream's microphone, likewise. */
  remoteMicStateUpdate: [streamID: string, state: RemoteDeviceState];
  /** A played stream's publisher's speaker (muteSpeaker: Mute), likewise. */
  remoteSpeakerStateUpdate: [streamID: string, state: RemoteDeviceState];
  /** A camera was plugged in (Add) or out (Delete); one in use that went away is replaced by the default camera. */
  videoDeviceStateChanged: [updateType: UpdateType, deviceInfo: DeviceInfo];
  /** A microphone (Input) or speaker (Output) was plugged in or out, likewise. */
  audioDeviceStateChanged: [updateType: UpdateType, deviceType: AudioDeviceType, deviceInfo: DeviceInfo];
  /** Screen sharing stopped from outside (the browser's stop button: Ended) or was refused (NotAllowed); its stream is stopped. */
  screenCaptureExceptionOccurred: [exceptionType: ScreenCaptureExceptionType];
  /** startSoundLevelMonitor: the sound level (0–100) of what this engine captures (its main channel). */
  capturedSoundLevelUpdate: [soundLevel: number];
  /** startSoundLevelMonitor: the sound level (0–100) of every played stream, by stream ID. */
  remoteSoundLevelUpdate: [soundLevels: Record<string, number>];
  /** A player asked for a keyframe of `layer` (0 without simulcast); with encoded custom capture, send one as soon as possible. */
  customVideoCaptureKeyFrameRequested: [channel: number, layer: number];
  /** Broadcast messages from others in the room, in order, each once (also those sent while reconnecting). */
  IMRecvBroadcastMessage: [roomID: string, messageList: BroadcastMessageInfo[]];
  /** Barrage messages from others (best effort: some may be missing). */
  IMRecvBarrageMessage: [roomID: string, messageList: BarrageMessageInfo[]];
  IMRecvCustomCommand: [roomID: string, fromUser: User, command: string];
  /** Room extra info that changed (on login: all of it). */
  roomExtraInfoUpdate: [roomID: string, roomExtraInfoList: RoomExtraInfo[]];
  /** Streams of others whose extra info changed. */
  roomStreamExtraInfoUpdate: [roomID: string, streamList: Stream[]];
  /** How many users are in the room: on login, then when it changed (checked every 30 s). */
  roomOnlineUserCountUpdate: [roomID: string, count: number];
}

export type ParleyEventName = keyof ParleyEvents;

type HandlerName<K extends string> = `on${Capitalize<K>}`;
export type ParleyEventHandler = {
  [K in ParleyEventName as HandlerName<K>]?: (...args: ParleyEvents[K]) => void;
};

type Listener<K extends ParleyEventName> = (...args: ParleyEvents[K]) => void;

/**
 * Delivers each event to the handler object and to `on()` listeners. A throwing app callback is
 * reported on the console and never breaks the SDK's own state.
 */
export class EventHub {
  private readonly listeners = new Map<ParleyEventName, Set<Listener<ParleyEventName>>>();

  constructor(public handler: ParleyEventHandler | null) {}

  on<K extends ParleyEventName>(event: K, listener: Listener<K>): void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<ParleyEventName>);
  }

  off<K extends ParleyEventName>(event: K, listener?: Listener<K>): void {
    if (listener) this.listeners.get(event)?.delete(listener as Listener<ParleyEventName>);
    else this.listeners.delete(event);
  }

  emit<K extends ParleyEventName>(event: K, ...args: ParleyEvents[K]): void {
    const name = `on${event[0]!.toUpperCase()}${event.slice(1)}` as keyof ParleyEventHandler;
    const method = this.handler?.[name] as ((...a: ParleyEvents[K]) => void) | undefined;
    if (method) this.call(() => method.apply(this.handler, args));
    for (const listener of this.listeners.get(event) ?? []) this.call(() => (listener as Listener<K>)(...args));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      console.error('[parley] app callback threw', err);
    }
  }
}
