export {
  AudioChannel,
  AudioConfigPreset,
  AudioDeviceType,
  ErrorCode,
  PlayerState,
  PublisherState,
  StreamRelayCDNState,
  MixerInputContentType,
  type MixerTask,
  StreamRelayCDNUpdateReason,
  type StreamRelayCDNInfo,
  PublishChannel,
  QUALITY_LIMITS,
  RemoteDeviceState,
  RoomMode,
  RoomStateChangedReason,
  Scenario,
  ScreenCaptureExceptionType,
  SPEAKING_LEVEL,
  StreamQualityLevel,
  UpdateType,
  VideoBufferType,
  VideoCodecID,
  VideoConfigPreset,
  VideoMirrorMode,
  ViewMode,
  VideoStreamType,
  type User,
} from '@parley/protocol';
export { ParleyEngine, type EngineProfile, type CustomVideoCaptureConfig, type PlayerConfig } from './engine.js';
export type { ActiveSpeaker, ParleyEventHandler, ParleyEvents, ParleyEventName, Stream } from './events.js';
export type { RoomConfig } from './room.js';
export type { PublishConfig } from './publisher.js';
export type { PlayStreamQuality, PublishStreamQuality } from './quality.js';
export { VIDEO_CONFIG_PRESETS, type VideoConfig } from './videoConfig.js';
export { AUDIO_CONFIG_PRESETS, type AudioConfig } from './audioConfig.js';
export type { DeviceInfo } from './deviceWatch.js';
export type {
  Canvas,
  CustomAudioRenderHandler,
  CustomVideoRenderHandler,
  EncodedAudioFrameParams,
  EncodedVideoFrameParams,
  VideoCodec,
} from './platform.js';
