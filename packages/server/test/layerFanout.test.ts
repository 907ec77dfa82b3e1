import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { emptyMediaStats } from '../src/media/core/types.js';
import { VideoLayer } from '../src/media/core/videoLayer.js';
import { LayerFanout, type LayerSink } from '../src/media/werift/layerFanout.js';

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
