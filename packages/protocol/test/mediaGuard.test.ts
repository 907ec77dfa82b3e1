import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayWindow } from '../src/rtp/replayWindow.js';
import { bindingRequestUfrag, hasValidIntegrity, isStunRequest, requestUfrag } from '../src/rtp/stun.js';

test('replay window: a number seen before, or older than the window, is refused', () => {
  const window = new ReplayWindow(64);
  assert.equal(window.take(100), true);
  assert.equal(window.take(100), false, 'a replay');
  assert.equal(window.take(99), true, 'late, never seen');
  assert.equal(window.take(37), true, 'the oldest the window holds');
  assert.equal(window.take(36), false, 'behind the window');
  assert.equal(window.take(120), true);
  assert.deepEqual([window.take(99), window.take(120), window.take(110)], [false, false, true]);
  assert.equal(window.take(1000), true);
  assert.deepEqual([window.take(120), window.take(999), window.take(1000), window.take(937)], [false, true, false, true]);
  // A jump frees the slots it passes over: 1064 reuses the slot 1000 marked.
  assert.equal(window.take(1070), true);
  assert.deepEqual([window.take(1064), window.take(1000)], [true, false]);
});

/** RFC 5769 §2.1: a binding request with USERNAME "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt". */
const RFC5769_REQUEST = Buffer.from(
  '000100582112a442b7e7a701bc34d686fa87dfae802200105354554e20746573742063' +
    '6c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68' +
    '367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf',
  'hex',
);

test('STUN: a request names its local ufrag; MESSAGE-INTEGRITY holds under the password only (RFC 5769 vector)', () => {
  assert.equal(isStunRequest(RFC5769_REQUEST), true);
  assert.equal(requestUfrag(RFC5769_REQUEST), 'evtj');
  assert.equal(bindingRequestUfrag(RFC5769_REQUEST), 'evtj');
  assert.equal(hasValidIntegrity(RFC5769_REQUEST, 'VOkJxbRl1RmTxUk/WvJxBt'), true);
  assert.equal(hasValidIntegrity(RFC5769_REQUEST, 'VOkJxbRl1RmTxUk/WvJxBT'), false, 'another password');
  const tampered = Buffer.from(RFC5769_REQUEST);
  tampered[46] ^= 1; // the priority
  assert.equal(hasValidIntegrity(tampered, 'VOkJxbRl1RmTxUk/WvJxBt'), false, 'a changed attribute');
  const unsigned = Buffer.from(RFC5769_REQUEST.subarray(0, 72));
  unsigned.writeUInt16BE(72 - 20, 2);
  assert.equal(hasValidIntegrity(unsigned, 'VOkJxbRl1RmTxUk/WvJxBt'), false, 'no MESSAGE-INTEGRITY');
  const response = Buffer.from(RFC5769_REQUEST);
  response.writeUInt16BE(0x0101, 0);
  assert.equal(isStunRequest(response), false);
  for (const bad of [Buffer.alloc(0), Buffer.from([0, 1, 0]), Buffer.from('0001ffff2112a442000000000000000000000000', 'hex')]) {
    assert.equal(requestUfrag(bad), undefined);
    assert.equal(hasValidIntegrity(bad, 'x'), false);
  }
});
