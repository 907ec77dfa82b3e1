import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LayerCapControl, layerCaps, MIN_CAP_BPS, type LayerUser } from '../src/media/core/layerCaps.js';

/** A 180p, 360p, 720p publisher's rates uncapped. */
const NATURAL = [150_000, 600_000, 1_800_000];
const player = (wanted: number, bps: number, inUse = 0): LayerUser => ({ budget: { wanted, bps }, inUse });

test("a layer its only player's link cannot carry is capped to what the link carries, if that beats the layer below", () => {
  assert.deepEqual(layerCaps(NATURAL, [player(1, 400_000, 0b01)]), [0, 400_000, 0], '360p at 400 kbit/s rather than 180p');
  assert.deepEqual(
    layerCaps(NATURAL, [player(2, 1_000_000, 0b010)]),
    [MIN_CAP_BPS, 0, 1_000_000],
    '720p at 1 Mbit/s rather than 360p at 600',
  );
  assert.deepEqual(layerCaps(NATURAL, [player(2, 500_000, 0b010)]), [MIN_CAP_BPS, 500_000, 0], 'short of 360p too: 360p smaller');
  assert.deepEqual(layerCaps(NATURAL, [player(1, 120_000, 0b01)]), [120_000, 0, 0], 'short even of 180p: 180p smaller');
  assert.deepEqual(layerCaps(NATURAL, [player(1, MIN_CAP_BPS - 1, 0b01)]), [0, 0, 0], 'nothing under the least cap');
  assert.deepEqual(layerCaps(NATURAL, [player(1, 5_000_000, 0b11)]), [0, 0, 0], 'a link that carries its layer: no cap');
});

test('the smallest layer, when no player gets or waits for it, is kept at the least cap: a fallback ready', () => {
  assert.deepEqual(layerCaps(NATURAL, [player(1, 5_000_000, 0b10)]), [MIN_CAP_BPS, 0, 0], 'the player on 360p: 180p on standby');
  assert.deepEqual(layerCaps(NATURAL, []), [MIN_CAP_BPS, 0, 0], 'no player');
  assert.deepEqual(layerCaps(NATURAL, [player(1, 5_000_000, 0b11)]), [0, 0, 0], 'moving from 180p to 360p: both in use');
  assert.deepEqual(layerCaps(NATURAL, [{ budget: undefined, inUse: 0b01 }]), [0, 0, 0], 'a relay of 180p');
  assert.deepEqual(layerCaps([0, 600_000, 0], []), [0, 0, 0], 'its rate unknown');
});

test('a cap never costs another player what it gets: a layer is capped only when all its players are short of its rate', () => {
  assert.deepEqual(layerCaps(NATURAL, [player(1, 400_000, 0b01), player(1, 300_000, 0b01)]), [0, 300_000, 0], 'the lowest of the short');
  assert.deepEqual(layerCaps(NATURAL, [player(1, 400_000, 0b01), player(1, 5_000_000, 0b10)]), [0, 0, 0], 'one takes 360p as it is');
  assert.deepEqual(
    layerCaps(NATURAL, [player(1, 400_000, 0b01), { budget: undefined, inUse: 0b10 }]),
    [0, 0, 0],
    'a relay (or a player that chose its layer) takes 360p as it is',
  );
  assert.deepEqual(
    layerCaps(NATURAL, [player(1, 400_000, 0b01), player(2, 5_000_000, 0b100)]),
    [0, 400_000, 0],
    'a player of another layer does not count',
  );
  assert.deepEqual(layerCaps([150_000, 0, 0], [player(1, 400_000, 0b01)]), [0, 0, 0], 'a layer whose rate is unknown is not capped');
});

test("a player put on a layer its budget does not reach yet (the estimate rose, the budget's median lags) holds that layer at its floor, not uncapped", () => {
  assert.deepEqual(layerCaps(NATURAL, [player(1, 140_000, 0b10)]), [MIN_CAP_BPS, 150_000, 0], "on 360p: at 180p's rate");
  assert.deepEqual(layerCaps(NATURAL, [player(1, 140_000, 0b11)]), [0, 150_000, 0], 'moving up to 360p');
  assert.deepEqual(layerCaps(NATURAL, [player(2, 400_000, 0b100)]), [MIN_CAP_BPS, 0, 600_000], 'on 720p with a budget for 360p');
  assert.deepEqual(
    layerCaps(NATURAL, [player(1, 140_000, 0b10), player(1, 5_000_000, 0b10)]),
    [MIN_CAP_BPS, 0, 0],
    'another player takes 360p as it is',
  );
});

test('caps rise at most once a second and fall at once, for a change of over 15 %, and a layer is measured again 3 s after its cap is lifted', () => {
  const control = new LayerCapControl(3);
  const short = (bps: number): LayerUser[] => [player(1, bps, 0b01)];
  assert.deepEqual(control.update(NATURAL, short(400_000), 0), [0, 400_000, 0]);
  assert.equal(control.update(NATURAL, short(480_000), 500), undefined, 'a rise, not within a second');
  assert.deepEqual(control.update(NATURAL, short(300_000), 600), [0, 300_000, 0], 'a fall of 25 %: at once');
  assert.equal(control.update(NATURAL, short(270_000), 700), undefined, 'a fall of 10 %');
  assert.equal(control.update(NATURAL, short(330_000), 1600), undefined, 'a rise of 10 %');
  assert.deepEqual(control.update(NATURAL, short(400_000), 2600), [0, 400_000, 0], 'a rise of 33 %');
  // Capped, 360p is measured at its cap; its uncapped rate is what counts.
  const capped = [150_000, 300_000, 1_800_000];
  assert.deepEqual(control.update(capped, short(500_000), 4000), [0, 500_000, 0], 'still short of 600 kbit/s uncapped');
  assert.deepEqual(control.update(capped, short(5_000_000), 5000), [0, 0, 0], 'lifted');
  // Ramping up after the lift: not its rate uncapped, which is still taken as 600 kbit/s.
  assert.deepEqual(control.update([150_000, 400_000, 1_800_000], short(500_000), 6000), [0, 500_000, 0]);
  assert.deepEqual(control.update([150_000, 400_000, 1_800_000], short(5_000_000), 8000), [0, 0, 0]);
  assert.equal(
    control.update([150_000, 450_000, 1_800_000], short(600_000), 11_000),
    undefined,
    '3 s on, 450 kbit/s is its rate uncapped: 600 carries it with room',
  );
});

test("a paused layer's rate is not its uncapped rate: the rate it was measured at stays, and it is measured again 3 s after it resumes", () => {
  const control = new LayerCapControl(3);
  const short = (bps: number): LayerUser[] => [player(1, bps, 0b01)];
  assert.deepEqual(control.update(NATURAL, short(400_000), 0), [0, 400_000, 0]);
  assert.deepEqual(control.update(NATURAL, [player(1, 5_000_000, 0b11)], 1000), [0, 0, 0], 'lifted');
  // Paused, its meter falls towards nothing: still 600 kbit/s uncapped, so 400 kbit/s is short of it.
  assert.equal(control.update([150_000, undefined, 1_800_000], [player(1, 5_000_000, 0b01)], 5000), undefined);
  assert.deepEqual(control.update([150_000, undefined, 1_800_000], short(400_000), 6000), [0, 400_000, 0]);
  assert.deepEqual(control.update([150_000, 50_000, 1_800_000], [player(1, 5_000_000, 0b11)], 7000), [0, 0, 0], 'resumed, lifted');
  assert.deepEqual(
    control.update([150_000, 100_000, 1_800_000], short(400_000), 9000),
    [0, 400_000, 0],
    '2 s after resuming: not measured',
  );
});
