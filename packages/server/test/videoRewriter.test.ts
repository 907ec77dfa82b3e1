import { test } from 'node:test';
import assert from 'node:assert/strict';
import { h264FrameSize, inspectH264, parseVp8, Vp8Descriptor } from '../src/media/core/codecs.js';
import { VideoRewriter, type RewrittenPacket, type VideoCodec } from '../src/media/core/videoRewriter.js';

interface Vp8Fields {
  pictureId?: number | undefined;
  pictureIdBits?: 7 | 15 | undefined;
  tl0PicIdx?: number;
  temporalLayer?: number;
  layerSync?: boolean;
  keyIdx?: number;
  start?: boolean;
  partitionIndex?: number;
  keyFrame?: boolean;
  width?: number;
  height?: number;
}

/** A VP8 RTP payload: the descriptor, then a keyframe header (when `keyFrame` and `start`) or filler. */
function vp8Payload(f: Vp8Fields): Buffer {
  const bytes: number[] = [];
  const hasPictureId = f.pictureId !== undefined;
  const hasTl0 = f.tl0PicIdx !== undefined;
  const hasTid = f.temporalLayer !== undefined;
  const hasKeyIdx = f.keyIdx !== undefined;
  const extended = hasPictureId || hasTl0 || hasTid || hasKeyIdx;
  bytes.push((extended ? 0x80 : 0) | (f.start ? 0x10 : 0) | (f.partitionIndex ?? 0));
  if (extended) bytes.push((hasPictureId ? 0x80 : 0) | (hasTl0 ? 0x40 : 0) | (hasTid ? 0x20 : 0) | (hasKeyIdx ? 0x10 : 0));
  if (hasPictureId) {
    if (f.pictureIdBits === 7) bytes.push(f.pictureId! & 0x7f);
    else bytes.push(0x80 | (f.pictureId! >> 8), f.pictureId! & 0xff);
  }
  if (hasTl0) bytes.push(f.tl0PicIdx!);
  if (hasTid || hasKeyIdx) bytes.push(((f.temporalLayer ?? 0) << 6) | (f.layerSync ? 0x20 : 0) | (f.keyIdx ?? 0));
  if (f.start && f.keyFrame) {
    const width = f.width ?? 0;
    const height = f.height ?? 0;
    bytes.push(0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, width & 0xff, width >> 8, height & 0xff, height >> 8);
  } else if (f.start) {
    bytes.push(0x11, 0x02, 0x00); // P = 1: an interframe
  }
  while (bytes.length < 32) bytes.push(0x42); // even, so that only S, PID and P decide what is a keyframe
  return Buffer.from(bytes);
}

interface Packet {
  layer: number;
  header: { sequenceNumber: number; timestamp: number; marker: boolean };
  payload: Buffer;
  arrivalMs: number;
  codec: VideoCodec;
  /** The source frame's TID and PictureID, for checks. */
  temporalLayer: number;
  pictureId: number;
}

/** L1T3's temporal layer pattern, and which of its frames depend only on the base layer (Y). */
const TEMPORAL_PATTERN = [0, 2, 1, 2];
const LAYER_SYNC = [false, true, true, false];
const FRAME_MS = 1000 / 30;
const random = (range: number): number => Math.floor(Math.random() * range);

/** One simulcast layer of a synthetic VP8 (L1T3) or H264 stream, with random starting values. */
class Layer {
  sequenceNumber = random(0x10000);
  timestamp = random(0x100000000);
  pictureId: number;
  tl0PicIdx = random(0x100);
  keyIdx = random(0x20);
  patternIndex = 0;
  /** Which frames of the temporal pattern have the layer sync bit. */
  layerSync = LAYER_SYNC;

  constructor(
    readonly index: number,
    readonly packetsPerFrame: number,
    readonly width: number,
    readonly height: number,
    readonly codec: VideoCodec = 'vp8',
    /** 0: no PictureID. */
    readonly pictureIdBits: 0 | 7 | 15 = 15,
  ) {
    this.pictureId = random(pictureIdBits === 15 ? 0x8000 : 0x80);
  }

  /** The packets of the frame at frame time `frameNumber`. */
  frame(frameNumber: number, keyFrame: boolean): Packet[] {
    if (keyFrame) this.patternIndex = 0;
    const temporalLayer = TEMPORAL_PATTERN[this.patternIndex % 4]!;
    const layerSync = this.layerSync[this.patternIndex % 4]!;
    this.patternIndex++;
    if (temporalLayer === 0) this.tl0PicIdx = (this.tl0PicIdx + 1) & 0xff;
    if (keyFrame) this.keyIdx = (this.keyIdx + 1) & 0x1f;
    this.pictureId = (this.pictureId + 1) & (this.pictureIdBits === 15 ? 0x7fff : 0x7f);
    this.timestamp = (this.timestamp + 3000) >>> 0;
    const packets: Packet[] = [];
    for (let i = 0; i < this.packetsPerFrame; i++) {
      const payload =
        this.codec === 'vp8'
          ? vp8Payload({
              pictureId: this.pictureIdBits ? this.pictureId : undefined,
              pictureIdBits: this.pictureIdBits || undefined,
              tl0PicIdx: this.tl0PicIdx,
              temporalLayer,
              layerSync,
              keyIdx: this.keyIdx,
              start: i === 0,
              keyFrame,
              width: this.width,
              height: this.height,
            })
          : h264Payload(keyFrame, i, this.packetsPerFrame);
      packets.push({
        layer: this.index,
        header: { sequenceNumber: this.sequenceNumber, timestamp: this.timestamp, marker: i === this.packetsPerFrame - 1 },
        payload,
        arrivalMs: frameNumber * FRAME_MS,
        codec: this.codec,
        temporalLayer: this.codec === 'vp8' ? temporalLayer : 0,
        pictureId: this.pictureId,
      });
      this.sequenceNumber = (this.sequenceNumber + 1) & 0xffff;
    }
    return packets;
  }
}

const SPS = [0x67, 0x42, 0xc0, 0x1f, 0xda];
const PPS = [0x68, 0xce, 0x3c, 0x80];

/** Packet `i` of `count` of an H264 frame: a keyframe is a STAP-A (SPS, PPS) then an FU-A IDR; an interframe an FU-A non-IDR slice. */
function h264Payload(keyFrame: boolean, i: number, count: number): Buffer {
  if (keyFrame && i === 0) return Buffer.from([0x78, 0, SPS.length, ...SPS, 0, PPS.length, ...PPS]);
  const first = keyFrame ? 1 : 0;
  const nalType = keyFrame ? 5 : 1;
  const fuHeader = (i === first ? 0x80 : 0) | (i === count - 1 ? 0x40 : 0) | nalType;
  return Buffer.from([0x7c, fuHeader, 0x88, 0x84, 0x21]);
}

/** Keyframes at frame time `frameNumber`, on every layer or on `layer`. */
const keyFrameAt =
  (frameNumber: number, layer?: number) =>
  (index: number, n: number): boolean =>
    n === frameNumber && (layer === undefined || index === layer);
const noKeyFrames = (): boolean => false;

/**
 * Frames `from`..`to` of `layers`, interleaved per frame time as a publisher sends them (layer 0
 * first); `keyFrame` says which frames are keyframes.
 */
function frames(layers: Layer[], from: number, to: number, keyFrame: (layer: number, frameNumber: number) => boolean): Packet[] {
  const packets: Packet[] = [];
  for (let n = from; n <= to; n++) for (const layer of layers) packets.push(...layer.frame(n, keyFrame(layer.index, n)));
  return packets;
}

interface Forwarded {
  source: Packet;
  out: RewrittenPacket;
  /** The player's payload as the caller would build it, parsed back. */
  descriptor: Vp8Descriptor | undefined;
  payload: Buffer;
}

const scratch = Buffer.alloc(16);

/** Feeds `packets` to `rewriter` and returns what it forwards, with the player's payloads built as a caller would. */
function feed(rewriter: VideoRewriter, packets: Packet[]): Forwarded[] {
  const forwarded: Forwarded[] = [];
  for (const source of packets) {
    const out = rewriter.rewrite(source.layer, source.header, source.payload, source.codec, source.arrivalMs);
    if (!out) continue;
    let payload = source.payload;
    if (out.descriptorLength > 0) {
      const length = rewriter.rewriteDescriptor(source.payload, scratch);
      assert.equal(length, out.descriptorLength);
      payload = Buffer.concat([scratch.subarray(0, length), source.payload.subarray(length)]);
    }
    let descriptor: Vp8Descriptor | undefined;
    if (source.codec === 'vp8') {
      descriptor = new Vp8Descriptor();
      assert.equal(parseVp8(payload, descriptor), true);
    }
    forwarded.push({ source, out: { ...out }, descriptor, payload });
  }
  return forwarded;
}

/** The forwarded packets' sequence numbers go up by one each, modulo 2^16. */
function assertContiguous(forwarded: Forwarded[]): void {
  for (let i = 1; i < forwarded.length; i++) {
    assert.equal(forwarded[i]!.out.sequenceNumber, (forwarded[i - 1]!.out.sequenceNumber + 1) & 0xffff, `packet ${i}`);
  }
}

/** The forwarded frames' first packets. */
const frameStarts = (forwarded: Forwarded[]): Forwarded[] =>
  forwarded.filter((f, i) => i === 0 || f.source.header.timestamp !== forwarded[i - 1]!.source.header.timestamp);

/** The values the player's descriptor carries agree with the rewriter's result, and the rest of the packet is the source's. */
function assertDescriptorsAgree(forwarded: Forwarded[]): void {
  for (const { source, out, descriptor, payload } of forwarded) {
    assert.ok(descriptor, 'a VP8 packet');
    const original = new Vp8Descriptor();
    assert.equal(parseVp8(source.payload, original), true);
    assert.equal(descriptor.pictureId, out.pictureId ?? -1);
    assert.equal(descriptor.tl0PicIdx, out.tl0PicIdx ?? -1);
    assert.equal(descriptor.keyIdx, out.keyIdx ?? -1);
    assert.equal(descriptor.pictureIdBits, original.pictureIdBits);
    assert.equal(descriptor.temporalLayer, original.temporalLayer);
    assert.equal(descriptor.layerSync, original.layerSync);
    assert.equal(descriptor.keyFrame, original.keyFrame);
    assert.equal(descriptor.startOfPartition, original.startOfPartition);
    assert.equal(descriptor.width, original.width);
    assert.deepEqual(payload.subarray(descriptor.length), source.payload.subarray(original.length));
  }
}

const threeLayers = (codec: VideoCodec = 'vp8', bits: 7 | 15 = 15): Layer[] => [
  new Layer(0, 1, 320, 180, codec, bits),
  new Layer(1, 2, 640, 360, codec, bits),
  new Layer(2, 3, 1280, 720, codec, bits),
];

test('parseVp8 reads every descriptor field, the keyframe flag and size, and rejects truncated payloads', () => {
  const d = new Vp8Descriptor();
  const full = vp8Payload({
    pictureId: 0x1234,
    tl0PicIdx: 0xab,
    temporalLayer: 2,
    layerSync: true,
    keyIdx: 17,
    start: true,
    keyFrame: true,
    width: 1280,
    height: 720,
  });
  assert.equal(parseVp8(full, d), true);
  assert.deepEqual(
    [d.length, d.startOfPartition, d.partitionIndex, d.pictureId, d.pictureIdBits, d.tl0PicIdx, d.temporalLayer, d.layerSync, d.keyIdx],
    [6, true, 0, 0x1234, 15, 0xab, 2, true, 17],
  );
  assert.deepEqual([d.keyFrame, d.width, d.height], [true, 1280, 720]);

  assert.equal(parseVp8(vp8Payload({ pictureId: 99, pictureIdBits: 7, start: true }), d), true);
  assert.deepEqual(
    [d.length, d.pictureId, d.pictureIdBits, d.tl0PicIdx, d.temporalLayer, d.keyIdx, d.keyFrame],
    [3, 99, 7, -1, -1, -1, false],
  );
  // K without T: the TID/Y bits mean nothing.
  assert.equal(parseVp8(Buffer.from([0x80, 0x10, 0xe5, 0x00]), d), true);
  assert.deepEqual([d.length, d.temporalLayer, d.layerSync, d.keyIdx], [3, -1, false, 5]);
  // A keyframe without the start code has no size to read.
  const noStartCode = Buffer.from(full);
  noStartCode[6 + 3] = 0;
  assert.equal(parseVp8(noStartCode, d), true);
  assert.deepEqual([d.keyFrame, d.width, d.height], [true, 0, 0]);
  // No extension: a 1-byte descriptor, and a keyframe without room for its size.
  assert.equal(parseVp8(Buffer.from([0x10, 0x00, 0x00, 0x00]), d), true);
  assert.deepEqual([d.length, d.pictureId, d.keyFrame, d.width], [1, -1, true, 0]);
  // Not keyframes: P = 1, S = 0, a partition other than the first.
  assert.equal(parseVp8(vp8Payload({ pictureId: 1, start: true }), d), true);
  assert.equal(d.keyFrame, false);
  assert.equal(parseVp8(vp8Payload({ pictureId: 1, start: false, keyFrame: true }), d), true);
  assert.equal(d.keyFrame, false);
  assert.equal(parseVp8(vp8Payload({ pictureId: 1, start: true, partitionIndex: 1, keyFrame: true }), d), true);
  assert.equal(d.keyFrame, false);

  // Every cut through the descriptor, and the descriptor without any VP8 data after it.
  for (let length = 0; length <= 6; length++) assert.equal(parseVp8(full.subarray(0, length), d), false, `${length} bytes`);
  assert.equal(parseVp8(full.subarray(0, 7), d), true);
  for (let i = 0; i < 2000; i++) parseVp8(Buffer.from(Array.from({ length: random(8) }, () => random(256))), d);
});

test('inspectH264 finds keyframe starts in single NAL units, STAP-As and FU-As, and malformed packets', () => {
  assert.equal(inspectH264(Buffer.from([0x65, 0x88, 0x84])), 'keyFrameStart'); // IDR
  assert.equal(inspectH264(Buffer.from(SPS)), 'keyFrameStart');
  assert.equal(inspectH264(Buffer.from(PPS)), 'other');
  assert.equal(inspectH264(Buffer.from([0x41, 0x9a, 0x00])), 'other'); // non-IDR slice
  assert.equal(inspectH264(Buffer.from([0x78, 0, SPS.length, ...SPS, 0, PPS.length, ...PPS])), 'keyFrameStart');
  assert.equal(inspectH264(Buffer.from([0x78, 0, PPS.length, ...PPS, 0, 3, 0x65, 0x88, 0x84])), 'keyFrameStart');
  assert.equal(inspectH264(Buffer.from([0x78, 0, PPS.length, ...PPS, 0, 2, 0x41, 0x9a])), 'other');
  assert.equal(inspectH264(Buffer.from([0x7c, 0x85, 0x88])), 'keyFrameStart'); // FU-A, S, IDR
  assert.equal(inspectH264(Buffer.from([0x7c, 0x87, 0x88])), 'keyFrameStart'); // FU-A, S, SPS
  assert.equal(inspectH264(Buffer.from([0x7c, 0x05, 0x88])), 'other'); // FU-A, middle of an IDR
  assert.equal(inspectH264(Buffer.from([0x7c, 0x81, 0x88])), 'other'); // FU-A, S, non-IDR

  assert.equal(inspectH264(Buffer.alloc(0)), 'malformed');
  assert.equal(inspectH264(Buffer.from([0x78])), 'malformed');
  assert.equal(inspectH264(Buffer.from([0x7c, 0x85])), 'malformed');
  assert.equal(inspectH264(Buffer.from([0x78, 0, SPS.length + 1, ...SPS])), 'malformed');
  assert.equal(inspectH264(Buffer.from([0x78, 0, SPS.length, ...SPS, 0])), 'malformed');
  assert.equal(inspectH264(Buffer.from([0x78, 0, 0, 0x67])), 'malformed');
  assert.equal(inspectH264(Buffer.from([0x78, 0, 0, 0, 1, 0x41])), 'malformed'); // a NAL unit of size 0
  for (let i = 0; i < 2000; i++) inspectH264(Buffer.from(Array.from({ length: random(10) }, () => random(256))));
});

test('h264FrameSize reads the picture size of an SPS, alone or in a STAP-A, and nothing else', () => {
  // SPSs from libx264: baseline, main and high profile, each with cropping and emulation prevention bytes.
  const sps = {
    '640x360': Buffer.from('6742c01ed900a02ff970110000030001000003003c0f162e48', 'hex'),
    '320x180': Buffer.from('674d400deca0a0cfcf8088000003000800000301e078a14cb0', 'hex'),
    '1280x720': Buffer.from('6764001facd9405005bb0110000003001000000303c0f1831960', 'hex'),
  };
  for (const [size, nal] of Object.entries(sps)) {
    const [width, height] = size.split('x').map(Number);
    assert.deepEqual(h264FrameSize(nal), { width, height }, `${size} alone`);
    const pps = Buffer.from('68ebe3cb22c0', 'hex');
    const stapA = Buffer.concat([Buffer.from([0x18, 0, nal.length]), nal, Buffer.from([0, pps.length]), pps]);
    assert.deepEqual(h264FrameSize(stapA), { width, height }, `${size} in a STAP-A`);
    assert.equal(h264FrameSize(nal.subarray(0, 6)), undefined, `${size} cut short`);
  }
  assert.equal(h264FrameSize(Buffer.from([0x65, 0x88, 0x84])), undefined, 'an IDR slice');
  assert.equal(h264FrameSize(Buffer.alloc(0)), undefined);
});

test('forwards nothing before a keyframe of the target layer, then only that layer, continuously', () => {
  const layers = threeLayers();
  const rewriter = new VideoRewriter(2);
  assert.equal(rewriter.needsKeyFrame(), 2);
  const otherLayersKeyFrames = frames(layers, 0, 4, (layer, n) => n === 0 && layer < 2);
  assert.equal(feed(rewriter, otherLayersKeyFrames).length, 0);
  assert.equal(rewriter.needsKeyFrame(), 2);
  assert.equal(rewriter.currentLayer, undefined);

  const packets = frames(layers, 5, 30, (layer, n) => n === 5 || (layer === 2 && n === 20));
  const forwarded = feed(rewriter, packets);
  assert.equal(rewriter.needsKeyFrame(), undefined);
  assert.equal(rewriter.currentLayer, 2);
  assert.deepEqual(rewriter.currentSize, { width: 1280, height: 720 });
  assert.deepEqual(
    forwarded.map((f) => f.source),
    packets.filter((p) => p.layer === 2),
  );
  assert.deepEqual(
    forwarded.map((f) => f.out.switched),
    forwarded.map((_, i) => i === 0),
  );
  assert.ok(forwarded[0]!.out.keyFrame, 'starts at a keyframe');
  // The first layer forwarded keeps its own numbers.
  const first = forwarded[0]!;
  assert.deepEqual(
    [first.out.sequenceNumber, first.out.timestamp, first.out.pictureId, first.out.descriptorLength],
    [first.source.header.sequenceNumber, first.source.header.timestamp, first.source.pictureId, 0],
  );
  assertContiguous(forwarded);
  const starts = frameStarts(forwarded);
  for (let i = 1; i < starts.length; i++) {
    assert.equal((starts[i]!.out.timestamp - starts[i - 1]!.out.timestamp) >>> 0, 3000);
    assert.equal(starts[i]!.out.pictureId, (starts[i - 1]!.out.pictureId! + 1) & 0x7fff);
    const baseFrame = starts[i]!.source.temporalLayer === 0;
    assert.equal(starts[i]!.out.tl0PicIdx, (starts[i - 1]!.out.tl0PicIdx! + (baseFrame ? 1 : 0)) & 0xff);
  }
  assert.equal(rewriter.lastSequenceNumber, forwarded.at(-1)!.out.sequenceNumber);
  assert.equal(rewriter.lastTimestamp, forwarded.at(-1)!.out.timestamp);
  assertDescriptorsAgree(forwarded);
});

/** Checks the switch at `forwarded[at]`: everything continues from the packet before it. */
function assertSwitch(forwarded: Forwarded[], at: number, from: number, to: number): void {
  const before = forwarded[at - 1]!;
  const after = forwarded[at]!;
  assert.equal(before.source.layer, from);
  assert.equal(after.source.layer, to);
  assert.ok(after.out.switched && after.out.keyFrame, 'switched at a keyframe');
  assert.ok(
    forwarded.slice(at).every((f) => f.source.layer === to),
    'only the new layer after the switch',
  );
  assert.equal(after.out.sequenceNumber, (before.out.sequenceNumber + 1) & 0xffff);
  // As far after the last timestamp as time passed, and after it even when no time passed.
  const elapsedTicks = Math.round((after.source.arrivalMs - before.source.arrivalMs) * 90);
  assert.equal((after.out.timestamp - before.out.timestamp) >>> 0, Math.max(1, elapsedTicks));
  assert.equal(after.out.pictureId, (before.out.pictureId! + 1) & 0x7fff);
  assert.equal(after.out.tl0PicIdx, (before.out.tl0PicIdx! + 1) & 0xff);
  assert.equal(after.out.keyIdx, (before.out.keyIdx! + 1) & 0x1f);
}

test('a switch down waits for a keyframe of the new layer, thinning the old one to its base temporal layer, then continues every number from it', () => {
  const layers = threeLayers();
  const rewriter = new VideoRewriter(2);
  const forwarded = feed(rewriter, frames(layers, 0, 9, keyFrameAt(0)));
  rewriter.setTargetLayer(0);
  assert.equal(rewriter.needsKeyFrame(), 0);
  forwarded.push(...feed(rewriter, frames(layers, 10, 13, noKeyFrames)));
  assert.equal(rewriter.currentLayer, 2);
  assert.equal(rewriter.needsKeyFrame(), 0);
  const at = forwarded.length;
  forwarded.push(...feed(rewriter, frames(layers, 14, 30, keyFrameAt(14, 0))));
  assert.equal(rewriter.needsKeyFrame(), undefined);
  assert.equal(rewriter.currentLayer, 0);
  assert.deepEqual(rewriter.currentSize, { width: 320, height: 180 });
  // Frames 10..13 of layer 2 came while layer 0 was awaited: only the base layer one (12) went on.
  const oldLayerFrames = frameStarts(forwarded.filter((f) => f.source.layer === 2)).map((f) => Math.round(f.source.arrivalMs / FRAME_MS));
  assert.deepEqual(oldLayerFrames, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12]);
  // The new layer gets every temporal layer from its keyframe on.
  assert.equal(frameStarts(forwarded.filter((f) => f.source.layer === 0)).length, 17);
  assertSwitch(forwarded, at, 2, 0);
  assertContiguous(forwarded);
  const starts = frameStarts(forwarded);
  for (let i = 1; i < starts.length; i++) {
    assert.ok(((starts[i]!.out.timestamp - starts[i - 1]!.out.timestamp) | 0) > 0, 'timestamps rise');
    assert.equal(starts[i]!.out.pictureId, (starts[i - 1]!.out.pictureId! + 1) & 0x7fff);
  }
  assertDescriptorsAgree(forwarded);
});

test('a switch down for a congested link drops the old layer at once, and a layer left that way is taken up again only at a keyframe', () => {
  for (const codec of ['vp8', 'h264'] as const) {
    const layers = threeLayers(codec);
    const rewriter = new VideoRewriter(2);
    const forwarded = feed(rewriter, frames(layers, 0, 5, keyFrameAt(0)));
    rewriter.setTargetLayer(0, true);
    const waiting = feed(rewriter, frames(layers, 6, 9, noKeyFrames));
    assert.deepEqual(waiting, [], `${codec}: nothing of layer 2 while layer 0's keyframe is awaited`);
    const at = forwarded.length;
    forwarded.push(...feed(rewriter, frames(layers, 10, 12, keyFrameAt(10, 0))));
    assert.equal(rewriter.currentLayer, 0);
    assert.equal(forwarded[at]!.source.layer, 0);
    assert.ok(forwarded[at]!.out.switched && forwarded[at]!.out.keyFrame, `${codec}: switched at layer 0's keyframe`);
    assertContiguous(forwarded);

    // Moving up again and back before the keyframe: layer 0 was dropped meanwhile, so it needs one.
    rewriter.setTargetLayer(1);
    rewriter.setTargetLayer(0);
    assert.equal(rewriter.needsKeyFrame(), undefined, `${codec}: nothing was dropped, no keyframe needed`);
    rewriter.setTargetLayer(2);
    forwarded.push(...feed(rewriter, frames(layers, 13, 13, keyFrameAt(13, 2))));
    assert.equal(rewriter.currentLayer, 2);
    rewriter.setTargetLayer(0, true);
    feed(rewriter, frames(layers, 14, 15, noKeyFrames));
    rewriter.setTargetLayer(2);
    assert.equal(rewriter.needsKeyFrame(), 2, `${codec}: layer 2 was cut: it resumes at a keyframe`);
    assert.deepEqual(feed(rewriter, frames(layers, 16, 17, noKeyFrames)), []);
    const resumed = feed(rewriter, frames(layers, 18, 19, keyFrameAt(18, 2)));
    assert.ok(resumed.length > 0 && resumed[0]!.out.keyFrame && resumed.every((f) => f.source.layer === 2));
    assert.equal(rewriter.needsKeyFrame(), undefined);
  }
});

test('a switch up works the same, and a switch back to the target before its keyframe cancels the wait', () => {
  const layers = threeLayers();
  const rewriter = new VideoRewriter(0);
  const forwarded = feed(rewriter, frames(layers, 0, 5, keyFrameAt(0)));
  rewriter.setTargetLayer(1);
  forwarded.push(...feed(rewriter, frames(layers, 6, 7, noKeyFrames)));
  rewriter.setTargetLayer(0);
  assert.equal(rewriter.needsKeyFrame(), undefined);
  forwarded.push(...feed(rewriter, frames(layers, 8, 8, keyFrameAt(8, 1))));
  assert.equal(rewriter.currentLayer, 0);
  rewriter.setTargetLayer(2);
  const at = forwarded.length;
  forwarded.push(...feed(rewriter, frames(layers, 9, 20, keyFrameAt(11, 2))));
  assert.equal(rewriter.currentLayer, 2);
  assert.deepEqual(rewriter.currentSize, { width: 1280, height: 720 });
  assert.equal(forwarded[at + 2]!.source.layer, 0); // frames 9..11 of layer 0 (first in each frame time), then layer 2
  assertSwitch(forwarded, at + 3, 0, 2);
  assertContiguous(forwarded);
  assertDescriptorsAgree(forwarded);
});

test('a frame of the old layer cut short by a switch is followed by one unused sequence number', () => {
  const [, layer1, layer2] = threeLayers();
  const rewriter = new VideoRewriter(1);
  const forwarded = feed(rewriter, [...layer1!.frame(0, true), ...layer2!.frame(0, false)]);
  rewriter.setTargetLayer(2);
  const [first, second] = layer1!.frame(1, false);
  forwarded.push(...feed(rewriter, [first!, ...layer2!.frame(1, true), second!]));
  assert.deepEqual(
    forwarded.map((f) => [f.source.layer, f.out.sequenceNumber - forwarded[0]!.out.sequenceNumber]),
    [
      [1, 0],
      [1, 1],
      [1, 2],
      [2, 4],
      [2, 5],
      [2, 6],
    ],
  );
});

test('H264: switches at a keyframe starting with a STAP-A or an FU-A, and not at other packets', () => {
  const layers = threeLayers('h264');
  const rewriter = new VideoRewriter(1);
  const otherLayersKeyFrames = frames(layers, 0, 3, (layer, n) => layer !== 1 && n === 0);
  const forwarded = feed(rewriter, otherLayersKeyFrames);
  assert.equal(forwarded.length, 0);
  assert.equal(rewriter.needsKeyFrame(), 1);
  const keyFrame = layers[1]!.frame(4, true);
  assert.equal(inspectH264(keyFrame[0]!.payload), 'keyFrameStart'); // the STAP-A with SPS and PPS
  forwarded.push(...feed(rewriter, [...layers[0]!.frame(4, false), ...keyFrame, ...frames(layers, 5, 9, noKeyFrames)]));
  assert.equal(rewriter.currentLayer, 1);
  assert.ok(forwarded[0]!.out.switched && forwarded[0]!.out.keyFrame, 'switched at a keyframe');
  assert.equal(forwarded[0]!.source, keyFrame[0]);
  assert.equal(forwarded.length, 6 * 2);
  assert.ok(
    forwarded.every((f) => f.source.layer === 1 && f.out.pictureId === undefined && f.out.descriptorLength === 0),
    'layer 1, payloads as they came',
  );
  assert.equal(rewriter.currentSize, undefined);

  // A keyframe whose first packet is the IDR's first FU-A fragment.
  rewriter.setTargetLayer(2);
  const at = forwarded.length;
  // (Its STAP-A comes after it: that is from before the switch, so it is dropped.)
  const [stapA, ...idr] = layers[2]!.frame(10, true);
  assert.equal(inspectH264(idr[0]!.payload), 'keyFrameStart');
  forwarded.push(...feed(rewriter, [...layers[1]!.frame(10, false), ...idr, stapA!, ...frames(layers, 11, 12, noKeyFrames)]));
  assert.ok(!forwarded.some((f) => f.source === stapA), 'the STAP-A is not forwarded');
  assert.equal(rewriter.currentLayer, 2);
  assert.equal(forwarded[at + 2]!.source, idr[0]);
  assert.ok(forwarded[at + 2]!.out.switched, 'switched');
  assertContiguous(forwarded);
  const starts = frameStarts(forwarded);
  for (let i = 1; i < starts.length; i++) assert.ok(((starts[i]!.out.timestamp - starts[i - 1]!.out.timestamp) | 0) > 0, 'timestamps rise');
});

test('temporal layers: dropped frames leave no gap in sequence numbers or PictureIDs, and a raise waits for a layer sync frame', () => {
  const layer = new Layer(0, 2, 320, 180);
  const rewriter = new VideoRewriter(0);
  const forwarded = feed(rewriter, frames([layer], 0, 7, keyFrameAt(0)));
  rewriter.setMaxTemporalLayer(0);
  forwarded.push(...feed(rewriter, frames([layer], 8, 23, noKeyFrames)));
  rewriter.setMaxTemporalLayer(1);
  forwarded.push(...feed(rewriter, frames([layer], 24, 35, noKeyFrames)));
  // Frames 24..27 follow the pattern 0,2,1,2 again: the TL1 frame 26 has Y, so from it on TL1 is forwarded.
  rewriter.setMaxTemporalLayer(2);
  const raisedAt = forwarded.length;
  // Frame 36 is TL0, 37 TL2 with Y: forwarded from there.
  forwarded.push(...feed(rewriter, frames([layer], 36, 43, noKeyFrames)));

  assertContiguous(forwarded);
  assertDescriptorsAgree(forwarded);
  const starts = frameStarts(forwarded);
  const frameNumbers = starts.map((f) => f.source.arrivalMs / FRAME_MS);
  const expected = [...[0, 1, 2, 3, 4, 5, 6, 7], ...[8, 12, 16, 20], ...[24, 26, 28, 30, 32, 34], ...[36, 37, 38, 39, 40, 41, 42, 43]];
  assert.deepEqual(
    frameNumbers.map((n) => Math.round(n)),
    expected,
  );
  for (let i = 1; i < starts.length; i++) {
    assert.equal(starts[i]!.out.pictureId, (starts[i - 1]!.out.pictureId! + 1) & 0x7fff);
    const baseFrame = starts[i]!.source.temporalLayer === 0;
    assert.equal(starts[i]!.out.tl0PicIdx, (starts[i - 1]!.out.tl0PicIdx! + (baseFrame ? 1 : 0)) & 0xff);
    assert.equal((starts[i]!.out.timestamp - starts[i - 1]!.out.timestamp) >>> 0, 3000 * (expected[i]! - expected[i - 1]!));
  }
  assert.ok(
    forwarded.slice(raisedAt).some((f) => f.source.temporalLayer === 2),
    'TL2 after the raise',
  );
});

test('a raise waits for a frame with Y, or a keyframe, which lets every layer through', () => {
  const layer = new Layer(0, 1, 320, 180);
  layer.layerSync = [false, false, false, false];
  const rewriter = new VideoRewriter(0, 0);
  const forwarded = feed(rewriter, frames([layer], 0, 3, keyFrameAt(0))); // TID 0, 2, 1, 2
  rewriter.setMaxTemporalLayer(2);
  // Frames 4..7 are TID 0, 2, 1, 2 without Y: only the base layer goes. Frame 8 is a keyframe: then all go.
  forwarded.push(...feed(rewriter, frames([layer], 4, 11, keyFrameAt(8))));
  assert.deepEqual(
    forwarded.map((f) => Math.round(f.source.arrivalMs / FRAME_MS)),
    [0, 4, 8, 9, 10, 11],
  );
  assertContiguous(forwarded);
});

test('reordered packets of the current layer get the numbers they would have had; copies, old and pre-switch packets are dropped', () => {
  const layers = threeLayers();
  const inOrder = new VideoRewriter(2);
  const reordered = new VideoRewriter(2);
  const packets = frames(layers, 0, 12, keyFrameAt(0));
  const shuffled = [...packets];
  const swap = (i: number, j: number): void => void ([shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]);
  // Within a frame of layer 2, across its frames, and a packet very late (but inside the window).
  const layer2 = packets.map((p, i) => (p.layer === 2 ? i : -1)).filter((i) => i >= 0);
  swap(layer2[4]!, layer2[5]!);
  swap(layer2[8]!, layer2[10]!);
  const veryLate = shuffled.splice(layer2[12]!, 1)[0]!;
  shuffled.push(veryLate);
  const expected = new Map(feed(inOrder, packets).map((f) => [f.source, f.out]));
  const got = feed(reordered, [...shuffled, veryLate]); // and a copy of it
  assert.equal(got.length, expected.size);
  for (const f of got) assert.deepEqual(f.out, { ...expected.get(f.source)!, switched: f.out.switched });
  assertDescriptorsAgree(got);

  // After a switch, layer 1's packets from before its keyframe are not forwarded, even late.
  reordered.setTargetLayer(1);
  const beforeKeyFrame = layers[1]!.frame(13, false);
  const afterSwitch = feed(reordered, [...frames(layers, 14, 14, keyFrameAt(14, 1)), ...beforeKeyFrame]);
  assert.ok(
    afterSwitch.every((f) => f.source.layer === 1 && !beforeKeyFrame.includes(f.source)),
    'nothing from before the switch',
  );
  assert.equal(reordered.currentLayer, 1);
});

test('a packet lost while its layer was forwarded before is dropped when it comes after the layer is forwarded again', () => {
  for (const codec of ['vp8', 'h264'] as const) {
    const layers = threeLayers(codec).slice(0, 2);
    const rewriter = new VideoRewriter(0);
    const packets = frames(layers, 0, 3, keyFrameAt(0));
    const lost = packets.filter((p) => p.layer === 0)[2]!;
    const withoutLost = packets.filter((p) => p !== lost);
    const forwarded = feed(rewriter, withoutLost);
    rewriter.setTargetLayer(1);
    forwarded.push(...feed(rewriter, frames(layers, 4, 4, keyFrameAt(4, 1))));
    rewriter.setTargetLayer(0);
    forwarded.push(...feed(rewriter, [...frames(layers, 5, 6, keyFrameAt(5, 0)), lost]));
    assert.equal(rewriter.currentLayer, 0);
    assert.equal(forwarded.at(-1)!.source.arrivalMs, 6 * FRAME_MS, codec);
  }
});

test('reordered packets around dropped temporal layer frames: no numbers are lost for them, and whole late frames are placed', () => {
  const layer = new Layer(0, 2, 320, 180);
  const rewriter = new VideoRewriter(0, 1);
  const packets = frames([layer], 0, 11, keyFrameAt(0)); // TID 0,2,1,2 x 3, two packets each
  // The second packet of TL2 frame 1 comes after the first of frame 2; TL1 frame 6 comes whole
  // after frame 7 (TL2) started; TL0 frame 8's first packet comes after its second.
  const order = [0, 1, 2, 4, 3, 5, 6, 7, 8, 9, 10, 11, 14, 12, 13, 15, 17, 16, 18, 19, 20, 21, 22, 23];
  const reordered = order.map((i) => packets[i]!);
  const forwarded = feed(rewriter, reordered);
  const bySource = [...forwarded].sort((a, b) => packets.indexOf(a.source) - packets.indexOf(b.source));
  assert.deepEqual(
    bySource.map((f) => Math.round(f.source.arrivalMs / FRAME_MS)),
    [0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10],
  );
  assertContiguous(bySource);
  assertContiguous(frameStarts(bySource).map((f) => ({ ...f, out: { ...f.out, sequenceNumber: f.out.pictureId! } })));
  assertDescriptorsAgree(forwarded);

  // A TL2 frame that comes whole after the next frame started cannot be known to be dropped in
  // time: it is dropped late, leaving its sequence numbers and PictureID unused.
  const more = frames([layer], 12, 15, noKeyFrames); // TID 0, 2, 1, 2
  const late = feed(rewriter, [...more.slice(0, 2), ...more.slice(4, 6), ...more.slice(2, 4), ...more.slice(6)]);
  assert.deepEqual(
    late.map((f) => f.source),
    [...more.slice(0, 2), ...more.slice(4, 6)],
  );
  assert.equal(late[2]!.out.sequenceNumber, (late[1]!.out.sequenceNumber + 3) & 0xffff);
  assert.equal(late[2]!.out.pictureId, (late[0]!.out.pictureId! + 2) & 0x7fff);

  // The middle packet of a dropped TL2 frame, after its last: its number goes on.
  const wide = new Layer(0, 3, 320, 180);
  const baseOnly = new VideoRewriter(0, 0);
  const widePackets = frames([wide], 0, 3, keyFrameAt(0)); // TID 0, 2, 1, 2
  const wideForwarded = feed(baseOnly, [...widePackets.slice(0, 4), widePackets[5]!, widePackets[4]!, ...widePackets.slice(6)]);
  assert.deepEqual(
    wideForwarded.map((f) => f.source),
    widePackets.slice(0, 3),
  );
  assert.equal(baseOnly.lastSequenceNumber, wideForwarded[2]!.out.sequenceNumber);
  const next = feed(baseOnly, frames([wide], 4, 4, noKeyFrames));
  assert.equal(next[0]!.out.sequenceNumber, (wideForwarded[2]!.out.sequenceNumber + 1) & 0xffff);
});

test('a late packet whose frame is older than the frames remembered is dropped, also when an earlier layer had its PictureID', () => {
  const layer = new Layer(0, 1, 320, 180);
  const rewriter = new VideoRewriter(0);
  const packets = frames([layer], 0, 40, keyFrameAt(0));
  const forwarded = feed(rewriter, [...packets.slice(0, 2), ...packets.slice(3), packets[2]!]);
  assert.equal(forwarded.length, 40);
  assert.equal(forwarded.at(-1)!.source, packets[40]);

  // Layer 1's PictureIDs overlap those layer 0 had when forwarded.
  const layer1 = new Layer(1, 1, 640, 360);
  layer1.pictureId = (packets[10]!.pictureId - 2) & 0x7fff;
  rewriter.setTargetLayer(1);
  const after = frames([layer1], 41, 81, keyFrameAt(41));
  assert.equal(after[1]!.pictureId, packets[10]!.pictureId);
  const late = feed(rewriter, [after[0]!, ...after.slice(40), after[1]!]);
  assert.deepEqual(
    late.map((f) => f.source),
    [after[0], after[40]],
  );
});

test('the frame size is unknown after a switch to a keyframe that does not show it', () => {
  const layers = threeLayers().slice(0, 2);
  const rewriter = new VideoRewriter(0);
  feed(rewriter, frames(layers, 0, 1, keyFrameAt(0)));
  assert.deepEqual(rewriter.currentSize, { width: 320, height: 180 });
  rewriter.setTargetLayer(1);
  const [first, second] = layers[1]!.frame(2, true);
  const cut = { ...first!, payload: first!.payload.subarray(0, 6 + 4) };
  assert.equal(feed(rewriter, [cut, second!]).length, 2);
  assert.equal(rewriter.currentLayer, 1);
  assert.equal(rewriter.currentSize, undefined);
});

test('VP8 without PictureIDs: temporal layers and late packets are decided by TID alone', () => {
  const layer = new Layer(0, 2, 320, 180, 'vp8', 0);
  const rewriter = new VideoRewriter(0, 0);
  const packets = frames([layer], 0, 7, keyFrameAt(0)); // TID 0,2,1,2 x 2
  // Frame 1 (TL2) and frame 4 (TL0) each lose their first packet until the next frame started.
  const forwarded = feed(rewriter, [
    ...packets.slice(0, 2),
    ...packets.slice(3, 5),
    packets[2]!,
    ...packets.slice(5, 8),
    ...packets.slice(9, 11),
    packets[8]!,
    ...packets.slice(11),
  ]);
  assert.deepEqual(
    forwarded.map((f) => packets.indexOf(f.source)),
    [0, 1, 9, 8],
  );
  assert.ok(
    forwarded.every((f) => f.out.pictureId === undefined),
    'no PictureIDs',
  );
  // Frame 1's late first packet (TL2) is dropped late: its number stays unused.
  assert.equal(forwarded[3]!.out.sequenceNumber, (forwarded[1]!.out.sequenceNumber + 2) & 0xffff);
  assert.equal(forwarded[2]!.out.sequenceNumber, (forwarded[1]!.out.sequenceNumber + 3) & 0xffff);
});

test('source sequence numbers, timestamps and PictureIDs wrap without a jump in the player stream', () => {
  const layers = threeLayers();
  layers[1]!.sequenceNumber = 0xfffa;
  layers[1]!.timestamp = 0xffffffff - 7000;
  layers[1]!.pictureId = 0x7ffd;
  // Layer 1 wraps while forwarded before the switch, layer 2 (from its keyframe at frame 12) after it.
  layers[2]!.sequenceNumber = 0x10000 - 3 * 12 - 10;
  layers[2]!.timestamp = 0x100000000 - 3000 * 15;
  layers[2]!.pictureId = 0x8000 - 16;
  const rewriter = new VideoRewriter(1);
  const beforeSwitch = frames(layers, 0, 9, (layer, n) => n === 0 || (layer === 2 && n === 6));
  const forwarded = feed(rewriter, beforeSwitch);
  rewriter.setTargetLayer(2);
  forwarded.push(...feed(rewriter, frames(layers, 10, 29, keyFrameAt(12, 2))));
  assert.ok(
    forwarded.some((f) => f.source.layer === 1 && f.source.header.sequenceNumber < 10),
    'layer 1 wrapped',
  );
  assert.ok(
    forwarded.some((f) => f.source.layer === 2 && f.source.header.sequenceNumber < 10),
    'layer 2 wrapped',
  );
  assertContiguous(forwarded);
  const starts = frameStarts(forwarded);
  for (let i = 1; i < starts.length; i++) {
    const ticks = (starts[i]!.out.timestamp - starts[i - 1]!.out.timestamp) >>> 0;
    assert.ok(ticks > 0 && ticks <= 3000, `ticks ${ticks}`);
    assert.equal(starts[i]!.out.pictureId, (starts[i - 1]!.out.pictureId! + 1) & 0x7fff);
  }
  assertDescriptorsAgree(forwarded);
});

test('7-bit PictureIDs keep their width and wrap at 128, across switches too', () => {
  const layers = threeLayers('vp8', 7);
  // Layer 0 wraps before the switch, layer 2 after it.
  layers[0]!.pictureId = 120;
  layers[2]!.pictureId = 100;
  const rewriter = new VideoRewriter(0);
  const forwarded = feed(rewriter, frames(layers, 0, 14, keyFrameAt(0)));
  rewriter.setTargetLayer(2);
  forwarded.push(...feed(rewriter, frames(layers, 15, 35, keyFrameAt(15, 2))));
  assert.ok(
    forwarded.every((f) => f.descriptor!.pictureIdBits === 7 && f.out.pictureId! < 128),
    '7-bit PictureIDs',
  );
  const starts = frameStarts(forwarded);
  assert.equal(starts.filter((f) => f.out.pictureId === 0).length, 1);
  assert.ok(
    starts.some((f) => f.source.layer === 2 && f.source.pictureId === 0),
    'layer 2 wrapped',
  );
  for (let i = 1; i < starts.length; i++) assert.equal(starts[i]!.out.pictureId, (starts[i - 1]!.out.pictureId! + 1) & 0x7f);
  assertDescriptorsAgree(forwarded);
});

test('rewriteDescriptor writes only the descriptor, at the source length, with the new values', () => {
  const layers = [new Layer(0, 1, 320, 180), new Layer(1, 1, 640, 360)];
  const rewriter = new VideoRewriter(0);
  feed(rewriter, frames(layers, 0, 3, keyFrameAt(0)));
  rewriter.setTargetLayer(1);
  const [packet] = layers[1]!.frame(4, true);
  const out = rewriter.rewrite(1, packet!.header, packet!.payload, 'vp8', packet!.arrivalMs);
  assert.ok(out && out.switched && out.descriptorLength === 6, 'a switch with a rewritten descriptor');
  const scratchBytes = Buffer.alloc(6);
  assert.equal(rewriter.rewriteDescriptor(packet!.payload, scratchBytes), 6);
  const parsed = new Vp8Descriptor();
  assert.equal(parseVp8(Buffer.concat([scratchBytes, packet!.payload.subarray(6)]), parsed), true);
  assert.deepEqual(
    [
      parsed.pictureId,
      parsed.tl0PicIdx,
      parsed.keyIdx,
      parsed.temporalLayer,
      parsed.layerSync,
      parsed.keyFrame,
      parsed.width,
      parsed.height,
    ],
    [out.pictureId, out.tl0PicIdx, out.keyIdx, 0, false, true, 640, 360],
  );
  assert.deepEqual(scratchBytes.subarray(0, 2), packet!.payload.subarray(0, 2));

  // A stream whose values need no change is forwarded as it is.
  const plain = new VideoRewriter(0);
  const first = layers[0]!.frame(5, true);
  assert.equal(plain.rewrite(0, first[0]!.header, first[0]!.payload, 'vp8', 0)?.descriptorLength, 0);
});

test('malformed and too-short payloads are dropped without a throw; their numbers go on unless a frame the player gets may be cut', () => {
  const layers = threeLayers();
  const rewriter = new VideoRewriter(1);
  const packets = frames(layers, 0, 5, keyFrameAt(0));
  const layer1 = packets.filter((p) => p.layer === 1); // two packets per frame
  const broken = (p: Packet, payload: number[], timestamp = p.header.timestamp): Packet => ({
    ...p,
    payload: Buffer.from(payload),
    header: { ...p.header, timestamp },
  });
  const replacements = new Map([
    // Garbage with frame 0's timestamp after frame 0 ended: in no frame the player gets.
    [layer1[2]!, broken(layer1[2]!, [0x90, 0x80], layer1[1]!.header.timestamp)],
    // The last packet of frame 2: cut from a forwarded frame, so its number stays unused.
    [layer1[5]!, broken(layer1[5]!, [0x90, 0xe0, 0x80])],
    // Garbage after frame 2 ended (as its marker said), and padding, which is in no frame.
    [layer1[6]!, broken(layer1[6]!, [0x90, 0x80], layer1[5]!.header.timestamp)],
    [layer1[8]!, broken(layer1[8]!, [])],
    // The first packet of frame 5: may start a frame the player gets.
    [layer1[10]!, broken(layer1[10]!, [0x90])],
  ]);
  const beforeKeyFrame = [[], [0x90], [0x90, 0x80], [0x90, 0x80, 0x80, 0x01], [0x90, 0x80, 0x80]].map((bytes) => broken(layer1[0]!, bytes));
  const forwarded = feed(rewriter, [...beforeKeyFrame, ...packets.map((p) => replacements.get(p) ?? p)]);
  assert.deepEqual(
    forwarded.map((f) => [layer1.indexOf(f.source), (f.out.sequenceNumber - forwarded[0]!.out.sequenceNumber) & 0xffff]),
    [
      [0, 0],
      [1, 1],
      [3, 2],
      [4, 3],
      [7, 5],
      [9, 6],
      [11, 8],
    ],
  );
  assertDescriptorsAgree(forwarded);

  // Random bytes on every layer, of both codecs: never a throw.
  const fuzzed = new VideoRewriter(0);
  for (let i = 0; i < 5000; i++) {
    const payload = Buffer.from(Array.from({ length: random(12) }, () => random(256)));
    const codec: VideoCodec = i % 2 ? 'vp8' : 'h264';
    fuzzed.rewrite(random(3), { sequenceNumber: random(0x10000), timestamp: random(0x100000000), marker: i % 3 === 0 }, payload, codec, i);
    if (i % 1000 === 0) fuzzed.setTargetLayer(random(3));
  }
});

test('a layer starts only at a keyframe no older than its newest packet: not at a copy of an old one, which leaves the player a gap it cannot fill', () => {
  // A call's start: the player missed the keyframe of frame 0, then gets a copy of it, as a
  // repair or as padding (Chromium pads probes with RTX copies of a recent large packet, which
  // for a small layer is a one-packet keyframe) before the keyframe it asked for.
  const layer = new Layer(0, 1, 320, 180);
  const rewriter = new VideoRewriter(0);
  const packets = frames([layer], 0, 20, (_, n) => n === 0 || n === 12);
  const copy = packets[0]!;
  const forwarded = feed(rewriter, [...packets.slice(5, 9), copy, ...packets.slice(9)]);
  assert.deepEqual(
    forwarded.map((f) => f.source),
    packets.slice(12),
  );
  assertContiguous(forwarded);
});

test('a switch waits for a keyframe no older than the newest packet of its layer: not a copy, nor a keyframe whose first packet came after its second', () => {
  const layers = threeLayers().slice(0, 2);
  const rewriter = new VideoRewriter(0);
  const packets = frames(layers, 0, 9, keyFrameAt(0));
  const oldKeyFrameStart = packets.find((p) => p.layer === 1)!;
  const forwarded = feed(rewriter, packets);
  rewriter.setTargetLayer(1);
  forwarded.push(...feed(rewriter, [...frames(layers, 10, 10, noKeyFrames), oldKeyFrameStart, ...frames(layers, 11, 11, noKeyFrames)]));
  assert.equal(rewriter.currentLayer, 0);
  assert.equal(rewriter.needsKeyFrame(), 1);
  // Its second packet was dropped as it came (no keyframe yet), so the player would get it cut.
  const base = layers[0]!.frame(12, false);
  const [start, second] = layers[1]!.frame(12, true);
  forwarded.push(...feed(rewriter, [...base, second!, start!]));
  assert.equal(rewriter.currentLayer, 0);
  assert.equal(rewriter.needsKeyFrame(), 1);

  forwarded.push(...feed(rewriter, frames(layers, 13, 20, keyFrameAt(13, 1))));
  assert.equal(rewriter.currentLayer, 1);
  const at = forwarded.findIndex((f) => f.source.layer === 1);
  assert.equal(forwarded[at]!.source.arrivalMs, 13 * FRAME_MS);
  assertSwitch(forwarded, at, 0, 1);
  assertContiguous(forwarded);
  const starts = frameStarts(forwarded);
  for (let i = 1; i < starts.length; i++) assert.equal(starts[i]!.out.pictureId, (starts[i - 1]!.out.pictureId! + 1) & 0x7fff);
  assertDescriptorsAgree(forwarded);

  // A copy of the newest packet is as good as it: the rest of its keyframe is still to come.
  const [newest] = layers[0]!.frame(21, true); // one packet
  feed(rewriter, [newest!]);
  rewriter.setTargetLayer(0);
  const resumed = feed(rewriter, [newest!, ...frames(layers, 22, 22, noKeyFrames)]);
  assert.deepEqual(resumed[0]?.source, newest);
  assert.equal(rewriter.currentLayer, 0);
});
