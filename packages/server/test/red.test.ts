import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_RED_BLOCKS, parseRed, RedEncoder, redHeaderLength, writeRedHeader } from '../src/media/core/red.js';

/** A RED payload (RFC 2198) of Opus frames with payload type `pt`: redundant ones (with their timestamp offsets) first, then the primary. */
function redPayload(pt: number, redundant: Array<{ offset: number; data: Buffer }>, primary: Buffer): Buffer {
  const headers = redundant.map(({ offset, data }) => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE((((0x80 | pt) << 24) | (offset << 10) | data.length) >>> 0);
    return header;
  });
  return Buffer.concat([...headers, Buffer.from([pt]), ...redundant.map((r) => r.data), primary]);
}

test('a RED payload is split into its blocks, oldest first and the primary last', () => {
  const older = Buffer.from('frame n-2');
  const previous = Buffer.from('frame n-1 longer');
  const primary = Buffer.from('frame n');
  const payload = redPayload(
    111,
    [
      { offset: 1920, data: older },
      { offset: 960, data: previous },
    ],
    primary,
  );
  const blocks = parseRed(payload)!;
  assert.equal(blocks.length, 3);
  assert.deepEqual(
    blocks.map((b) => [b.payloadType, b.timestampOffset, payload.subarray(b.start, b.end).toString()]),
    [
      [111, 1920, 'frame n-2'],
      [111, 960, 'frame n-1 longer'],
      [111, 0, 'frame n'],
    ],
  );
  assert.equal(redHeaderLength(blocks), 9);
});

test('a RED payload with only a primary, and malformed ones', () => {
  const blocks = parseRed(Buffer.from([111, 1, 2, 3]))!;
  assert.deepEqual(blocks, [{ payloadType: 111, timestampOffset: 0, start: 1, end: 4 }]);
  assert.equal(parseRed(Buffer.alloc(0)), undefined, 'empty');
  assert.equal(parseRed(Buffer.from([0x80 | 111, 0, 0])), undefined, 'a redundant header cut short');
  assert.equal(parseRed(Buffer.from([0x80 | 111, 0, 0, 0])), undefined, 'no primary header');
  const tooLong = redPayload(111, [{ offset: 960, data: Buffer.alloc(10) }], Buffer.alloc(0)).subarray(0, 10);
  assert.equal(parseRed(tooLong), undefined, 'a block longer than the payload');
  const frames = (n: number): Array<{ offset: number; data: Buffer }> =>
    Array.from({ length: n }, (_, i) => ({ offset: 960 * (n - i), data: Buffer.alloc(3) }));
  assert.equal(parseRed(redPayload(111, frames(MAX_RED_BLOCKS - 1), Buffer.alloc(3)))?.length, MAX_RED_BLOCKS, 'as many blocks as may be');
  assert.equal(
    parseRed(redPayload(111, frames(MAX_RED_BLOCKS), Buffer.alloc(3))),
    undefined,
    'one more: a header longer than a player copy keeps',
  );
});

test('the header is rewritten for another Opus payload type, the blocks kept', () => {
  const payload = redPayload(111, [{ offset: 960, data: Buffer.from('previous') }], Buffer.from('primary'));
  const blocks = parseRed(payload)!;
  const header = Buffer.alloc(32);
  const length = writeRedHeader(blocks, 109, header);
  assert.equal(length, redHeaderLength(blocks));
  const rewritten = Buffer.concat([header.subarray(0, length), payload.subarray(length)]);
  assert.deepEqual(
    parseRed(rewritten)!.map((b) => [b.payloadType, b.timestampOffset, rewritten.subarray(b.start, b.end).toString()]),
    [
      [109, 960, 'previous'],
      [109, 0, 'primary'],
    ],
  );
});

test('the encoder repeats the frames before, within what RED can carry, and its payloads parse back', () => {
  const encoder = new RedEncoder();
  const frames = [0, 1, 2, 3].map((n) => Buffer.from(`frame ${n}`));
  frames.forEach((data, n) => encoder.push(1000 + n * 960, data));
  const { payload, blocks } = encoder.encode(Buffer.from('frame 4'), 1000 + 4 * 960, 2, 111);
  assert.deepEqual(
    parseRed(payload)!.map((b) => [b.payloadType, b.timestampOffset, payload.subarray(b.start, b.end).toString()]),
    [
      [111, 1920, 'frame 2'],
      [111, 960, 'frame 3'],
      [111, 0, 'frame 4'],
    ],
  );
  assert.deepEqual(blocks, parseRed(payload), 'the blocks it gives are those parseRed finds');
  // A frame over 341 ms before (the 14-bit offset) is left out rather than wrapped.
  const late = encoder.encode(Buffer.from('frame 400'), 1000 + 400 * 960, 3, 111).payload;
  assert.deepEqual(
    parseRed(late)!.map((b) => late.subarray(b.start, b.end).toString()),
    ['frame 400'],
  );
});
