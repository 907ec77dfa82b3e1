/**
 * AppSign is never sent: the client proves it knows it by an HMAC-SHA256 over the server's
 * one-time nonce and the login it is making, keyed with the AppSign's 32 bytes.
 */
export function appSignProofMessage(nonce: string, appID: number, roomID: string, userID: string): string {
  return `parley-login:${nonce}:${appID}:${roomID}:${userID}`;
}

/** A resuming client proves it holds the session's resume token the same way, over a fresh nonce. */
export function resumeProofMessage(nonce: string, sessionID: string): string {
  return `parley-resume:${nonce}:${sessionID}`;
}

export const APP_SIGN_PATTERN = /^[0-9a-f]{64}$/i;

/** The bytes of a hex secret (the AppSign, a resume token). */
export function hexKeyBytes(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}
