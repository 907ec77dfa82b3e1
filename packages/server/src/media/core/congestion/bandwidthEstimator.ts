/**
 * Send-side bandwidth estimation for one player's downlink, after libwebrtc's goog_cc (Google Congestion
 * Control). The SFU stamps each RTP packet it sends the player with a transport-wide sequence number and
 * reports it here (onPacketSent); the player's transport-cc feedback says when each one arrived, or that it
 * was lost (onFeedback). The parts, each following its libwebrtc counterpart and constants:
 *  - InterArrival (inter_arrival_delta.cc): groups packets into 5 ms send bursts and yields the send- and
 *    arrival-time deltas between consecutive groups;
 *  - TrendlineEstimator (trendline_estimator.cc): the slope of the smoothed one-way delay variation against an
 *    adaptive threshold gives the link usage: normal, overusing or underusing;
 *  - AcknowledgedBitrateEstimator (bitrate_estimator.cc): the Bayesian-smoothed rate acknowledged as received;
 *  - AimdRateControl (aimd_rate_control.cc, link_capacity_estimator.cc): the delay-based estimate, raised
 *    multiplicatively far from the last congestion point and additively near it, cut to 0.85 × the
 *    acknowledged rate on overuse, and set by successful probes (delay_based_bwe.cc);
 *  - ProbeBitrateEstimator (probe_bitrate_estimator.cc): the rate a probe cluster got through;
 *  - LossBasedControl (the classic SendSideBandwidthEstimation): +8 % under 2 % loss, −loss/2 over 10 %,
 *    never above the delay-based estimate.
 * Left out: ALR detection, the loss-based v2 estimator, congestion-window pushback, size deltas (only
 * libwebrtc's older Kalman filter used them), and probe scheduling, which is the caller's.
 */

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

/**
 * One feedback's results, as parsed from transport-cc: arrivalTimeUs on the receiver's clock (arbitrary origin,
 * only differences matter), undefined = reported lost. Sequence numbers are 16-bit.
 */
export interface PacketResult {
  sequenceNumber: number;
  arrivalTimeUs: number | undefined;
}

export interface BandwidthEstimatorOptions {
  initialBps: number;
  minBps: number;
  maxBps: number;
}

export type BandwidthUsage = 'normal' | 'overusing' | 'underusing';

export interface ProbeResult {
  clusterId: number;
  /** What the link carried of the probe (min of send and receive rate), bits per second. */
  bps: number;
  completedAtMs: number;
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
/** The RTT assumed until feedback measures one. */
const DEFAULT_RTT_MS = 200;
/** Loss is measured over windows of this length holding at least this many packets. */
const LOSS_WINDOW_MS = 1000;
const LOSS_WINDOW_MIN_PACKETS = 20;
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
  private readonly delayBased: AimdRateControl;
  private readonly lossBased: LossBasedControl;
  private lastFeedbackMs: number | undefined;
  private rttMs: number | undefined;

  private lossWindowEndMs: number | undefined;
  private lossWindowLost = 0;
  private lossWindowTotal = 0;
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
        const clusterId = this.probeClusterId[slot];
        if (clusterId >= 0) this.probes.onReceived(clusterId, this.sendTimeMs[slot], arrivalMs, sizeBytes);
        if (this.interArrival.add(this.sendTimeMs[slot], arrivalMs, nowMs)) {
          this.trendline.update(this.interArrival.arrivalDeltaMs, this.interArrival.sendDeltaMs, arrivalMs);
        }
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
    return this.trendline.usage;
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
    const usage = this.trendline.usage;
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
    this.lossBased.onLossReport(this.lastLossFraction, nowMs);
    this.lossWindowLost = 0;
    this.lossWindowTotal = 0;
    this.lossWindowEndMs = nowMs + LOSS_WINDOW_MS;
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

/** Packets sent within this long of a group's first packet form one group. */
const SEND_GROUP_LENGTH_MS = 5;
/** A packet arriving at most this soon after the previous one, and sooner than it was sent after it, queued behind it. */
const BURST_DELTA_THRESHOLD_MS = 5;
const MAX_BURST_DURATION_MS = 100;
/** After this many groups in a row arriving out of order, assume the receiver's clock jumped and start over. */
const REORDERED_RESET_THRESHOLD = 3;
/** Arrival times advancing this much more than feedback times did mean the receiver's clock jumped. */
const ARRIVAL_TIME_OFFSET_THRESHOLD_MS = 3000;

/** A group of packets sent close together. */
class PacketGroup {
  empty = true;
  firstSendMs = 0;
  lastSendMs = 0;
  firstArrivalMs = 0;
  lastArrivalMs = 0;
  /** When the feedback reporting its last packet reached us: the local clock to check arrival times against. */
  lastFeedbackMs = 0;

  start(sendMs: number, arrivalMs: number): void {
    this.empty = false;
    this.firstSendMs = this.lastSendMs = sendMs;
    this.firstArrivalMs = arrivalMs;
  }
}

/** InterArrivalDelta: send- and arrival-time deltas between consecutive packet groups, fed in arrival order. */
class InterArrival {
  sendDeltaMs = 0;
  arrivalDeltaMs = 0;
  private current = new PacketGroup();
  private previous = new PacketGroup();
  private consecutiveReordered = 0;

  /** Adds a received packet; true when that completed a group and the deltas hold its difference from the one before. */
  add(sendMs: number, arrivalMs: number, feedbackMs: number): boolean {
    const current = this.current;
    let computed = false;
    if (current.empty) {
      current.start(sendMs, arrivalMs);
    } else if (sendMs < current.firstSendMs) {
      return false; // sent before the current group: reordered, ignored
    } else if (this.startsNewGroup(sendMs, arrivalMs)) {
      const previous = this.previous;
      if (!previous.empty) {
        this.sendDeltaMs = current.lastSendMs - previous.lastSendMs;
        this.arrivalDeltaMs = current.lastArrivalMs - previous.lastArrivalMs;
        if (this.arrivalDeltaMs - (current.lastFeedbackMs - previous.lastFeedbackMs) >= ARRIVAL_TIME_OFFSET_THRESHOLD_MS) {
          this.reset();
          return false;
        }
        if (this.arrivalDeltaMs < 0) {
          if (++this.consecutiveReordered >= REORDERED_RESET_THRESHOLD) this.reset();
          return false;
        }
        this.consecutiveReordered = 0;
        computed = true;
      }
      // The finished group becomes the previous one; the old previous is reused for the new group.
      this.previous = current;
      this.current = previous;
      previous.start(sendMs, arrivalMs);
    } else {
      current.lastSendMs = Math.max(current.lastSendMs, sendMs);
    }
    this.current.lastArrivalMs = arrivalMs;
    this.current.lastFeedbackMs = feedbackMs;
    return computed;
  }

  private startsNewGroup(sendMs: number, arrivalMs: number): boolean {
    return !this.belongsToBurst(sendMs, arrivalMs) && sendMs - this.current.firstSendMs > SEND_GROUP_LENGTH_MS;
  }

  /** Packets that queued behind each other in the network count as one group, however far apart they were sent. */
  private belongsToBurst(sendMs: number, arrivalMs: number): boolean {
    const current = this.current;
    const arrivalDeltaMs = arrivalMs - current.lastArrivalMs;
    const sendDeltaMs = sendMs - current.lastSendMs;
    if (sendDeltaMs === 0) return true;
    return (
      arrivalDeltaMs - sendDeltaMs < 0 &&
      arrivalDeltaMs <= BURST_DELTA_THRESHOLD_MS &&
      arrivalMs - current.firstArrivalMs < MAX_BURST_DURATION_MS
    );
  }

  private reset(): void {
    this.consecutiveReordered = 0;
    this.current.empty = true;
    this.previous.empty = true;
  }
}

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
class TrendlineEstimator {
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
class AcknowledgedBitrateEstimator {
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
class AimdRateControl {
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

/** The fewest probe packets that make a measurement, as libwebrtc's prober sends at least this many. */
const MIN_PROBE_PACKETS = 5;
/** At least this share of a cluster's packets and bytes must have arrived for a valid measurement. */
const MIN_PROBE_RECEIVED_FRACTION = 0.8;
const MAX_PROBE_INTERVAL_MS = 1000;
/** Receiving much faster than sending means the timing is broken, not that the link is fast. */
const MAX_PROBE_RECEIVE_SEND_RATIO = 2;
/** Receiving under 90 % of the send rate means the probe found the link's capacity; aim a little below it. */
const MIN_RATIO_FOR_UNSATURATED_LINK = 0.9;
const PROBE_TARGET_UTILIZATION = 0.95;
/** Clusters are forgotten this long after their last packet was sent, and beyond this many. */
const PROBE_CLUSTER_HISTORY_MS = 1000;
const MAX_PROBE_CLUSTERS = 8;

interface ProbeCluster {
  sentPackets: number;
  sentBytes: number;
  lastSentAtMs: number;
  reportedPackets: number;
  receivedPackets: number;
  receivedBytes: number;
  firstSendMs: number;
  lastSendMs: number;
  lastSendSizeBytes: number;
  firstArrivalMs: number;
  lastArrivalMs: number;
  firstArrivalSizeBytes: number;
  complete: boolean;
}

/** ProbeBitrateEstimator: once feedback has reported every packet of a cluster, the rate the link carried of it. */
class ProbeBitrateEstimator {
  lastResult: ProbeResult | undefined;
  private readonly clusters = new Map<number, ProbeCluster>();

  onSent(clusterId: number, sizeBytes: number, sendTimeMs: number): void {
    let cluster = this.clusters.get(clusterId);
    if (cluster === undefined) {
      if (this.clusters.size >= MAX_PROBE_CLUSTERS) this.clusters.delete(this.clusters.keys().next().value as number);
      cluster = {
        sentPackets: 0,
        sentBytes: 0,
        lastSentAtMs: sendTimeMs,
        reportedPackets: 0,
        receivedPackets: 0,
        receivedBytes: 0,
        firstSendMs: Infinity,
        lastSendMs: -Infinity,
        lastSendSizeBytes: 0,
        firstArrivalMs: Infinity,
        lastArrivalMs: -Infinity,
        firstArrivalSizeBytes: 0,
        complete: false,
      };
      this.clusters.set(clusterId, cluster);
    }
    cluster.sentPackets++;
    cluster.sentBytes += sizeBytes;
    cluster.lastSentAtMs = sendTimeMs;
    cluster.complete = false;
  }

  /** A packet of the cluster was reported for the first time, received or lost. */
  onReported(clusterId: number): void {
    const cluster = this.clusters.get(clusterId);
    if (cluster !== undefined) cluster.reportedPackets++;
  }

  onReceived(clusterId: number, sendTimeMs: number, arrivalMs: number, sizeBytes: number): void {
    const cluster = this.clusters.get(clusterId);
    if (cluster === undefined) return;
    cluster.receivedPackets++;
    cluster.receivedBytes += sizeBytes;
    if (sendTimeMs < cluster.firstSendMs) cluster.firstSendMs = sendTimeMs;
    if (sendTimeMs > cluster.lastSendMs) {
      cluster.lastSendMs = sendTimeMs;
      cluster.lastSendSizeBytes = sizeBytes;
    }
    if (arrivalMs < cluster.firstArrivalMs) {
      cluster.firstArrivalMs = arrivalMs;
      cluster.firstArrivalSizeBytes = sizeBytes;
    }
    if (arrivalMs > cluster.lastArrivalMs) cluster.lastArrivalMs = arrivalMs;
  }

  /** Measures the clusters that feedback has now fully reported; returns the newest valid rate, if any. */
  completeClusters(nowMs: number): number | undefined {
    let bps: number | undefined;
    for (const [clusterId, cluster] of this.clusters) {
      if (!cluster.complete && cluster.reportedPackets >= cluster.sentPackets) {
        cluster.complete = true;
        const measuredBps = measure(cluster);
        if (measuredBps !== undefined) {
          bps = measuredBps;
          this.lastResult = { clusterId, bps, completedAtMs: nowMs };
        }
      }
      if (nowMs - cluster.lastSentAtMs > PROBE_CLUSTER_HISTORY_MS) this.clusters.delete(clusterId);
    }
    return bps;
  }
}

function measure(cluster: ProbeCluster): number | undefined {
  if (
    cluster.receivedPackets < Math.max(MIN_PROBE_PACKETS, MIN_PROBE_RECEIVED_FRACTION * cluster.sentPackets) ||
    cluster.receivedBytes < MIN_PROBE_RECEIVED_FRACTION * cluster.sentBytes
  ) {
    return undefined;
  }
  const sendIntervalMs = cluster.lastSendMs - cluster.firstSendMs;
  const receiveIntervalMs = cluster.lastArrivalMs - cluster.firstArrivalMs;
  if (!isValidProbeInterval(sendIntervalMs) || !isValidProbeInterval(receiveIntervalMs)) return undefined;
  // The intervals run from the first packet's start to the last one's, so one packet's bytes fall outside each.
  const sendBps = (8000 * (cluster.receivedBytes - cluster.lastSendSizeBytes)) / sendIntervalMs;
  const receiveBps = (8000 * (cluster.receivedBytes - cluster.firstArrivalSizeBytes)) / receiveIntervalMs;
  if (receiveBps > MAX_PROBE_RECEIVE_SEND_RATIO * sendBps) return undefined;
  if (receiveBps < MIN_RATIO_FOR_UNSATURATED_LINK * sendBps) return PROBE_TARGET_UTILIZATION * receiveBps;
  return Math.min(sendBps, receiveBps);
}

function isValidProbeInterval(ms: number): boolean {
  return ms > 0 && ms <= MAX_PROBE_INTERVAL_MS;
}

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
class LossBasedControl {
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
