import { createHmac, timingSafeEqual } from 'node:crypto';
import { appSignProofMessage, hexKeyBytes, resumeProofMessage } from '@parley/protocol';

/** Constant-time check of an HMAC-SHA256 proof made with a hex secret the server also holds. */
function verifyProof(secretHex: string, message: string, proofHex: string): boolean {
  const expected = createHmac('sha256', hexKeyBytes(secretHex)).update(message).digest();
  const given = Buffer.from(proofHex, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Checks the client's HMAC proof of the AppSign for this nonce and login. */
export function verifyAppSignProof(
  appSign: string,
  proofHex: string,
  login: { nonce: string; appID: number; roomID: string; userID: string },
): boolean {
  return verifyProof(appSign, appSignProofMessage(login.nonce, login.appID, login.roomID, login.userID), proofHex);
}

/** Checks a resuming client's proof that it holds the session's resume token. */
export function verifyResumeProof(resumeToken: string, proofHex: string, nonce: string, sessionID: string): boolean {
  return verifyProof(resumeToken, resumeProofMessage(nonce, sessionID), proofHex);
}
