/**
 * What one player's downlink can carry, and which video layer it gets in automatic mode. The
 * subscriber reports every packet it sends (with its transport-wide sequence number) and the
 * player's transport-cc feedback; the allocator keeps a GCC-style estimate of the link
 * (BandwidthEstimator) and, as LiveKit's stream allocator and libwebrtc's pacer do:
 *  - picks the highest layer whose bitrate, plus the retransmissions it needs on this link, fits
 *    in the estimate left after audio: down as soon as the current one no longer fits, up only
 *    with headroom, after the estimate has shown room for the next layer for a second;
 *  - probes before stepping up: the estimate cannot grow much past what is being sent, so it
 *    pads the stream up to the next layer's rate (copies of recent packets, sent as RTX), in
 *    clusters whose arrival rate the estimator measures; overuse or a deadline ends a probe,
 *    and failed probes back off;
 *  - lets retransmissions use what the delay-based estimate leaves beside the media, and at
 *    least a share of the estimate, through a token bucket, so that NACKs on a congested link
 *    cannot bury it; random loss lowers the loss-based estimate but not the delay-based one, and
 *    a budget held to the former starves the repairs a lossy link needs most. What the player
 *    asks for counts in the cost of its layer, so that its layer moves down until its repairs fit.
 */
import { BandwidthEstimator, type PacketResult } from './bandwidthEstimator.js';
import { realClock, type Clock } from '@parley/protocol/rtp';
import { RateMeter } from '../rateMeter.js';
import { ALL_TEMPORAL_LAYERS } from '../videoRewriter.js';

/** A video layer's rate as the publisher receives it. */
export interface LayerRate {
  /** Bits per second with temporal layers up to `maxTemporal` (all when omitted); 0 if unknown. */
  bitrateBps(nowMs: number, maxTemporal?: number): number;
  /** How many VP8 temporal layers it sends (1 without). */
  readonly temporalLayers: number;
  /** The bitrate its encoder was last asked to keep it under for its players' links (layerCaps), 0 for none. */
  readonly capBps: number;
}

/** The layer and highest temporal layer a player gets. */
export interface Allocation {
  spatial: number;
  temporal: number;
}

export type PacketKind = 'audio' | 'video' | 'retransmission' | 'padding';

export interface DownlinkAllocatorOptions {
  /**
   * Sends at least `bytes` of padding now (RTX copies of recent video packets) if it can; returns
   * what it sent, 0 when it has nothing to pad with, undefined when media waits to go (not now).
   */
  sendPadding(bytes: number): number | undefined;
  initialBps?: number;
  minBps?: number;
  maxBps?: number;
  clock?: Clock;
}

export const DEFAULT_INITIAL_BPS = 5_000_000;
const DEFAULT_MIN_BPS = 100_000;
const DEFAULT_MAX_BPS = 50_000_000;

/** Stepping up needs the next layer's rate times this in the estimate: room for its keyframes and rate swings. */
const UP_HEADROOM = 1.1;
/** ...for this long: a noisy estimate (on a lossy link) must not flip the layer up and down. */
const UP_HOLD_MS = 1000;
/** A layer encoded for a player's budget is asked for this share of it: encoders overshoot their target for a moment. */
const CAP_MARGIN = 0.9;
/** The video budget is the median of this many samples, one per interval. */
const BUDGET_SAMPLES = 5;
const BUDGET_SAMPLE_INTERVAL_MS = 1000;
/** Moving down this soon after a step up means the step failed, as a probe that fails. */
const STEP_UP_TRIAL_MS = 5000;
/** Retransmissions are counted as at most this share of the video they repair. */
const MAX_RETRANSMISSION_OVERHEAD = 1;
/**
 * The current layer stays until its rate exceeds what is available by this factor. Overuse cuts
 * the estimate to 0.85 × the rate that got through, so a layer the link cannot carry always ends
 * up further below; one that fits is not dropped for the cut a probe's queue causes.
 */
const DOWN_TOLERANCE = 1.1;
/**
 * A layer capped for its players' links follows a lower cap (a lower budget of this player's)
 * within this long: the caps' update interval and the encoder's ramp down. An overuse on such a
 * layer (the estimate rises past the link as the encoder fills its cap, as a direct call's does)
 * is waited out on it, a smaller encoding rather than half the resolution...
 */
const CAP_FOLLOW_MS = 2500;
/**
 * ...while it costs at most this much over what the link acknowledged: not over the estimate,
 * which overuse has cut to 0.85 of that (and loss lowers further). More is a link that shrank,
 * whose queue would drown meanwhile.
 */
const CAP_FOLLOW_TOLERANCE = 1.2;
/** A probe pads the stream to the next layer's rate times this (plus audio and retransmissions). */
const PROBE_GOAL_HEADROOM = 1.3;
/** Each probe cluster lasts this long; the estimator needs several packets and a feedback to measure one. */
const PROBE_CLUSTER_MS = 100;
/**
 * A probe's first cluster goes at this much over what is being sent, each next one this much over
 * the last, up to the goal: a link that cannot carry the goal shows it early, with a short queue.
 */
const PROBE_STEP = 1.25;
/** Room a probe made for the next layer must hold this long, the probe going on, for the player to step up. */
const PROBE_CONFIRM_MS = 500;
/** A probe that has not shown room for the next layer by then has failed. */
const PROBE_DURATION_MS = 1500;
/** How often padding is sent while probing. */
const PADDING_INTERVAL_MS = 5;
/** After a failed probe the next waits this long, doubled per failure up to the maximum. */
const PROBE_BACKOFF_MS = 2000;
const MAX_PROBE_BACKOFF_MS = 3000;
/** After a probe that made room for a layer, the next waits this long, for the new layer to show it holds. */
const PROBE_SUCCESS_PAUSE_MS = 1000;
/** Above this share of packets lost, retransmissions go twice and audio packets repeat two earlier frames. */
const LOSSY_LINK_FRACTION = 0.02;
/** Above this share, audio packets repeat three earlier frames: a frame is then lost only with four packets in a row. */
const VERY_LOSSY_LINK_FRACTION = 0.2;
/** An audio packet's bytes besides its frame: IP, UDP, RTP with extensions, SRTP's tag. */
const AUDIO_PACKET_OVERHEAD_BYTES = 60;
/** Retransmissions get what the delay-based estimate leaves beside the media, and never less than this share of the estimate. */
const RETRANSMISSION_MIN_SHARE = 0.25;
/** The retransmission bucket holds this much of its rate: a keyframe's repairs are answered at once, a flood is not. */
const RETRANSMISSION_BURST_MS = 500;
const MIN_RETRANSMISSION_BURST_BYTES = 3000;
/** Video leaves at this multiple of the delay-based estimate (libwebrtc's pacing factor): a frame's burst is spread, not held back. */
const PACING_FACTOR = 2.5;
/** An unknown layer's rate is guessed as the rate of the one below times this (twice the size each side). */
const UNKNOWN_LAYER_RATE_FACTOR = 3;

type ProbeState =
  | { kind: 'idle'; nextProbeAtMs: number; backoffMs: number }
  | {
      kind: 'probing';
      goalBps: number;
      /** The current cluster's rate, rising by PROBE_STEP per cluster to the goal. */
      clusterBps: number;
      endsAtMs: number;
      backoffMs: number;
      clusterId: number;
      clusterStartMs: number;
      clusterBytes: number;
    };

export class DownlinkAllocator {
  private readonly estimator: BandwidthEstimator;
  private readonly audioRate = new RateMeter();
  /** Audio as single frames (no RED), with packet overhead: what one more repeat of each costs. */
  private readonly audioFrameRate = new RateMeter();
  private readonly videoRate = new RateMeter();
  private readonly retransmissionRate = new RateMeter();
  /** What the player's NACKs asked to be sent again, sent or not. */
  private readonly retransmissionDemand = new RateMeter();
  private probe: ProbeState = { kind: 'idle', nextProbeAtMs: 0, backoffMs: PROBE_BACKOFF_MS };
  private nextClusterId = 0;
  private readonly clock: Clock;
  private stopPadding: (() => void) | undefined;
  /** Since when the next layer up has fitted, while it has. */
  private upSinceMs: number | undefined;
  private steppedUpAtMs = -Infinity;
  /** Since when the current layer has cost more than DOWN_TOLERANCE allows, while it has. */
  private overSinceMs: number | undefined;
  private retransmissionTokens = MIN_RETRANSMISSION_BURST_BYTES;
  /** The last BUDGET_SAMPLES video budgets, one per BUDGET_SAMPLE_INTERVAL_MS (videoBudgetBps). */
  private readonly budgetSamples = new Float64Array(BUDGET_SAMPLES);
  private budgetSampleCount = 0;
  private budgetSampledAtMs = -Infinity;
  private retransmissionRefilledAtMs = -1;

  constructor(private readonly options: DownlinkAllocatorOptions) {
    this.clock = options.clock ?? realClock;
    this.estimator = new BandwidthEstimator({
      initialBps: options.initialBps ?? DEFAULT_INITIAL_BPS,
      minBps: options.minBps ?? DEFAULT_MIN_BPS,
      maxBps: options.maxBps ?? DEFAULT_MAX_BPS,
    });
  }

  get estimateBps(): number {
    return this.estimator.estimateBps;
  }

  /** The rate the player's packets are paced at (Pacer). */
  get pacingBps(): number {
    return PACING_FACTOR * this.estimator.delayBasedBps;
  }

  get probing(): boolean {
    return this.probe.kind === 'probing';
  }

  /** Every packet sent to the player, with the transport-wide sequence number it carries. */
  onPacketSent(kind: PacketKind, transportSequenceNumber: number, sizeBytes: number, nowMs: number): void {
    const { probe } = this;
    let probeClusterId: number | undefined;
    if (probe.kind === 'probing') {
      this.rotateCluster(probe, nowMs);
      probe.clusterBytes += sizeBytes;
      probeClusterId = probe.clusterId;
    }
    this.estimator.onPacketSent({ transportSequenceNumber, sizeBytes, sendTimeMs: nowMs, probeClusterId });
    if (kind === 'audio') this.audioRate.add(sizeBytes, nowMs);
    else if (kind === 'video') this.videoRate.add(sizeBytes, nowMs);
    else if (kind === 'retransmission') this.retransmissionRate.add(sizeBytes, nowMs);
  }

  onFeedback(results: readonly PacketResult[], nowMs: number): void {
    this.estimator.onFeedback(results, nowMs);
  }

  /**
   * How many copies of a packet of `sizeBytes` that the player asked for to send again now, taken
   * from the retransmission budget: two on a lossy link, as the budget allows. Chromium's
   * receive-only players know no round-trip time and repeat a NACK only every 100 ms, so on a
   * lossy link each lost copy costs a visible freeze (a frame late by over 150 ms); with two, a
   * repair fails at the square of the loss rate (10 % loss: 1 %), for a few percent more bits.
   * One copy when only one fits, none when none does.
   */
  takeRetransmission(sizeBytes: number, nowMs: number): number {
    const wanted = this.estimator.lossFraction > LOSSY_LINK_FRACTION ? 2 : 1;
    this.retransmissionDemand.add(wanted * sizeBytes, nowMs);
    const estimate = this.estimator.estimateBps;
    const mediaBps = this.audioRate.bps(nowMs) + this.videoRate.bps(nowMs);
    const rateBps = Math.max(this.estimator.delayBasedBps - mediaBps, RETRANSMISSION_MIN_SHARE * estimate);
    const capacity = Math.max(MIN_RETRANSMISSION_BURST_BYTES, (rateBps / 8) * (RETRANSMISSION_BURST_MS / 1000));
    if (this.retransmissionRefilledAtMs >= 0) {
      this.retransmissionTokens += ((rateBps / 8) * (nowMs - this.retransmissionRefilledAtMs)) / 1000;
    }
    this.retransmissionRefilledAtMs = nowMs;
    this.retransmissionTokens = Math.min(this.retransmissionTokens, capacity);
    const copies = Math.min(wanted, Math.floor(this.retransmissionTokens / sizeBytes));
    this.retransmissionTokens -= copies * sizeBytes;
    return copies;
  }

  /** The share of packets the player's link loses, from its transport-wide feedback. */
  get lossFraction(): number {
    return this.estimator.lossFraction;
  }

  /**
   * How many earlier frames each audio packet repeats (RED), for a player that takes RED and an
   * audio frame of `frameBytes` about to go; undefined: as the publisher sent them. Audio is a few
   * dozen kbit/s, so repeating it costs little of what a lossy link carries, and a lost frame
   * needs no round trip, which a NACK's repair may not make in time for the player's jitter
   * buffer. But each repeat costs another frame's bytes, and on a link that loses packets because
   * it is full they add to what it drops: repeats are made only with room for them beside the
   * media in the delay-based estimate, and without room even the publisher's are left out.
   */
  audioRedundancy(frameBytes: number, nowMs: number): number | undefined {
    this.audioFrameRate.add(frameBytes + AUDIO_PACKET_OVERHEAD_BYTES, nowMs);
    const frameBps = this.audioFrameRate.bps(nowMs);
    const roomBps = this.estimator.delayBasedBps - this.videoRate.bps(nowMs) - this.retransmissionRate.bps(nowMs) - frameBps;
    const affordable = frameBps > 0 ? Math.max(0, Math.floor(roomBps / frameBps)) : 0;
    const loss = this.estimator.lossFraction;
    const wanted = loss > VERY_LOSSY_LINK_FRACTION ? 3 : loss > LOSSY_LINK_FRACTION ? 2 : undefined;
    if (wanted !== undefined) return Math.min(wanted, affordable);
    return affordable === 0 ? 0 : undefined;
  }

  /**
   * The layer for a player in automatic mode, at most `cap` (its view's), given the one it is
   * moving to now (`current`) and the layers' rates; starts or ends a probe as needed.
   */
  allocate(cap: number, current: number, layers: readonly LayerRate[], nowMs: number): Allocation {
    const audioBps = this.audioRate.bps(nowMs);
    const available = this.estimator.estimateBps - audioBps;
    const overhead = this.retransmissionOverhead(nowMs);
    const cost = (layer: number, maxTemporal?: number): number => layerRate(layers, layer, nowMs, maxTemporal) * overhead;
    const top = Math.min(cap, layers.length - 1);
    let spatial = Math.min(current, top);
    const nextFits = spatial < top && cost(spatial + 1) * UP_HEADROOM <= available;
    const currentCost = cost(spatial);
    const over = currentCost > available * DOWN_TOLERANCE;
    if (!over) this.overSinceMs = undefined;
    else this.overSinceMs ??= nowMs;
    if (over && !this.followsCap(layers, spatial, currentCost, nowMs)) {
      // Down, to the highest layer that fits, as soon as the current one does not.
      while (spatial > 0 && cost(spatial) > available) spatial--;
      this.upSinceMs = undefined;
      // A step up that did not hold counts as a failed probe: the next waits longer. Any other
      // step down defers the next probe too: padding into a link that just shrank only fills its queue.
      if (nowMs - this.steppedUpAtMs < STEP_UP_TRIAL_MS) this.backOff(nowMs);
      else if (spatial < current) this.deferProbe(nowMs);
    } else if (nextFits && (this.probe.kind === 'probing' || nowMs >= this.probe.nextProbeAtMs)) {
      // Up one layer, once there has been room for it for a while. Room a probe made must hold
      // while the probe goes on: a token bucket (a shaper, tbf) lets the first kilobytes of a
      // burst through at once, so a short probe crosses faster than the link's rate.
      if (this.upSinceMs === undefined) {
        this.upSinceMs = nowMs;
        if (this.probe.kind === 'probing') this.probe.endsAtMs = Math.max(this.probe.endsAtMs, nowMs + PROBE_CONFIRM_MS + PROBE_CLUSTER_MS);
      }
      if (nowMs - this.upSinceMs >= (this.probe.kind === 'probing' ? PROBE_CONFIRM_MS : UP_HOLD_MS)) {
        spatial++;
        this.upSinceMs = undefined;
        this.steppedUpAtMs = nowMs;
      }
    } else {
      this.upSinceMs = undefined;
    }
    const confirming = this.upSinceMs !== undefined && this.probe.kind === 'probing';
    const probeFor = spatial < top && (!nextFits || confirming) ? cost(spatial + 1) : 0;
    this.updateProbe(probeFor > 0 ? probeFor * PROBE_GOAL_HEADROOM + audioBps : 0, nowMs);
    // Even the smallest layer does not fit: fewer frames rather than a link that drowns.
    if (spatial === 0 && cost(0) > available * DOWN_TOLERANCE) {
      let temporal = layers[0]!.temporalLayers - 1;
      while (temporal > 0 && cost(0, temporal) > available) temporal--;
      return { spatial, temporal };
    }
    return { spatial, temporal: ALL_TEMPORAL_LAYERS };
  }

  /**
   * Whether the layer the player is on, costing `costBps`, is to be kept while its encoder
   * follows a lower cap: it is capped, the excess is small and recent, and this
   * player's budget is worth the layer (a cap stays over the rate of the layer below, layerCaps).
   */
  private followsCap(layers: readonly LayerRate[], spatial: number, costBps: number, nowMs: number): boolean {
    if (layers[spatial]!.capBps === 0 || nowMs - this.overSinceMs! >= CAP_FOLLOW_MS) return false;
    if (!(costBps <= CAP_FOLLOW_TOLERANCE * (this.estimator.acknowledgedBps ?? 0))) return false;
    return spatial === 0 || this.videoBudgetBps(nowMs) >= layerRate(layers, spatial - 1, nowMs);
  }

  /**
   * A layer's cost per bit of its rate: the retransmissions it needs on this link, in proportion
   * to what the player asks for now (what the budget refused included, or a starved repair would
   * look cheap).
   */
  private retransmissionOverhead(nowMs: number): number {
    return 1 + Math.min(this.retransmissionDemand.bps(nowMs) / Math.max(this.videoRate.bps(nowMs), 1), MAX_RETRANSMISSION_OVERHEAD);
  }

  /**
   * The rate a layer may have for this player to step up to it (with its retransmissions and the
   * headroom a step up needs), a little under: what the publisher is asked to encode a layer at
   * for this player's sake (layerCaps), with room for the encoder's overshoot. It rises as the
   * median of the last seconds' (the estimate swings with each probe, and each change of a cap
   * costs the encoder a second or two to follow) and falls at once: a link that shows congestion
   * must get less before its player is moved down a layer for it.
   */
  videoBudgetBps(nowMs: number): number {
    const available = this.estimator.estimateBps - this.audioRate.bps(nowMs);
    const budget = (CAP_MARGIN * available) / (UP_HEADROOM * this.retransmissionOverhead(nowMs));
    if (nowMs - this.budgetSampledAtMs >= BUDGET_SAMPLE_INTERVAL_MS) {
      this.budgetSampledAtMs = nowMs;
      this.budgetSamples[this.budgetSampleCount++ % BUDGET_SAMPLES] = budget;
    }
    const samples = this.budgetSamples.slice(0, Math.min(this.budgetSampleCount, BUDGET_SAMPLES)).sort((a, b) => a - b);
    return Math.min(budget, samples[samples.length >> 1]!);
  }

  /** Starts a probe towards `goalBps` (0: none wanted), ends one that succeeded or failed. */
  private updateProbe(goalBps: number, nowMs: number): void {
    const { probe } = this;
    if (probe.kind === 'idle') {
      if (goalBps > 0 && nowMs >= probe.nextProbeAtMs) this.startProbe(goalBps, probe.backoffMs, nowMs);
      return;
    }
    if (goalBps === 0) {
      // The estimate made room for the layer probed for: the probe did it. The next layer's
      // probe waits until this one has shown that it holds.
      this.stopProbe({ kind: 'idle', nextProbeAtMs: nowMs + PROBE_SUCCESS_PAUSE_MS, backoffMs: PROBE_BACKOFF_MS });
    } else if (this.estimator.usage === 'overusing' || nowMs >= probe.endsAtMs) {
      this.backOff(nowMs);
    } else if (goalBps < probe.goalBps) {
      // The layers' rates dropped: a lower goal is enough.
      probe.goalBps = goalBps;
      probe.clusterBps = Math.min(probe.clusterBps, goalBps);
    }
  }

  /** Ends a probe, if one runs, as failed: no probe nor step up until the backoff has passed, and the next backoff is longer. */
  private backOff(nowMs: number): void {
    const { backoffMs } = this.probe;
    this.stopProbe({ kind: 'idle', nextProbeAtMs: nowMs + backoffMs, backoffMs: Math.min(2 * backoffMs, MAX_PROBE_BACKOFF_MS) });
  }

  /** Ends a probe, if one runs, and waits the current backoff before the next, without lengthening it. */
  private deferProbe(nowMs: number): void {
    const { backoffMs } = this.probe;
    this.stopProbe({ kind: 'idle', nextProbeAtMs: nowMs + backoffMs, backoffMs });
  }

  private startProbe(goalBps: number, backoffMs: number, nowMs: number): void {
    const sendingBps = this.audioRate.bps(nowMs) + this.videoRate.bps(nowMs) + this.retransmissionRate.bps(nowMs);
    this.probe = {
      kind: 'probing',
      goalBps,
      clusterBps: Math.min(goalBps, sendingBps * PROBE_STEP),
      endsAtMs: nowMs + PROBE_DURATION_MS,
      backoffMs,
      clusterId: this.nextClusterId++ & 0x7fffffff,
      clusterStartMs: nowMs,
      clusterBytes: 0,
    };
    this.stopPadding = this.clock.every(PADDING_INTERVAL_MS, () => this.pad());
  }

  private stopProbe(next: ProbeState & { kind: 'idle' }): void {
    this.stopPadding?.();
    this.stopPadding = undefined;
    this.probe = next;
  }

  private rotateCluster(probe: ProbeState & { kind: 'probing' }, nowMs: number): void {
    if (nowMs - probe.clusterStartMs < PROBE_CLUSTER_MS) return;
    probe.clusterId = this.nextClusterId++ & 0x7fffffff;
    probe.clusterStartMs = nowMs;
    probe.clusterBytes = 0;
    probe.clusterBps = Math.min(probe.goalBps, probe.clusterBps * PROBE_STEP);
  }

  /** Tops the current cluster up to the goal rate with padding. */
  private pad(): void {
    const { probe } = this;
    if (probe.kind !== 'probing') return;
    const nowMs = this.clock.now();
    this.rotateCluster(probe, nowMs);
    // Padding goes out with the cluster's first tick too, so a cluster is never media alone.
    const dueBytes = ((probe.clusterBps / 8) * Math.max(nowMs - probe.clusterStartMs, PADDING_INTERVAL_MS)) / 1000 - probe.clusterBytes;
    if (dueBytes > 0 && this.options.sendPadding(dueBytes) === 0) {
      // Nothing to pad with (no RTX, or nothing sent yet): probing cannot work now.
      this.deferProbe(nowMs);
    }
  }

  close(): void {
    this.stopPadding?.();
    this.stopPadding = undefined;
  }
}

/** A layer's rate; a layer not measured yet is guessed from the one below. */
function layerRate(layers: readonly LayerRate[], layer: number, nowMs: number, maxTemporal?: number): number {
  const bps = layers[layer]!.bitrateBps(nowMs, maxTemporal);
  if (bps > 0 || layer === 0) return bps;
  return layerRate(layers, layer - 1, nowMs, maxTemporal) * UNKNOWN_LAYER_RATE_FACTOR;
}
