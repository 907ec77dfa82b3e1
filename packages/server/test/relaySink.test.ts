import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RtpHeader, RtpPacket } from 'werift';
import { emptyMediaStats } from '../src/media/core/types.js';
import { VideoLayer } from '../src/media/core/videoLayer.js';
import type { VideoCodec } from '../src/media/core/videoRewriter.js';
import { RelaySink, type RelayOrigin } from '../src/media/relay/relaySink.js';

/** A publication of three layers in `videoCodec`, as much of one as a relay reads. */
function origin(videoCodec: VideoCodec): RelayOrigin {
  return {
    layers: [0, 1, 2].map((i) => new VideoLayer(i, undefined)),
    videoCodec,
    audioFormat: { opus: 111, red: -1, levelId: 0 },
    subscriberCodecs: () => ({ audio: [], video: [] }),
    usableLayerNear: (layer: number) => layer,
    layersInUseChanged: () => undefined,
    requestKeyFrame: () => undefined,
    fanout: { usableLayers: 0b111 },
  } as unknown as RelayOrigin;
}

/** The SSRCs of what the sink relays of a packet of each layer, while the other node forwards only the top one. */
function relayed(videoCodec: VideoCodec): Array<number | undefined> {
  const sent: Buffer[] = [];
  const sink = new RelaySink(
    'r1',
    origin(videoCodec),
    emptyMediaStats(),
    (datagram) => sent.push(datagram),
    () => undefined,
    () => undefined,
  );
  sink.opened({ type: 'open', relayID: 'r1', appID: 1, streamID: 's', publicationID: 'p', used: 0b100, forwarded: 0b100 });
  return [0, 1, 2].map((layer) => {
    const before = sent.length;
    sink.sendVideo(layer, new RtpPacket(new RtpHeader({ sequenceNumber: layer, ssrc: 99, payloadType: 96 }), Buffer.from([0x90, 0, 0])));
    return sent.length > before ? sent.at(-1)!.readUInt32BE(8) : undefined;
  });
}

test('a relay sends the simulcast layers the other node forwards, each under its own SSRC', () => {
  const ssrcs = relayed('vp8');
  assert.deepEqual(ssrcs.slice(0, 2), [undefined, undefined]);
  assert.ok(ssrcs[2] !== undefined);
});

test('a relay sends a VP9 stream whole, as one stream, while the other node forwards any of its spatial layers', () => {
  const ssrcs = relayed('vp9');
  assert.ok(ssrcs[0] !== undefined, 'the layers below the forwarded one go too: its frames need them');
  assert.deepEqual(ssrcs, [ssrcs[0], ssrcs[0], ssrcs[0]]);
});
