/**
 * Transport-wide congestion control feedback to a publisher (transport-cc): the arrival time of
 * every packet it sent, so its congestion controller finds what its uplink really carries.
 * werift has a receiver of its own for this, which reports lost packets as received and sends
 * only every tenth packet's worth; ours takes its place.
 */
import type { RTCPeerConnection, RtpPacket } from 'werift';
import { dtlsTransportInternals, rtpReceiverInternals, type RtpReceiverInternals } from '@parley/protocol/rtp';
import { TwccRecorder } from '../core/congestion/twcc.js';

export const TRANSPORT_CC_URI = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';

/**
 * How often feedback is sent. libwebrtc sends every 50–250 ms, keeping feedback near 5 % of the
 * media rate; 50 ms is what it does at the rates a camera sends and lets the sender react within
 * a round trip or two.
 */
const FEEDBACK_INTERVAL_MS = 50;

/** werift calls `handleTWCC` per received packet when transport-cc was negotiated; this one does nothing. */
const SILENT_WERIFT_TWCC: RtpReceiverInternals['receiverTWCC'] = { twccRunning: false, handleTWCC(): void {} };

export class UplinkFeedback {
  private readonly recorder: TwccRecorder;
  private readonly timer: NodeJS.Timeout;
  private readonly extensionId: number | undefined;
  private readonly peer: RTCPeerConnection;

  /**
   * Call after the offer is applied (extension ids are known) and before media flows; then give
   * `record` every packet of the bundle (audio, video, retransmissions, probes, even those werift's
   * router cannot place) as it leaves SRTP.
   */
  constructor(pc: RTCPeerConnection, senderSsrc: number) {
    this.peer = pc;
    const transceivers = pc.getTransceivers();
    this.extensionId = transceivers.flatMap((t) => t.headerExtensions).find((e) => e.uri === TRANSPORT_CC_URI)?.id;
    this.recorder = new TwccRecorder({ senderSsrc });
    for (const t of transceivers) rtpReceiverInternals(t.receiver).receiverTWCC = SILENT_WERIFT_TWCC;
    this.timer = setInterval(() => this.flush(), FEEDBACK_INTERVAL_MS);
    this.timer.unref();
  }

  /** Whether the publisher's offer negotiated transport-cc at all. */
  get negotiated(): boolean {
    return this.extensionId !== undefined;
  }

  record(packet: RtpPacket): void {
    const { extensionId } = this;
    if (extensionId === undefined) return;
    for (const extension of packet.header.extensions) {
      if (extension.id === extensionId && extension.payload.length >= 2) {
        this.recorder.onPacket(extension.payload.readUInt16BE(0), performance.now() * 1000, packet.header.ssrc);
        return;
      }
    }
  }

  private flush(): void {
    const transport = this.peer.getTransceivers()[0]?.receiver.dtlsTransport;
    if (!transport) return;
    const packets = this.recorder.buildFeedback();
    if (packets.length > 0) {
      void dtlsTransportInternals(transport)
        .sendRtcp(packets.map((bytes) => ({ serialize: () => bytes })))
        .catch(() => undefined);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
