import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameAssembler, type AssembledFrame, type FrameCodec, type FramePacket } from '../src/media/core/frameAssembler.js';

/** A VP8 payload: a descriptor with a 15-bit PictureID, then `body` (whose first byte's low bit says inter frame). */
function vp8(start: boolean, body: number[]): FramePacket['payload'] {
  return Uint8Array.of(0x80 | (start ? 0x10 : 0), 0x80, 0x80, 0x01, ...body);
}

/** A VP8 keyframe's first bytes: frame tag (key), start code, 640×360. */
const KEY_START = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];
const DELTA_START = [0x11, 0x02, 0x00];

function assembler(codec: FrameCodec, maxWaitMs = 100) {
  const frames: AssembledFrame[] = [];
  let keyFrameRequests = 0;
  const a = new FrameAssembler(
    codec,
    { maxWaitMs },
    (f) => frames.push(f),
    () => keyFrameRequests++,
  );
  return { a, frames, keyFrameRequests: () => keyFrameRequests };
}

const packet = (sequenceNumber: number, timestamp: number, marker: boolean, payload: Uint8Array): FramePacket => ({
  sequenceNumber,
  timestamp,
  marker,
  payload,
});

test('VP8: packets out of order make whole frames in order, descriptors stripped; it starts at a keyframe', () => {
  const { a, frames } = assembler('vp8');
  // A delta frame first: dropped, waiting for a keyframe.
  a.push(packet(10, 0, true, vp8(true, DELTA_START)), 0);
  a.push(packet(12, 3000, true, vp8(false, [0xbb])), 1);
  a.push(packet(11, 3000, false, vp8(true, KEY_START)), 2);
  a.push(packet(13, 6000, true, vp8(true, DELTA_START)), 3);
  assert.deepEqual(
    frames.map((f) => [f.timestamp, f.keyFrame, f.width, f.height, [...f.data]]),
    [
      [3000, true, 640, 360, [...KEY_START, 0xbb]],
      [6000, false, 0, 0, DELTA_START],
    ],
  );
});

test('VP8: a packet that never comes is waited for, then its frame and those after it until a keyframe are dropped, and a keyframe asked for', () => {
  const { a, frames, keyFrameRequests } = assembler('vp8', 100);
  a.push(packet(1, 0, true, vp8(true, KEY_START)), 0);
  // 2 (the first half of the frame at 3000) is lost.
  a.push(packet(3, 3000, true, vp8(false, [0xcc])), 10);
  a.push(packet(4, 6000, true, vp8(true, DELTA_START)), 20);
  a.release(50);
  assert.equal(frames.length, 1, 'still waiting for 2');
  a.release(111);
  assert.equal(frames.length, 1, 'the delta frame after the loss is not written');
  assert.equal(keyFrameRequests(), 1);
  a.push(packet(5, 9000, true, vp8(true, KEY_START)), 120);
  assert.deepEqual(
    frames.map((f) => f.timestamp),
    [0, 9000],
  );
});

test('Opus: each packet is a frame; a gap becomes a gap in time, and a late packet after it is dropped', () => {
  const { a, frames } = assembler('opus', 100);
  a.push(packet(100, 0, false, Uint8Array.of(0xf8, 1)), 0);
  a.push(packet(102, 1920, false, Uint8Array.of(0xf8, 3)), 5);
  a.release(106);
  a.push(packet(101, 960, false, Uint8Array.of(0xf8, 2)), 107);
  a.push(packet(103, 2880, false, Uint8Array.of(0xf8, 4)), 108);
  assert.deepEqual(
    frames.map((f) => f.timestamp),
    [0, 1920, 2880],
  );
});

test('H264: STAP-A and FU-A become length-prefixed NAL units, and a keyframe carries the avcC of its SPS and PPS', () => {
  const { a, frames } = assembler('h264');
  // SPS of a 640×360 stream (Baseline 3.1) and a PPS, aggregated; then an IDR slice in two fragments.
  const sps = Uint8Array.of(
    0x67,
    0x42,
    0xc0,
    0x1f,
    0xda,
    0x02,
    0x80,
    0xbf,
    0xe5,
    0x84,
    0x00,
    0x00,
    0x03,
    0x00,
    0x04,
    0x00,
    0x00,
    0x03,
    0x00,
    0xf0,
    0x3c,
    0x60,
    0xc9,
    0x20,
  );
  const pps = Uint8Array.of(0x68, 0xce, 0x3c, 0x80);
  const stap = Uint8Array.of(0x78, 0, sps.length, ...sps, 0, pps.length, ...pps);
  a.push(packet(1, 0, false, stap), 0);
  a.push(packet(2, 0, false, Uint8Array.of(0x7c, 0x85, 0xaa, 0xbb)), 0);
  a.push(packet(3, 0, true, Uint8Array.of(0x7c, 0x45, 0xcc)), 0);
  assert.equal(frames.length, 1);
  const [frame] = frames as [AssembledFrame];
  assert.equal(frame.keyFrame, true);
  assert.deepEqual([frame.width, frame.height], [640, 360]);
  const idr = [0x65, 0xaa, 0xbb, 0xcc];
  assert.deepEqual([...frame.data], [0, 0, 0, sps.length, ...sps, 0, 0, 0, pps.length, ...pps, 0, 0, 0, idr.length, ...idr]);
  assert.deepEqual([...frame.avcC!.subarray(0, 8)], [1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, sps.length]);
});

test('a layer change starts afresh: the new sequence numbers are taken, from a keyframe', () => {
  const { a, frames } = assembler('vp8');
  a.push(packet(500, 0, true, vp8(true, KEY_START)), 0);
  a.reset();
  a.push(packet(9000, 3000, true, vp8(true, DELTA_START)), 1);
  a.push(packet(9001, 6000, true, vp8(true, KEY_START)), 2);
  assert.deepEqual(
    frames.map((f) => f.timestamp),
    [0, 6000],
  );
});
