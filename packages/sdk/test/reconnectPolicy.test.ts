import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReconnectPolicy } from '../src/reconnectPolicy.js';

test('reconnect backoff: immediate first retry, doubling to a cap, jittered, never past the window', () => {
  const mid = new ReconnectPolicy({ windowMs: 60_000, initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 }, () => 0.5);
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 9].map((n) => mid.nextDelay(n, 0)),
    [0, 100, 200, 400, 800, 1000, 1000],
  );
  const low = new ReconnectPolicy({ windowMs: 60_000, initialDelayMs: 100, jitter: 0.5 }, () => 0);
  const high = new ReconnectPolicy({ windowMs: 60_000, initialDelayMs: 100, jitter: 0.5 }, () => 1);
  assert.deepEqual([low.nextDelay(1, 0), high.nextDelay(1, 0)], [50, 150]);
  assert.equal(mid.nextDelay(5, 59_500), 500, 'the last wait ends with the window');
  assert.equal(mid.nextDelay(1, 60_000), null, 'past the window there is no next attempt');
});
