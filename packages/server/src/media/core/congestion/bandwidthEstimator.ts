/**
 * Send-side bandwidth estimation for one player's downlink, after libwebrtc's goog_cc (Google Congestion
 * Control). The SFU stamps each RTP packet it sends the player with a transport-wide sequence number and
 * reports it here (onPacketSent); the player's transport-cc feedback says when each one arrived, or that it
 * was lost (onFeedback). The parts, each in a file of its own following its libwebrtc counterpart and constants:
 *  - InterArrival (inter_arrival_delta.cc): groups packets into 5 ms send bursts and yields the send- and
 *    arrival-time deltas between consecutive groups;
 *  - TrendlineEstimator (trendline_estimator.cc): the slope of the smoothed one-way delay variation against an
 *    adaptive threshold gives the link usage: normal, overusing or underusing;
 *  - AcknowledgedBitrateEstimator (bitrate_estimator.cc): the Bayesian-smoothed rate acknowledged as received;
 *  - AimdRateControl (aimd_rate_control.cc, link_capacity_estimator.cc): the delay-based estimate, raised
 *    multiplicatively far from the last congestion point and additively near it, cut to 0.85 × the
 *    acknowledged rate on overuse, and set by successful probes (delay_based_bwe.cc);
 *  - ProbeBitrateEstimator (probe_bitrate_estimator.cc): the rate a probe cluster got through;
 *  - QueueDelayMeter (ours): a queue that stands at its limit, dropping what exceeds the link, which the
 *    delay gradient reads as normal; it counts as overuse;
 *  - LossBasedControl (the classic SendSideBandwidthEstimation): +8 % under 2 % loss, −loss/2 over 10 %,
 *    never above the delay-based estimate; the loss it reads is what exceeds the loss the link has
 *    without a queue (its inherent loss, up to 10 %), as libwebrtc's loss-based v2 models it.
 * This estimator keeps the sent-packet history, feeds the parts from each feedback and combines them.
 * Left out: ALR detection, the rest of the loss-based v2 estimator, congestion-window pushback, size deltas (only
 * libwebrtc's older Kalman filter used them), and probe scheduling, which is the caller's.
 */
import { AcknowledgedBitrateEstimator } from './acknowledgedBitrateEstimator.js';
import { AimdRateControl, DEFAULT_RTT_MS } from './aimdRateControl.js';
import { clamp } from './clamp.js';
import { InterArrival } from './interArrival.js';
import { LossBasedControl } from './lossBasedControl.js';
import { ProbeBitrateEstimator, type ProbeResult } from './probeBitrateEstimator.js';
import { QueueDelayMeter } from './queueDelay.js';
import { TrendlineEstimator, type BandwidthUsage } from './trendlineEstimator.js';
import type { PacketResult } from './twcc.js';

export type { BandwidthUsage, PacketResult, ProbeResult };

export interface SentPacket {
  /** 16-bit, as stamped in the transport-wide sequence number extension. */
  transportSequenceNumber: number;
  /** The whole RTP packet including its header. */
  sizeBytes: number;
  /** Monotonic milliseconds, the clock onFeedback's `nowMs` uses. */
  sendTimeMs: number;
  /** The probe cluster this packet belongs to, if any: a non-negative 32-bit integer. */
  probeClusterId?: number;
}

export interface BandwidthEstimatorOptions {
  initialBps: number;
  minBps: number;
  maxBps: number;
}

/** Sent packets remembered for feedback: a power of two, about 1.6 s at 2,500 packets/s (30 Mbit/s). */
const HISTORY_SIZE = 4096;
const HISTORY_MASK = HISTORY_SIZE - 1;
/** A history entry's feedback state. */
const NOT_REPORTED = 0;
const REPORTED_LOST = 1;
const RECEIVED = 2;

/** Without feedback for this long the delay history is stale; the delay detector starts over. */
const STREAM_TIMEOUT_MS = 2000;
/** Loss is measured over windows of this length holding at least this many packets. */
const LOSS_WINDOW_MS = 1000;
const LOSS_WINDOW_MIN_PACKETS = 20;
/** A queue in which every packet of the last 200 ms waited this long is the link's limit, as overuse is. */
const STANDING_QUEUE_MS = 50;
/** A probe result may lower the estimate, but not below this fraction of the acknowledged rate. */
const PROBE_DROP_THROUGHPUT_FRACTION = 0.85;

export class BandwidthEstimator {
  private readonly minBps: number;
  private readonly maxBps: number;

  // The sent-packet history, a ring indexed by unwrapped sequence number; sequence -1 marks an empty slot.
  private readonly sequence = new Float64Array(HISTORY_SIZE).fill(-1);
  private readonly sendTimeMs = new Float64Array(HISTORY_SIZE);
  private readonly arrivalTimeMs = new Float64Array(HISTORY_SIZE);
  private readonly sizeBytes = new Uint32Array(HISTORY_SIZE);
  private readonly probeClusterId = new Int32Array(HISTORY_SIZE);
  private readonly feedbackState = new Uint8Array(HISTORY_SIZE);
  private newestSentSequence = -1;

  private interArrival = new InterArrival();
  private trendline = new TrendlineEstimator();
  private readonly acknowledged = new AcknowledgedBitrateEstimator();
  private readonly probes = new ProbeBitrateEstimator();
  private readonly queue = new QueueDelayMeter();
  private readonly delayBased: AimdRateControl;
  private readonly lossBased: LossBasedControl;
  private lastFeedbackMs: number | undefined;
  private rttMs: number | undefined;

  private lossWindowEndMs: number | undefined;
  private lossWindowLost = 0;
  private lossWindowTotal = 0;
  /** Whether the delay-based detector saw overuse in the current loss window. */
  private lossWindowCongested = false;
  private lastLossFraction = 0;

  /** Scratch for one feedback: history slots of the packets it newly reports received. */
  private readonly receivedSlots: number[] = [];
  private readonly byArrivalTime = (a: number, b: number): number => this.arrivalTimeMs[a] - this.arrivalTimeMs[b];

  constructor(options: BandwidthEstimatorOptions) {
    const { minBps, maxBps } = options;
    if (!(minBps > 0 && maxBps >= minBps)) throw new RangeError(`invalid bitrate bounds [${minBps}, ${maxBps}]`);
    this.minBps = minBps;
    this.maxBps = maxBps;
    const initialBps = clamp(options.initialBps, minBps, maxBps);
    this.delayBased = new AimdRateControl(initialBps, minBps, maxBps);
    this.lossBased = new LossBasedControl(initialBps, minBps, maxBps);
  }

  /** On the forwarding path: O(1), writing into preallocated arrays (and a map entry per probe packet). */
  onPacketSent(packet: SentPacket): void {
    const wrapped = packet.transportSequenceNumber & 0xffff;
    // Unwrap against the newest sent number; starting at 2^16 keeps every unwrapped feedback number positive.
    const sequence =
      this.newestSentSequence < 0
        ? 0x10000 + wrapped
        : this.newestSentSequence + (((wrapped - (this.newestSentSequence & 0xffff)) << 16) >> 16);
    if (sequence > this.newestSentSequence) this.newestSentSequence = sequence;
    const slot = sequence & HISTORY_MASK;
    this.sequence[slot] = sequence;
    this.sendTimeMs[slot] = packet.sendTimeMs;
    this.sizeBytes[slot] = packet.sizeBytes;
    this.feedbackState[slot] = NOT_REPORTED;
    const clusterId = packet.probeClusterId;
    this.probeClusterId[slot] = clusterId ?? -1;
    if (clusterId !== undefined) this.probes.onSent(clusterId, packet.sizeBytes, packet.sendTimeMs);
  }

  onFeedback(results: readonly PacketResult[], nowMs: number): void {
    const received = this.receivedSlots;
    received.length = 0;
    let known = 0;
    let minFeedbackRttMs = Infinity;
    for (const result of results) {
      const slot = this.slotOf(result.sequenceNumber);
      if (slot < 0) continue;
      known++;
      const state = this.feedbackState[slot];
      const clusterId = this.probeClusterId[slot];
      const arrivalUs = result.arrivalTimeUs;
      if (arrivalUs === undefined || !Number.isFinite(arrivalUs)) {
        if (state !== NOT_REPORTED) continue;
        this.feedbackState[slot] = REPORTED_LOST;
        this.lossWindowLost++;
        this.lossWindowTotal++;
        if (clusterId >= 0) this.probes.onReported(clusterId);
        continue;
      }
      if (state === RECEIVED) continue;
      if (state === REPORTED_LOST) {
        // It arrived after all: count it as received. If its loss was counted in an earlier window, the
        // correction lands in this one.
        this.lossWindowLost = Math.max(0, this.lossWindowLost - 1);
      } else {
        this.lossWindowTotal++;
        if (clusterId >= 0) this.probes.onReported(clusterId);
      }
      this.feedbackState[slot] = RECEIVED;
      this.arrivalTimeMs[slot] = arrivalUs / 1000;
      received.push(slot);
      minFeedbackRttMs = Math.min(minFeedbackRttMs, nowMs - this.sendTimeMs[slot]);
    }
    if (known === 0) return;

    if (this.lastFeedbackMs !== undefined && nowMs - this.lastFeedbackMs > STREAM_TIMEOUT_MS) {
      this.interArrival = new InterArrival();
      this.trendline = new TrendlineEstimator();
    }
    this.lastFeedbackMs = nowMs;
    // The newest packet in a feedback was sent about one RTT (plus queueing) ago; smoothed like TCP's SRTT.
    if (minFeedbackRttMs >= 0 && minFeedbackRttMs < Infinity) {
      this.rttMs = this.rttMs === undefined ? minFeedbackRttMs : this.rttMs + (minFeedbackRttMs - this.rttMs) / 8;
    }
    const rttMs = this.rttMs ?? DEFAULT_RTT_MS;

    // As DelayBasedBwe: nothing received, nothing to learn about delay.
    if (received.length > 0) {
      received.sort(this.byArrivalTime);
      for (const slot of received) {
        const sizeBytes = this.sizeBytes[slot];
        const arrivalMs = this.arrivalTimeMs[slot];
        this.acknowledged.update(arrivalMs, sizeBytes);
        this.queue.add(this.sendTimeMs[slot], arrivalMs);
        const clusterId = this.probeClusterId[slot];
        if (clusterId >= 0) this.probes.onReceived(clusterId, this.sendTimeMs[slot], arrivalMs, sizeBytes);
        if (this.interArrival.add(this.sendTimeMs[slot], arrivalMs, nowMs)) {
          this.trendline.update(this.interArrival.arrivalDeltaMs, this.interArrival.sendDeltaMs, arrivalMs);
        }
        if (this.usage === 'overusing') this.lossWindowCongested = true;
      }
      const probeApplied = this.updateDelayBased(this.probes.completeClusters(nowMs), rttMs, nowMs);
      const delayBasedBps = this.delayBased.estimateBps;
      if (probeApplied) this.lossBased.resetTo(delayBasedBps);
      else this.lossBased.setDelayBasedLimit(delayBasedBps);
    }
    this.updateLoss(nowMs);
    this.lossBased.update(nowMs, rttMs);
  }

  /** What the link carries as its queues show it (delay gradient): random loss does not lower it, congestion does. */
  get delayBasedBps(): number {
    return clamp(this.delayBased.estimateBps, this.minBps, this.maxBps);
  }

  get estimateBps(): number {
    return clamp(Math.min(this.delayBased.estimateBps, this.lossBased.estimateBps), this.minBps, this.maxBps);
  }

  get acknowledgedBps(): number | undefined {
    return this.acknowledged.bps;
  }

  get usage(): BandwidthUsage {
    return this.queue.standingMs > STANDING_QUEUE_MS ? 'overusing' : this.trendline.usage;
  }

  get lossFraction(): number {
    return this.lastLossFraction;
  }

  /** Clusters whose measurement failed (too little arrived, implausible timing) leave this unchanged. */
  lastProbe(): ProbeResult | undefined {
    return this.probes.lastResult;
  }

  /** The history slot of a 16-bit sequence number from feedback, or -1 when it is unknown or too old. */
  private slotOf(wrapped: number): number {
    if (this.newestSentSequence < 0) return -1;
    const behindNewest = ((this.newestSentSequence & 0xffff) - wrapped) & 0xffff;
    if (behindNewest >= HISTORY_SIZE) return -1;
    const sequence = this.newestSentSequence - behindNewest;
    const slot = sequence & HISTORY_MASK;
    return this.sequence[slot] === sequence ? slot : -1;
  }

  /** DelayBasedBwe::MaybeUpdateEstimate. Returns whether a probe result set the estimate. */
  private updateDelayBased(probeBps: number | undefined, rttMs: number, nowMs: number): boolean {
    const rate = this.delayBased;
    rate.rttMs = rttMs;
    const ackedBps = this.acknowledged.bps;
    const usage = this.usage;
    if (usage === 'overusing') {
      if (ackedBps !== undefined) {
        if (rate.timeToReduceFurther(nowMs, ackedBps)) rate.update(usage, ackedBps, nowMs);
      } else if (rate.timeToReduceFurther(nowMs)) {
        // Overusing before anything was acknowledged: halve, at most once per RTT.
        rate.setEstimate(rate.estimateBps / 2, nowMs);
      }
      return false;
    }
    if (probeBps !== undefined) {
      // As goog_cc: a probe may lower the estimate, but not far below what is getting through.
      const floorBps = ackedBps === undefined ? 0 : Math.min(rate.estimateBps, ackedBps * PROBE_DROP_THROUGHPUT_FRACTION);
      rate.setEstimate(Math.max(probeBps, floorBps), nowMs);
      return true;
    }
    rate.update(usage, ackedBps, nowMs);
    return false;
  }

  /** Closes the loss window when it is due and holds enough packets, as goog_cc does with transport feedback. */
  private updateLoss(nowMs: number): void {
    this.lossWindowEndMs ??= nowMs + LOSS_WINDOW_MS;
    if (nowMs < this.lossWindowEndMs || this.lossWindowTotal < LOSS_WINDOW_MIN_PACKETS) return;
    this.lastLossFraction = this.lossWindowLost / this.lossWindowTotal;
    this.lossBased.onLossReport(this.lastLossFraction, nowMs, this.lossWindowCongested);
    this.lossWindowLost = 0;
    this.lossWindowTotal = 0;
    this.lossWindowCongested = false;
    this.lossWindowEndMs = nowMs + LOSS_WINDOW_MS;
  }
}
