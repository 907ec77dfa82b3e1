/**
 * Spreads what one player's transport sends over time, as libwebrtc's pacer does for a sender.
 * A forwarded frame arrives as a burst: a keyframe is dozens of packets within a millisecond.
 * A bottleneck whose queue holds a few kilobytes (a home router, a cell) drops the burst's tail
 * however little the average rate is, and a lost keyframe costs a request, another keyframe
 * and another burst. So video and retransmissions leave at a pacing rate, a multiple of what
 * the link carries, in bursts of at most BURST_MS of it:
 *  - audio is never held (it is small and late audio is concealed), but counts against the rate;
 *  - retransmissions go ahead of queued video, which they repair;
 *  - padding (probes) is for when nothing waits, and does not count: it must not delay media;
 *  - nothing waits longer than about MAX_QUEUE_MS: a queue that would drains faster, so that a
 *    rate set too low costs latency for a moment, not for good.
 * With nothing queued and budget left, a packet goes at once: the cost on the forwarding path is
 * a few arithmetic operations.
 */
import { realClock, type Clock } from '@parley/protocol/rtp';

import type { PacketKind } from './downlinkAllocator.js';

export interface PacerOptions {
  /** Puts a datagram on the wire; `nowMs` is when. */
  transmit(kind: PacketKind, datagram: Buffer, transportSequenceNumber: number, nowMs: number): void;
  clock?: Clock;
}

/** Video may leave in bursts of this much time at the pacing rate (libwebrtc's send burst interval). */
const BURST_MS = 40;
/** ...and at least one full packet. */
const MIN_BURST_BYTES = 1500;
/** How often a queue is drained. */
const TICK_MS = 5;
/** The longest a packet waits: a queue that would take longer at the pacing rate goes faster. */
const MAX_QUEUE_MS = 500;

interface Queued {
  kind: PacketKind;
  datagram: Buffer;
  transportSequenceNumber: number;
  queuedAtMs: number;
}

export class Pacer {
  private readonly clock: Clock;
  private rateBytesPerMs = Infinity;
  /** Bytes that may go now; negative after a packet larger than what was left. */
  private budget = MIN_BURST_BYTES;
  private refilledAtMs: number;
  /** Retransmissions, then video, each in the order given. */
  private readonly queues: { retransmission: Queued[]; video: Queued[] } = { retransmission: [], video: [] };
  private queuedBytes = 0;
  private stopTicking: (() => void) | undefined;
  private closed = false;

  constructor(private readonly options: PacerOptions) {
    this.clock = options.clock ?? realClock;
    this.refilledAtMs = this.clock.now();
  }

  /** The pacing rate; Infinity sends everything at once. */
  setRate(bps: number): void {
    this.refill(this.clock.now());
    this.rateBytesPerMs = bps / 8000;
  }

  /** Whether packets wait. */
  get busy(): boolean {
    return this.queuedBytes > 0;
  }

  /** Sends a datagram now or queues it (padding is not to be given while `busy`); `nowMs` is the clock's now. */
  send(kind: PacketKind, datagram: Buffer, transportSequenceNumber: number, nowMs: number): void {
    if (this.closed) return;
    this.refill(nowMs);
    if (kind === 'padding' || kind === 'audio' || (this.queuedBytes === 0 && this.budget > 0)) {
      if (kind !== 'padding') this.budget -= datagram.length;
      this.options.transmit(kind, datagram, transportSequenceNumber, nowMs);
      return;
    }
    this.queues[kind].push({ kind, datagram, transportSequenceNumber, queuedAtMs: nowMs });
    this.queuedBytes += datagram.length;
    this.stopTicking ??= this.clock.every(TICK_MS, () => this.drain());
  }

  private drain(): void {
    const nowMs = this.clock.now();
    this.refill(nowMs);
    const { retransmission, video } = this.queues;
    let head = 0;
    let queue = retransmission;
    while (this.budget > 0) {
      if (head === queue.length) {
        if (queue === video) break;
        retransmission.splice(0, head);
        queue = video;
        head = 0;
        continue;
      }
      const next = queue[head++]!;
      this.budget -= next.datagram.length;
      this.queuedBytes -= next.datagram.length;
      this.options.transmit(next.kind, next.datagram, next.transportSequenceNumber, nowMs);
    }
    queue.splice(0, head);
    if (this.queuedBytes === 0) this.stopDraining();
  }

  /** Adds what the rate allows since the last refill: faster when the queue would not drain in time. */
  private refill(nowMs: number): void {
    const elapsedMs = nowMs - this.refilledAtMs;
    this.refilledAtMs = nowMs;
    let rate = this.rateBytesPerMs;
    if (this.queuedBytes > 0) {
      const { retransmission, video } = this.queues;
      const oldestMs = Math.min(retransmission[0]?.queuedAtMs ?? nowMs, video[0]?.queuedAtMs ?? nowMs);
      rate = Math.max(rate, this.queuedBytes / Math.max(MAX_QUEUE_MS - (nowMs - oldestMs), TICK_MS));
    }
    if (rate === Infinity) {
      this.budget = Infinity;
      return;
    }
    if (this.budget === Infinity) this.budget = 0;
    const capacity = Math.max(MIN_BURST_BYTES, rate * BURST_MS);
    this.budget = Math.min(capacity, this.budget + rate * elapsedMs);
  }

  private stopDraining(): void {
    this.stopTicking?.();
    this.stopTicking = undefined;
  }

  /** Drops what waits; nothing is sent after. */
  close(): void {
    this.closed = true;
    this.stopDraining();
    this.queues.retransmission.length = this.queues.video.length = 0;
    this.queuedBytes = 0;
  }
}
