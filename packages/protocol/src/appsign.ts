/**
 * AppSign is never sent: the client proves it knows it by an HMAC-SHA256 over the server's
 * one-time nonce and the login it is making, keyed with the AppSign's 32 bytes.
 */
export function appSignProofMessage(nonce: string, appID: number, roomID: string, userID: string): string {
  return `parley-login:${nonce}:${appID}:${roomID}:${userID}`;
}

export const APP_SIGN_PATTERN = /^[0-9a-f]{64}$/i;

export function appSignKeyBytes(appSign: string): Uint8Array {
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = parseInt(appSign.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}
