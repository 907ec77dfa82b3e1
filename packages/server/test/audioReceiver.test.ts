import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RtpHeader, RtpPacket } from 'werift';
import { AudioReceiver, type AudioPacket } from '../src/media/werift/audioReceiver.js';

const OPUS = 111;
const RED = 63;
const FRAME_TICKS = 960;

const frame = (sequenceNumber: number): Buffer => Buffer.from(`opus frame ${sequenceNumber}`);

/**
 * The RED packet a browser sends for `sequenceNumber`: the frames of the `distance` packets before
 * it (those since the stream's `first`), then its own.
 */
function redPacket(sequenceNumber: number, distance: number, first = 0): RtpPacket {
  const count = Math.min(distance, (sequenceNumber - first) & 0xffff);
  const redundant = Array.from({ length: count }, (_, i) => count - i);
  const before = (back: number): Buffer => frame((sequenceNumber - back) & 0xffff);
  const headers = redundant.map((back) => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE((((0x80 | OPUS) << 24) | ((back * FRAME_TICKS) << 10) | before(back).length) >>> 0);
    return header;
  });
  const payload = Buffer.concat([...headers, Buffer.from([OPUS]), ...redundant.map(before), frame(sequenceNumber)]);
  return new RtpPacket(
    new RtpHeader({ payloadType: RED, sequenceNumber, timestamp: 10_000 + sequenceNumber * FRAME_TICKS, ssrc: 1 }),
    payload,
  );
}

/** What a player that does not take RED would decode from each delivered packet: sequence number, timestamp and frame. */
const asOpus = (packets: AudioPacket[]): Array<[number, number, string]> =>
  packets.map(({ rtp, red }) => [
    rtp.header.sequenceNumber,
    rtp.header.timestamp,
    rtp.payload.subarray(red ? red.at(-1)!.start : 0).toString(),
  ]);

test('a frame lost on the way in is taken from the redundancy of the next packet, before it; each frame goes out once', () => {
  const receiver = new AudioReceiver({ opus: OPUS, red: RED, levelId: 0 });
  const delivered: AudioPacket[] = [];
  for (const sequenceNumber of [0, 1, 2, /* 3 and 4 lost */ 5, 6, 7, 8]) delivered.push(...receiver.receive(redPacket(sequenceNumber, 2))!);
  // 4 is late after all, and 6 comes again (a retransmission): both were delivered already.
  delivered.push(...receiver.receive(redPacket(4, 2))!, ...receiver.receive(redPacket(6, 2))!);
  assert.deepEqual(
    asOpus(delivered),
    [0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => [n, 10_000 + n * FRAME_TICKS, `opus frame ${n}`]),
  );
  assert.deepEqual(
    delivered.map((p) => p.red !== undefined),
    [true, true, true, false, false, true, true, true, true],
    'recovered frames go out as plain Opus',
  );
});

test('with one redundant frame, two lost in a row leave a gap the recovery does not invent', () => {
  const receiver = new AudioReceiver({ opus: OPUS, red: RED, levelId: 0 });
  const delivered = [10, 11, /* 12, 13 lost */ 14, 15].flatMap((n) => receiver.receive(redPacket(n, 1, 10))!);
  assert.deepEqual(
    asOpus(delivered).map(([n]) => n),
    [10, 11, 13, 14, 15],
  );
});

test('plain Opus passes as it is; other payload types and malformed RED are refused', () => {
  const receiver = new AudioReceiver({ opus: OPUS, red: -1, levelId: 0 });
  const opus = new RtpPacket(new RtpHeader({ payloadType: OPUS, sequenceNumber: 7, timestamp: 0, ssrc: 1 }), frame(7));
  assert.deepEqual(receiver.receive(opus), [{ rtp: opus, red: undefined, level: -1 }]);
  assert.deepEqual(receiver.receive(opus), [], 'a repeat');
  assert.equal(receiver.receive(redPacket(8, 1)), undefined, 'RED was not negotiated');
  const withRed = new AudioReceiver({ opus: OPUS, red: RED, levelId: 0 });
  const cut = new RtpPacket(
    new RtpHeader({ payloadType: RED, sequenceNumber: 1, timestamp: 0, ssrc: 1 }),
    Buffer.from([0x80 | OPUS, 0, 0]),
  );
  assert.equal(withRed.receive(cut), undefined, 'a RED header cut short');
});

test('sequence numbers are followed across the 16-bit wrap', () => {
  const receiver = new AudioReceiver({ opus: OPUS, red: RED, levelId: 0 });
  const delivered = [65533, 65534, /* 65535 lost */ 0, 1].flatMap((n) => receiver.receive(redPacket(n, 1, 65533))!);
  assert.deepEqual(
    asOpus(delivered).map(([n]) => n),
    [65533, 65534, 65535, 0, 1],
  );
});

test("each packet's audio level (RFC 6464) goes with it; frames recovered from redundancy have none", () => {
  const receiver = new AudioReceiver({ opus: OPUS, red: RED, levelId: 3 });
  const withLevel = (sequenceNumber: number, level: number): RtpPacket => {
    const packet = redPacket(sequenceNumber, 1, 20);
    packet.header.extensions = [{ id: 3, payload: Buffer.from([level]) }];
    return packet;
  };
  const delivered = [withLevel(20, 0x80 | 10), withLevel(22, 127)].flatMap((p) => receiver.receive(p)!);
  assert.deepEqual(
    delivered.map((p) => [p.rtp.header.sequenceNumber, p.level]),
    [
      [20, 0x80 | 10],
      [21, -1],
      [22, 127],
    ],
  );
});
