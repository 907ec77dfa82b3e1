import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NackGenerator } from '@parley/protocol/rtp';
import { SimulatedClock } from '@parley/testkit';

function generator(): { clock: SimulatedClock; nacks: Array<{ atMs: number; ssrc: number; lost: number[] }>; nack: NackGenerator } {
  const clock = new SimulatedClock();
  const nacks: Array<{ atMs: number; ssrc: number; lost: number[] }> = [];
  const nack = new NackGenerator((ssrc, lost) => nacks.push({ atMs: clock.nowMs, ssrc, lost }), clock);
  return { clock, nacks, nack };
}

test('a gap is asked for at once, again every 40 ms until it arrives, and no more after', () => {
  const { clock, nacks, nack } = generator();
  nack.onPacket(1, 100, clock.nowMs);
  nack.onPacket(1, 103, clock.nowMs);
  assert.deepEqual(nacks, [{ atMs: 0, ssrc: 1, lost: [101, 102] }]);
  clock.advance(45);
  assert.deepEqual(nacks.at(-1), { atMs: 40, ssrc: 1, lost: [101, 102] });
  nack.onPacket(1, 101, clock.nowMs); // repaired
  clock.advance(85);
  assert.deepEqual(nacks.at(-1), { atMs: 80, ssrc: 1, lost: [102] });
  nack.onPacket(1, 102, clock.nowMs);
  const sent = nacks.length;
  clock.advance(500);
  assert.equal(nacks.length, sent, 'nothing missing, nothing asked');
});

test('simulcast layers are streams of their own: interleaved SSRCs lose nothing', () => {
  const { clock, nacks, nack } = generator();
  for (let i = 0; i < 100; i++) {
    nack.onPacket(0xaaaa, (5000 + i) & 0xffff, clock.nowMs);
    nack.onPacket(0xbbbb, (60_000 + i) & 0xffff, clock.nowMs);
    nack.onPacket(0xcccc, (123 + 2 * i) & 0xffff, clock.nowMs); // every other one lost
  }
  clock.advance(10);
  assert.ok(
    nacks.every((n) => n.ssrc === 0xcccc),
    'only the lossy layer is asked',
  );
  assert.deepEqual(nacks[0]!.lost, [124]);
  assert.equal(new Set(nacks.flatMap((n) => n.lost)).size, 99, 'each of its 99 gaps');
});

test('sequence numbers wrap from 65535 to 0: a gap across the wrap is a gap, not 65,000 packets', () => {
  const { clock, nacks, nack } = generator();
  nack.onPacket(7, 65_533, clock.nowMs);
  nack.onPacket(7, 65_534, clock.nowMs);
  nack.onPacket(7, 1, clock.nowMs);
  assert.deepEqual(nacks, [{ atMs: 0, ssrc: 7, lost: [65_535, 0] }]);
  // Late packets from before the wrap are repairs, not new losses.
  nack.onPacket(7, 65_535, clock.nowMs);
  nack.onPacket(7, 0, clock.nowMs);
  nack.onPacket(7, 2, clock.nowMs);
  assert.equal(nacks.length, 1);
});

test('a packet is given up after 10 tries or a second; a jump of over 1000 is a new sequence, not a loss', () => {
  const { clock, nacks, nack } = generator();
  nack.onPacket(9, 10, clock.nowMs);
  nack.onPacket(9, 12, clock.nowMs);
  clock.advance(2000);
  assert.equal(nacks.filter((n) => n.lost.includes(11)).length, 10);
  const sent = nacks.length;
  nack.onPacket(9, 5000, clock.nowMs);
  clock.advance(3000);
  assert.equal(nacks.length, sent);
});

test('close stops the timer and ignores what comes after', () => {
  const { clock, nacks, nack } = generator();
  nack.onPacket(3, 1, clock.nowMs);
  nack.onPacket(3, 5, clock.nowMs);
  nack.close();
  nack.onPacket(3, 9, clock.nowMs);
  clock.advance(1000);
  assert.equal(nacks.length, 1);
});

test('the counts say how many packets were expected and how many of them skipped (the loss before repairs)', () => {
  const clock = new SimulatedClock();
  const nacks = new NackGenerator(() => undefined, clock);
  for (const seq of [100, 101, 104, 105, 102, 106]) nacks.onPacket(1, seq, clock.now());
  for (const seq of [65535, 1]) nacks.onPacket(2, seq, clock.now());
  // Stream 1: 100 to 106 (7), of them 102 and 103 skipped (the late 102 adds nothing).
  // Stream 2: 65535, 0 and 1 across the wrap (3), 0 skipped.
  assert.deepEqual(nacks.counts(), { expected: 10, skipped: 3 });
  nacks.close();
});

test('a packet taken from redundancy (RED) is not asked for, but counts as lost on the link', () => {
  const { clock, nacks, nack } = generator();
  nack.onPacket(1, 10, clock.nowMs);
  // 11 and 12 were lost; 13 carries both, which the receiver hands on first.
  nack.onPacket(1, 11, clock.nowMs, false);
  nack.onPacket(1, 12, clock.nowMs, false);
  nack.onPacket(1, 13, clock.nowMs);
  clock.advance(100);
  assert.deepEqual(nacks, [], 'nothing to ask for');
  assert.deepEqual(nack.counts(), { expected: 4, skipped: 2 });
  nack.close();
});

test('with a round trip known and longer than 40 ms, a gap is asked for again once per round trip, until its age runs out', () => {
  const clock = new SimulatedClock();
  const nacks: number[] = [];
  const nack = new NackGenerator(
    () => nacks.push(clock.nowMs),
    clock,
    () => 100,
  );
  nack.onPacket(1, 100, clock.nowMs);
  nack.onPacket(1, 102, clock.nowMs);
  clock.advance(1500);
  // At once, then a round trip apart: ten tries over 900 ms rather than 360, as a sender honours one request per round trip.
  assert.deepEqual(nacks, [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
});

test('once repairs are seen to take longer than the round trip known (a queue at the sender), tries are spaced by that delay', () => {
  const { clock, nacks, nack } = generator();
  const times = (): number[] => nacks.map((n) => n.atMs);
  nack.onPacket(1, 100, clock.nowMs);
  nack.onPacket(1, 102, clock.nowMs);
  clock.advance(300);
  // Before any repair arrived, the round trip (none known: 40 ms) spaces the tries.
  assert.deepEqual(times(), [0, 40, 80, 120, 160, 200, 240, 280]);
  nack.onPacket(1, 101, clock.nowMs); // repaired 300 ms after the first request
  nacks.length = 0;
  clock.advance(400);
  nack.onPacket(1, 104, clock.nowMs);
  clock.advance(1050);
  assert.deepEqual(times(), [400, 700, 1000]);
  // The delays are forgotten 2 s after they were seen: 40 ms apart again.
  nack.onPacket(1, 103, clock.nowMs);
  nacks.length = 0;
  clock.advance(3100);
  nack.onPacket(1, 106, clock.nowMs);
  clock.advance(3200);
  assert.deepEqual(times(), [3100, 3140, 3180]);
});
