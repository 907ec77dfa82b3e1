import { test } from 'node:test';
import assert from 'node:assert/strict';
import { audioLevelByte, soundLevelFromAmplitude, soundLevelFromByte, SPEAKING_LEVEL } from '../src/audioLevel.js';

test('sound levels: 0 at −60 dBov or quieter, 100 at overload, linear in dB; the extension byte round-trips them', () => {
  assert.equal(soundLevelFromAmplitude(0), 0);
  assert.equal(soundLevelFromAmplitude(0.0005), 0, 'about −66 dBov');
  assert.equal(soundLevelFromAmplitude(0.01), 33, '−40 dBov');
  assert.equal(soundLevelFromAmplitude(0.1), 67, '−20 dBov');
  assert.equal(soundLevelFromAmplitude(1), 100);
  assert.equal(audioLevelByte(0), 127, 'silence');
  assert.equal(audioLevelByte(100), 0x80, 'overload, voice');
  for (const level of [0, 10, SPEAKING_LEVEL, 50, 67, 100])
    assert.ok(Math.abs(soundLevelFromByte(audioLevelByte(level)) - level) <= 1, `level ${level}`);
  assert.equal(audioLevelByte(SPEAKING_LEVEL - 1) & 0x80, 0, 'under the speaking level: no voice bit');
  assert.equal(audioLevelByte(SPEAKING_LEVEL) & 0x80, 0x80);
});
