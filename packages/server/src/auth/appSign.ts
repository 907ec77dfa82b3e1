import { createHmac, timingSafeEqual } from 'node:crypto';
import { appSignKeyBytes, appSignProofMessage } from '@parley/protocol';

/** Checks the client's HMAC proof of the AppSign for this nonce and login. */
export function verifyAppSignProof(
  appSign: string,
  proofHex: string,
  login: { nonce: string; appID: number; roomID: string; userID: string },
): boolean {
  const expected = createHmac('sha256', appSignKeyBytes(appSign))
    .update(appSignProofMessage(login.nonce, login.appID, login.roomID, login.userID))
    .digest();
  const given = Buffer.from(proofHex, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
