import { test } from 'node:test';
import assert from 'node:assert/strict';
import { qualityLevel, StreamQualityLevel, worseLevel } from '../src/index.js';

test('levels by round trip and loss: the best level whose limits both hold; Die without media; Unknown before anything is known', () => {
  const cases: Array<[rttMs: number | undefined, loss: number | undefined, flowing: boolean, level: StreamQualityLevel]> = [
    [20, 0, true, StreamQualityLevel.Excellent],
    [150, 0, true, StreamQualityLevel.Good],
    [20, 0.02, true, StreamQualityLevel.Good],
    [20, 0.05, true, StreamQualityLevel.Medium],
    [500, 0, true, StreamQualityLevel.Bad],
    [20, 0.2, true, StreamQualityLevel.Bad],
    [20, 0.3, true, StreamQualityLevel.Die],
    [1000, 0, true, StreamQualityLevel.Die],
    [20, 0, false, StreamQualityLevel.Die],
    [undefined, 0.02, true, StreamQualityLevel.Good],
    [undefined, undefined, true, StreamQualityLevel.Unknown],
  ];
  for (const [rtt, loss, flowing, level] of cases) {
    assert.equal(qualityLevel(rtt, loss, flowing), level, `rtt ${rtt} ms, loss ${loss}, flowing ${flowing}`);
  }
});

test('the worse of two levels; Unknown yields to any known level', () => {
  assert.equal(worseLevel(StreamQualityLevel.Good, StreamQualityLevel.Bad), StreamQualityLevel.Bad);
  assert.equal(worseLevel(StreamQualityLevel.Die, StreamQualityLevel.Excellent), StreamQualityLevel.Die);
  assert.equal(worseLevel(StreamQualityLevel.Unknown, StreamQualityLevel.Good), StreamQualityLevel.Good);
  assert.equal(worseLevel(StreamQualityLevel.Excellent, StreamQualityLevel.Unknown), StreamQualityLevel.Excellent);
  assert.equal(worseLevel(StreamQualityLevel.Unknown, StreamQualityLevel.Unknown), StreamQualityLevel.Unknown);
});
