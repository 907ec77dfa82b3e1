import { ErrorCode } from '@parley/protocol';
import { CaptureError, type MediaTransport } from './platform.js';
import type { Reply } from './signalling.js';

export type NegotiationResult = { code: 0 } | { code: number; message: string };

/**
 * Offer → server → answer → connected, for one transport. `stillWanted` is checked after every
 * wait so that a stop() in the middle wins and nothing is reported for the abandoned attempt.
 */
export async function negotiate(
  transport: MediaTransport,
  exchange: (offer: string) => Promise<Reply<'publish' | 'play'>>,
  connectTimeoutMs: number,
  interruptedCode: number,
): Promise<NegotiationResult> {
  let offer: string;
  try {
    offer = await transport.createOffer();
  } catch (err) {
    return { code: err instanceof CaptureError ? err.code : interruptedCode, message: `offer failed: ${(err as Error).message}` };
  }
  const reply = await exchange(offer);
  if (reply.code !== 0 || !('data' in reply)) return reply as { code: number; message: string };
  try {
    await transport.applyAnswer(reply.data.sdp);
  } catch (err) {
    return { code: ErrorCode.InvalidSdp, message: `answer rejected: ${(err as Error).message}` };
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ code: interruptedCode, message: 'media connection timed out' }), connectTimeoutMs);
    transport.onStateChange((state) => {
      clearTimeout(timer);
      resolve(state === 'connected' ? { code: 0 } : { code: interruptedCode, message: 'media connection failed' });
    });
  });
}
