/** The loss-based estimate (the classic part of libwebrtc's send_side_bandwidth_estimation.cc). */
import { clamp } from './clamp.js';

const LOW_LOSS_FRACTION = 0.02;
const HIGH_LOSS_FRACTION = 0.1;
const LOSS_INCREASE_FACTOR = 1.08;
const LOSS_INCREASE_HEADROOM_BPS = 1000;
/** Increases build on the lowest target of this last interval, so the rate rises at most 8 % per interval. */
const LOSS_INCREASE_INTERVAL_MS = 1000;
/** Decreases are at least this long plus an RTT apart, letting the last one take effect first. */
const LOSS_DECREASE_INTERVAL_MS = 300;
/** Until this long after the first feedback, without loss, follow the delay-based estimate (and so its probes). */
const START_PHASE_MS = 2000;
/** Loss reports older than this no longer steer the estimate. */
const MAX_LOSS_REPORT_AGE_MS = 6000;

/**
 * SendSideBandwidthEstimation's classic loss-based control: under 2 % loss the target may rise 8 % above its
 * minimum of the last second, over 10 % it drops by half the loss fraction, in between it holds; it never
 * exceeds the delay-based estimate.
 */
export class LossBasedControl {
  private targetBps: number;
  private delayBasedLimitBps = Infinity;
  /** (time, target) pairs of the last second with increasing targets: the front is the minimum. */
  private readonly minHistory: Array<{ atMs: number; bps: number }> = [];
  private firstUpdateMs: number | undefined;
  private lossFraction = 0;
  private lastLossReportMs: number | undefined;
  private decreasedSinceLossReport = false;
  private lastDecreaseMs = -Infinity;

  constructor(
    initialBps: number,
    private readonly minBps: number,
    private readonly maxBps: number,
  ) {
    this.targetBps = initialBps;
  }

  get estimateBps(): number {
    return this.targetBps;
  }

  setDelayBasedLimit(bps: number): void {
    this.delayBasedLimitBps = bps;
    this.setTarget(this.targetBps);
  }

  /** A probe set the delay-based estimate: start from it rather than climbing to it 8 % at a time. */
  resetTo(bps: number): void {
    this.delayBasedLimitBps = bps;
    this.minHistory.length = 0;
    this.setTarget(bps);
  }

  onLossReport(lossFraction: number, nowMs: number): void {
    this.lossFraction = lossFraction;
    this.lastLossReportMs = nowMs;
    this.decreasedSinceLossReport = false;
  }

  update(nowMs: number, rttMs: number): void {
    this.firstUpdateMs ??= nowMs;
    if (this.lossFraction === 0 && nowMs - this.firstUpdateMs < START_PHASE_MS && this.delayBasedLimitBps > this.targetBps) {
      this.minHistory.length = 0;
      this.minHistory.push({ atMs: nowMs, bps: this.targetBps });
      this.setTarget(this.delayBasedLimitBps);
      return;
    }
    this.updateMinHistory(nowMs);
    if (this.lastLossReportMs === undefined || nowMs - this.lastLossReportMs >= MAX_LOSS_REPORT_AGE_MS) return;
    if (this.lossFraction <= LOW_LOSS_FRACTION) {
      this.setTarget(this.minHistory[0].bps * LOSS_INCREASE_FACTOR + LOSS_INCREASE_HEADROOM_BPS);
    } else if (
      this.lossFraction > HIGH_LOSS_FRACTION &&
      !this.decreasedSinceLossReport &&
      nowMs - this.lastDecreaseMs >= LOSS_DECREASE_INTERVAL_MS + rttMs
    ) {
      this.lastDecreaseMs = nowMs;
      this.decreasedSinceLossReport = true;
      this.setTarget(this.targetBps * (1 - 0.5 * this.lossFraction));
    }
  }

  private updateMinHistory(nowMs: number): void {
    const history = this.minHistory;
    while (history.length > 0 && nowMs - history[0].atMs + 1 > LOSS_INCREASE_INTERVAL_MS) history.shift();
    while (history.length > 0 && this.targetBps <= history[history.length - 1].bps) history.pop();
    history.push({ atMs: nowMs, bps: this.targetBps });
  }

  private setTarget(bps: number): void {
    this.targetBps = clamp(bps, this.minBps, Math.min(this.delayBasedLimitBps, this.maxBps));
  }
}
