import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeLayers, VideoLayer } from '../src/media/core/videoLayer.js';

/** Two simulcast layers as the publisher sees them, fed one packet per frame, judged every 100 ms. */
class Layers {
  readonly small = new VideoLayer(0, 'q');
  readonly large = new VideoLayer(1, 'h');
  nowMs = 0;
  private readonly sequence = [0, 0];
  private readonly frames = [0, 0];
  /** Each layer's frame rate and when its next frame is due: a rate kept from one run to the next keeps its schedule. */
  private readonly fps = [0, 0];
  private readonly next = [Infinity, Infinity];
  private started = false;

  /** Runs until `untilMs`: each layer sends at its frame rate (0: nothing), the large one `active` (asked for) or not. */
  run(untilMs: number, fps: [small: number, large: number], active = true): void {
    const next = this.next;
    fps.forEach((rate, i) => {
      if (rate !== this.fps[i]) next[i] = rate > 0 ? this.nowMs : Infinity;
      this.fps[i] = rate;
    });
    for (let tick = this.started ? this.nowMs + 10 : this.nowMs; tick <= untilMs; tick += 10) {
      this.started = true;
      this.nowMs = tick;
      [this.small, this.large].forEach((layer, i) => {
        if (tick < next[i]!) return;
        next[i]! += 1000 / fps[i]!;
        layer.onPacket(1000, 0, this.sequence[i]!++ & 0xffff, (this.frames[i]! += 3000), tick);
      });
      if (tick % 100 === 0) this.usable = judgeLayers([this.small, this.large], active ? 0b11 : 0b01);
    }
  }

  /** The usable layers at the last judgement, a bit per layer. */
  private usable = 0;
  get smallUsable(): boolean {
    return (this.usable & 0b01) !== 0;
  }
  get largeUsable(): boolean {
    return (this.usable & 0b10) !== 0;
  }

  /** A late copy of the large layer's packet `sequenceNumber` (a repair), now. */
  repairLarge(sequenceNumber: number): void {
    this.large.onPacket(1000, 0, sequenceNumber, 0, this.nowMs);
  }
}

test('a layer flows while its sequence advances; repairs of what it lost do not keep a stopped layer flowing', () => {
  const layers = new Layers();
  layers.run(2000, [30, 30]);
  assert.ok(layers.largeUsable);
  layers.run(2400, [30, 0]);
  layers.repairLarge(50);
  layers.run(2800, [30, 0]);
  layers.repairLarge(55);
  layers.run(2700 + 500, [30, 0]);
  assert.equal(layers.largeUsable, false, 'stopped 1.2 s ago, repairs since do not count');
  assert.equal(layers.smallUsable, true);
});

test('a layer whose frame rate stays under half of the layer below is starved, and held so for 5 s before it may be fed again', () => {
  const layers = new Layers();
  layers.run(2000, [30, 30]);
  assert.equal(layers.largeUsable, true);
  // A dip (the encoder skipping frames for a moment) is not starvation.
  layers.run(2700, [30, 8]);
  layers.run(4000, [30, 30]);
  assert.equal(layers.largeUsable, true, '0.7 s at 8 of 30 frames/s: still fed');
  layers.run(6000, [30, 12]);
  assert.equal(layers.largeUsable, false, '2 s at 12 of 30 frames/s: starved');
  const starvedAt = layers.nowMs;
  layers.run(starvedAt + 4000, [30, 30]);
  assert.equal(layers.largeUsable, false, 'back at full rate, but within the hold');
  layers.run(starvedAt + 5200, [30, 30]);
  assert.equal(layers.largeUsable, true, 'fed again after the hold');
  // Between the shares (0.5 and 0.8 of the layer below) nothing changes: no flapping at the edge.
  layers.run(layers.nowMs + 2000, [30, 20]);
  assert.equal(layers.largeUsable, true, '20 of 30 frames/s: still fed');
});

test('a layer that nearly stops while the one below goes on (a collapsing uplink) is starved at once, without the wait for a dip to pass', () => {
  const layers = new Layers();
  layers.run(2000, [30, 30]);
  const collapsedAt = layers.nowMs;
  let starvedAfterMs = -1;
  while (starvedAfterMs < 0 && layers.nowMs < collapsedAt + 3000) {
    layers.run(layers.nowMs + 100, [30, 2]);
    if (!layers.largeUsable) starvedAfterMs = layers.nowMs - collapsedAt;
  }
  // Its frame rate over the last second is under a quarter of the smallest's after 0.8 s; at under half for a second, 1.5 s.
  assert.ok(starvedAfterMs > 0 && starvedAfterMs <= 900, `starved ${starvedAfterMs} ms after it collapsed`);
  // The smallest stalls for a moment too (the publisher's pacer drains the large layer's queue first): the large one stays starved.
  layers.run(layers.nowMs + 800, [0, 3]);
  assert.ok(!layers.smallUsable && !layers.largeUsable, 'within the hold, a dying layer is not what players turn back to');
});

test('a layer paused on request is not held when it resumes: usable once its frame rate shows, within a second', () => {
  const layers = new Layers();
  layers.run(2000, [30, 30]);
  layers.run(5000, [30, 0], false);
  assert.equal(layers.largeUsable, false, 'paused');
  const resumedAt = layers.nowMs;
  let usableAfterMs = -1;
  while (usableAfterMs < 0 && layers.nowMs < resumedAt + 3000) {
    layers.run(layers.nowMs + 100, [30, 30], true);
    if (layers.largeUsable) usableAfterMs = layers.nowMs - resumedAt;
  }
  assert.ok(usableAfterMs > 0 && usableAfterMs <= 1000, `usable ${usableAfterMs} ms after it resumed`);
});

test('the smallest layer is never starved: it is what players fall back to', () => {
  const layers = new Layers();
  layers.run(2000, [5, 30]);
  assert.equal(layers.smallUsable, true);
});

test('a silence of every layer at once (a stalled uplink or server) moves no player and holds no layer starved', () => {
  const layers = new Layers();
  layers.run(2000, [30, 30]);
  layers.run(2800, [0, 0]);
  assert.ok(layers.smallUsable && layers.largeUsable, '800 ms without any packet: judged as of the last one');
  layers.run(3000, [30, 30]);
  assert.ok(layers.largeUsable, 'both back: nothing was starved');
  // The same silence of the large layer alone is a layer the encoder switched off.
  layers.run(3800, [30, 0]);
  assert.ok(layers.smallUsable && !layers.largeUsable);
});

test('a keyframe request is outstanding until its keyframe begins to arrive, or the retry time passes: no storm of requests on a slow uplink', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const layer = new VideoLayer(0, 'q');
  layer.ssrc = 1234;
  const sent: number[] = [];
  const request = (): void => layer.requestKeyFrame(() => sent.push(Date.now() - 1_000_000), 800);
  request();
  assert.deepEqual(sent, [0], 'the first at once');
  for (let ms = 50; ms < 800; ms += 50) {
    t.mock.timers.tick(50);
    request();
  }
  assert.deepEqual(sent, [0], 'none while the keyframe is awaited');
  t.mock.timers.tick(50);
  request();
  assert.deepEqual(sent, [0, 800], 'again after the retry time: that keyframe was lost');
  t.mock.timers.tick(20);
  layer.keyFrameArrived();
  request();
  t.mock.timers.tick(80);
  assert.deepEqual(sent, [0, 800, 900], 'once a keyframe arrives, at the end of the merge interval');
});
