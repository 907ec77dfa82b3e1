/**
 * A publisher's audio as it arrives: plain Opus, or RED (RFC 2198) around Opus. Each frame goes
 * to players once, in the order it can be played: a frame lost on the way to the server is
 * taken from the redundancy of the packet after it, and a copy of a frame already delivered (a
 * late original, a retransmission, a repeat) is dropped.
 */
import { RtpHeader, RtpPacket } from 'werift';
import { parseRed, type RedBlock } from '../core/red.js';

/** An audio packet for players: plain Opus, or RED with its blocks (the primary last). */
export interface AudioPacket {
  readonly rtp: RtpPacket;
  readonly red: readonly RedBlock[] | undefined;
  /** Its audio level extension's byte (RFC 6464), -1 when unknown. */
  readonly level: number;
}

/** The negotiated payload types, and the audio level extension's id (0: none). */
export interface AudioFormat {
  opus: number;
  /** -1 when the publisher does not send RED. */
  red: number;
  levelId: number;
}

/** Which recent sequence numbers arrived, by sequence number modulo this (RED reaches two back, retransmissions a second). */
const RECEIVED_WINDOW = 128;

export class AudioReceiver {
  /** The sequence number last delivered in each slot, -1 for none. */
  private readonly delivered = new Int32Array(RECEIVED_WINDOW).fill(-1);

  constructor(readonly format: AudioFormat) {}

  /**
   * What players get for `rtp`, oldest first: the frames it carries for sequence numbers that did
   * not arrive (as plain Opus packets), then itself; nothing when it was delivered already.
   * Undefined when it is not audio this publisher negotiated, or malformed RED.
   */
  receive(rtp: RtpPacket): AudioPacket[] | undefined {
    const { header } = rtp;
    const { sequenceNumber } = header;
    let red: RedBlock[] | undefined;
    if (header.payloadType === this.format.red) {
      red = parseRed(rtp.payload);
      if (!red) return undefined;
    } else if (header.payloadType !== this.format.opus) {
      return undefined;
    }
    if (this.wasDelivered(sequenceNumber)) return [];
    const out: AudioPacket[] = [];
    // The last redundant block is the previous sequence number's frame, the one before it the one before that.
    for (let back = red ? red.length - 1 : 0; back >= 1; back--) {
      const missing = (sequenceNumber - back) & 0xffff;
      const block = red![red!.length - 1 - back]!;
      if (this.wasDelivered(missing) || block.end === block.start) continue;
      const recovered = new RtpHeader({
        ...header,
        sequenceNumber: missing,
        timestamp: (header.timestamp - block.timestampOffset) >>> 0,
        payloadType: this.format.opus,
        marker: false,
      });
      out.push({ rtp: new RtpPacket(recovered, rtp.payload.subarray(block.start, block.end)), red: undefined, level: -1 });
      this.markDelivered(missing);
    }
    const levelId = this.format.levelId;
    const level = levelId ? (header.extensions.find((e) => e.id === levelId)?.payload[0] ?? -1) : -1;
    out.push({ rtp, red, level });
    this.markDelivered(sequenceNumber);
    return out;
  }

  private wasDelivered(sequenceNumber: number): boolean {
    return this.delivered[sequenceNumber % RECEIVED_WINDOW] === sequenceNumber;
  }

  private markDelivered(sequenceNumber: number): void {
    this.delivered[sequenceNumber % RECEIVED_WINDOW] = sequenceNumber;
  }
}
