/** Numeric values below are part of the public contract. */

export enum RoomStateChangedReason {
  Logining = 0,
  Logined = 1,
  LoginFailed = 2,
  Reconnecting = 3,
  Reconnected = 4,
  ReconnectFailed = 5,
  KickOut = 6,
  Logout = 7,
  LogoutFailed = 8,
}

export enum UpdateType {
  Add = 0,
  Delete = 1,
}

export enum PublisherState {
  NoPublish = 0,
  PublishRequesting = 1,
  Publishing = 2,
}

export enum PlayerState {
  NoPlay = 0,
  PlayRequesting = 1,
  Playing = 2,
}

export enum Scenario {
  Default = 3,
  StandardVideoCall = 4,
  HighQualityVideoCall = 5,
  StandardChatroom = 6,
  HighQualityChatroom = 7,
  Broadcast = 8,
  Karaoke = 9,
  StandardVoiceCall = 10,
}

export enum VideoBufferType {
  Unknown = 0,
  RawData = 1,
  EncodedData = 2,
}

/** Publish channels; the main channel carries the camera (or custom capture) stream. */
export enum PublishChannel {
  Main = 0,
  Aux = 1,
}

/** Which simulcast layer a player receives (setPlayStreamVideoType). */
export enum VideoStreamType {
  /** Chosen by the server from the player's network and view size. */
  Default = 0,
  /** The smallest layer. */
  Small = 1,
  /** The largest layer. */
  Big = 2,
}

/** How a published or played stream is doing (onPublisherQualityUpdate, onPlayerQualityUpdate, onNetworkQuality). */
export enum StreamQualityLevel {
  Excellent = 0,
  Good = 1,
  Medium = 2,
  Bad = 3,
  /** Nothing gets through. */
  Die = 4,
  /** Not measured yet. */
  Unknown = 5,
}

/** The vendor's video codec ids, as quality reports carry them: its default is H264. */
export enum VideoCodecID {
  Default = 0,
  SVC = 1,
  VP8 = 2,
  H265 = 3,
  H264DualStream = 4,
  VP8DualStream = 5,
  H265DualStream = 6,
  Unknown = 100,
}

/** The state of a remote user's camera, microphone or speaker, as the vendor reports it (onRemoteCameraStateUpdate, …). */
export enum RemoteDeviceState {
  Open = 0,
  GenericError = 1,
  InvalidID = 2,
  NoAuthorization = 3,
  ZeroFPS = 4,
  InUseByOther = 5,
  Unplugged = 6,
  RebootRequired = 7,
  SystemMediaServicesLost = 8,
  /** Turned off (enableCamera(false)). */
  Disable = 9,
  /** On, but nothing sent (muteMicrophone, mutePublishStreamVideo/Audio). */
  Mute = 10,
  Interruption = 11,
  InBackground = 12,
  MultiForegroundApp = 13,
  BySystemPressure = 14,
  NotSupport = 15,
}

/** The vendor's video presets: capture and encode size, frame rate and bitrate (see the SDK's VIDEO_CONFIG_PRESETS). */
export enum VideoConfigPreset {
  Preset180P = 0,
  Preset270P = 1,
  Preset360P = 2,
  Preset540P = 3,
  Preset720P = 4,
  Preset1080P = 5,
}

/** How a view fits the video (the canvas's `viewMode`). */
export enum ViewMode {
  /** All of the video, letterboxed. */
  AspectFit = 0,
  /** All of the view, the video cropped. */
  AspectFill = 1,
  /** Both, the video stretched. */
  ScaleToFill = 2,
}

/** One room per engine at a time, or several (setRoomMode). */
export enum RoomMode {
  SingleRoom = 0,
  MultiRoom = 1,
}

/** Which of the local preview and the published video are mirrored. */
export enum VideoMirrorMode {
  OnlyPreviewMirror = 0,
  BothMirror = 1,
  NoMirror = 2,
  OnlyPublishMirror = 3,
}

/** Why screen sharing stopped or did not start (onScreenCaptureExceptionOccurred). */
export enum ScreenCaptureExceptionType {
  Unknown = 0,
  /** The user (or the browser's policy) refused to share. */
  NotAllowed = 1,
  /** The shared screen, window or tab went away, or the user stopped sharing from the browser's own UI. */
  Ended = 2,
}

/** Which audio devices: microphones or speakers. */
export enum AudioDeviceType {
  Input = 0,
  Output = 1,
}

/** Mono or stereo audio (setAudioConfig). */
export enum AudioChannel {
  Unknown = 0,
  Mono = 1,
  Stereo = 2,
}

/** The vendor's audio presets: bitrate and channels (see the SDK's AUDIO_CONFIG_PRESETS). */
export enum AudioConfigPreset {
  BasicQuality = 0,
  StandardQuality = 1,
  StandardQualityStereo = 2,
  HighQuality = 3,
  HighQualityStereo = 4,
}

/** A relay of a published stream to a CDN (addPublishCdnUrl). */
export enum StreamRelayCDNState {
  NoRelay = 0,
  RelayRequesting = 1,
  Relaying = 2,
}

/** Why a CDN relay's state changed. */
export enum StreamRelayCDNUpdateReason {
  None = 0,
  ServerError = 1,
  HandshakeFailed = 2,
  AccessPointError = 3,
  CreateStreamFailed = 4,
  BadName = 5,
  CDNServerDisconnected = 6,
  Disconnected = 7,
  MixStreamAllInputStreamClosed = 8,
  MixStreamAllInputStreamNoData = 9,
  MixStreamServerInternalError = 10,
}

/** What of a mixer input goes into the mix. */
export enum MixerInputContentType {
  Audio = 0,
  Video = 1,
  VideoOnly = 2,
}
