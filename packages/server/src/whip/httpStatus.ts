/**
 * The HTTP status of each spec error code, for endpoints that answer in HTTP (WHIP, WHEP); the
 * code itself goes in the body. Every code has one: this does not compile until a new code does.
 */
import { ErrorCode } from '@parley/protocol';
import type { FailureCode } from '../outcome.js';

const BAD_REQUEST = 400;
const UNAUTHORIZED = 401;
const FORBIDDEN = 403;
const NOT_FOUND = 404;
const CONFLICT = 409;
const TOO_MANY = 429;
const INTERNAL = 500;
const UNAVAILABLE = 503;

const STATUS: Record<FailureCode, number> = {
  [ErrorCode.NotLoggedIn]: UNAVAILABLE,
  [ErrorCode.StreamIDTooLong]: BAD_REQUEST,
  [ErrorCode.StreamIDEmpty]: BAD_REQUEST,
  [ErrorCode.StreamIDInvalidCharacter]: BAD_REQUEST,
  [ErrorCode.AppIDUnknown]: NOT_FOUND,
  [ErrorCode.AppSignWrong]: UNAUTHORIZED,
  [ErrorCode.RoomCountExceeded]: FORBIDDEN,
  [ErrorCode.UserIDEmpty]: BAD_REQUEST,
  [ErrorCode.UserIDTooLong]: BAD_REQUEST,
  [ErrorCode.UserIDInvalidCharacter]: BAD_REQUEST,
  [ErrorCode.UserNameEmpty]: BAD_REQUEST,
  [ErrorCode.UserNameTooLong]: BAD_REQUEST,
  [ErrorCode.UserNameInvalidCharacter]: BAD_REQUEST,
  [ErrorCode.RoomIDEmpty]: BAD_REQUEST,
  [ErrorCode.RoomIDTooLong]: BAD_REQUEST,
  [ErrorCode.RoomIDInvalidCharacter]: BAD_REQUEST,
  [ErrorCode.RoomExtraInfoKeyEmpty]: BAD_REQUEST,
  [ErrorCode.RoomExtraInfoKeyTooLong]: BAD_REQUEST,
  [ErrorCode.RoomExtraInfoValueTooLong]: BAD_REQUEST,
  [ErrorCode.RoomExtraInfoTooManyKeys]: BAD_REQUEST,
  [ErrorCode.ConnectFailed]: UNAVAILABLE,
  [ErrorCode.LoginTimeout]: UNAVAILABLE,
  [ErrorCode.TokenInvalid]: UNAUTHORIZED,
  [ErrorCode.RoomFull]: FORBIDDEN,
  [ErrorCode.KickedOut]: CONFLICT,
  [ErrorCode.ConnectionBroken]: UNAVAILABLE,
  [ErrorCode.Disconnected]: UNAVAILABLE,
  [ErrorCode.ReconnectWindowExceeded]: UNAVAILABLE,
  [ErrorCode.KickedByServer]: FORBIDDEN,
  [ErrorCode.NoTokenNorAppSign]: UNAUTHORIZED,
  [ErrorCode.TokenPayloadInvalid]: UNAUTHORIZED,
  [ErrorCode.TokenAppIDMismatch]: UNAUTHORIZED,
  [ErrorCode.TokenUserIDMismatch]: UNAUTHORIZED,
  [ErrorCode.TokenExpired]: UNAUTHORIZED,
  [ErrorCode.TokenVersionInvalid]: UNAUTHORIZED,
  [ErrorCode.TokenNonceInvalid]: UNAUTHORIZED,
  [ErrorCode.RoomInternalError]: INTERNAL,
  [ErrorCode.PublishInterrupted]: UNAVAILABLE,
  [ErrorCode.PublishRetryTimeout]: UNAVAILABLE,
  [ErrorCode.ChannelAlreadyPublishing]: CONFLICT,
  [ErrorCode.StreamForbidden]: FORBIDDEN,
  [ErrorCode.StreamAlreadyPublished]: CONFLICT,
  [ErrorCode.PublisherUpdateCdnTargetError]: BAD_REQUEST,
  [ErrorCode.MixerNoOutputTarget]: BAD_REQUEST,
  [ErrorCode.MixerInputListInvalid]: BAD_REQUEST,
  [ErrorCode.MixerOutputListInvalid]: BAD_REQUEST,
  [ErrorCode.MixerInputParametersError]: BAD_REQUEST,
  [ErrorCode.MixerInnerError]: INTERNAL,
  [ErrorCode.StreamExtraInfoTooLong]: BAD_REQUEST,
  [ErrorCode.PublishPrivilegeDenied]: FORBIDDEN,
  [ErrorCode.PlayFailed]: UNAVAILABLE,
  [ErrorCode.StreamNotFound]: NOT_FOUND,
  [ErrorCode.PlayAuthFailed]: FORBIDDEN,
  [ErrorCode.PlayInterrupted]: UNAVAILABLE,
  [ErrorCode.PlayForbidden]: FORBIDDEN,
  [ErrorCode.MessageTooLong]: BAD_REQUEST,
  [ErrorCode.MalformedMessage]: BAD_REQUEST,
  [ErrorCode.FrameTooLarge]: 413,
  [ErrorCode.InvalidSdp]: BAD_REQUEST,
  [ErrorCode.UnsupportedRequest]: 405,
  [ErrorCode.SessionNotFound]: NOT_FOUND,
  [ErrorCode.RateLimited]: TOO_MANY,
  [ErrorCode.InvalidParameter]: BAD_REQUEST,
  [ErrorCode.DeviceNotFound]: BAD_REQUEST,
  [ErrorCode.DevicePermissionDenied]: FORBIDDEN,
};

export const httpStatusOf = (code: FailureCode): number => STATUS[code];
