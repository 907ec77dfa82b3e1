import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlayerState, PublisherState, VideoStreamType } from '@parley/sdk';
import { sleep, startTestServer, videoFixture } from './helpers.js';

const LAYERS = 3;

interface Received {
  data: Uint8Array;
  layer: number;
  isKeyFrame: boolean;
  ms: number;
}

/** The number a frame was sent with (see the tagging below). */
const frameNumber = (f: Received): number => (f.data.at(-3)! << 8) | f.data.at(-2)!;

test('a simulcast bot publisher: a player forced Small, then Big, then Default gets each layer whole, in order, switching at keyframes', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const pub = env.client();
  const viewer = env.client();
  const received: Received[] = [];
  viewer.engine.setCustomVideoRenderHandler({
    onRemoteVideoFrameEncodedDataReceived: (data, params, ms) =>
      received.push({ data, layer: params.layer ?? -1, isKeyFrame: params.isKeyFrame, ms }),
  });
  assert.equal(await pub.login('r-simulcast', 'pub'), 0);
  assert.equal(await viewer.login('r-simulcast', 'viewer'), 0);
  pub.engine.startPublishingStream('s-simulcast', { simulcastLayers: LAYERS });
  await pub.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);

  // Each frame ends with its number and its layer, so a received frame tells what it is (timestamps
  // are the player's own across a switch, not the publisher's).
  const keyFrameWanted = new Set<number>();
  pub.engine.on('customVideoCaptureKeyFrameRequested', (_channel, layer) => keyFrameWanted.add(layer));
  const sent = new Map<string, Uint8Array>();
  let frame = 0;
  let sending = true;
  const sender = (async () => {
    while (sending) {
      const source = videoFixture.frames[frame % videoFixture.frames.length]!;
      for (let layer = 0; layer < LAYERS; layer++) {
        // A keyframe starts every layer, then comes on request (the fixture's keyframes only on its own cycle).
        const sourceIsKey = (source.data[0]! & 0x01) === 0; // the VP8 frame tag's P bit
        const isKeyFrame = sourceIsKey || keyFrameWanted.has(layer);
        const data = isKeyFrame && !sourceIsKey ? videoFixture.frames[0]!.data : source.data;
        const tagged = new Uint8Array(data.length + 3);
        tagged.set(data);
        tagged.set([frame >> 8, frame & 0xff, layer], data.length);
        if (isKeyFrame) keyFrameWanted.delete(layer);
        sent.set(`${frame}/${layer}`, tagged);
        pub.engine.sendCustomVideoCaptureEncodedData(tagged, { codec: 'vp8', isKeyFrame, width: 320, height: 240, layer }, frame * 33);
      }
      frame++;
      await sleep(33);
    }
  })();
  t.after(async () => {
    sending = false;
    await sender;
  });

  viewer.engine.setPlayStreamVideoType('s-simulcast', VideoStreamType.Small);
  viewer.engine.startPlayingStream('s-simulcast');
  await viewer.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);

  const until = async (predicate: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 200 && !predicate(); i++) await sleep(25);
    assert.ok(predicate(), what);
  };
  await until(() => received.filter((f) => f.layer === 0).length >= 20, 'Small: frames of layer 0 arrive');
  viewer.engine.setPlayStreamVideoType('s-simulcast', VideoStreamType.Big);
  await until(() => received.filter((f) => f.layer === LAYERS - 1).length >= 20, 'Big: frames of the largest layer arrive');
  const bigFrom = received.findIndex((f) => f.layer === LAYERS - 1);
  viewer.engine.setPlayStreamVideoType('s-simulcast', VideoStreamType.Default);
  // Without a view or a network limit, automatic is the largest layer: it keeps coming.
  const before = received.length;
  await until(() => received.length >= before + 20, 'Default: frames keep arriving');

  assert.ok(
    received.slice(bigFrom).every((f) => f.layer === LAYERS - 1),
    'after the switch up, only the largest layer',
  );
  assert.ok(
    received.slice(0, bigFrom).every((f) => f.layer === 0),
    'before it, only the smallest',
  );
  for (const [i, f] of received.entries()) {
    assert.equal(f.data.at(-1), f.layer, `frame ${i} is of the layer it says`);
    assert.deepEqual(f.data, sent.get(`${frameNumber(f)}/${f.layer}`), `frame ${i} arrives byte-identical to what its layer sent`);
    if (i > 0) {
      // The switch may happen at the same picture of the other layer.
      const previous = received[i - 1]!;
      const inOrder = f.layer === previous.layer ? frameNumber(f) > frameNumber(previous) : frameNumber(f) >= frameNumber(previous);
      assert.ok(inOrder, `frame ${i} comes after frame ${i - 1}`);
      assert.ok(f.ms > received[i - 1]!.ms, `frame ${i}'s timestamp is after frame ${i - 1}'s`);
    }
  }
  assert.equal(received[0]!.isKeyFrame, true, 'the first frame is a keyframe');
  assert.deepEqual(
    viewer.events.filter((e) => e.event === 'playerVideoSizeChanged').map((e) => e.args),
    [['s-simulcast', 320, 240]],
    'the resolution is reported once (every layer here is 320×240)',
  );
  assert.equal(received[bigFrom]!.isKeyFrame, true, 'the first frame of the new layer is a keyframe');
  // Nothing lost at the switch: from the first frame of the large layer on, every frame it sent arrived.
  const bigFrames = received.slice(bigFrom).map(frameNumber);
  const expected = Array.from({ length: bigFrames.at(-1)! - bigFrames[0]! + 1 }, (_, i) => bigFrames[0]! + i);
  assert.deepEqual(bigFrames, expected, 'every frame of the large layer after the switch, none missing');
});

/** RTP packets the server has received from publishers so far (its metrics). */
async function packetsReceived(httpUrl: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  return Number(/^parley_media_rtp_received_packets_total (\d+)/m.exec(text)![1]);
}

test('a simulcast bot publisher: layers no player uses are paused at the publisher, and resumed when one does', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const [pub, viewer] = await env.inRoom('r-dynacast', 'pub', 'viewer');
  const layersOf = new Map<number, number>();
  viewer.engine.setCustomVideoRenderHandler({
    onRemoteVideoFrameEncodedDataReceived: (_data, params) => layersOf.set(params.layer ?? -1, (layersOf.get(params.layer ?? -1) ?? 0) + 1),
  });
  pub!.engine.startPublishingStream('s-dynacast', { simulcastLayers: LAYERS });
  await pub!.waitFor('publisherStateUpdate', (_, state) => state === PublisherState.Publishing);
  const keyFrameWanted = new Set<number>();
  pub!.engine.on('customVideoCaptureKeyFrameRequested', (_channel, layer) => keyFrameWanted.add(layer));
  // Every layer sends the same frames, so the packets the server receives count the layers that send.
  let sending = true;
  const sender = (async () => {
    for (let frame = 0; sending; frame++) {
      for (let layer = 0; layer < LAYERS; layer++) {
        const isKeyFrame = frame === 0 || keyFrameWanted.delete(layer);
        const data = videoFixture.frames[isKeyFrame ? 0 : 1]!.data;
        pub!.engine.sendCustomVideoCaptureEncodedData(data, { codec: 'vp8', isKeyFrame, width: 320, height: 240, layer }, frame * 33);
      }
      await sleep(33);
    }
  })();
  t.after(async () => {
    sending = false;
    await sender;
  });
  const packetsPerSecond = async (): Promise<number> => {
    const before = await packetsReceived(env.server.httpUrl);
    await sleep(1000);
    return (await packetsReceived(env.server.httpUrl)) - before;
  };

  const all = await packetsPerSecond();
  viewer!.engine.setPlayStreamVideoType('s-dynacast', VideoStreamType.Small);
  viewer!.engine.startPlayingStream('s-dynacast');
  await viewer!.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);
  // Unused layers pause 3 s after they are left.
  await sleep(4000);
  const smallOnly = await packetsPerSecond();
  viewer!.engine.setPlayStreamVideoType('s-dynacast', VideoStreamType.Big);
  await sleep(1000);
  const smallAndBig = await packetsPerSecond();
  const bigFrames = layersOf.get(LAYERS - 1) ?? 0;
  console.log(`# packets received per second: ${all} (3 layers), ${smallOnly} (Small played), ${smallAndBig} (Big played)`);
  assert.ok(Math.abs(smallOnly / all - 1 / 3) < 0.1, `one layer of three sent while only the smallest is played: ${smallOnly} of ${all}`);
  assert.ok(Math.abs(smallAndBig / all - 2 / 3) < 0.1, `the largest resumed (the smallest always sends): ${smallAndBig} of ${all}`);
  assert.ok(bigFrames >= 20, `the player gets the resumed layer: ${bigFrames} frames`);
});
