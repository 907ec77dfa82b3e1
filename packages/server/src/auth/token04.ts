/**
 * token04: the business server's credential for a user, compatible with the vendor's token
 * generators. `"04" + base64(int64 expire | uint16 ivLen | iv | uint16 ctLen | ciphertext [| uint8 mode])`,
 * big-endian; key = the 32 ASCII bytes of serverSecret. Without a mode byte: AES-256-CBC with a
 * 16-character IV and PKCS#5 padding; mode 1: AES-256-GCM with a 12-byte nonce, the 16-byte tag
 * after the ciphertext, no AAD. The plaintext is JSON: app_id, user_id, nonce, ctime, expire, payload.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomInt } from 'node:crypto';
import { ErrorCode } from '@parley/protocol';

const VERSION = '04';
const GCM_MODE = 1;
const GCM_TAG_BYTES = 16;
const MAX_CLOCK_SKEW_SECONDS = 300;
const IV_CHARS = '0123456789abcdefghijklmnopqrstuvwxyz';

export interface Token04Claims {
  app_id: number;
  user_id: string;
  nonce: number;
  ctime: number;
  expire: number;
  /** "" for basic auth, or a JSON string with room_id / privilege / stream_id_list. */
  payload: string;
}

/** The strict payload: which room, which privileges, which streams. */
export interface TokenPrivileges {
  room_id: string;
  /** "1": login, "2": publish; 1 allowed, 0 denied. */
  privilege: Record<string, number>;
  stream_id_list: string[] | null;
}

export interface GenerateToken04Options {
  appID: number;
  userID: string;
  /** 32 ASCII characters. */
  serverSecret: string;
  /** Seconds from now until the token expires. */
  effectiveTimeInSeconds: number;
  /** "" for basic auth; an object is serialized as the strict payload. */
  payload?: string | TokenPrivileges;
  /** 'gcm' (default, mode byte 1) or 'cbc' (the older form). */
  mode?: 'gcm' | 'cbc';
  /** Unix seconds; defaults to now. */
  now?: number;
}

function secretKey(serverSecret: string): Buffer {
  const key = Buffer.from(serverSecret, 'ascii');
  if (key.length !== 32) throw new TypeError('serverSecret must be 32 ASCII characters');
  return key;
}

export function generateToken04(options: GenerateToken04Options): string {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const claims: Token04Claims = {
    app_id: options.appID,
    user_id: options.userID,
    nonce: randomInt(-(2 ** 31), 2 ** 31),
    ctime: now,
    expire: now + options.effectiveTimeInSeconds,
    payload: typeof options.payload === 'object' ? JSON.stringify(options.payload) : (options.payload ?? ''),
  };
  return encodeToken04(claims, options.serverSecret, options.mode ?? 'gcm');
}

/** Encrypts claims exactly as given (for tools and tests that need control over every field). */
export function encodeToken04(claims: Token04Claims, serverSecret: string, mode: 'gcm' | 'cbc', iv?: Buffer): string {
  const key = secretKey(serverSecret);
  const plaintext = Buffer.from(JSON.stringify(claims), 'utf8');
  let ciphertext: Buffer;
  if (mode === 'gcm') {
    iv ??= randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  } else {
    iv ??= Buffer.from(Array.from(randomBytes(16), (b) => IV_CHARS.charCodeAt(b % IV_CHARS.length)));
    const cipher = createCipheriv('aes-256-cbc', key, iv);
    ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  }
  const parts = [Buffer.alloc(8), u16(iv.length), iv, u16(ciphertext.length), ciphertext];
  parts[0]!.writeBigInt64BE(BigInt(claims.expire));
  if (mode === 'gcm') parts.push(Buffer.from([GCM_MODE]));
  return VERSION + Buffer.concat(parts).toString('base64');
}

const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};

export type DecodeResult = { ok: true; claims: Token04Claims } | { ok: false; code: ErrorCode; message: string };

const failure = (code: ErrorCode, message: string): DecodeResult => ({ ok: false, code, message });

/** Decrypts and parses a token; checks only its form. See verifyToken04 for the checks a login needs. */
export function decodeToken04(token: string, serverSecret: string): DecodeResult {
  if (typeof token !== 'string' || token.length < 2) return failure(ErrorCode.TokenInvalid, 'not a token');
  if (token.slice(0, 2) !== VERSION) return failure(ErrorCode.TokenVersionInvalid, `token version ${token.slice(0, 2)} is not 04`);
  const body = token.slice(2);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) return failure(ErrorCode.TokenInvalid, 'token is not base64');
  const bytes = Buffer.from(body, 'base64');
  let offset = 8;
  if (bytes.length < offset + 2) return failure(ErrorCode.TokenInvalid, 'token too short');
  const outerExpire = bytes.readBigInt64BE(0);
  const ivLength = bytes.readUInt16BE(offset);
  offset += 2;
  const iv = bytes.subarray(offset, offset + ivLength);
  offset += ivLength;
  if (iv.length !== ivLength || bytes.length < offset + 2) return failure(ErrorCode.TokenInvalid, 'token truncated');
  const ctLength = bytes.readUInt16BE(offset);
  offset += 2;
  const ciphertext = bytes.subarray(offset, offset + ctLength);
  offset += ctLength;
  if (ciphertext.length !== ctLength) return failure(ErrorCode.TokenInvalid, 'token truncated');
  const rest = bytes.length - offset;
  const mode = rest === 0 ? 'cbc' : rest === 1 && bytes[offset] === GCM_MODE ? 'gcm' : undefined;
  if (!mode) return failure(ErrorCode.TokenInvalid, 'unknown token mode');

  let plaintext: Buffer;
  try {
    const key = secretKey(serverSecret);
    if (mode === 'gcm') {
      if (iv.length !== 12 || ciphertext.length < GCM_TAG_BYTES) return failure(ErrorCode.TokenInvalid, 'bad GCM token');
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAuthTag(ciphertext.subarray(ciphertext.length - GCM_TAG_BYTES));
      plaintext = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - GCM_TAG_BYTES)), decipher.final()]);
    } else {
      if (iv.length !== 16) return failure(ErrorCode.TokenInvalid, 'bad CBC token');
      const decipher = createDecipheriv('aes-256-cbc', key, iv);
      plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    }
  } catch {
    return failure(ErrorCode.TokenInvalid, 'token does not decrypt with this secret');
  }
  let claims: unknown;
  try {
    claims = JSON.parse(plaintext.toString('utf8'));
  } catch {
    return failure(ErrorCode.TokenPayloadInvalid, 'token content is not JSON');
  }
  if (typeof claims !== 'object' || claims === null) return failure(ErrorCode.TokenPayloadInvalid, 'token content is not an object');
  const c = claims as Record<string, unknown>;
  if (!Number.isInteger(c.nonce)) return failure(ErrorCode.TokenNonceInvalid, 'nonce is not an integer');
  if (!Number.isInteger(c.app_id) || typeof c.user_id !== 'string' || !Number.isInteger(c.expire) || !Number.isInteger(c.ctime)) {
    return failure(ErrorCode.TokenInvalid, 'token fields missing or of the wrong type');
  }
  if (c.payload !== undefined && typeof c.payload !== 'string') return failure(ErrorCode.TokenPayloadInvalid, 'payload is not a string');
  // The expiry in clear must be the one inside: otherwise someone edited it.
  if (BigInt(c.expire as number) !== outerExpire) return failure(ErrorCode.TokenInvalid, 'token expiry was altered');
  return { ok: true, claims: { ...(c as unknown as Token04Claims), payload: (c.payload as string | undefined) ?? '' } };
}

export type VerifyResult =
  { ok: true; claims: Token04Claims; privileges: TokenPrivileges | undefined } | { ok: false; code: ErrorCode; message: string };

/** Everything a login checks: form, secret, app, user, expiry, and the strict payload if any. */
export function verifyToken04(token: string, serverSecret: string, expect: { appID: number; userID: string; now?: number }): VerifyResult {
  const decoded = decodeToken04(token, serverSecret);
  if (!decoded.ok) return decoded;
  const { claims } = decoded;
  if (claims.app_id !== expect.appID) return { ok: false, code: ErrorCode.TokenAppIDMismatch, message: 'token is for another app' };
  if (claims.user_id !== expect.userID) return { ok: false, code: ErrorCode.TokenUserIDMismatch, message: 'token is for another user' };
  const now = expect.now ?? Math.floor(Date.now() / 1000);
  if (claims.expire <= now) return { ok: false, code: ErrorCode.TokenExpired, message: 'token expired' };
  // Clocks differ a little between servers; a token made further in the future is not genuine.
  if (claims.ctime > now + MAX_CLOCK_SKEW_SECONDS) return { ok: false, code: ErrorCode.TokenInvalid, message: 'token is not valid yet' };
  if (claims.payload === '') return { ok: true, claims, privileges: undefined };
  let privileges: unknown;
  try {
    privileges = JSON.parse(claims.payload);
  } catch {
    return { ok: false, code: ErrorCode.TokenPayloadInvalid, message: 'payload is not JSON' };
  }
  const p = privileges as Partial<TokenPrivileges> | null;
  if (typeof p !== 'object' || p === null) return { ok: false, code: ErrorCode.TokenPayloadInvalid, message: 'payload is not an object' };
  return {
    ok: true,
    claims,
    privileges: {
      room_id: typeof p.room_id === 'string' ? p.room_id : '',
      privilege: typeof p.privilege === 'object' && p.privilege !== null ? p.privilege : {},
      stream_id_list: Array.isArray(p.stream_id_list) ? p.stream_id_list.filter((s): s is string => typeof s === 'string') : null,
    },
  };
}
