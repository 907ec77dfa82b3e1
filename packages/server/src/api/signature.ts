/**
 * Server-API request signatures: md5_hex(AppId + SignatureNonce + ServerSecret + Timestamp), with
 * timestamps within ±10 minutes and each nonce used once.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_WINDOW_SECONDS = 600;

export function apiSignature(appID: number | string, nonce: string, serverSecret: string, timestamp: number | string): string {
  return createHash('md5').update(`${appID}${nonce}${serverSecret}${timestamp}`).digest('hex');
}

export function signatureMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given.toLowerCase());
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Nonces seen within the signature window, so that a captured request cannot be replayed. */
export class NonceRegistry {
  private readonly seen = new Map<string, number>(); // key → expiry (unix s)

  constructor(private readonly maxEntries = 100_000) {}

  /** True the first time `key` is used; false for a replay, or when too many are in use (failing closed). */
  use(key: string, now: number): boolean {
    // Entries are kept in insertion order, which is expiry order: the expired ones are at the front.
    for (const [old, expiry] of this.seen) {
      if (expiry >= now) break;
      this.seen.delete(old);
    }
    if (this.seen.has(key) || this.seen.size >= this.maxEntries) return false;
    this.seen.set(key, now + 2 * SIGNATURE_WINDOW_SECONDS);
    return true;
  }
}
