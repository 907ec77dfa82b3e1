/**
 * Webhook signatures, for the sender and for business servers that receive webhooks. Depends on
 * nothing but node:crypto.
 *
 * The vendor's signature, `sha1_hex(join(sort([callbackSecret, timestamp, nonce])))`, proves
 * that the sender knows the callback secret but does not cover the body. Every webhook therefore
 * also carries the header `x-parley-signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed
 * with the callback secret>`; pass it to `verifyWebhook` as `bodySignature` to refuse altered bodies.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { WEBHOOK_EVENTS, type WebhookEvent } from './events.js';

/** The HTTP header carrying the body signature (lower case, as Node reports headers). */
export const WEBHOOK_BODY_SIGNATURE_HEADER = 'x-parley-signature-256';

/** Accepted distance between a webhook's timestamp and now, unless told otherwise. */
export const DEFAULT_WEBHOOK_MAX_AGE_SECONDS = 300;

/** `sha1_hex(join(sort([secret, timestamp, nonce])))`: the three as strings, sorted, joined with nothing between. */
export function webhookSignature(secret: string, timestamp: string | number, nonce: string | number): string {
  const parts = [secret, String(timestamp), String(nonce)].sort();
  return createHash('sha1').update(parts.join('')).digest('hex');
}

/** The value of the body signature header for `rawBody`: `sha256=` and the hex HMAC-SHA256 keyed with `secret`. */
export function webhookBodySignature(secret: string, rawBody: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

/** Why a webhook was refused. */
export type WebhookRejection =
  /** The body is not JSON. */
  | 'notJson'
  /** JSON, but not an object with the common webhook fields. */
  | 'malformed'
  /** The signature (or the body signature, when given) does not match the secret. */
  | 'badSignature'
  /** The timestamp is further from now than `maxAgeSeconds`. */
  | 'staleTimestamp'
  /** Genuine, but an event this version does not know. */
  | 'unknownEvent';

export type VerifyWebhookResult = { ok: true; event: WebhookEvent } | { ok: false; reason: WebhookRejection };

export interface VerifyWebhookOptions {
  /** Refuse a timestamp more than this many seconds before or after now. Default 300. */
  maxAgeSeconds?: number;
  /**
   * The `x-parley-signature-256` header. When given, `body` must be the raw body (a string or
   * bytes), and a body it does not match is refused as `badSignature`.
   */
  bodySignature?: string;
  /** The current time in milliseconds (default `Date.now()`). */
  now?: number;
}

/**
 * Checks a webhook received by a business server: the raw body (preferred) or its parsed JSON,
 * and the app's callback secret. Returns the typed event, or why it was refused.
 */
export function verifyWebhook(body: string | Uint8Array | object, secret: string, options: VerifyWebhookOptions = {}): VerifyWebhookResult {
  const raw = typeof body === 'string' || body instanceof Uint8Array ? body : undefined;
  if (options.bodySignature !== undefined) {
    if (raw === undefined || !equalStrings(options.bodySignature, webhookBodySignature(secret, raw))) {
      return { ok: false, reason: 'badSignature' };
    }
  }
  let parsed: unknown = body;
  if (raw !== undefined) {
    try {
      parsed = JSON.parse(typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8'));
    } catch {
      return { ok: false, reason: 'notJson' };
    }
  }
  if (!hasCommonFields(parsed)) return { ok: false, reason: 'malformed' };
  if (!equalStrings(parsed.signature, webhookSignature(secret, parsed.timestamp, parsed.nonce))) {
    return { ok: false, reason: 'badSignature' };
  }
  const maxAgeSeconds = options.maxAgeSeconds ?? DEFAULT_WEBHOOK_MAX_AGE_SECONDS;
  const nowSeconds = (options.now ?? Date.now()) / 1000;
  if (!(Math.abs(nowSeconds - Number(parsed.timestamp)) <= maxAgeSeconds)) return { ok: false, reason: 'staleTimestamp' };
  if (!(WEBHOOK_EVENTS as readonly string[]).includes(parsed.event)) return { ok: false, reason: 'unknownEvent' };
  return { ok: true, event: parsed as unknown as WebhookEvent };
}

interface CommonFields {
  event: string;
  appid: number;
  timestamp: number | string;
  nonce: string | number;
  signature: string;
  room_id: string;
  room_session_id: string;
  room_seq: number;
  event_time: number;
}

function hasCommonFields(value: unknown): value is CommonFields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.event === 'string' &&
    typeof v.appid === 'number' &&
    (typeof v.timestamp === 'number' || (typeof v.timestamp === 'string' && /^\d+$/.test(v.timestamp))) &&
    (typeof v.nonce === 'string' || typeof v.nonce === 'number') &&
    typeof v.signature === 'string' &&
    typeof v.room_id === 'string' &&
    typeof v.room_session_id === 'string' &&
    Number.isInteger(v.room_seq) &&
    typeof v.event_time === 'number'
  );
}

function equalStrings(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
