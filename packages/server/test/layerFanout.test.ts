import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { RtpHeader, RtpPacket } from 'werift';
import { emptyMediaStats } from '../src/media/core/types.js';
import { VideoLayer } from '../src/media/core/videoLayer.js';
import { LayerFanout, type LayerSink } from '../src/media/werift/layerFanout.js';
import { SIZES, vp9Payload } from './vp9Packets.js';

/** A player that gets the layers `forwarded` (a bit per layer) and nothing else of interest here. */
function sink(forwarded: number): LayerSink {
  return {
    observer: new EventEmitter(),
    sendAudio: () => undefined,
    sendVideo: () => undefined,
    layersInUse: () => forwarded,
    layersForwarded: () => forwarded,
    layersChanged: () => undefined,
    videoBudget: () => undefined,
    close: () => undefined,
  };
}

test('losses are worth repairing on the layers players get, except a starved one they are leaving; the smallest always', () => {
  const fanout = new LayerFanout(
    [0, 1, 2].map((i) => new VideoLayer(i, 'qhf'[i])),
    emptyMediaStats(),
    () => 'vp8',
    () => undefined,
  );
  const worth = (): boolean[] => [0, 1, 2].map((layer) => fanout.worthRepairing(layer));
  assert.deepEqual(worth(), [false, false, false], 'no player');
  // A player on the top layer, waiting for a keyframe of the smallest.
  fanout.add(sink(0b101));
  fanout.setUsable(0b101);
  assert.deepEqual(worth(), [true, false, true]);
  // The top layer starved (a collapsing uplink): its repairs would hold back the keyframe awaited.
  fanout.setUsable(0b001);
  assert.deepEqual(worth(), [true, false, false]);
  // The smallest, even while it does not flow: it is what players fall back to.
  fanout.setUsable(0b100);
  assert.deepEqual(worth(), [true, false, true]);
});

test('a VP9 stream: each packet counts for its spatial layer, sizes come from keyframes, and a layer’s rate includes the layers below', () => {
  const layers: VideoLayer[] = [];
  for (let i = 0; i < 3; i++) layers.push(new VideoLayer(i, undefined, layers[i - 1]));
  let changes = 0;
  const got: number[] = [];
  const fanout = new LayerFanout(
    layers,
    emptyMediaStats(),
    () => 'vp9',
    () => undefined,
  );
  fanout.add({ ...sink(0b111), sendVideo: (layer) => got.push(layer), layersChanged: () => changes++ });
  let sequenceNumber = 0;
  const send = (spatialLayer: number, timestamp: number, nowMs: number, keyFrame = false): void => {
    const payload = vp9Payload({
      pictureId: timestamp,
      interPicture: !keyFrame,
      start: true,
      end: true,
      spatialLayer,
      temporalLayer: 0,
      ...(keyFrame && spatialLayer === 0 && { sizes: SIZES }),
    });
    const header = new RtpHeader({ sequenceNumber: sequenceNumber++, timestamp, ssrc: 1234, payloadType: 98 });
    fanout.forwardVideo(layers[0]!, new RtpPacket(header, payload), nowMs);
  };
  // 1.2 s of 10 pictures/s, each of three layer frames of one packet; a keyframe asked for after the first.
  for (let layer = 0; layer < 3; layer++) send(layer, 0, 0);
  layers[2]!.requestKeyFrame(() => undefined);
  assert.ok(layers[2]!.awaitingKeyFrame);
  for (let picture = 1; picture <= 12; picture++)
    for (let layer = 0; layer < 3; layer++) send(layer, picture, picture * 100, picture === 1);
  assert.deepEqual(got.slice(0, 6), [0, 1, 2, 0, 1, 2], 'each packet goes to the sinks as its spatial layer');
  assert.deepEqual(
    layers.map((l) => [l.width, l.height, l.ssrc]),
    [
      [320, 180, 1234],
      [640, 360, 1234],
      [1280, 720, 1234],
    ],
  );
  assert.equal(changes, 1, 'the sinks heard of the sizes once');
  assert.ok(!layers[2]!.awaitingKeyFrame, 'the keyframe’s layer 2 frame answered the request');
  const rates = layers.map((l) => l.bitrateBps(1200));
  assert.ok(rates[0]! > 0);
  assert.ok(Math.abs(rates[1]! - 2 * rates[0]!) < rates[0]! * 0.01, `layer 1 carries layer 0 too: ${rates.join(' ')}`);
  assert.ok(Math.abs(rates[2]! - 3 * rates[0]!) < rates[0]! * 0.01, `layer 2 carries both: ${rates.join(' ')}`);
});
