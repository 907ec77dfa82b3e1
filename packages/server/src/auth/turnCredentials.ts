/**
 * TURN credentials as coturn's `use-auth-secret` expects them (the TURN REST API scheme): the
 * username is "<expiry in unix seconds>:<userID>" and the password its HMAC-SHA1 under a secret
 * that Parley and the TURN server share. Nothing is stored: the TURN server checks the HMAC and
 * refuses a username whose time has passed.
 */
import { createHmac } from 'node:crypto';
import type { IceServer } from '@parley/protocol';

export interface TurnOptions {
  /** What clients use, e.g. `turn:turn.example.com:3478?transport=udp`, `…?transport=tcp`, `turns:turn.example.com:443?transport=tcp`. */
  urls: string[];
  /** coturn's `static-auth-secret`. */
  secret: string;
  /** How long credentials stay valid (default a day; a session resumed later gets new ones). */
  ttlSeconds?: number;
}

export const DEFAULT_TURN_TTL_SECONDS = 24 * 60 * 60;

/** The TURN server entry for `userID`'s peer connections, valid for the configured time from `nowMs`. */
export function turnCredentials(options: TurnOptions, userID: string, nowMs = Date.now()): IceServer {
  const expiry = Math.floor(nowMs / 1000) + (options.ttlSeconds ?? DEFAULT_TURN_TTL_SECONDS);
  const username = `${expiry}:${userID}`;
  return { urls: options.urls, username, credential: createHmac('sha1', options.secret).update(username).digest('base64') };
}
