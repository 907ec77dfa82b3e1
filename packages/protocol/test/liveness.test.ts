import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LivenessJudge } from '../src/liveness.js';

test('liveness: nothing is judged before the first packet', () => {
  const judge = new LivenessJudge(3000);
  for (let t = 0; t <= 10_000; t += 500) assert.equal(judge.observe(0, t), undefined);
});

test('liveness: a count that stands still for the stall time is one stall; the next packet ends it', () => {
  const judge = new LivenessJudge(3000);
  assert.equal(judge.observe(5, 0), undefined);
  assert.equal(judge.observe(9, 1000), undefined);
  assert.equal(judge.observe(9, 3999), undefined, 'not yet: 2999 ms since the last packet');
  assert.equal(judge.observe(9, 4000), 'stalled');
  assert.equal(judge.observe(9, 9000), undefined, 'reported once');
  assert.equal(judge.observe(10, 9500), 'resumed');
  assert.equal(judge.observe(10, 12_499), undefined);
  assert.equal(judge.observe(10, 12_500), 'stalled', 'a new silence is a new stall');
});

test('liveness: rearmed after a restart, a silence that goes on is reported again after the stall time', () => {
  const judge = new LivenessJudge(3000);
  judge.observe(1, 0);
  assert.equal(judge.observe(1, 3000), 'stalled');
  judge.rearm(3500);
  assert.equal(judge.observe(1, 6000), undefined);
  assert.equal(judge.observe(1, 6500), 'stalled');
  judge.observe(2, 7000);
  judge.rearm(7100);
  assert.equal(judge.observe(2, 9999), undefined, 'rearming a flowing judge changes nothing');
  assert.equal(judge.observe(2, 10_000), 'stalled');
});
