/**
 * Whether the media the other side must send still arrives on a transport, judged from counts of
 * authenticated packets sampled now and then: the server and the SDKs judge alike. RTCP alone is
 * no proof of life: a path (or a sender) can carry RTCP while the media is lost.
 *
 * - `media` is what must arrive: RTP from a sender, RTCP from a receiver.
 * - A sender that reports what it sent (RTCP sender reports, RFC 3550 §6.4.1, one per SSRC) says
 *   when media is owed: while its reports arrive and their packet counts stand still (a paused
 *   or muted sender, a publisher that is itself cut off), no media is owed, and none arriving is
 *   no stall. A stream's first report after the media stopped may still count packets that did
 *   arrive; once a later one says more was sent, media is owed and the stall time runs.
 * - Without such reports, or when nothing arrives at all, media is owed all the time it is due.
 *
 * Nothing is judged before the first packet of media; a stall is reported once, with its cause,
 * and the next packet of media ends it. While the owner says nothing is due (a publisher that
 * muted all it sends) the stall time starts over.
 */
export type StallCause =
  /** Nothing at all arrived: the path is dead. */
  | 'silent'
  /** Other packets (RTCP) arrived, the media did not: a path or a sender that carries RTCP only. */
  | 'rtcp-only';
export type LivenessChange = { kind: 'stalled'; cause: StallCause } | { kind: 'resumed' };

/** Counts of authenticated packets received so far on a transport. */
export interface LivenessSample {
  /** Of the media the other side must send. */
  media: number;
  /** Of every kind (RTP and RTCP). */
  packets: number;
  /** The packet counts of the other side's latest sender reports, by SSRC, once it sends reports. */
  reportedSent?: ReadonlyMap<number, number>;
}

/** Spec default: no media for 3 s while the peer is expected to send. */
export const DEFAULT_MEDIA_STALL_MS = 3_000;

export class LivenessJudge {
  private phase: 'awaiting' | 'flowing' | 'stalled' = 'awaiting';
  private last = { media: 0, packets: 0 };
  /** The sender reports' counts as last sampled, and how often each has changed since media last arrived. */
  private readonly reported = new Map<number, { count: number; changes: number }>();
  /** When media last arrived (or the stall time last started over). */
  private mediaAtMs = 0;
  private packetsAtMs = -Infinity;
  /** Since when the sender's reports have said it sent more than has arrived, if they have. */
  private owedSinceMs: number | undefined;

  constructor(private readonly stallMs: number) {}

  /** How often to sample for a stall to be seen within a quarter of the stall time. */
  get sampleIntervalMs(): number {
    return Math.max(50, this.stallMs / 4);
  }

  /** Takes a sample, and whether media was due since the last one; returns what changed, if anything. */
  observe(sample: LivenessSample, nowMs: number, due = true): LivenessChange | undefined {
    const last = this.last;
    this.last = { media: sample.media, packets: sample.packets };
    if (sample.packets !== last.packets) this.packetsAtMs = nowMs;
    for (const [ssrc, count] of sample.reportedSent ?? []) {
      const seen = this.reported.get(ssrc);
      if (!seen) this.reported.set(ssrc, { count, changes: 0 });
      else if (seen.count !== count) {
        seen.count = count;
        if (++seen.changes >= 2) this.owedSinceMs ??= nowMs;
      }
    }
    if (sample.media !== last.media) {
      const wasStalled = this.phase === 'stalled';
      this.phase = 'flowing';
      this.mediaAtMs = nowMs;
      this.forgiveReports();
      return wasStalled ? { kind: 'resumed' } : undefined;
    }
    const reported = this.reported.size > 0;
    if (!due) {
      this.mediaAtMs = nowMs;
      this.forgiveReports();
      return undefined;
    }
    if (this.phase !== 'flowing') return undefined;
    const pathUp = nowMs - this.packetsAtMs < this.stallMs;
    const owedSinceMs = reported && pathUp ? this.owedSinceMs : this.mediaAtMs;
    if (owedSinceMs === undefined || nowMs - owedSinceMs < this.stallMs) return undefined;
    this.phase = 'stalled';
    return { kind: 'stalled', cause: pathUp ? 'rtcp-only' : 'silent' };
  }

  /** Judges a stall afresh from now (after an ICE restart): if nothing comes, it is reported again after the stall time. */
  rearm(nowMs: number): void {
    if (this.phase !== 'stalled') return;
    this.phase = 'flowing';
    this.mediaAtMs = nowMs;
    this.forgiveReports();
  }

  /** Nothing is owed as of now: the reports' changes count afresh. */
  private forgiveReports(): void {
    this.owedSinceMs = undefined;
    for (const seen of this.reported.values()) seen.changes = 0;
  }
}
