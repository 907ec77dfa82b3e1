import { RtcpPayloadSpecificFeedback, type RtcpPacket } from 'werift';

const PLI_COUNT = 1;
const FIR_COUNT = 4;
const KEYFRAME_REQUESTS = new Set([PLI_COUNT, FIR_COUNT]);

/** Whether a PLI (media SSRC) or FIR (SSRC in its entries; RFC 5104 sets the media SSRC to 0) asks `ssrc` for a keyframe. */
export function asksForKeyFrame(rtcp: RtcpPacket, ssrc: number): boolean {
  if (!(rtcp instanceof RtcpPayloadSpecificFeedback) || !KEYFRAME_REQUESTS.has(rtcp.feedback.count)) return false;
  const feedback = rtcp.feedback as { mediaSsrc?: number; fir?: Array<{ ssrc: number }> };
  return feedback.mediaSsrc === ssrc || (feedback.fir?.some((entry) => entry.ssrc === ssrc) ?? false);
}
