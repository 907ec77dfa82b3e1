import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseVp9, Vp9Descriptor } from '../src/media/core/codecs.js';
import { SvcRewriter } from '../src/media/core/svcRewriter.js';
import { SIZES, vp9Payload } from './vp9Packets.js';

interface Packet {
  header: { sequenceNumber: number; timestamp: number; marker: boolean };
  payload: Buffer;
  spatialLayer: number;
  temporalLayer: number;
  end: boolean;
}

/** L3T3's temporal pattern; `LnT1` is all 0. */
const TEMPORAL_PATTERN = [0, 2, 1, 2];

/** A synthetic SVC stream (`LnTm_KEY`: the layer below is referenced only in keyframes): pictures of `layers` spatial layers, `packetsPerFrame` packets per layer frame, one RTP stream. */
class SvcStream {
  sequenceNumber = 65_500; // wraps within the tests
  timestamp = 0xffff_f000;
  pictureId = 32_760;
  index = 0;
  /** Pictures (by index) whose frames are not switching-up points. */
  readonly notSwitchingUp = new Set<number>();

  constructor(
    readonly layers = 3,
    readonly packetsPerFrame = 2,
    readonly temporalPattern = [0],
  ) {}

  /** The next picture's packets, in order; a keyframe when asked (and for the first). */
  picture(keyFrame = this.index === 0): Packet[] {
    const temporalLayer = keyFrame ? 0 : this.temporalPattern[this.index % this.temporalPattern.length]!;
    const packets: Packet[] = [];
    for (let spatialLayer = 0; spatialLayer < this.layers; spatialLayer++) {
      for (let i = 0; i < this.packetsPerFrame; i++) {
        const start = i === 0;
        const end = i === this.packetsPerFrame - 1;
        const payload = vp9Payload({
          pictureId: this.pictureId,
          interPicture: !keyFrame,
          start,
          end,
          temporalLayer,
          switchingUp: temporalLayer > 0 && !this.notSwitchingUp.has(this.index),
          spatialLayer,
          interLayer: keyFrame && spatialLayer > 0,
          ...(keyFrame && spatialLayer === 0 && start && { sizes: SIZES.slice(0, this.layers) }),
        });
        const marker = end && spatialLayer === this.layers - 1;
        packets.push({
          header: { sequenceNumber: this.sequenceNumber, timestamp: this.timestamp, marker },
          payload,
          spatialLayer,
          temporalLayer,
          end,
        });
        this.sequenceNumber = (this.sequenceNumber + 1) & 0xffff;
      }
    }
    this.timestamp = (this.timestamp + 3000) >>> 0;
    this.pictureId = (this.pictureId + 1) & 0x7fff;
    this.index++;
    return packets;
  }
}

interface Out {
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  spatialLayer: number;
  temporalLayer: number;
}

function feed(rewriter: SvcRewriter, packets: Packet[]): Out[] {
  const out: Out[] = [];
  for (const p of packets) {
    const r = rewriter.rewrite(p.spatialLayer, p.header, p.payload);
    if (r)
      out.push({
        sequenceNumber: r.sequenceNumber,
        timestamp: r.timestamp,
        marker: r.marker,
        spatialLayer: p.spatialLayer,
        temporalLayer: p.temporalLayer,
      });
  }
  return out;
}

/** Every forwarded number follows the one before it. */
function assertContinuous(out: Out[]): void {
  for (let i = 1; i < out.length; i++) {
    assert.equal(out[i]!.sequenceNumber, (out[i - 1]!.sequenceNumber + 1) & 0xffff, `no gap before packet ${i}`);
  }
}

/** The layers of each picture forwarded, and where its marker is: e.g. "0 1M" (layers 0 and 1, the marker on 1's last packet). */
function pictures(out: Out[]): string[] {
  const byTimestamp = new Map<number, string[]>();
  for (const o of out) {
    const layers = byTimestamp.get(o.timestamp) ?? [];
    if (!layers.includes(String(o.spatialLayer)) && !layers.includes(`${o.spatialLayer}M`)) layers.push(String(o.spatialLayer));
    if (o.marker) layers[layers.length - 1] = `${o.spatialLayer}M`;
    byTimestamp.set(o.timestamp, layers);
  }
  return [...byTimestamp.values()].map((layers) => layers.join(' '));
}

const pictureRun = (stream: SvcStream, count: number): Packet[] => Array.from({ length: count }, () => stream.picture()).flat();

test('parseVp9 reads flexible and non-flexible descriptors, the scalability structure, and rejects truncated payloads', () => {
  const d = new Vp9Descriptor();
  assert.ok(
    parseVp9(
      vp9Payload({
        pictureId: 1234,
        interPicture: true,
        start: true,
        temporalLayer: 2,
        switchingUp: true,
        spatialLayer: 1,
        pDiffs: [1, 3],
      }),
      d,
    ),
  );
  assert.deepEqual(
    [
      d.pictureId,
      d.interPicture,
      d.startOfFrame,
      d.endOfFrame,
      d.temporalLayer,
      d.switchingUp,
      d.spatialLayer,
      d.interLayer,
      d.keyFrame,
      d.spatialLayers,
    ],
    [1234, true, true, false, 2, true, 1, false, false, 0],
  );
  assert.ok(
    parseVp9(
      vp9Payload({ pictureId: 7, flexible: false, tl0PicIdx: 9, end: true, temporalLayer: 1, spatialLayer: 2, interLayer: true }),
      d,
    ),
  );
  assert.deepEqual([d.pictureId, d.endOfFrame, d.temporalLayer, d.spatialLayer, d.interLayer], [7, true, 1, 2, true]);
  // A keyframe's first packet with a scalability structure, sizes and a picture group.
  assert.ok(parseVp9(vp9Payload({ pictureId: 3, start: true, spatialLayer: 0, temporalLayer: 0, sizes: SIZES, group: [0, 1, 2] }), d));
  assert.ok(d.keyFrame);
  assert.equal(d.spatialLayers, 3);
  assert.deepEqual([...d.widths.slice(0, 3)], [320, 640, 1280]);
  assert.deepEqual([...d.heights.slice(0, 3)], [180, 360, 720]);
  // A 7-bit PictureID, no layer indices: spatial layer 0.
  assert.ok(parseVp9(Buffer.from([0x88, 0x05, 0x42]), d));
  assert.deepEqual([d.pictureId, d.spatialLayer, d.keyFrame], [5, 0, true]);
  // Cut anywhere within the descriptor (or with nothing after it): false, and no throw.
  const full = vp9Payload({ pictureId: 3, start: true, spatialLayer: 0, sizes: SIZES, group: [0, 1, 2] });
  const descriptorLength = 1 + 2 + 1 + 1 + 12 + 1 + 1 + 2 + 3;
  for (let length = 0; length <= descriptorLength; length++) assert.equal(parseVp9(full.subarray(0, length), d), false, `${length} bytes`);
  assert.equal(parseVp9(full.subarray(0, descriptorLength + 1), d), true);
  const inter = vp9Payload({ pictureId: 3, interPicture: true, spatialLayer: 0, pDiffs: [1, 2, 3] });
  for (let length = 0; length <= 7; length++)
    assert.equal(parseVp9(inter.subarray(0, length), d), false, `${length} bytes, reference differences`);
});

test('forwards nothing before a keyframe, then the spatial layers up to the target, continuously, the marker on the top one', () => {
  const stream = new SvcStream();
  const rewriter = new SvcRewriter(1);
  stream.picture(); // the keyframe went by before this player
  assert.equal(rewriter.needsKeyFrame(), 1);
  assert.deepEqual(feed(rewriter, pictureRun(stream, 3)), [], 'no keyframe yet');
  const out = feed(rewriter, [...stream.picture(true), ...pictureRun(stream, 3)]);
  assert.deepEqual(pictures(out), ['0 1M', '0 1M', '0 1M', '0 1M']);
  assertContinuous(out);
  assert.equal(rewriter.currentLayer, 1);
  assert.equal(rewriter.needsKeyFrame(), undefined);
  assert.equal(rewriter.layersForwarded(), 0b011);
  // Timestamps pass unchanged: one source clock.
  assert.ok(out.every((o) => o.temporalLayer === 0 && o.timestamp >= 0));
});

test('a move down takes effect at the next picture without a keyframe; a move up waits for one, and takes every layer up to the target there', () => {
  const stream = new SvcStream();
  const rewriter = new SvcRewriter(2);
  let out = feed(rewriter, pictureRun(stream, 2));
  assert.deepEqual(pictures(out), ['0 1 2M', '0 1 2M']);
  const first = stream.picture();
  // Down in the middle of a picture: that picture ends as it began, the next one stops at layer 0.
  out.push(...feed(rewriter, first.slice(0, 3)));
  rewriter.setTargetLayer(0);
  assert.equal(rewriter.needsKeyFrame(), undefined, 'no keyframe to move down');
  out.push(...feed(rewriter, first.slice(3)));
  out.push(...feed(rewriter, pictureRun(stream, 2)));
  assert.deepEqual(pictures(out).slice(2), ['0 1 2M', '0M', '0M']);
  assertContinuous(out);
  assert.equal(rewriter.layersForwarded(), 0b001);

  rewriter.setTargetLayer(2);
  assert.equal(rewriter.needsKeyFrame(), 2);
  assert.equal(rewriter.layersForwarded(), 0b111, 'the layers it waits for count as forwarded');
  out = feed(rewriter, [...pictureRun(stream, 2), ...stream.picture(true), stream.picture()].flat());
  assert.deepEqual(pictures(out), ['0M', '0M', '0 1 2M', '0 1 2M']);
  assertContinuous(out);
  assert.equal(rewriter.needsKeyFrame(), undefined);
});

test('a publisher that stops sending the top layer: its player goes on with the layers that come, the marker where the publisher put it', () => {
  const full = new SvcStream(3);
  const rewriter = new SvcRewriter(2);
  const out = feed(rewriter, pictureRun(full, 2));
  // The uplink collapses: the encoder drops layer 2; the stream goes on with the same numbering.
  const reduced = new SvcStream(2);
  Object.assign(reduced, { sequenceNumber: full.sequenceNumber, timestamp: full.timestamp, pictureId: full.pictureId, index: full.index });
  out.push(...feed(rewriter, pictureRun(reduced, 3)));
  assert.deepEqual(pictures(out), ['0 1 2M', '0 1 2M', '0 1M', '0 1M', '0 1M']);
  assertContinuous(out);
  assert.equal(rewriter.needsKeyFrame(), undefined, 'no keyframe waited for');
});

test('late packets: a repair of a forwarded layer frame takes the number kept for it; one of a dropped layer frame is dropped', () => {
  const stream = new SvcStream(3, 3);
  const rewriter = new SvcRewriter(1);
  const packets = pictureRun(stream, 3);
  // Lost: the middle packet of picture 1's layer 1 frame (forwarded), and of its layer 2 frame (dropped).
  const lostForwarded = packets[9 + 4]!;
  const lostDropped = packets[9 + 7]!;
  assert.equal(lostForwarded.spatialLayer, 1);
  assert.equal(lostDropped.spatialLayer, 2);
  const out = feed(
    rewriter,
    packets.filter((p) => p !== lostForwarded && p !== lostDropped),
  );
  const numbers = out.map((o) => o.sequenceNumber);
  const repaired = feed(rewriter, [lostForwarded, lostDropped]);
  assert.equal(repaired.length, 1, 'only the forwarded layer frame is repaired');
  const all = [...numbers, repaired[0]!.sequenceNumber].sort(
    (a, b) => ((a - numbers[0]! + 0x10000) & 0xffff) - ((b - numbers[0]! + 0x10000) & 0xffff),
  );
  for (let i = 1; i < all.length; i++)
    assert.equal(all[i], (all[i - 1]! + 1) & 0xffff, 'no number left unused: the dropped frame’s gap was not kept');
  // A copy of it, and a packet older than anything kept, are dropped.
  assert.deepEqual(feed(rewriter, [lostForwarded, packets[0]!]), []);

  // The first packet of a dropped layer frame lost: a number is kept for it (what it was is not
  // known), but when it comes it is dropped, as its picture's layers were decided.
  const next = stream.picture();
  const lostStart = next[6]!;
  assert.equal(lostStart.spatialLayer, 2);
  assert.equal(
    feed(
      rewriter,
      next.filter((p) => p !== lostStart),
    ).length,
    6,
  );
  assert.deepEqual(feed(rewriter, [lostStart]), []);
});

test('a picture lost whole comes late: it is placed as the player’s layers are now, in the numbers kept for it', () => {
  const stream = new SvcStream(3, 1);
  const rewriter = new SvcRewriter(1);
  const before = feed(rewriter, pictureRun(stream, 1));
  const lost = stream.picture();
  const after = feed(rewriter, pictureRun(stream, 1));
  const repaired = feed(rewriter, lost);
  assert.deepEqual(pictures(repaired), ['0 1M']);
  const numbers = [...before, ...repaired, ...after].map((o) => o.sequenceNumber);
  // Three numbers were kept for the lost picture (its layer 2 packet was not known to be dropped): one stays unused.
  assert.deepEqual(
    numbers,
    [numbers[0], numbers[0]! + 1, numbers[0]! + 2, numbers[0]! + 3, numbers[0]! + 5, numbers[0]! + 6].map((n) => n & 0xffff),
  );
});

test('temporal layers: those above the limit are dropped without gaps; a raise waits for a switching-up point', () => {
  const stream = new SvcStream(2, 1, TEMPORAL_PATTERN);
  const rewriter = new SvcRewriter(1, 0);
  let out = feed(rewriter, pictureRun(stream, 8));
  assert.deepEqual([...new Set(out.map((o) => o.temporalLayer))], [0]);
  assertContinuous(out);
  rewriter.setMaxTemporalLayer(2);
  // Pictures 8..15: TIDs 0 2 1 2 0 2 1 2; 9 and 10 are not switching-up points, 11 is.
  stream.notSwitchingUp.add(9).add(10);
  out = feed(rewriter, pictureRun(stream, 8));
  assert.deepEqual(
    out.filter((o) => o.spatialLayer === 0).map((o) => o.temporalLayer),
    [0, 2, 0, 2, 1, 2],
  );
  rewriter.setMaxTemporalLayer(1);
  out = feed(rewriter, pictureRun(stream, 4));
  assert.deepEqual(
    out.filter((o) => o.spatialLayer === 0).map((o) => o.temporalLayer),
    [0, 1],
  );
});

test('paused, nothing goes; resumed, it starts at a keyframe and its numbers continue from the last sent', () => {
  const stream = new SvcStream(2, 2);
  const rewriter = new SvcRewriter(1);
  const first = feed(rewriter, pictureRun(stream, 2));
  // Cut in the middle of a picture.
  first.push(...feed(rewriter, stream.picture().slice(0, 1)));
  rewriter.setPaused(true);
  assert.equal(rewriter.needsKeyFrame(), undefined);
  assert.deepEqual(feed(rewriter, pictureRun(stream, 2)), []);
  rewriter.setPaused(false);
  assert.equal(rewriter.needsKeyFrame(), 1);
  assert.deepEqual(feed(rewriter, pictureRun(stream, 1)), [], 'not before a keyframe');
  const resumed = feed(rewriter, stream.picture(true));
  assert.equal(resumed[0]!.sequenceNumber, (first.at(-1)!.sequenceNumber + 2) & 0xffff, 'one unused number after a picture cut short');
  assertContinuous(resumed);
});

test('malformed packets are dropped without a throw; padding gives its number to the next packet, anything else leaves a gap', () => {
  const stream = new SvcStream(1, 1);
  const rewriter = new SvcRewriter(0);
  const out = feed(rewriter, pictureRun(stream, 1));
  const padding = {
    header: { sequenceNumber: stream.sequenceNumber, timestamp: stream.timestamp, marker: false },
    payload: Buffer.alloc(0),
    spatialLayer: 0,
    temporalLayer: 0,
    end: false,
  };
  stream.sequenceNumber = (stream.sequenceNumber + 1) & 0xffff;
  out.push(...feed(rewriter, [padding, ...pictureRun(stream, 1)]));
  assertContinuous(out);
  const cut = { ...padding, header: { ...padding.header, sequenceNumber: stream.sequenceNumber }, payload: Buffer.from([0xa0]) };
  stream.sequenceNumber = (stream.sequenceNumber + 1) & 0xffff;
  const next = feed(rewriter, [cut, ...pictureRun(stream, 1)]);
  assert.equal(next[0]!.sequenceNumber, (out.at(-1)!.sequenceNumber + 2) & 0xffff);
});
