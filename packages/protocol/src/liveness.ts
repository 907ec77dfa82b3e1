/**
 * Whether media still arrives on a transport, judged from its count of received packets (RTP and
 * RTCP) sampled now and then: the server and the SDKs judge alike. Nothing is judged before the
 * first packet; after it, a count that has not moved for the stall time is a stall, reported
 * once, and the next packet ends it.
 */
export type LivenessChange = 'stalled' | 'resumed';

/** Spec default: no RTP or RTCP for 3 s while the peer is expected to send. */
export const DEFAULT_MEDIA_STALL_MS = 3_000;

export class LivenessJudge {
  private phase: 'awaiting' | 'flowing' | 'stalled' = 'awaiting';
  private count = 0;
  private changedAtMs = 0;

  constructor(private readonly stallMs: number) {}

  /** How often to sample for a stall to be seen within a quarter of the stall time. */
  get sampleIntervalMs(): number {
    return Math.max(50, this.stallMs / 4);
  }

  /** Takes a sample of the count; returns what changed, if anything. */
  observe(count: number, nowMs: number): LivenessChange | undefined {
    if (count !== this.count) {
      const wasStalled = this.phase === 'stalled';
      this.count = count;
      this.changedAtMs = nowMs;
      this.phase = 'flowing';
      return wasStalled ? 'resumed' : undefined;
    }
    if (this.phase === 'flowing' && nowMs - this.changedAtMs >= this.stallMs) {
      this.phase = 'stalled';
      return 'stalled';
    }
    return undefined;
  }

  /** Judges a stall afresh from now (after an ICE restart): if nothing comes, it is reported again after the stall time. */
  rearm(nowMs: number): void {
    if (this.phase !== 'stalled') return;
    this.phase = 'flowing';
    this.changedAtMs = nowMs;
  }
}
