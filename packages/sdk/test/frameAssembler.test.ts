import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Vp8FrameAssembler, type AssembledFrame } from '../src/node/frameAssembler.js';
import { packetizeVp8, readVp8Descriptor, readVp8FrameInfo, MAX_VP8_PAYLOAD } from '../src/node/vp8.js';
import { SequenceUnwrapper } from '../src/node/unwrap.js';
import { videoFixture, sleep } from './helpers.js';

interface Packet {
  seq: number;
  ts: number;
  marker: boolean;
  payload: Uint8Array;
}

/** Packetizes fixture frames the way the publisher does, starting at `firstSeq`. */
function packetsFor(frameCount: number, firstSeq: number): { packets: Packet[]; frames: Uint8Array[] } {
  const packets: Packet[] = [];
  const frames = videoFixture.frames.slice(0, frameCount).map((f) => f.data);
  let seq = firstSeq;
  frames.forEach((frame, i) => {
    const payloads = packetizeVp8(frame, i);
    payloads.forEach((payload, j) => packets.push({ seq: seq++ & 0xffff, ts: i * 3000, marker: j === payloads.length - 1, payload }));
  });
  return { packets, frames };
}

function assembler(maxWaitMs = 50): { asm: Vp8FrameAssembler; out: AssembledFrame[]; keyFrameRequests: () => number } {
  const out: AssembledFrame[] = [];
  let requests = 0;
  const asm = new Vp8FrameAssembler({ maxWaitMs, onFrame: (f) => out.push(f), onKeyFrameNeeded: () => requests++ });
  return { asm, out, keyFrameRequests: () => requests };
}

const push = (asm: Vp8FrameAssembler, p: Packet): void => asm.push(p.seq, p.ts, p.marker, p.payload);

test('vp8 packetizer splits frames under the MTU and the descriptor reads back', () => {
  const frame = videoFixture.frames[0]!.data;
  const payloads = packetizeVp8(frame, 0x1234);
  assert.ok(payloads.length > 1);
  assert.ok(payloads.every((p) => p.length <= MAX_VP8_PAYLOAD));
  assert.deepEqual(
    payloads.map((p) => readVp8Descriptor(p)!.frameStart),
    payloads.map((_, i) => i === 0),
  );
  assert.deepEqual(readVp8FrameInfo(frame), { isKeyFrame: true, width: 320, height: 240 });
  assert.equal(readVp8FrameInfo(videoFixture.frames[1]!.data).isKeyFrame, false);
});

test('sequence numbers unwrap across 16-bit wraps, backwards too', () => {
  const u = new SequenceUnwrapper(16);
  assert.deepEqual(
    [65534, 65535, 0, 1, 65535, 2].map((v) => u.unwrap(v)),
    [65534, 65535, 65536, 65537, 65535, 65538],
  );
});

test('frames come out whole and in order even when packets are reordered across a wrap', () => {
  const { packets, frames } = packetsFor(40, 65500);
  const { asm, out } = assembler();
  // Swap neighbours throughout.
  for (let i = 0; i + 1 < packets.length; i += 2) [packets[i], packets[i + 1]] = [packets[i + 1]!, packets[i]!];
  packets.forEach((p) => push(asm, p));
  push(asm, packets[5]!); // a duplicate changes nothing
  assert.equal(out.length, frames.length);
  out.forEach((f, i) => assert.deepEqual(f.data, frames[i]));
  asm.close();
});

test('a late retransmission fills the gap in time', () => {
  const { packets, frames } = packetsFor(10, 100);
  const { asm, out, keyFrameRequests } = assembler(1000);
  const lost = packets.splice(3, 1)[0]!;
  packets.forEach((p) => push(asm, p));
  assert.ok(out.length < frames.length);
  push(asm, lost);
  assert.equal(out.length, frames.length);
  assert.equal(keyFrameRequests(), 0);
  asm.close();
});

test('an unrepairable loss drops frames up to the next keyframe and asks for one', async () => {
  const { packets, frames } = packetsFor(40, 7); // keyframes at 0 and 30
  const { asm, out, keyFrameRequests } = assembler(30);
  const lostIndex = packets.findIndex((p) => p.ts === 5 * 3000);
  packets.splice(lostIndex, 1);
  packets.forEach((p) => push(asm, p));
  await sleep(80);
  assert.equal(keyFrameRequests(), 1);
  const delivered = out.map((f) => frames.findIndex((x) => x === f.data || Buffer.compare(Buffer.from(x), Buffer.from(f.data)) === 0));
  assert.deepEqual(delivered, [0, 1, 2, 3, 4, ...Array.from({ length: 10 }, (_, i) => 30 + i)]);
  assert.ok(out[5]!.isKeyFrame);
  asm.close();
});

test('a player that joins mid-stream waits for a keyframe', () => {
  const { packets, frames } = packetsFor(40, 0);
  const { asm, out } = assembler();
  const start = packets.findIndex((p) => p.ts === 10 * 3000);
  packets.slice(start + 1).forEach((p) => push(asm, p)); // starts mid-frame 10
  assert.equal(out[0]!.isKeyFrame, true);
  assert.deepEqual(out[0]!.data, frames[30]);
  asm.close();
});

test('padding-only packets between frames keep them contiguous: nothing waits for a gap or asks for a keyframe', () => {
  const { packets, frames } = packetsFor(6, 100);
  const { asm, out, keyFrameRequests } = assembler(60_000);
  // A probe after every frame's last packet takes the next sequence number; later packets shift up by one per probe.
  let shift = 0;
  for (const p of packets) {
    push(asm, { ...p, seq: p.seq + shift });
    if (p.marker) asm.push(p.seq + ++shift, p.ts, false, new Uint8Array(0));
  }
  assert.deepEqual(
    out.map((f) => f.data),
    frames,
  );
  assert.equal(keyFrameRequests(), 0);
  asm.close();
});
