/** A werift sender's VP8 frames as RTP, the way the bench's own publishers send them (no SDK). */
import { RtpHeader, RtpPacket, type RTCRtpSender } from 'werift';
import { packetizeVp8 } from '../packages/sdk/src/node/vp8.js';

/** Packetizes one frame and sends it; its packets are numbered on from `sequenceNumber`, and the next number is returned. */
export function sendVp8Frame(
  sender: RTCRtpSender,
  frame: Uint8Array,
  pictureId: number,
  timestamp: number,
  sequenceNumber: number,
): number {
  const payloads = packetizeVp8(frame, pictureId & 0x7fff);
  payloads.forEach((payload, i) => {
    const header = new RtpHeader({
      sequenceNumber: sequenceNumber++ & 0xffff,
      timestamp,
      marker: i === payloads.length - 1,
      payloadType: 0,
      ssrc: 0,
    });
    void sender.sendRtp(new RtpPacket(header, Buffer.from(payload))).catch(() => undefined);
  });
  return sequenceNumber;
}
