import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BandwidthEstimator, type PacketResult } from '../src/media/core/congestion/bandwidthEstimator.js';
import { ProbeBitrateEstimator } from '../src/media/core/congestion/probeBitrateEstimator.js';
import { QueueDelayMeter } from '../src/media/core/congestion/queueDelay.js';

/** Mulberry32: a small seeded PRNG, so every run sees the same "random" loss and timing. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PACKET_BYTES = 1200;
/** The receiver's clock has its own origin: only differences of arrival times may matter. */
const RECEIVER_CLOCK_OFFSET_MS = 987_654_321;

interface LinkOptions {
  /** Bottleneck capacity, possibly changing over time. */
  capacityBps: number | ((nowMs: number) => number);
  /** One way, in each direction. */
  propagationMs?: number;
  /** Random loss before the bottleneck. */
  lossRate?: number;
  /** Share of packets held back 15 ms after the bottleneck, so that later ones overtake them. */
  reorderRate?: number;
  /** Shuffles each feedback's results. */
  shuffleFeedback?: boolean;
  initialBps?: number;
  /** What the sender tries to send; by default the estimate, up to 2 Mbit/s. */
  sendRateBps?: (estimateBps: number) => number;
  firstSequenceNumber?: number;
  /** Send media as whole frames at this rate, each frame's packets back to back, as an SFU forwards them. */
  framesPerSecond?: number;
  seed?: number;
}

interface InFlight {
  sequenceNumber: number;
  /** Undefined when lost. */
  arrivalMs: number | undefined;
}

interface Sample {
  atMs: number;
  estimateBps: number;
  queueDelayMs: number;
}

/**
 * A sender pacing 1200-byte packets at the rate it chooses into a FIFO bottleneck (queueing delay = backlog /
 * capacity) and a propagation delay; the receiver sends transport-cc-like feedback every 50–100 ms, reporting
 * every packet up to the newest arrived one, received or not (a packet reported missing that arrives later is
 * reported received in the next feedback).
 */
class SimulatedLink {
  readonly estimator: BandwidthEstimator;
  readonly samples: Sample[] = [];
  private nowMs = 0;
  private readonly random: () => number;
  private readonly propagationMs: number;
  private sequenceNumber: number;
  private nextSendMs = 0;
  private nextFrameMs = 0;
  private frameCreditBytes = 0;
  private bottleneckFreeAtMs = 0;
  private inFlight: InFlight[] = [];
  private nextFeedbackMs = 50;
  private readonly feedbackInTransit: Array<{ deliverAtMs: number; results: PacketResult[] }> = [];
  private probe: { clusterId: number; rateBps: number; packetsLeft: number } | undefined;

  constructor(private readonly options: LinkOptions) {
    this.estimator = new BandwidthEstimator({
      initialBps: options.initialBps ?? 300_000,
      minBps: 30_000,
      maxBps: 10_000_000,
    });
    this.random = seededRandom(options.seed ?? 1);
    this.propagationMs = options.propagationMs ?? 40;
    this.sequenceNumber = options.firstSequenceNumber ?? 0;
  }

  get queueDelayMs(): number {
    return Math.max(0, this.bottleneckFreeAtMs - this.nowMs);
  }

  /** Sends the next `packets` packets as probe cluster `clusterId`, paced at `rateBps`, instead of media. */
  sendProbe(clusterId: number, rateBps: number, packets: number): void {
    this.probe = { clusterId, rateBps, packetsLeft: packets };
    this.nextSendMs = this.nowMs;
  }

  runUntil(endMs: number): void {
    for (; this.nowMs < endMs; this.nowMs++) {
      while (this.feedbackInTransit.length > 0 && this.feedbackInTransit[0].deliverAtMs <= this.nowMs) {
        const feedback = this.feedbackInTransit.shift()!;
        this.estimator.onFeedback(feedback.results, feedback.deliverAtMs);
        this.samples.push({ atMs: this.nowMs, estimateBps: this.estimator.estimateBps, queueDelayMs: this.queueDelayMs });
      }
      const fps = this.options.framesPerSecond;
      if (fps === undefined || this.probe) {
        while (this.nextSendMs <= this.nowMs) this.nextSendMs += this.send(this.nextSendMs);
      } else if (this.nowMs >= this.nextFrameMs) {
        this.sendFrame(1000 / fps);
        this.nextFrameMs += 1000 / fps;
      }
      if (this.nowMs >= this.nextFeedbackMs) {
        this.sendFeedback();
        this.nextFeedbackMs += 50 + 50 * this.random();
      }
    }
  }

  private capacityBps(atMs: number): number {
    const capacity = this.options.capacityBps;
    return typeof capacity === 'number' ? capacity : capacity(atMs);
  }

  /** The rate the sender wants now: the probe's while probing, else the chosen media rate. */
  private sendRateBps(): number {
    return this.probe?.rateBps ?? (this.options.sendRateBps ?? ((bps) => Math.min(bps, 2_000_000)))(this.estimator.estimateBps);
  }

  /** Sends one packet at `sendMs`; returns the pacing interval to the next one. */
  private send(sendMs: number): number {
    const rateBps = this.sendRateBps();
    const probe = this.probe;
    this.estimator.onPacketSent({
      transportSequenceNumber: this.sequenceNumber,
      sizeBytes: PACKET_BYTES,
      sendTimeMs: sendMs,
      ...(probe && { probeClusterId: probe.clusterId }),
    });
    if (probe && --probe.packetsLeft === 0) this.probe = undefined;
    let arrivalMs: number | undefined;
    if (this.random() >= (this.options.lossRate ?? 0)) {
      const startMs = Math.max(sendMs, this.bottleneckFreeAtMs);
      this.bottleneckFreeAtMs = startMs + (PACKET_BYTES * 8 * 1000) / this.capacityBps(startMs);
      arrivalMs = this.bottleneckFreeAtMs + this.propagationMs;
      if (this.random() < (this.options.reorderRate ?? 0)) arrivalMs += 15;
    }
    this.inFlight.push({ sequenceNumber: this.sequenceNumber, arrivalMs });
    this.sequenceNumber = (this.sequenceNumber + 1) & 0xffff;
    return (PACKET_BYTES * 8 * 1000) / rateBps;
  }

  /** One frame's worth of media, its packets 10 µs apart. */
  private sendFrame(frameIntervalMs: number): void {
    this.frameCreditBytes += (this.sendRateBps() * frameIntervalMs) / 8000;
    for (let i = 0; this.frameCreditBytes >= PACKET_BYTES; i++) {
      this.send(this.nowMs + i * 0.01);
      this.frameCreditBytes -= PACKET_BYTES;
    }
  }

  private sendFeedback(): void {
    const arrived = (packet: InFlight): boolean => packet.arrivalMs !== undefined && packet.arrivalMs <= this.nowMs;
    let newest = -1;
    this.inFlight.forEach((packet, index) => {
      if (arrived(packet)) newest = index;
    });
    if (newest < 0) return;
    const results: PacketResult[] = [];
    const late: InFlight[] = [];
    for (const packet of this.inFlight.slice(0, newest + 1)) {
      const received = arrived(packet);
      results.push({
        sequenceNumber: packet.sequenceNumber,
        arrivalTimeUs: received ? (packet.arrivalMs! + RECEIVER_CLOCK_OFFSET_MS) * 1000 : undefined,
      });
      if (!received && packet.arrivalMs !== undefined) late.push(packet);
    }
    this.inFlight = [...late, ...this.inFlight.slice(newest + 1)];
    if (this.options.shuffleFeedback) {
      for (let i = results.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [results[i], results[j]] = [results[j], results[i]];
      }
    }
    this.feedbackInTransit.push({ deliverAtMs: this.nowMs + this.propagationMs, results });
  }

  /** Samples taken by feedbacks delivered in [fromMs, toMs). */
  between(fromMs: number, toMs: number): Sample[] {
    return this.samples.filter((sample) => sample.atMs >= fromMs && sample.atMs < toMs);
  }

  /** When the estimate first met `predicate`, or undefined. */
  firstTime(predicate: (estimateBps: number) => boolean): number | undefined {
    return this.samples.find((sample) => predicate(sample.estimateBps))?.atMs;
  }
}

const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
const kbps = (bps: number): string => `${Math.round(bps / 1000)} kbit/s`;

test('on a 500 kbit/s link, an estimate starting at twice that converges below capacity and stays there, the queue short', () => {
  const capacityBps = 500_000;
  // Unpaced frames make one packet group per frame rather than per 5 ms, so the trendline's 20-group window
  // fills more slowly and the first reaction comes later.
  for (const { sender, framesPerSecond, reactionMs } of [
    { sender: 'paced', framesPerSecond: undefined, reactionMs: 1000 },
    { sender: '30 fps frame bursts', framesPerSecond: 30, reactionMs: 2000 },
  ]) {
    const link = new SimulatedLink({ capacityBps, initialBps: 1_000_000, framesPerSecond });
    link.runUntil(60_000);

    const settled = link.between(10_000, 60_000);
    for (const { atMs, estimateBps } of settled) {
      assert.ok(estimateBps >= 0.6 * capacityBps && estimateBps <= 1.1 * capacityBps, `${sender}: ${kbps(estimateBps)} at ${atMs} ms`);
    }
    // AIMD creeps a few % past capacity before each back-off (about a fifth of the time); the mean sits below.
    const estimates = settled.map((sample) => sample.estimateBps);
    const aboveCapacity = estimates.filter((bps) => bps > capacityBps).length / estimates.length;
    assert.ok(aboveCapacity < 0.3, `${sender}: above capacity ${Math.round(aboveCapacity * 100)} % of the time`);
    const meanBps = mean(estimates);
    assert.ok(meanBps >= 0.8 * capacityBps && meanBps < capacityBps, `${sender}: mean ${kbps(meanBps)}`);

    const firstBelowMs = link.firstTime((bps) => bps < capacityBps);
    assert.ok(firstBelowMs !== undefined && firstBelowMs < reactionMs, `${sender}: first below capacity at ${firstBelowMs} ms`);
    const maxQueueMs = Math.max(...link.samples.map((sample) => sample.queueDelayMs));
    assert.ok(maxQueueMs < reactionMs, `${sender}: the start-up overshoot queued ${maxQueueMs} ms`);
    const settledQueueMs = Math.max(...settled.map((sample) => sample.queueDelayMs));
    assert.ok(settledQueueMs < 150, `${sender}: settled queueing delay up to ${settledQueueMs} ms`);
  }
});

test('on a 5 Mbit/s link, an estimate starting at 300 kbit/s rises 8 % a second and passes 2 Mbit/s', () => {
  const link = new SimulatedLink({ capacityBps: 5_000_000, initialBps: 300_000, sendRateBps: (bps) => bps });
  link.runUntil(30_000);
  const estimateAt = (ms: number): number => link.between(ms, ms + 200)[0].estimateBps;
  for (let ms = 5_000; ms < 25_000; ms += 5_000) {
    const growth = estimateAt(ms + 5_000) / estimateAt(ms);
    assert.ok(growth > 1.3 && growth < 1.6, `×${growth.toFixed(2)} over 5 s from ${ms} ms (1.08^5 ≈ 1.47)`);
  }
  const reachedMs = link.firstTime((bps) => bps >= 2_000_000);
  assert.ok(reachedMs !== undefined && reachedMs < 28_000, `2 Mbit/s at ${reachedMs} ms`);
  assert.ok(Math.max(...link.samples.map((sample) => sample.queueDelayMs)) < 5, 'no queue builds below capacity');
  assert.equal(link.estimator.usage, 'normal');
});

test('the acknowledged rate follows a jump from 40 kbit/s to 2.5 Mbit/s (audio, then video joins) within 2 s, and back', () => {
  let rateBps = 40_000;
  const link = new SimulatedLink({ capacityBps: 10_000_000, initialBps: 5_000_000, sendRateBps: () => rateBps });
  link.runUntil(5_000);
  const audioOnly = link.estimator.acknowledgedBps!;
  // Four 1200-byte packets a second make coarse 150 ms windows: near, not at, 40 kbit/s.
  assert.ok(audioOnly < 100_000, `audio alone: ${kbps(audioOnly)}`);
  rateBps = 2_500_000;
  link.runUntil(7_000);
  const withVideo = link.estimator.acknowledgedBps!;
  assert.ok(withVideo > 2_000_000, `2 s after video joined: ${kbps(withVideo)}`);
  rateBps = 150_000;
  link.runUntil(9_000);
  const smaller = link.estimator.acknowledgedBps!;
  assert.ok(smaller < 300_000, `2 s after a switch to a 150 kbit/s layer: ${kbps(smaller)}`);
});

test('a completed probe at 2.4 Mbit/s on a 5 Mbit/s link raises the estimate at once', () => {
  const link = new SimulatedLink({ capacityBps: 5_000_000, initialBps: 300_000, sendRateBps: (bps) => bps });
  link.runUntil(3_000);
  assert.equal(link.estimator.lastProbe(), undefined);
  link.sendProbe(7, 2_400_000, 15);
  link.runUntil(3_500);

  const probe = link.estimator.lastProbe();
  assert.ok(probe !== undefined, 'the probe completed');
  assert.equal(probe.clusterId, 7);
  assert.ok(Math.abs(probe.bps - 2_400_000) < 100_000, `probe measured ${kbps(probe.bps)}`);
  const before = link.samples.filter((sample) => sample.atMs < probe.completedAtMs).at(-1)!;
  const after = link.samples.find((sample) => sample.atMs >= probe.completedAtMs)!;
  assert.ok(before.estimateBps < 500_000, `before: ${kbps(before.estimateBps)}`);
  assert.ok(after.estimateBps >= 2_300_000, `after the feedback that completed it: ${kbps(after.estimateBps)}`);
  link.runUntil(6_000);
  assert.ok(link.estimator.estimateBps >= 2_300_000, 'and it holds');
});

test('a probe into a link that cannot carry it reports the link rate, and the estimate does not follow the probe', () => {
  const capacityBps = 1_000_000;
  const link = new SimulatedLink({ capacityBps, initialBps: 300_000, sendRateBps: (bps) => bps });
  link.runUntil(3_000);
  link.sendProbe(1, 3_000_000, 20);
  link.runUntil(5_000);
  const probe = link.estimator.lastProbe();
  assert.ok(probe !== undefined, 'the probe completed');
  assert.ok(probe.bps >= 0.8 * capacityBps && probe.bps <= capacityBps, `probe measured ${kbps(probe.bps)}`);
  for (const { atMs, estimateBps } of link.between(3_000, 5_000))
    assert.ok(estimateBps < capacityBps, `${kbps(estimateBps)} at ${atMs} ms`);
});

test('when capacity drops from 2 Mbit/s to 500 kbit/s the estimate falls below 500 kbit/s within 2 s and the queue drains', () => {
  const link = new SimulatedLink({
    capacityBps: (ms) => (ms < 20_000 ? 2_000_000 : 500_000),
    initialBps: 1_000_000,
    sendRateBps: (bps) => bps,
  });
  link.runUntil(40_000);
  const beforeDrop = link.between(15_000, 20_000).map((sample) => sample.estimateBps);
  assert.ok(Math.min(...beforeDrop) > 1_500_000, `before the drop: from ${kbps(Math.min(...beforeDrop))}`);
  const belowMs = link.between(20_000, 40_000).find((sample) => sample.estimateBps < 500_000)?.atMs;
  assert.ok(belowMs !== undefined && belowMs < 22_000, `below 500 kbit/s at ${belowMs} ms`);
  for (const { atMs, estimateBps } of link.between(belowMs, 40_000)) assert.ok(estimateBps < 550_000, `${kbps(estimateBps)} at ${atMs} ms`);
  const lateQueueMs = Math.max(...link.between(32_000, 40_000).map((sample) => sample.queueDelayMs));
  assert.ok(lateQueueMs < 100, `queueing delay up to ${lateQueueMs} ms after 12 s`);
});

test("random loss on a fat link: 1 % and 10 % are the link's inherent loss and the estimate rises; 30 % lowers it", () => {
  const estimatesEverySecond = (lossRate: number): { estimates: number[]; lossFraction: number } => {
    const link = new SimulatedLink({ capacityBps: 20_000_000, initialBps: 1_000_000, sendRateBps: (bps) => bps, lossRate, seed: 3 });
    const estimates: number[] = [];
    for (let ms = 1_000; ms <= 20_000; ms += 1_000) {
      link.runUntil(ms);
      estimates.push(link.estimator.estimateBps);
    }
    return { estimates, lossFraction: link.estimator.lossFraction };
  };
  const isSorted = (values: number[], order: (a: number, b: number) => number): boolean =>
    values.every((value, i) => i === 0 || order(values[i - 1], value) <= 0);

  // Windows of 1 % mean loss now and then exceed 2 %, which holds the estimate, but none reach 10 %.
  const light = estimatesEverySecond(0.01);
  assert.ok(light.lossFraction < 0.03, `measured loss ${light.lossFraction}`);
  assert.ok(
    isSorted(light.estimates, (a, b) => a - b),
    `1 % loss, never falling: ${light.estimates.map(kbps).join(', ')}`,
  );
  assert.ok(light.estimates.at(-1)! > 3 * 1_000_000);

  // The first windows, before the inherent loss is known, may lower it a little; then it rises.
  const heavy = estimatesEverySecond(0.1);
  assert.ok(Math.abs(heavy.lossFraction - 0.1) < 0.06, `measured loss ${heavy.lossFraction}`);
  assert.ok(Math.min(...heavy.estimates) > 0.8 * 1_000_000, `10 % loss: ${heavy.estimates.map(kbps).join(', ')}`);
  assert.ok(heavy.estimates.at(-1)! > 2 * 1_000_000, `10 % loss: ${heavy.estimates.map(kbps).join(', ')}`);

  const lossy = estimatesEverySecond(0.3);
  assert.ok(
    isSorted(lossy.estimates, (a, b) => b - a),
    `30 % loss, never rising: ${lossy.estimates.map(kbps).join(', ')}`,
  );
  assert.ok(lossy.estimates.at(-1)! < 0.5 * 1_000_000, `30 % loss: ${lossy.estimates.map(kbps).join(', ')}`);
});

test('reordering, shuffled feedback and 16-bit sequence wrap change nothing', () => {
  const options = { capacityBps: 5_000_000, initialBps: 1_000_000, sendRateBps: (bps: number) => bps };
  const plain = new SimulatedLink(options);
  const wrapping = new SimulatedLink({ ...options, firstSequenceNumber: 65_000 });
  const reordered = new SimulatedLink({ ...options, reorderRate: 0.2, shuffleFeedback: true });
  for (const link of [plain, wrapping, reordered]) link.runUntil(15_000);

  assert.deepEqual(wrapping.samples, plain.samples, 'the sequence numbers wrapped 536 packets in, to the same result');
  const ratio = reordered.estimator.estimateBps / plain.estimator.estimateBps;
  assert.ok(ratio > 0.95 && ratio < 1.05, `reordered: ${kbps(reordered.estimator.estimateBps)} vs ${kbps(plain.estimator.estimateBps)}`);
  assert.equal(reordered.estimator.usage, 'normal');
  assert.equal(reordered.estimator.lossFraction, 0, 'packets reported missing and received in the next feedback are not lost');
});

/** Sends packets `first`…`first + count - 1` (16-bit wrapped), `intervalMs` apart from `startMs`. */
function sendPackets(estimator: BandwidthEstimator, first: number, count: number, startMs: number, intervalMs: number): void {
  for (let i = 0; i < count; i++) {
    estimator.onPacketSent({ transportSequenceNumber: (first + i) & 0xffff, sizeBytes: 1000, sendTimeMs: startMs + i * intervalMs });
  }
}

/** Results for packets `first`…`first + count - 1`: packet n arrived at 50 + 10·n ms, unless `lost(n)`. */
function results(first: number, count: number, lost: (sequenceNumber: number) => boolean = () => false): PacketResult[] {
  return Array.from({ length: count }, (_, i) => ({
    sequenceNumber: (first + i) & 0xffff,
    arrivalTimeUs: lost(first + i) ? undefined : (50 + (first + i) * 10) * 1000,
  }));
}

test('a packet reported lost and then received counts as received', () => {
  const lossAfter = (receivedLate: boolean): number => {
    const estimator = new BandwidthEstimator({ initialBps: 300_000, minBps: 30_000, maxBps: 5_000_000 });
    sendPackets(estimator, 0, 100, 0, 10);
    estimator.onFeedback(
      results(0, 50, (n) => n >= 10 && n < 20),
      500,
    );
    estimator.onFeedback([...(receivedLate ? results(10, 10) : []), ...results(50, 40)], 1000);
    estimator.onFeedback(results(90, 10), 1600); // closes the loss window opened by the first feedback
    return estimator.lossFraction;
  };
  assert.equal(lossAfter(false), 0.1);
  assert.equal(lossAfter(true), 0);
});

test('feedback for unknown or forgotten sequence numbers is ignored', () => {
  const estimator = new BandwidthEstimator({ initialBps: 300_000, minBps: 30_000, maxBps: 5_000_000 });
  sendPackets(estimator, 100, 50, 0, 10);
  estimator.onFeedback([...results(150, 100), ...results(60_000, 100), ...results(0, 100)], 600);
  assert.equal(estimator.acknowledgedBps, undefined);
  assert.equal(estimator.estimateBps, 300_000);
  assert.equal(estimator.usage, 'normal');

  // After 5,000 more packets the first ones have left the history: reports of them lost must not count.
  const longer = new BandwidthEstimator({ initialBps: 300_000, minBps: 30_000, maxBps: 5_000_000 });
  sendPackets(longer, 0, 5_000, 0, 1);
  longer.onFeedback([...results(0, 200, () => true), ...results(4_900, 100)], 5_000);
  sendPackets(longer, 5_000, 100, 5_000, 10);
  longer.onFeedback(results(5_000, 100), 6_100);
  assert.equal(longer.lossFraction, 0);
});

test('arbitrary input never yields NaN, negative or out-of-bounds values', () => {
  const random = seededRandom(42);
  const minBps = 50_000;
  const maxBps = 3_000_000;
  const estimator = new BandwidthEstimator({ initialBps: 10_000_000, minBps, maxBps });
  assert.equal(estimator.estimateBps, maxBps, 'the initial rate is clamped');
  let sequenceNumber = 65_000;
  let nowMs = 0;
  for (let round = 0; round < 2_000; round++) {
    nowMs += random() * 40;
    for (let i = Math.floor(random() * 20); i > 0; i--) {
      sequenceNumber = (sequenceNumber + (random() < 0.05 ? Math.floor(random() * 3_000) : 1)) & 0xffff;
      estimator.onPacketSent({
        transportSequenceNumber: sequenceNumber,
        sizeBytes: Math.floor(random() * 1_500),
        sendTimeMs: nowMs + random() * 5,
        ...(random() < 0.1 && { probeClusterId: Math.floor(random() * 12) }),
      });
    }
    const feedback: PacketResult[] = [];
    for (let i = Math.floor(random() * 30); i > 0; i--) {
      const arrival = random();
      feedback.push({
        sequenceNumber: (sequenceNumber - Math.floor(random() * 200)) & 0xffff,
        arrivalTimeUs:
          arrival < 0.2
            ? undefined
            : arrival < 0.25
              ? (random() - 0.5) * 1e13
              : arrival < 0.27
                ? Infinity
                : nowMs * 1000 + random() * 300_000,
      });
    }
    estimator.onFeedback(feedback, nowMs + (random() < 0.02 ? 5_000 : 0));
    const { estimateBps, acknowledgedBps, lossFraction } = estimator;
    assert.ok(estimateBps >= minBps && estimateBps <= maxBps, `estimate ${estimateBps}`);
    assert.ok(
      acknowledgedBps === undefined || (Number.isFinite(acknowledgedBps) && acknowledgedBps >= 0),
      `acknowledged ${acknowledgedBps}`,
    );
    assert.ok(lossFraction >= 0 && lossFraction <= 1, `loss ${lossFraction}`);
    const probe = estimator.lastProbe();
    assert.ok(probe === undefined || (Number.isFinite(probe.bps) && probe.bps >= 0), `probe ${probe?.bps}`);
  }
});

test('a probe cluster of media and padding of any size measures its rate: no one packet is left out of it', () => {
  const probes = new ProbeBitrateEstimator();
  // Four 300-byte media packets, then 1,200 bytes of padding, 25 ms apart: 2,400 bytes per 125 ms, 153.6 kbit/s.
  const sizes = [300, 300, 300, 300, 1200];
  sizes.forEach((size, i) => probes.onSent(1, size, 1000 + 25 * i));
  sizes.forEach((size, i) => {
    probes.onReported(1);
    probes.onReceived(1, 1000 + 25 * i, 5000 + 25 * i, size);
  });
  assert.equal(probes.completeClusters(6000), 153_600);
});

test('a queue that stands shows, jitter does not, and a path whose delay grew for good stops reading as a queue', () => {
  const meter = new QueueDelayMeter();
  let ms = 0;
  const run = (untilMs: number, oneWayMs: (i: number) => number): void => {
    for (let i = 0; ms < untilMs; ms += 10, i++) meter.add(ms, RECEIVER_CLOCK_OFFSET_MS + ms + oneWayMs(i));
  };
  run(2000, () => 20);
  assert.equal(meter.standingMs, 0);
  run(4000, (i) => (i % 2 === 0 ? 20 : 120));
  assert.equal(meter.standingMs, 0, 'every other packet 100 ms late: jitter');
  run(6000, () => 170);
  assert.equal(meter.standingMs, 150, 'every packet 150 ms late: a queue');
  run(20_000, () => 170);
  assert.equal(meter.standingMs, 0, 'after 10 s the longer path is the path');
});
