/**
 * Error codes of the public contract. Values are fixed by the spec (and compatible with the
 * vendor SDK the API mirrors); names say what went wrong.
 */
export const ErrorCode = {
  Success: 0,

  // Common (1000xxx)
  NotLoggedIn: 1000002,
  StreamIDTooLong: 1000014,
  StreamIDEmpty: 1000015,
  StreamIDInvalidCharacter: 1000016,

  // Engine / app (1001xxx)
  AppIDUnknown: 1001004,
  AppSignWrong: 1001005,

  // Room (1002xxx)
  RoomCountExceeded: 1002001,
  UserIDEmpty: 1002005,
  UserIDTooLong: 1002006,
  UserIDInvalidCharacter: 1002007,
  UserNameEmpty: 1002008,
  UserNameTooLong: 1002009,
  UserNameInvalidCharacter: 1002010,
  RoomIDEmpty: 1002011,
  RoomIDTooLong: 1002012,
  RoomIDInvalidCharacter: 1002013,
  RoomExtraInfoKeyEmpty: 1002014,
  RoomExtraInfoKeyTooLong: 1002015,
  RoomExtraInfoValueTooLong: 1002016,
  RoomExtraInfoTooManyKeys: 1002017,
  ConnectFailed: 1002030,
  LoginTimeout: 1002031,
  TokenInvalid: 1002033,
  RoomFull: 1002034,
  KickedOut: 1002050,
  ConnectionBroken: 1002051,
  Disconnected: 1002052,
  ReconnectWindowExceeded: 1002053,
  KickedByServer: 1002055,
  NoTokenNorAppSign: 1002067,
  TokenPayloadInvalid: 1002075,
  TokenAppIDMismatch: 1002076,
  TokenUserIDMismatch: 1002077,
  TokenExpired: 1002078,
  TokenVersionInvalid: 1002079,
  TokenNonceInvalid: 1002080,
  RoomInternalError: 1002099,

  // Publisher (1003xxx)
  PublishInterrupted: 1003020,
  PublishRetryTimeout: 1003021,
  ChannelAlreadyPublishing: 1003023,
  StreamForbidden: 1003025,
  StreamAlreadyPublished: 1003028,
  /** addPublishCdnUrl / removePublishCdnUrl refused: not this user's stream, or too many URLs. */
  PublisherUpdateCdnTargetError: 1003040,
  StreamExtraInfoTooLong: 1003051,
  PublishPrivilegeDenied: 1003072,

  // Player (1004xxx)
  PlayFailed: 1004001,
  StreamNotFound: 1004002,
  PlayAuthFailed: 1004003,
  PlayInterrupted: 1004020,
  PlayForbidden: 1004025,

  // Mixer (1005xxx)
  MixerNoOutputTarget: 1005005,
  MixerInputListInvalid: 1005020,
  MixerOutputListInvalid: 1005021,
  /** An input that is not published, a layout outside the canvas, or a task that does not exist. */
  MixerInputParametersError: 1005027,
  MixerInnerError: 1005099,

  // Room communication (1009xxx)
  MessageTooLong: 1009002,

  // Signalling protocol (1000090-1000099): Parley's own, the vendor contract has none for these.
  /** A frame that is not JSON, not an object, or matches no message schema. */
  MalformedMessage: 1000090,
  /** A frame larger than the server accepts; the connection is closed. */
  FrameTooLarge: 1000091,
  /** An SDP offer that cannot be parsed or has nothing the server can negotiate. */
  InvalidSdp: 1000092,
  /** An operation this server or platform does not support (e.g. encoded custom capture in a browser). */
  UnsupportedRequest: 1000093,
  /** A resume for a session the server no longer has (expired, or the server restarted): log in again. */
  SessionNotFound: 1000094,
  /** Too many frames on one connection, or too many logins from one address: slow down. */
  RateLimited: 1000095,
  /** A control given a value outside its range (e.g. a volume over 200). */
  InvalidParameter: 1000096,
  /** No such camera, microphone or speaker (any more). */
  DeviceNotFound: 1000097,
  /** The user or the browser refused the camera or microphone. */
  DevicePermissionDenied: 1000098,
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** WebSocket close codes the signalling connection ends with. */
export const CloseCode = {
  /** The client left on purpose (logout); the server ends its session. */
  Normal: 1000,
  /** The server is shutting down; clients reconnect. */
  GoingAway: 1001,
  /** A node of a cluster is draining: clients resume their sessions on another node. */
  ServiceRestart: 1012,
  /** Too many refused frames (rate limit). */
  PolicyViolation: 1008,
  /** A frame over MAX_FRAME_BYTES. */
  MessageTooBig: 1009,
  /** The client stopped answering heartbeats (closed by the client). */
  HeartbeatTimeout: 4000,
  /** The client read too slowly: more was waiting to be sent to it than the server will hold. */
  SlowReader: 4001,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
