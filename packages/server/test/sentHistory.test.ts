import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_PREFIX_BYTES, SentHistory, type SentFields } from '../src/media/core/sentHistory.js';

const fields = (sequenceNumber: number, prefix: number[] = [], replaced = 0): SentFields => {
  const out = {
    marker: sequenceNumber % 2 === 0,
    payloadType: 96,
    sequenceNumber,
    timestamp: 0xfffffff0 + sequenceNumber,
    prefix: Buffer.alloc(32),
    prefixLength: prefix.length,
    replaced,
  };
  out.prefix.set(prefix);
  return out;
};
const blank = (): SentFields => ({
  marker: false,
  payloadType: 0,
  sequenceNumber: 0,
  timestamp: 0,
  prefix: Buffer.alloc(32),
  prefixLength: 0,
  replaced: 0,
});

test('a packet is found by its sequence number and restored as it was sent', () => {
  const history = new SentHistory<string>(8);
  assert.equal(history.find(3), -1, 'never sent');
  history.record(fields(3, [0x90, 0x80, 0x12, 0x34], 3), 'source 3', 2, 1000);
  history.record(fields(4), 'source 4', 0, 1001);
  const slot = history.find(3);
  assert.ok(slot >= 0);
  assert.equal(history.source(slot), 'source 3');
  assert.equal(history.layer(slot), 2);
  assert.equal(history.sentAtMs(slot), 1000);
  const out = blank();
  history.restore(slot, out);
  assert.deepEqual(
    { ...out, prefix: [...out.prefix.subarray(0, out.prefixLength)] },
    {
      marker: false,
      payloadType: 96,
      sequenceNumber: 3,
      timestamp: 0xfffffff3,
      prefix: [0x90, 0x80, 0x12, 0x34],
      prefixLength: 4,
      replaced: 3,
    },
  );
  // As RTX: the prefix goes after the original sequence number's two bytes.
  const rtx = blank();
  rtx.prefix.set([0xaa, 0xbb]);
  history.restore(history.find(4), rtx, 2);
  assert.equal(rtx.marker, true);
  assert.equal(rtx.prefixLength, 2);
  assert.deepEqual([...rtx.prefix.subarray(0, 2)], [0xaa, 0xbb], 'the bytes before the prefix are left');
});

test('a slot taken by a later packet no longer answers for the earlier one', () => {
  const history = new SentHistory<string>(8);
  history.record(fields(65534), 'old', 0, 0);
  assert.ok(history.find(65534) >= 0);
  history.record(fields(6), 'new', 0, 0); // 65534 % 8 === 6
  assert.equal(history.find(65534), -1);
  assert.equal(history.source(history.find(6)), 'new');
});

test('resends are counted per packet and start over when its slot is reused', () => {
  const history = new SentHistory<string>(4);
  history.record(fields(1), 'one', 0, 10);
  const slot = history.find(1);
  history.resent(slot, 20);
  history.resent(slot, 35);
  assert.equal(history.resends(slot), 2);
  assert.equal(history.sentAtMs(slot), 35);
  history.record(fields(5), 'five', 0, 40);
  assert.equal(history.resends(history.find(5)), 0);
});

test('a prefix longer than a slot keeps is refused, and nothing is recorded', () => {
  const history = new SentHistory<string>(4);
  const long = fields(2);
  long.prefixLength = MAX_PREFIX_BYTES + 1;
  assert.throws(() => history.record(long, 'long', 0, 0), RangeError);
  assert.equal(history.find(2), -1);
});
