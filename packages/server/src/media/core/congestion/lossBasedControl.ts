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
 * Loss that stays while the link shows no queue (a radio link's, a lossy path's) is inherent to it
 * and says nothing of its capacity; only loss above it steers the estimate, as in libwebrtc's
 * loss-based v2, whose model is inherent loss plus what the rate sends over capacity. It is the
 * median loss of this many recent windows without overuse, once there are a few.
 */
const INHERENT_LOSS_WINDOWS = 9;
const MIN_INHERENT_LOSS_WINDOWS = 3;
/** At most this much loss is taken as inherent: a link losing more is too poor to fill, whatever the cause. */
const MAX_INHERENT_LOSS_FRACTION = 0.1;

/**
 * SendSideBandwidthEstimation's classic loss-based control: under 2 % loss the target may rise 8 % above its
 * minimum of the last second, over 10 % it drops by half the loss fraction, in between it holds; it never
 * exceeds the delay-based estimate. The loss it reads is what exceeds the link's inherent loss.
 */
export class LossBasedControl {
  private targetBps: number;
  private delayBasedLimitBps = Infinity;
  /** (time, target) pairs of the last second with increasing targets: the front is the minimum. */
  private readonly minHistory: Array<{ atMs: number; bps: number }> = [];
  private firstUpdateMs: number | undefined;
  /** The loss above the inherent loss, of the last report. */
  private lossFraction = 0;
  /** Loss fractions of the latest windows without overuse, oldest first. */
  private readonly uncongestedLoss: number[] = [];
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

  /** `congested`: the delay-based detector saw overuse during the report's window. */
  onLossReport(lossFraction: number, nowMs: number, congested: boolean): void {
    if (!congested) {
      this.uncongestedLoss.push(lossFraction);
      if (this.uncongestedLoss.length > INHERENT_LOSS_WINDOWS) this.uncongestedLoss.shift();
    }
    this.lossFraction = Math.max(0, lossFraction - this.inherentLossFraction);
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

  /** The loss the link has without a queue, up to MAX_INHERENT_LOSS_FRACTION. */
  private get inherentLossFraction(): number {
    const losses = this.uncongestedLoss;
    if (losses.length < MIN_INHERENT_LOSS_WINDOWS) return 0;
    const sorted = [...losses].sort((a, b) => a - b);
    return Math.min(sorted[Math.floor(sorted.length / 2)]!, MAX_INHERENT_LOSS_FRACTION);
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
