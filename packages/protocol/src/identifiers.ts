import { ErrorCode } from './codes.js';

const utf8 = new TextEncoder();
const byteLength = (s: string): number => utf8.encode(s).length;

// userID and roomID: letters, digits and a few symbols that are safe in URLs, logs and file names.
const SAFE_ID = /^[0-9A-Za-z_.~!@#$%^&*()+=-]+$/;
const STREAM_ID = /^[0-9A-Za-z_-]+$/;
// userName is free text, but control characters would corrupt logs and UIs.
const CONTROL = /[\u0000-\u001f\u007f]/;

interface Rule {
  maxBytes: number; // inclusive
  pattern?: RegExp;
  forbidden?: RegExp;
  empty: ErrorCode;
  tooLong: ErrorCode;
  invalid: ErrorCode;
}

function check(value: string, rule: Rule): ErrorCode {
  if (value.length === 0) return rule.empty;
  if (byteLength(value) > rule.maxBytes) return rule.tooLong;
  if (rule.pattern && !rule.pattern.test(value)) return rule.invalid;
  if (rule.forbidden?.test(value)) return rule.invalid;
  return ErrorCode.Success;
}

/** Each returns 0 when the identifier is valid, or the spec's error code for the first rule it breaks. */
export const validateUserID = (v: string): ErrorCode =>
  check(v, {
    maxBytes: 63,
    pattern: SAFE_ID,
    empty: ErrorCode.UserIDEmpty,
    tooLong: ErrorCode.UserIDTooLong,
    invalid: ErrorCode.UserIDInvalidCharacter,
  });

export const validateUserName = (v: string): ErrorCode =>
  check(v, {
    maxBytes: 255,
    forbidden: CONTROL,
    empty: ErrorCode.UserNameEmpty,
    tooLong: ErrorCode.UserNameTooLong,
    invalid: ErrorCode.UserNameInvalidCharacter,
  });

export const validateRoomID = (v: string): ErrorCode =>
  check(v, {
    maxBytes: 127,
    pattern: SAFE_ID,
    empty: ErrorCode.RoomIDEmpty,
    tooLong: ErrorCode.RoomIDTooLong,
    invalid: ErrorCode.RoomIDInvalidCharacter,
  });

export const validateStreamID = (v: string): ErrorCode =>
  check(v, {
    maxBytes: 256,
    pattern: STREAM_ID,
    empty: ErrorCode.StreamIDEmpty,
    tooLong: ErrorCode.StreamIDTooLong,
    invalid: ErrorCode.StreamIDInvalidCharacter,
  });

/** Broadcast and barrage messages and custom commands: at most this many UTF-8 bytes. */
export const MAX_MESSAGE_BYTES = 1024;
export const validateMessage = (v: string): ErrorCode => (byteLength(v) > MAX_MESSAGE_BYTES ? ErrorCode.MessageTooLong : ErrorCode.Success);

export const validateStreamExtraInfo = (v: string): ErrorCode =>
  byteLength(v) >= 1024 ? ErrorCode.StreamExtraInfoTooLong : ErrorCode.Success;

export const validateRoomExtraInfo = (key: string, value: string): ErrorCode => {
  if (key.length === 0) return ErrorCode.RoomExtraInfoKeyEmpty;
  if (byteLength(key) >= 128) return ErrorCode.RoomExtraInfoKeyTooLong;
  if (byteLength(value) >= 128) return ErrorCode.RoomExtraInfoValueTooLong;
  return ErrorCode.Success;
};
