/** The delay-based estimate (libwebrtc's aimd_rate_control.cc and link_capacity_estimator.cc). */
import { clamp } from './clamp.js';
import type { BandwidthUsage } from './trendlineEstimator.js';

/** The RTT assumed until feedback measures one. */
export const DEFAULT_RTT_MS = 200;

const BACKOFF_FACTOR = 0.85;
const MULTIPLICATIVE_INCREASE_PER_SECOND = 1.08;
const MIN_MULTIPLICATIVE_INCREASE_BPS = 1000;
const MIN_ADDITIVE_INCREASE_BPS_PER_SECOND = 4000;
/** Additive increase adds about one packet of a 30 fps stream per response time (2 × (RTT + 100 ms of detector delay)). */
const ADDITIVE_INCREASE_FRAME_INTERVAL_MS = 1000 / 30;
const ADDITIVE_INCREASE_PACKET_BYTES = 1200;
const DETECTOR_DELAY_MS = 100;
/** The estimate may run ahead of the acknowledged rate by this much, no further: it is only tested by sending. */
const INCREASE_LIMIT_FACTOR = 1.5;
const INCREASE_LIMIT_HEADROOM_BPS = 10_000;

/**
 * AimdRateControl: the delay-based estimate. Normal usage raises it, multiplicatively while the link capacity is
 * unknown and additively once an overuse has located it; overuse cuts it to 0.85 × the acknowledged rate, then
 * holds it until the queue has drained (the detector reports normal again); underuse holds it.
 */
export class AimdRateControl {
  rttMs = DEFAULT_RTT_MS;
  private bps: number;
  private holding = true;
  private lastChangeMs = -Infinity;
  private latestAcknowledgedBps: number;
  private readonly capacity = new LinkCapacityEstimator();

  constructor(
    initialBps: number,
    private readonly minBps: number,
    private readonly maxBps: number,
  ) {
    this.bps = initialBps;
    this.latestAcknowledgedBps = initialBps;
  }

  get estimateBps(): number {
    return this.bps;
  }

  /** Decrease at most once per RTT, unless the acknowledged rate has fallen below half the estimate. */
  timeToReduceFurther(nowMs: number, acknowledgedBps?: number): boolean {
    if (nowMs - this.lastChangeMs >= clamp(this.rttMs, 10, 200)) return true;
    return acknowledgedBps !== undefined && acknowledgedBps < 0.5 * this.bps;
  }

  setEstimate(bps: number, nowMs: number): void {
    this.bps = clamp(bps, this.minBps, this.maxBps);
    this.lastChangeMs = nowMs;
  }

  update(usage: BandwidthUsage, acknowledgedBps: number | undefined, nowMs: number): void {
    if (acknowledgedBps !== undefined) this.latestAcknowledgedBps = acknowledgedBps;
    const throughputBps = this.latestAcknowledgedBps;
    if (usage === 'overusing') this.decrease(throughputBps, nowMs);
    else if (usage === 'underusing') this.holding = true;
    else this.increase(throughputBps, nowMs);
  }

  private increase(throughputBps: number, nowMs: number): void {
    if (this.holding) {
      this.holding = false;
      this.lastChangeMs = nowMs;
    }
    if (throughputBps > this.capacity.upperBoundBps) this.capacity.reset();
    const limitBps = INCREASE_LIMIT_FACTOR * throughputBps + INCREASE_LIMIT_HEADROOM_BPS;
    if (this.bps < limitBps) {
      const seconds = (nowMs - this.lastChangeMs) / 1000;
      const increaseBps =
        this.capacity.estimateBps !== undefined
          ? this.additiveIncreaseBpsPerSecond() * seconds
          : Math.max(this.bps * (MULTIPLICATIVE_INCREASE_PER_SECOND ** Math.min(seconds, 1) - 1), MIN_MULTIPLICATIVE_INCREASE_BPS);
      this.bps = clamp(Math.min(this.bps + increaseBps, limitBps), this.minBps, this.maxBps);
    }
    this.lastChangeMs = nowMs;
  }

  private decrease(throughputBps: number, nowMs: number): void {
    // Just under the throughput, so that the queue this overuse built can drain.
    let decreasedBps = BACKOFF_FACTOR * throughputBps;
    if (decreasedBps > this.bps && this.capacity.estimateBps !== undefined) decreasedBps = BACKOFF_FACTOR * this.capacity.estimateBps;
    if (decreasedBps < this.bps) this.bps = clamp(decreasedBps, this.minBps, this.maxBps);
    if (throughputBps < this.capacity.lowerBoundBps) this.capacity.reset();
    this.capacity.onOveruse(throughputBps);
    this.holding = true;
    this.lastChangeMs = nowMs;
  }

  private additiveIncreaseBpsPerSecond(): number {
    const frameBits = (this.bps * ADDITIVE_INCREASE_FRAME_INTERVAL_MS) / 1000;
    const packetBits = frameBits / Math.ceil(frameBits / (8 * ADDITIVE_INCREASE_PACKET_BYTES));
    const responseTimeMs = 2 * (this.rttMs + DETECTOR_DELAY_MS);
    return Math.max(MIN_ADDITIVE_INCREASE_BPS_PER_SECOND, (packetBits * 1000) / responseTimeMs);
  }
}

const CAPACITY_SMOOTHING = 0.05;
/** Normalised variance bounds: 0.4 ≈ 14 kbit/s and 2.5 ≈ 35 kbit/s of deviation at 500 kbit/s. */
const MIN_CAPACITY_DEVIATION = 0.4;
const MAX_CAPACITY_DEVIATION = 2.5;

/** LinkCapacityEstimator: the acknowledged rates at which overuse happened, averaged, with a ±3σ band. */
class LinkCapacityEstimator {
  private estimateKbps: number | undefined;
  private deviation = MIN_CAPACITY_DEVIATION;

  get estimateBps(): number | undefined {
    return this.estimateKbps === undefined ? undefined : this.estimateKbps * 1000;
  }

  get upperBoundBps(): number {
    return this.estimateKbps === undefined ? Infinity : (this.estimateKbps + 3 * this.deviationKbps(this.estimateKbps)) * 1000;
  }

  get lowerBoundBps(): number {
    return this.estimateKbps === undefined ? 0 : (this.estimateKbps - 3 * this.deviationKbps(this.estimateKbps)) * 1000;
  }

  reset(): void {
    this.estimateKbps = undefined;
  }

  onOveruse(acknowledgedBps: number): void {
    const sampleKbps = acknowledgedBps / 1000;
    const estimateKbps =
      this.estimateKbps === undefined ? sampleKbps : (1 - CAPACITY_SMOOTHING) * this.estimateKbps + CAPACITY_SMOOTHING * sampleKbps;
    this.estimateKbps = estimateKbps;
    const errorKbps = estimateKbps - sampleKbps;
    this.deviation = clamp(
      (1 - CAPACITY_SMOOTHING) * this.deviation + (CAPACITY_SMOOTHING * errorKbps * errorKbps) / Math.max(estimateKbps, 1),
      MIN_CAPACITY_DEVIATION,
      MAX_CAPACITY_DEVIATION,
    );
  }

  private deviationKbps(estimateKbps: number): number {
    return Math.sqrt(this.deviation * estimateKbps);
  }
}
