import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LivenessJudge, type LivenessSample } from '../src/liveness.js';

/** Media alone (no other packets, no sender reports): a receiver's RTCP judged by the server, say. */
const only = (media: number): LivenessSample => ({ media, packets: media });
const stalled = (cause: 'silent' | 'rtcp-only') => ({ kind: 'stalled', cause });
const resumed = { kind: 'resumed' };

test('liveness: nothing is judged before the first packet', () => {
  const judge = new LivenessJudge(3000);
  for (let t = 0; t <= 10_000; t += 500) assert.equal(judge.observe(only(0), t), undefined);
});

test('liveness: a count that stands still for the stall time is one stall; the next packet ends it', () => {
  const judge = new LivenessJudge(3000);
  assert.equal(judge.observe(only(5), 0), undefined);
  assert.equal(judge.observe(only(9), 1000), undefined);
  assert.equal(judge.observe(only(9), 3999), undefined, 'not yet: 2999 ms since the last packet');
  assert.deepEqual(judge.observe(only(9), 4000), stalled('silent'));
  assert.equal(judge.observe(only(9), 9000), undefined, 'reported once');
  assert.deepEqual(judge.observe(only(10), 9500), resumed);
  assert.equal(judge.observe(only(10), 12_499), undefined);
  assert.deepEqual(judge.observe(only(10), 12_500), stalled('silent'), 'a new silence is a new stall');
});

test('liveness: rearmed after a restart, a silence that goes on is reported again after the stall time', () => {
  const judge = new LivenessJudge(3000);
  judge.observe(only(1), 0);
  assert.deepEqual(judge.observe(only(1), 3000), stalled('silent'));
  judge.rearm(3500);
  assert.equal(judge.observe(only(1), 6000), undefined);
  assert.deepEqual(judge.observe(only(1), 6500), stalled('silent'));
  judge.observe(only(2), 7000);
  judge.rearm(7100);
  assert.equal(judge.observe(only(2), 9999), undefined, 'rearming a flowing judge changes nothing');
  assert.deepEqual(judge.observe(only(2), 10_000), stalled('silent'));
});

test('liveness: while nothing is due the count may stand still; the stall time counts from when media is due again', () => {
  const judge = new LivenessJudge(3000);
  judge.observe(only(1), 0);
  assert.equal(judge.observe(only(1), 2000, false), undefined);
  assert.equal(judge.observe(only(1), 10_000, false), undefined, 'a muted publisher sends nothing and is not stalled');
  assert.equal(judge.observe(only(1), 12_999), undefined, 'due again at 10 s: not yet');
  assert.deepEqual(judge.observe(only(1), 13_000), stalled('silent'));
  assert.deepEqual(judge.observe(only(2), 13_500, false), resumed, 'media ends a stall, due or not');
});

test('liveness: RTCP that keeps coming without the media is a stall (rtcp-only), without sender reports', () => {
  const judge = new LivenessJudge(3000);
  judge.observe({ media: 10, packets: 12 }, 0);
  for (let t = 500, packets = 13; t < 3000; t += 500, packets++) assert.equal(judge.observe({ media: 10, packets }, t), undefined);
  assert.deepEqual(judge.observe({ media: 10, packets: 20 }, 3000), stalled('rtcp-only'));
});

test('liveness: sender reports that stand still owe nothing (a paused sender); once they say more was sent, the stall time runs', () => {
  const judge = new LivenessJudge(3000);
  let packets = 100;
  const sample = (media: number, video: number, audio: number): LivenessSample => ({
    media,
    packets: ++packets,
    reportedSent: new Map([
      [1, video],
      [2, audio],
    ]),
  });
  judge.observe(sample(50, 30, 20), 0);
  // The sender pauses. Each stream's next report still counts packets that arrived; then the counts stand still.
  assert.equal(judge.observe(sample(50, 33, 20), 500), undefined);
  assert.equal(judge.observe(sample(50, 33, 21), 1000), undefined);
  for (let t = 1500; t <= 20_000; t += 500) assert.equal(judge.observe(sample(50, 33, 21), t), undefined, `paused at ${t} ms`);
  // It sends again and the media is lost on the way: the video's reports count on, owed from now.
  assert.equal(judge.observe(sample(50, 40, 21), 21_000), undefined);
  assert.equal(judge.observe(sample(50, 50, 21), 22_000), undefined);
  assert.equal(judge.observe(sample(50, 60, 21), 23_999), undefined);
  assert.deepEqual(judge.observe(sample(50, 70, 21), 24_000), stalled('rtcp-only'));
  assert.deepEqual(judge.observe(sample(51, 80, 21), 25_000), resumed);
  // Media flowed again: the next change of a stream's report may be packets that arrived, the one after is not.
  assert.equal(judge.observe(sample(51, 90, 21), 26_000), undefined);
  assert.equal(judge.observe(sample(51, 100, 21), 27_000), undefined, 'owed from now');
  assert.equal(judge.observe(sample(51, 100, 21), 29_999), undefined);
  assert.deepEqual(judge.observe(sample(51, 100, 21), 30_000), stalled('rtcp-only'));
});

test('liveness: with sender reports, a path on which nothing arrives at all is still a stall (silent)', () => {
  const judge = new LivenessJudge(3000);
  const reports = new Map([[1, 50]]);
  judge.observe({ media: 50, packets: 60, reportedSent: reports }, 0);
  judge.observe({ media: 50, packets: 61, reportedSent: reports }, 1000);
  assert.equal(judge.observe({ media: 50, packets: 61, reportedSent: reports }, 3999), undefined);
  assert.deepEqual(
    judge.observe({ media: 50, packets: 61, reportedSent: reports }, 4000),
    stalled('silent'),
    '3 s since the last packet of any kind',
  );
});
