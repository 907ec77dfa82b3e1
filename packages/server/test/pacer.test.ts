import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimulatedClock } from '@parley/testkit';
import { Pacer } from '../src/media/core/congestion/pacer.js';
import type { PacketKind } from '../src/media/core/congestion/downlinkAllocator.js';

interface Sent {
  kind: PacketKind;
  id: number;
  bytes: number;
  atMs: number;
}

/** A pacer whose datagrams are numbered by their first byte, and what it sent when. */
function pacerWithLog(clock: SimulatedClock): { pacer: Pacer; sent: Sent[]; datagram(id: number, bytes?: number): Buffer } {
  const sent: Sent[] = [];
  const pacer = new Pacer({
    clock,
    transmit: (kind, datagram, _sequenceNumber, nowMs) => sent.push({ kind, id: datagram[0]!, bytes: datagram.length, atMs: nowMs }),
  });
  return { pacer, sent, datagram: (id, bytes = 1200) => Buffer.alloc(bytes, id) };
}

test('without a rate the pacer sends everything at once', () => {
  const clock = new SimulatedClock();
  const { pacer, sent, datagram } = pacerWithLog(clock);
  for (let id = 0; id < 50; id++) pacer.send('video', datagram(id), id, 0);
  assert.equal(sent.length, 50);
  assert.equal(pacer.busy, false);
});

test('a burst of video leaves at the pacing rate, in order, after a first burst of 40 ms of it; audio is never held', () => {
  const clock = new SimulatedClock();
  const { pacer, sent, datagram } = pacerWithLog(clock);
  pacer.setRate(960_000); // 120 bytes/ms: 4800 bytes per 40 ms
  clock.advance(1000);
  for (let id = 0; id < 40; id++) pacer.send('video', datagram(id), id, 1000);
  assert.equal(sent.length, 4, 'the first 40 ms of budget (4,800 bytes) at once');
  assert.equal(pacer.busy, true);
  pacer.send('audio', datagram(200, 100), 40, 1000);
  assert.deepEqual(sent.at(-1), { kind: 'audio', id: 200, bytes: 100, atMs: 1000 }, 'audio goes past the queue');
  clock.advance(1400);
  const video = sent.filter((s) => s.kind === 'video');
  assert.deepEqual(
    video.map((s) => s.id),
    Array.from({ length: 40 }, (_, i) => i),
    'in order',
  );
  // 48,000 bytes at 120 bytes/ms after the first 4,800 (and the audio's 100): about 360 ms.
  const lastAtMs = video.at(-1)!.atMs - 1000;
  assert.ok(lastAtMs >= 340 && lastAtMs <= 380, `the last packet left ${lastAtMs} ms after the burst came`);
  for (const s of video) {
    const dueBytes = 4800 + 120 * (s.atMs - 1000) + 1200;
    const sentBytes = video.filter((v) => v.atMs <= s.atMs).reduce((sum, v) => sum + v.bytes, 0);
    assert.ok(sentBytes <= dueBytes, `by ${s.atMs - 1000} ms: ${sentBytes} bytes, at most ${dueBytes}`);
  }
  assert.equal(pacer.busy, false);
});

test('retransmissions go ahead of queued video; nothing waits much over 500 ms, however low the rate; close drops what waits', () => {
  const clock = new SimulatedClock();
  const { pacer, sent, datagram } = pacerWithLog(clock);
  pacer.setRate(96_000); // 12 bytes/ms: 1,200 bytes per 100 ms
  clock.advance(1000);
  for (let id = 0; id < 10; id++) pacer.send('video', datagram(id), id, 1000);
  pacer.send('retransmission', datagram(100), 10, 1000);
  // 13,200 bytes queued at 12 bytes/ms would take 1.1 s.
  clock.advance(1400);
  assert.ok(sent.length < 11, 'spread out');
  clock.advance(1510);
  assert.equal(sent.length, 11, 'all within 510 ms');
  const ids = sent.map((s) => s.id);
  assert.equal(ids.indexOf(100), 2, `the retransmission right after what went at once: ${ids}`);
  for (let id = 0; id < 10; id++) pacer.send('video', datagram(id), id, 1510);
  pacer.close();
  clock.advance(3000);
  assert.ok(sent.length < 21, 'nothing after close');
  pacer.send('audio', datagram(1, 100), 30, 3000);
  assert.ok(sent.length < 21, 'nothing after close');
});

/**
 * Why: a keyframe forwarded as it arrives overflows a slow link's small queue (tbf's, a home
 * router's); paced at 2.5 times the link's rate it fits.
 */
test("a keyframe paced at 2.5 times a 300 kbit/s link's rate gets through its 9.6 kB queue; sent at once, its tail is dropped", () => {
  const LINK_BYTES_PER_MS = 300_000 / 8000;
  const QUEUE_BYTES = 9600;
  const lostOf = (rateBps: number): number => {
    const clock = new SimulatedClock();
    let queued = 0;
    let drainedAtMs = 0;
    let lost = 0;
    const pacer = new Pacer({
      clock,
      transmit: (_kind, datagram, _sequenceNumber, nowMs) => {
        queued = Math.max(0, queued - (nowMs - drainedAtMs) * LINK_BYTES_PER_MS);
        drainedAtMs = nowMs;
        if (queued + datagram.length > QUEUE_BYTES) lost++;
        else queued += datagram.length;
      },
    });
    pacer.setRate(rateBps);
    clock.advance(1000);
    // A 10.8 kB keyframe, then 15 frames a second of 1 kB.
    for (let i = 0; i < 9; i++) pacer.send('video', Buffer.alloc(1200), i, 1000);
    for (let frame = 1; frame < 30; frame++) {
      clock.advance(1000 + frame * 66);
      pacer.send('video', Buffer.alloc(1000), 10 + frame, clock.nowMs);
    }
    clock.advance(5000);
    pacer.close();
    return lost;
  };
  assert.ok(lostOf(Infinity) >= 1, `sent at once: ${lostOf(Infinity)} lost`);
  assert.equal(lostOf(2.5 * 300_000), 0, 'paced: none lost');
});
