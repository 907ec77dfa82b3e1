import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DownlinkAllocator, type LayerRate } from '../src/media/core/congestion/downlinkAllocator.js';
import { ALL_TEMPORAL_LAYERS } from '../src/media/core/videoRewriter.js';
import { SimulatedClock } from '@parley/testkit';
import { LayerCapControl } from '../src/media/core/layerCaps.js';
import type { PacketResult } from '../src/media/core/congestion/bandwidthEstimator.js';

const ONE_WAY_MS = 20;
/** A drop-tail bottleneck queue of this many milliseconds at the link's rate, as tbf's latency setting. */
const MAX_QUEUE_MS = 150;
const FEEDBACK_INTERVAL_MS = 50;

/**
 * A bottleneck link with a rate, a drop-tail queue and a fixed delay; the receiver reports what
 * arrived, transport-cc style. With `burstBytes`, a token bucket as tbf's: what the bucket holds
 * goes at once, so a short burst over the rate crosses with no queue to show it.
 */
class SimulatedLink {
  rateBps: number;
  private freeAtMs = 0;
  private tokens = 0;
  private tokensAtMs = 0;
  private sequenceNumber = 0;
  private readonly inFlight: Array<{ sequenceNumber: number; arrivalMs: number | undefined }> = [];
  readonly sent: Array<{ atMs: number; bytes: number; kind: string; lost: boolean }> = [];

  /** A seeded generator, so that random loss is the same each run. */
  private seed = 1;

  constructor(
    rateBps: number,
    private readonly randomLoss = 0,
    private readonly burstBytes = 0,
  ) {
    this.rateBps = rateBps;
  }

  private random(): number {
    this.seed = (this.seed * 48271) % 0x7fffffff;
    return this.seed / 0x7fffffff;
  }

  send(allocator: DownlinkAllocator, kind: 'audio' | 'video' | 'padding', bytes: number, nowMs: number): void {
    const sequenceNumber = this.sequenceNumber++ & 0xffff;
    allocator.onPacketSent(kind, sequenceNumber, bytes, nowMs);
    const bytesPerMs = this.rateBps / 8000;
    // Leaves when the packets before it have and the bucket holds its bytes.
    const startMs = Math.max(nowMs, this.freeAtMs);
    const tokens = Math.min(this.burstBytes, this.tokens + (startMs - this.tokensAtMs) * bytesPerMs);
    const departureMs = startMs + Math.max(0, bytes - tokens) / bytesPerMs;
    const dropped = departureMs - nowMs > MAX_QUEUE_MS;
    const lost = dropped || this.random() < this.randomLoss;
    if (!dropped) {
      this.freeAtMs = departureMs;
      this.tokens = Math.max(0, tokens - bytes);
      this.tokensAtMs = departureMs;
    }
    this.inFlight.push({ sequenceNumber, arrivalMs: lost ? undefined : departureMs + ONE_WAY_MS });
    this.sent.push({ atMs: nowMs, bytes, kind, lost });
  }

  /** The feedback the receiver sent one way ago: every packet up to the newest arrived by then. */
  feedback(nowMs: number): PacketResult[] {
    const reportedUntil = nowMs - ONE_WAY_MS;
    let last = -1;
    this.inFlight.forEach((p, i) => {
      if (p.arrivalMs !== undefined && p.arrivalMs <= reportedUntil) last = i;
    });
    const reported = this.inFlight.splice(0, last + 1);
    return reported.map((p) => ({
      sequenceNumber: p.sequenceNumber,
      arrivalTimeUs: p.arrivalMs === undefined ? undefined : p.arrivalMs * 1000,
    }));
  }

  /** Bits per second sent in [fromMs, toMs), and the share of it lost. */
  sentBetween(fromMs: number, toMs: number): { bps: number; lossFraction: number } {
    const window = this.sent.filter((p) => p.atMs >= fromMs && p.atMs < toMs);
    const bytes = window.reduce((sum, p) => sum + p.bytes, 0);
    return { bps: (bytes * 8 * 1000) / (toMs - fromMs), lossFraction: window.filter((p) => p.lost).length / Math.max(1, window.length) };
  }
}

/** A three-layer simulcast publisher's rates: 180p, 360p, 720p as a browser encodes them. */
const LAYER_BPS = [150_000, 350_000, 1_500_000];
const FRAME_MS = 1000 / 30;
const MAX_PACKET_BYTES = 1200;
const AUDIO_BYTES = 120;
/** An encoder reaches a new cap this long after it was announced (the signalling, then its ramp). */
const ENCODER_FOLLOW_MS = 1000;

/**
 * The publisher's layers at LAYER_BPS; with `capped`, capped for the player's budget as the
 * publisher does (LayerCapControl, the player wanting the top layer), each cap reached by the
 * encoder ENCODER_FOLLOW_MS after it was announced.
 */
function publisherLayers(capped: boolean) {
  const control = new LayerCapControl(LAYER_BPS.length);
  let announced = LAYER_BPS.map(() => 0);
  const encoded = [...LAYER_BPS];
  const layers: LayerRate[] = LAYER_BPS.map((_, i) => ({
    bitrateBps: () => encoded[i]!,
    temporalLayers: 1,
    get capBps() {
      return announced[i]!;
    },
  }));
  return {
    layers,
    update(clock: SimulatedClock, allocator: DownlinkAllocator, spatial: number): void {
      if (!capped) return;
      const caps = control.update(
        encoded,
        [{ budget: { wanted: 2, bps: allocator.videoBudgetBps(clock.nowMs) }, inUse: 1 << spatial }],
        clock.nowMs,
      );
      if (!caps) return;
      announced = caps;
      clock.after(ENCODER_FOLLOW_MS, () =>
        caps.forEach((cap, i) => (encoded[i] = cap === 0 ? LAYER_BPS[i]! : Math.min(cap, LAYER_BPS[i]!))),
      );
    },
  };
}

/**
 * Runs a player's downlink for `untilMs` with the link's rate set by `rateAt` (and a share of
 * packets lost at random, and a token bucket of `burstBytes`); returns the layer it got at each feedback.
 */
function simulate(untilMs: number, rateAt: (ms: number) => number, { randomLoss = 0, burstBytes = 0, capped = false } = {}) {
  const clock = new SimulatedClock();
  const link = new SimulatedLink(rateAt(0), randomLoss, burstBytes);
  const allocator: DownlinkAllocator = new DownlinkAllocator({
    clock,
    sendPadding: (bytes) => {
      let sent = 0;
      for (; sent < bytes; sent += MAX_PACKET_BYTES) link.send(allocator, 'padding', MAX_PACKET_BYTES, clock.nowMs);
      return sent;
    },
  });
  const publisher = publisherLayers(capped);
  let spatial = 2;
  const timeline: Array<{ atMs: number; spatial: number; probing: boolean }> = [];
  clock.every(FRAME_MS, () => {
    let frameBytes = publisher.layers[spatial]!.bitrateBps(clock.nowMs) / 8 / 30;
    for (; frameBytes > 0; frameBytes -= MAX_PACKET_BYTES)
      link.send(allocator, 'video', Math.min(frameBytes, MAX_PACKET_BYTES), clock.nowMs);
  });
  clock.every(20, () => link.send(allocator, 'audio', AUDIO_BYTES, clock.nowMs));
  clock.every(FEEDBACK_INTERVAL_MS, () => {
    link.rateBps = rateAt(clock.nowMs);
    allocator.onFeedback(link.feedback(clock.nowMs), clock.nowMs);
    spatial = allocator.allocate(2, spatial, publisher.layers, clock.nowMs).spatial;
    publisher.update(clock, allocator, spatial);
    timeline.push({ atMs: clock.nowMs, spatial, probing: allocator.probing });
  });
  clock.advance(untilMs);
  allocator.close();
  return { timeline, link, allocator };
}

test('a player whose link drops to 500 kbit/s moves to the layer that fits within 5 s, stays under the cap, and is back on the top layer within 15 s of the cap being lifted, after probing', () => {
  const CAPPED_FROM_MS = 10_000;
  const LIFTED_AT_MS = 30_000;
  const { timeline, link } = simulate(50_000, (ms) => (ms >= CAPPED_FROM_MS && ms < LIFTED_AT_MS ? 500_000 : 5_000_000));
  assert.ok(
    timeline.filter((t) => t.atMs >= 2000 && t.atMs < CAPPED_FROM_MS).every((t) => t.spatial === 2),
    'the top layer on the clean link',
  );

  const settledAt = timeline.find((t) => t.atMs >= CAPPED_FROM_MS && LAYER_BPS[t.spatial]! < 500_000)!.atMs;
  assert.ok(settledAt - CAPPED_FROM_MS <= 5000, `moved down ${settledAt - CAPPED_FROM_MS} ms after the cap`);
  const capped = timeline.filter((t) => t.atMs >= CAPPED_FROM_MS + 5000 && t.atMs < LIFTED_AT_MS);
  assert.ok(
    capped.every((t) => t.spatial < 2),
    `never back on the top layer under the cap: ${capped.filter((t) => t.spatial === 2).length} feedbacks`,
  );
  assert.ok(
    capped.filter((t) => t.spatial === 1).length / capped.length > 0.8,
    `mostly the 350 kbit/s layer that fits: ${capped.map((t) => t.spatial).join('')}`,
  );
  // Probes go over the cap briefly; over the capped time the link carries what is sent.
  const { bps, lossFraction } = link.sentBetween(CAPPED_FROM_MS + 5000, LIFTED_AT_MS);
  assert.ok(bps < 500_000, `sent ${Math.round(bps / 1000)} kbit/s under the cap`);
  assert.ok(lossFraction < 0.03, `lost ${(lossFraction * 100).toFixed(1)} % under the cap`);

  const backAt = timeline.find((t) => t.atMs >= LIFTED_AT_MS && t.spatial === 2)!.atMs;
  assert.ok(backAt - LIFTED_AT_MS <= 15_000, `back on the top layer ${backAt - LIFTED_AT_MS} ms after the lift`);
  assert.ok(
    timeline.some((t) => t.atMs >= LIFTED_AT_MS && t.atMs < backAt && t.probing),
    'probed before stepping up',
  );
  assert.ok(
    timeline.filter((t) => t.atMs >= backAt + 2000).every((t) => t.spatial === 2),
    'stays on the top layer',
  );
});

test('behind a token bucket (tbf: a 4 kB burst, a 150 ms queue) dropping to 300 kbit/s, a player is on the 150 kbit/s layer within 1.5 s; probes are not fooled by the burst: it never gets the 350 kbit/s layer there, at 600 kbit/s it does', () => {
  const rateAt = (ms: number): number => (ms < 10_000 ? 5_000_000 : ms < 40_000 ? 300_000 : 600_000);
  const { timeline, link } = simulate(55_000, rateAt, { burstBytes: 4000 });
  // A drop-tail queue at its limit holds its delay, so the delay gradient soon reads normal again; the standing queue is what shows.
  const downAt = timeline.find((t) => t.atMs >= 10_000 && t.spatial === 0)!.atMs;
  assert.ok(downAt - 10_000 <= 1500, `on the layer that fits ${downAt - 10_000} ms after the drop`);
  const capped = timeline.filter((t) => t.atMs >= downAt && t.atMs < 40_000);
  assert.ok(
    capped.some((t) => t.probing),
    'it probes',
  );
  assert.ok(
    capped.every((t) => t.spatial === 0),
    `layers at 300 kbit/s: ${capped.map((t) => t.spatial).join('')}`,
  );
  const { lossFraction } = link.sentBetween(15_000, 40_000);
  assert.ok(lossFraction < 0.02, `lost ${(lossFraction * 100).toFixed(1)} % at 300 kbit/s`);
  const upAt = timeline.find((t) => t.atMs >= 40_000 && t.spatial === 1)?.atMs;
  assert.ok(upAt !== undefined && upAt - 40_000 <= 10_000, `at 600 kbit/s, on the 350 kbit/s layer ${upAt! - 40_000} ms later`);
});

test('behind a 1 Mbit/s link with 5 % loss, a player whose top layer is capped for it stays on that layer: an overuse as the encoder fills its cap is waited out while the cap follows', () => {
  const { timeline, link } = simulate(70_000, (ms) => (ms < 10_000 ? 5_000_000 : 1_000_000), {
    randomLoss: 0.05,
    burstBytes: 4000,
    capped: true,
  });
  const settled = timeline.filter((t) => t.atMs >= 20_000);
  assert.ok(
    settled.every((t) => t.spatial === 2),
    `layers from 10 s after the drop: ${settled.map((t) => t.spatial).join('')}`,
  );
  const { bps } = link.sentBetween(20_000, 70_000);
  assert.ok(bps > 700_000 && bps < 1_000_000, `sent ${Math.round(bps / 1000)} kbit/s`);
});

test('the smallest layer that does not fit drops temporal layers; the view caps the layer; up after a second of room', () => {
  const clock = new SimulatedClock();
  const allocator = new DownlinkAllocator({ clock, sendPadding: () => 0, initialBps: 120_000, minBps: 50_000 });
  const temporal: LayerRate[] = [
    { bitrateBps: (_now, maxTemporal = 2) => [60_000, 100_000, 150_000][maxTemporal]!, temporalLayers: 3, capBps: 0 },
    { bitrateBps: () => 500_000, temporalLayers: 3, capBps: 0 },
  ];
  assert.deepEqual(allocator.allocate(1, 1, temporal, 0), { spatial: 0, temporal: 1 });
  const roomy = new DownlinkAllocator({ clock, sendPadding: () => 0 });
  assert.deepEqual(roomy.allocate(0, 1, temporal, 0), { spatial: 0, temporal: 3 }, 'capped by the view');
  assert.deepEqual(roomy.allocate(1, 0, temporal, 0), { spatial: 0, temporal: 3 }, 'room for the next layer up...');
  assert.deepEqual(roomy.allocate(1, 0, temporal, 500), { spatial: 0, temporal: 3 });
  assert.deepEqual(roomy.allocate(1, 0, temporal, 1000), { spatial: 1, temporal: 3 }, '...for a second: up');
});

test('retransmissions get what the delay-based estimate leaves beside the media, at least a quarter of the estimate, in bursts of at most 500 ms', () => {
  const clock = new SimulatedClock();
  const allocator = new DownlinkAllocator({ clock, sendPadding: () => 0, initialBps: 1_000_000 });
  // 900 kbit/s of media over the last second leaves 100 kbit/s; the floor is 250 kbit/s: 31,250 bytes/s, 15,625 per 500 ms.
  for (let ms = 0; ms < 1000; ms += 10) allocator.onPacketSent('video', ms / 10, 1125, ms);
  let allowed = 0;
  while (allocator.takeRetransmission(1000, 1000) > 0) allowed++;
  assert.equal(allowed, 3, 'the first burst: 3000 bytes');
  let later = 0;
  for (let ms = 1010; ms <= 2000; ms += 10) {
    allocator.onPacketSent('video', ms / 10, 1125, ms);
    while (allocator.takeRetransmission(1000, ms) > 0) later++;
  }
  assert.ok(later >= 28 && later <= 34, `${later} kB over the next second`);
  for (let ms = 2010; ms <= 3000; ms += 10) allocator.onPacketSent('video', ms / 10, 1125, ms);
  let burst = 0;
  while (allocator.takeRetransmission(1000, 3000) > 0) burst++;
  assert.equal(burst, 15, 'a burst after a second without retransmissions');
});

test('on a link that loses packets at random, each retransmission goes twice while the budget has room for two, then once', () => {
  const copiesUntilSpent = (allocator: DownlinkAllocator): number[] => {
    const copies: number[] = [];
    while (copies.at(-1) !== 0) copies.push(allocator.takeRetransmission(1000, 5000));
    return copies;
  };
  const clean = copiesUntilSpent(simulate(5000, () => 10_000_000).allocator);
  assert.ok(clean.slice(0, -1).every((c) => c === 1) && clean.length > 2, `clean: ${clean}`);
  const lossy = simulate(5000, () => 10_000_000, { randomLoss: 0.05 }).allocator;
  // The first burst holds 3000 bytes: two copies, one (the last 1000 bytes), none.
  const copies = copiesUntilSpent(lossy);
  assert.deepEqual(copies.slice(-2), [1, 0], `lossy: ${copies}`);
  assert.ok(copies.slice(0, -2).every((c) => c === 2) && copies.length > 2, `lossy: ${copies}`);
});

test("what a player asks for again counts in its layer's cost: the layer moves down until its repairs fit", () => {
  const clock = new SimulatedClock();
  const allocator = new DownlinkAllocator({ clock, sendPadding: () => 0, initialBps: 1_000_000 });
  const rates: LayerRate[] = [150_000, 350_000, 800_000].map((bps) => ({ bitrateBps: () => bps, temporalLayers: 1, capBps: 0 }));
  assert.deepEqual(allocator.allocate(2, 2, rates, 0), { spatial: 2, temporal: ALL_TEMPORAL_LAYERS }, 'the top layer fits');
  // A second of 800 kbit/s of video, and NACKs for half of it.
  for (let ms = 0; ms < 1000; ms += 10) {
    allocator.onPacketSent('video', 2 * (ms / 10), 1000, ms);
    assert.equal(allocator.takeRetransmission(500, ms), 1);
    allocator.onPacketSent('retransmission', 2 * (ms / 10) + 1, 500, ms);
  }
  assert.equal(allocator.allocate(2, 2, rates, 1000).spatial, 1, '800 kbit/s and 400 of repairs do not fit in 1 Mbit/s');
});

test('after its link shrinks a player is not probed for 2 s: padding into a link that just filled only lengthens its queue', () => {
  const { timeline } = simulate(20_000, (ms) => (ms >= 10_000 ? 400_000 : 5_000_000));
  const downAtMs = timeline.find((t) => t.atMs >= 10_000 && t.spatial < 2)!.atMs;
  const probedAt = timeline.find((t) => t.atMs >= downAtMs && t.probing)?.atMs;
  assert.ok(probedAt === undefined || probedAt - downAtMs >= 2000, `probed ${probedAt! - downAtMs} ms after moving down`);
});

test('audio repeats earlier frames on a lossy link with room, as the publisher sent it on a clean one, and without repeats when the media fill the link', () => {
  assert.equal(
    simulate(5000, () => 10_000_000, { randomLoss: 0.3 }).allocator.audioRedundancy(100, 5000),
    3,
    '30 % loss: three earlier frames',
  );
  assert.equal(simulate(5000, () => 10_000_000, { randomLoss: 0.05 }).allocator.audioRedundancy(100, 5000), 2, '5 % loss: two');
  assert.equal(simulate(5000, () => 10_000_000).allocator.audioRedundancy(100, 5000), undefined, 'clean: as sent');
  const clock = new SimulatedClock();
  const full = new DownlinkAllocator({ clock, sendPadding: () => 0, initialBps: 300_000 });
  // 300 kbit/s of video in a 300 kbit/s estimate: not even the publisher's one repeat fits.
  for (let ms = 0; ms < 1000; ms += 20) {
    full.onPacketSent('video', ms / 20, 750, ms);
    full.audioRedundancy(100, ms);
  }
  assert.equal(full.audioRedundancy(100, 1000), 0);
});

test("a player's video budget: what a layer may send for it to step up; it falls at once and rises as the median of the last five seconds'", () => {
  const clock = new SimulatedClock();
  const allocator = new DownlinkAllocator({ clock, sendPadding: () => 0, initialBps: 1_000_000 });
  // 0.9 of the estimate, over the step up's 1.1 headroom.
  assert.equal(Math.round(allocator.videoBudgetBps(0)), 818_182);
  const audio = (fromMs: number, toMs: number): void => {
    for (let ms = fromMs; ms < toMs; ms += 20) allocator.onPacketSent('audio', ms / 20, 250, ms);
  };
  audio(0, 1000);
  assert.equal(Math.round(allocator.videoBudgetBps(1000)), 736_364, '100 kbit/s of audio: at once');
  audio(1000, 2000);
  allocator.videoBudgetBps(2000);
  audio(2000, 3000);
  allocator.videoBudgetBps(3000);
  assert.equal(Math.round(allocator.videoBudgetBps(4000)), 736_364, 'the audio gone: the median is still the lower');
  assert.equal(Math.round(allocator.videoBudgetBps(5000)), 736_364);
  assert.equal(Math.round(allocator.videoBudgetBps(6000)), 818_182, 'three of five without audio');
});
