/** The delay-based overuse detector: the trend of the one-way delay variation (libwebrtc's trendline_estimator.cc). */
import { clamp } from './clamp.js';

export type BandwidthUsage = 'normal' | 'overusing' | 'underusing';

const TRENDLINE_WINDOW = 20;
const TRENDLINE_SMOOTHING = 0.9;
const TRENDLINE_THRESHOLD_GAIN = 4;
/** The trend is scaled by the number of deltas seen, up to this many, so that early noise does not trigger. */
const MIN_NUM_DELTAS = 60;
const MAX_NUM_DELTAS = 1000;
const OVERUSE_TIME_THRESHOLD_MS = 10;
const THRESHOLD_K_UP = 0.0087;
const THRESHOLD_K_DOWN = 0.039;
const INITIAL_THRESHOLD_MS = 12.5;
const MIN_THRESHOLD_MS = 6;
const MAX_THRESHOLD_MS = 600;
/** The threshold does not adapt to trends this far beyond it (e.g. a sudden capacity drop). */
const MAX_ADAPT_OFFSET_MS = 15;
const MAX_THRESHOLD_STEP_MS = 100;

/** TrendlineEstimator: least-squares slope of the smoothed accumulated delay over a window of groups, and the overuse detector. */
export class TrendlineEstimator {
  usage: BandwidthUsage = 'normal';
  // The window of (arrival time since the first group, smoothed accumulated delay) points, a ring.
  private readonly timesMs = new Float64Array(TRENDLINE_WINDOW);
  private readonly delaysMs = new Float64Array(TRENDLINE_WINDOW);
  private nextPoint = 0;
  private points = 0;
  private numDeltas = 0;
  private firstArrivalMs: number | undefined;
  private accumulatedDelayMs = 0;
  private smoothedDelayMs = 0;
  private trend = 0;
  private previousTrend = 0;
  private thresholdMs = INITIAL_THRESHOLD_MS;
  private lastThresholdUpdateMs: number | undefined;
  /** How long the trend has been above the threshold, counted in send time; -1 when it is not. */
  private overusingTimeMs = -1;
  private overuseCount = 0;

  update(arrivalDeltaMs: number, sendDeltaMs: number, arrivalMs: number): void {
    this.numDeltas = Math.min(this.numDeltas + 1, MAX_NUM_DELTAS);
    this.firstArrivalMs ??= arrivalMs;
    this.accumulatedDelayMs += arrivalDeltaMs - sendDeltaMs;
    this.smoothedDelayMs = TRENDLINE_SMOOTHING * this.smoothedDelayMs + (1 - TRENDLINE_SMOOTHING) * this.accumulatedDelayMs;
    this.timesMs[this.nextPoint] = arrivalMs - this.firstArrivalMs;
    this.delaysMs[this.nextPoint] = this.smoothedDelayMs;
    this.nextPoint = (this.nextPoint + 1) % TRENDLINE_WINDOW;
    this.points = Math.min(this.points + 1, TRENDLINE_WINDOW);
    if (this.points === TRENDLINE_WINDOW) this.trend = this.slope() ?? this.trend;
    this.detect(sendDeltaMs, arrivalMs);
  }

  private slope(): number | undefined {
    let sumX = 0;
    let sumY = 0;
    for (let i = 0; i < TRENDLINE_WINDOW; i++) {
      sumX += this.timesMs[i];
      sumY += this.delaysMs[i];
    }
    const meanX = sumX / TRENDLINE_WINDOW;
    const meanY = sumY / TRENDLINE_WINDOW;
    let numerator = 0;
    let denominator = 0;
    for (let i = 0; i < TRENDLINE_WINDOW; i++) {
      const dx = this.timesMs[i] - meanX;
      numerator += dx * (this.delaysMs[i] - meanY);
      denominator += dx * dx;
    }
    return denominator === 0 ? undefined : numerator / denominator;
  }

  private detect(sendDeltaMs: number, nowMs: number): void {
    if (this.numDeltas < 2) {
      this.usage = 'normal';
      return;
    }
    const modifiedTrend = Math.min(this.numDeltas, MIN_NUM_DELTAS) * this.trend * TRENDLINE_THRESHOLD_GAIN;
    if (modifiedTrend > this.thresholdMs) {
      // Assume it has been overusing for half the time since the previous group.
      this.overusingTimeMs = this.overusingTimeMs === -1 ? sendDeltaMs / 2 : this.overusingTimeMs + sendDeltaMs;
      this.overuseCount++;
      if (this.overusingTimeMs > OVERUSE_TIME_THRESHOLD_MS && this.overuseCount > 1 && this.trend >= this.previousTrend) {
        this.overusingTimeMs = 0;
        this.overuseCount = 0;
        this.usage = 'overusing';
      }
    } else {
      this.overusingTimeMs = -1;
      this.overuseCount = 0;
      this.usage = modifiedTrend < -this.thresholdMs ? 'underusing' : 'normal';
    }
    this.previousTrend = this.trend;
    this.updateThreshold(modifiedTrend, nowMs);
  }

  /** The threshold follows the trend's magnitude, slowly up and faster down, so that it neither starves nor floods. */
  private updateThreshold(modifiedTrend: number, nowMs: number): void {
    const lastUpdateMs = this.lastThresholdUpdateMs ?? nowMs;
    this.lastThresholdUpdateMs = nowMs;
    const magnitude = Math.abs(modifiedTrend);
    if (magnitude > this.thresholdMs + MAX_ADAPT_OFFSET_MS) return;
    const k = magnitude < this.thresholdMs ? THRESHOLD_K_DOWN : THRESHOLD_K_UP;
    const stepMs = clamp(nowMs - lastUpdateMs, 0, MAX_THRESHOLD_STEP_MS);
    this.thresholdMs = clamp(this.thresholdMs + k * (magnitude - this.thresholdMs) * stepMs, MIN_THRESHOLD_MS, MAX_THRESHOLD_MS);
  }
}
