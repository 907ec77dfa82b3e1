/** The rate acknowledged as received (libwebrtc's bitrate_estimator.cc). */

/** A longer first window gives a steadier first sample to start from. */
const INITIAL_RATE_WINDOW_MS = 500;
const RATE_WINDOW_MS = 150;
const RATE_UNCERTAINTY_SCALE = 10;
/** Variances in (kbit/s)²: the prior's, and how much it grows per sample to let the rate move. */
const INITIAL_RATE_VARIANCE = 50;
const RATE_PROCESS_VARIANCE = 5;

/**
 * BitrateEstimator: bytes acknowledged per window of arrival time, folded into a Bayesian estimate that trusts
 * a sample less the further it is from the estimate, so that one odd window barely moves it.
 */
export class AcknowledgedBitrateEstimator {
  private estimateKbps: number | undefined;
  private variance = INITIAL_RATE_VARIANCE;
  private windowBytes = 0;
  private windowMs = 0;
  private previousArrivalMs: number | undefined;

  get bps(): number | undefined {
    return this.estimateKbps === undefined ? undefined : this.estimateKbps * 1000;
  }

  update(arrivalMs: number, sizeBytes: number): void {
    const sampleKbps = this.sample(arrivalMs, sizeBytes, this.estimateKbps === undefined ? INITIAL_RATE_WINDOW_MS : RATE_WINDOW_MS);
    if (sampleKbps === undefined) return;
    if (this.estimateKbps === undefined) {
      this.estimateKbps = sampleKbps;
      return;
    }
    // Relative to estimate and sample together: libwebrtc's `uncertainty_symmetry_cap` without a cap. Relative to
    // the estimate alone (its default), an SFU's estimate locks onto the audio-only rate before video starts and
    // barely moves when the video's 50 times as much follows. At least 1 kbit/s, so nothing divides by zero.
    const sampleUncertainty =
      (RATE_UNCERTAINTY_SCALE * Math.abs(this.estimateKbps - sampleKbps)) / Math.max(this.estimateKbps + sampleKbps, 1);
    const sampleVariance = sampleUncertainty * sampleUncertainty;
    const predictedVariance = this.variance + RATE_PROCESS_VARIANCE;
    this.estimateKbps = (sampleVariance * this.estimateKbps + predictedVariance * sampleKbps) / (sampleVariance + predictedVariance);
    this.variance = (sampleVariance * predictedVariance) / (sampleVariance + predictedVariance);
  }

  /** Adds the bytes to the current window; returns the rate of the window this closes, if any. */
  private sample(arrivalMs: number, sizeBytes: number, windowLengthMs: number): number | undefined {
    if (this.previousArrivalMs !== undefined && arrivalMs < this.previousArrivalMs) {
      this.previousArrivalMs = undefined; // time went backwards: start over
      this.windowBytes = 0;
      this.windowMs = 0;
    }
    if (this.previousArrivalMs !== undefined) {
      const gapMs = arrivalMs - this.previousArrivalMs;
      this.windowMs += gapMs;
      // Nothing arrived for a whole window: what was counted before the gap says nothing about the rate.
      if (gapMs > windowLengthMs) {
        this.windowBytes = 0;
        this.windowMs %= windowLengthMs;
      }
    }
    this.previousArrivalMs = arrivalMs;
    let sampleKbps: number | undefined;
    if (this.windowMs >= windowLengthMs) {
      sampleKbps = (8 * this.windowBytes) / windowLengthMs;
      this.windowMs -= windowLengthMs;
      this.windowBytes = 0;
    }
    this.windowBytes += sizeBytes;
    return sampleKbps;
  }
}
