/**
 * NACKs from a receiver (RFC 4585 generic NACK), the server's from publishers and the Node.js
 * SDK's from the server: per RTP stream (each simulcast layer has its own
 * SSRC and sequence numbers), the sequence numbers missing below the highest received, asked for
 * at once and again every retry interval until they arrive, a number of tries or an age has
 * passed. Sequence numbers are compared across the 16-bit wrap (unwrapped to a counter). werift's
 * own generator keeps one sequence for all of a receiver's SSRCs, so simulcast layers read as
 * endless losses of one another, and it does not compare across the wrap.
 */
import { realClock, type Clock } from './clock.js';
import { WindowedMinimum } from './windowedMinimum.js';

/** How often due NACKs go out. */
const TICK_MS = 10;
/**
 * A missing packet is asked for again after this long, or after a round trip when one is known
 * and longer: a sender (libwebrtc, the server) ignores requests for a packet it resent less than
 * a round trip ago, so tries closer together than that are lost. Spaced by 40 ms alone, the ten
 * tries were over in 400 ms, a few round trips at 100 ms and one at 300 ms: on a lossy link
 * whose repairs are themselves lost, too few for a packet to get through.
 */
const RETRY_MS = 40;
/**
 * Nor sooner than repairs have lately taken to arrive after a first request (the least of this
 * window's). The round trip known is the idle path's; on a congested uplink each repair also waits
 * in the sender's queue, and tries a round trip apart would each send another copy into it.
 */
const REPAIR_DELAY_WINDOW_MS = 2000;
const MAX_TRIES = 10;
/** Older than this, a packet is of no use to any jitter buffer. */
const MAX_AGE_MS = 1000;
/** A jump larger than this is a new sequence (a restarted stream), not a loss. */
const MAX_GAP = 1000;

interface Missing {
  firstMs: number;
  nextMs: number;
  tries: number;
}

class StreamLosses {
  /** The highest sequence number received, unwrapped; -1 before any. */
  private highest = -1;
  readonly missing = new Map<number, Missing>();

  /** `repairDelays`: how long repairs took to arrive after their first request, shared by the generator's streams. */
  constructor(private readonly repairDelays: WindowedMinimum) {}

  /** Returns how many sequence numbers it skipped (lost, or late): -1 when it is a repair or late. */
  onPacket(sequenceNumber: number, nowMs: number): number {
    if (this.highest < 0) {
      this.highest = 0x10000 + sequenceNumber;
      return 0;
    }
    const unwrapped = this.highest + ((((sequenceNumber - this.highest) & 0xffff) << 16) >> 16);
    if (unwrapped <= this.highest) {
      const missing = this.missing.get(unwrapped);
      // The first request went out as the gap was seen.
      if (missing && missing.tries > 0) this.repairDelays.add(nowMs - missing.firstMs, nowMs);
      this.missing.delete(unwrapped);
      return -1;
    }
    let skipped = 0;
    if (unwrapped - this.highest > MAX_GAP) {
      this.missing.clear();
    } else {
      for (let s = this.highest + 1; s < unwrapped; s++, skipped++) this.missing.set(s, { firstMs: nowMs, nextMs: nowMs, tries: 0 });
    }
    this.highest = unwrapped;
    return skipped;
  }

  /** The 16-bit sequence numbers to ask for now, each again after `retryMs`; forgets those that are too old or asked for too often. */
  due(nowMs: number, retryMs: number): number[] {
    const lost: number[] = [];
    for (const [sequence, missing] of this.missing) {
      if (missing.tries >= MAX_TRIES || nowMs - missing.firstMs > MAX_AGE_MS) {
        this.missing.delete(sequence);
      } else if (missing.nextMs <= nowMs) {
        missing.tries++;
        missing.nextMs = nowMs + retryMs;
        lost.push(sequence & 0xffff);
      }
    }
    return lost;
  }
}

export class NackGenerator {
  private readonly streams = new Map<number, StreamLosses>();
  private stopTicking: (() => void) | undefined;
  private closed = false;
  /** Sequence numbers seen go up to, over all streams: each packet that did and each it skipped. */
  private expectedCount = 0;
  private skippedCount = 0;
  private readonly repairDelays = new WindowedMinimum(REPAIR_DELAY_WINDOW_MS);

  constructor(
    /** Sends one NACK for `lost` (16-bit sequence numbers) of the stream `mediaSsrc`. */
    private readonly send: (mediaSsrc: number, lost: number[]) => void,
    private readonly clock: Clock = realClock,
    /** The round trip to the sender (ms) as now known, if it is. */
    private readonly roundTripMs: () => number | undefined = () => undefined,
  ) {}

  /**
   * Every media packet received, first transmissions and repairs alike (after RTX unwrapping), when
   * it was received. `arrived` false: a packet taken from another's redundancy (RED), which is not
   * to be asked for but was lost on the link all the same.
   */
  onPacket(ssrc: number, sequenceNumber: number, nowMs: number, arrived = true): void {
    if (this.closed) return;
    let stream = this.streams.get(ssrc);
    if (!stream) this.streams.set(ssrc, (stream = new StreamLosses(this.repairDelays)));
    const skipped = stream.onPacket(sequenceNumber, nowMs);
    if (skipped >= 0) {
      this.expectedCount += 1 + skipped;
      this.skippedCount += skipped + (arrived ? 0 : 1);
    }
    if (stream.missing.size > 0 && !this.stopTicking) {
      // The first request goes out now, not a tick later.
      this.tick();
      this.stopTicking = this.clock.every(TICK_MS, () => this.tick());
    }
  }

  /**
   * Packets expected and of them those that did not come in order (lost on the way, to be
   * repaired or not), since the generator started: the link's loss before repairs.
   */
  counts(): { expected: number; skipped: number } {
    return { expected: this.expectedCount, skipped: this.skippedCount };
  }

  private tick(): void {
    const nowMs = this.clock.now();
    const retryMs = Math.max(RETRY_MS, this.roundTripMs() ?? 0, this.repairDelays.least(nowMs) ?? 0);
    let pending = false;
    for (const [ssrc, stream] of this.streams) {
      const lost = stream.due(nowMs, retryMs);
      if (lost.length > 0) this.send(ssrc, lost);
      pending ||= stream.missing.size > 0;
    }
    if (!pending) {
      this.stopTicking?.();
      this.stopTicking = undefined;
    }
  }

  close(): void {
    this.closed = true;
    this.stopTicking?.();
    this.stopTicking = undefined;
    this.streams.clear();
  }
}
