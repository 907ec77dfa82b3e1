import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RtcpHeader, TransportWideCC } from 'werift';
import { TwccRecorder, parseTwccFeedback, twccResults, type PacketResult, type TwccFeedback } from '../src/media/core/congestion/twcc.js';

/** An hour of uptime in µs; neither a multiple of the 250 µs delta tick nor of the 64 ms reference tick. */
const T0 = 3_600_000_123.4;
const REFERENCE_TICK_US = 64_000;
/** Deltas are rounded to the nearest 250 µs tick against the previous reported time, so no report is further off than half a tick. */
const MAX_ERROR_US = 125;

/** Deterministic pseudo-random numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Checks the RTCP framing of a built feedback packet, then parses it. */
function parseBuilt(packet: Buffer): TwccFeedback {
  assert.equal(packet[0]! >> 6, 2, 'version');
  assert.equal(packet[0]! & 0x1f, 15, 'FMT');
  assert.equal(packet[1], 205, 'PT');
  assert.equal(packet.length % 4, 0);
  assert.ok(packet.length <= 1200, `${packet.length} bytes`);
  assert.equal((packet.readUInt16BE(2) + 1) * 4, packet.length, 'length field');
  if (packet[0]! & 0x20) {
    const padding = packet[packet.length - 1]!;
    assert.ok(padding >= 1 && padding <= 3, `padding ${padding}`);
    assert.deepEqual([...packet.subarray(packet.length - padding, -1)], new Array(padding - 1).fill(0));
  }
  const feedback = parseTwccFeedback(packet);
  assert.ok(feedback, 'parses');
  return feedback;
}

function parseAll(packets: Buffer[]): TwccFeedback[] {
  return packets.map(parseBuilt);
}

function assertArrival(result: PacketResult | undefined, expectedUs: number | undefined): void {
  assert.ok(result);
  if (expectedUs === undefined) {
    assert.equal(result.arrivalTimeUs, undefined, `sequence number ${result.sequenceNumber} is reported lost`);
  } else {
    assert.ok(result.arrivalTimeUs !== undefined, `sequence number ${result.sequenceNumber} is reported received`);
    const error = Math.abs(result.arrivalTimeUs - expectedUs);
    assert.ok(error <= MAX_ERROR_US, `sequence number ${result.sequenceNumber} off by ${error} µs`);
  }
}

/** Asserts that the feedbacks follow one another without gap or overlap and report exactly `expected` (sequence number → arrival, undefined for lost), in order. */
function assertReports(feedbacks: TwccFeedback[], expected: Array<[number, number | undefined]>): void {
  const reported = feedbacks.flatMap((f) => f.packets);
  assert.deepEqual(
    reported.map((p) => p.sequenceNumber),
    expected.map(([seq]) => seq),
  );
  expected.forEach(([, arrival], i) => assertArrival(reported[i], arrival));
  for (let i = 1; i < feedbacks.length; i++) {
    const previous = feedbacks[i - 1]!;
    assert.equal(feedbacks[i]!.baseSequenceNumber, (previous.baseSequenceNumber + previous.packets.length) & 0xffff);
  }
}

test('in-order packets round trip with their arrival times, SSRCs and the reference time', () => {
  const recorder = new TwccRecorder({ senderSsrc: 0x11223344, mediaSsrc: 0xaabbccdd });
  const expected: Array<[number, number]> = [];
  for (let i = 0; i < 100; i++) {
    expected.push([1000 + i, T0 + i * 1234.5]);
    recorder.onPacket(1000 + i, T0 + i * 1234.5);
  }
  const packets = recorder.buildFeedback();
  assert.equal(packets.length, 1);
  const [feedback] = parseAll(packets);
  assert.ok(feedback);
  assert.equal(feedback.senderSsrc, 0x11223344);
  assert.equal(feedback.mediaSsrc, 0xaabbccdd);
  assert.equal(feedback.baseSequenceNumber, 1000);
  assert.equal(feedback.feedbackPacketCount, 0);
  assert.equal(feedback.referenceTimeUs, Math.floor(T0 / REFERENCE_TICK_US) * REFERENCE_TICK_US);
  assertReports([feedback], expected);
  assert.deepEqual(recorder.buildFeedback(), [], 'nothing new arrived');

  // 20 + one run length chunk + 100 one-byte deltas = 122 bytes: P bit set, two padding bytes ending with their count, as libwebrtc does.
  const packet = packets[0]!;
  assert.equal(packet.length, 124);
  assert.equal(packet[0], 0xaf);
  assert.deepEqual([...packet.subarray(122)], [0, 2]);

  // Cross-check of the chunk and delta layout with werift's parser, which gets this simple case right.
  const werift = TransportWideCC.deSerialize(packet.subarray(4), RtcpHeader.deSerialize(packet));
  assert.equal(werift.packetStatusCount, 100);
  let arrival = feedback.referenceTimeUs;
  werift.recvDeltas.forEach((delta, i) => {
    arrival += delta.delta;
    assert.equal(arrival, feedback.packets[i]!.arrivalTimeUs);
  });

  // No padding needed: no P bit.
  const aligned = new TwccRecorder({ senderSsrc: 1 });
  aligned.onPacket(0, T0);
  aligned.onPacket(1, T0 + 1000);
  const [alignedPacket] = aligned.buildFeedback();
  assert.ok(alignedPacket);
  assert.equal(alignedPacket.length, 24);
  assert.equal(alignedPacket[0], 0x8f);
});

test('the media source SSRC follows the SSRC given with the packets', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  recorder.onPacket(0, T0);
  assert.equal(parseAll(recorder.buildFeedback())[0]!.mediaSsrc, 0);
  recorder.onPacket(1, T0 + 1000, 0xdeadbeef);
  assert.equal(parseAll(recorder.buildFeedback())[0]!.mediaSsrc, 0xdeadbeef);
});

test('packets missing inside the range are reported lost, also at the start of a feedback', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  const lost = new Set([3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 40, 41, 58]);
  const expected: Array<[number, number | undefined]> = [];
  for (let seq = 0; seq < 60; seq++) {
    const arrival = T0 + seq * 2000;
    expected.push([seq, lost.has(seq) ? undefined : arrival]);
    if (!lost.has(seq)) recorder.onPacket(seq, arrival);
  }
  assertReports(parseAll(recorder.buildFeedback()), expected);

  recorder.onPacket(62, T0 + 200_000);
  recorder.onPacket(63, T0 + 201_000);
  const [next] = parseAll(recorder.buildFeedback());
  assert.ok(next);
  assert.equal(next.baseSequenceNumber, 60);
  assertReports(
    [next],
    [
      [60, undefined],
      [61, undefined],
      [62, T0 + 200_000],
      [63, T0 + 201_000],
    ],
  );
});

test('reordered packets are reported in sequence order with their own arrival times', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  const arrivalOrder = [0, 1, 3, 2, 5, 4, 6, 9, 7, 8];
  arrivalOrder.forEach((seq, i) => recorder.onPacket(seq, T0 + i * 1000));
  const expected = arrivalOrder.map((seq, i): [number, number] => [seq, T0 + i * 1000]).sort((a, b) => a[0] - b[0]);
  assertReports(parseAll(recorder.buildFeedback()), expected);

  // Before the first packet recorded, with a gap.
  const before = new TwccRecorder({ senderSsrc: 1 });
  before.onPacket(5, T0);
  before.onPacket(2, T0 + 1000);
  assertReports(parseAll(before.buildFeedback()), [
    [2, T0 + 1000],
    [3, undefined],
    [4, undefined],
    [5, T0],
  ]);
});

test('deltas take one byte from 0 to 255 ticks, two bytes otherwise', () => {
  const base = Math.ceil(T0 / REFERENCE_TICK_US) * REFERENCE_TICK_US;
  const arrivals = [base, base + 255 * 250, base + 511 * 250, base + 510 * 250];
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  arrivals.forEach((arrival, seq) => recorder.onPacket(seq, arrival));
  const packets = recorder.buildFeedback();
  // 20 + one two-bit vector + 1 + 1 + 2 + 2.
  assert.deepEqual(
    packets.map((p) => p.length),
    [28],
  );
  assertReports(
    parseAll(packets),
    arrivals.map((arrival, seq): [number, number] => [seq, arrival]),
  );
});

test('mixed statuses without large deltas take one-bit vectors of 14', () => {
  // 57 statuses alternating received and lost: four one-bit vectors and a run of 1, 29 deltas: 20 + 10 + 29 bytes, padded to 60.
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  const expected: Array<[number, number | undefined]> = [];
  for (let seq = 0; seq < 57; seq++) {
    expected.push([seq, seq % 2 === 0 ? T0 + seq * 1000 : undefined]);
    if (seq % 2 === 0) recorder.onPacket(seq, T0 + seq * 1000);
  }
  const packets = recorder.buildFeedback();
  assert.deepEqual(
    packets.map((p) => p.length),
    [60],
  );
  assertReports(parseAll(packets), expected);
});

test('sequence numbers wrap from 65535 to 0, also when reordered across the wrap', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  const arrivalOrder = [65530, 65531, 65532, 65533, 65534, 0, 65535, 1, 2, 3, 4, 5];
  arrivalOrder.forEach((seq, i) => recorder.onPacket(seq, T0 + i * 1000));
  const [feedback, ...rest] = parseAll(recorder.buildFeedback());
  assert.equal(rest.length, 0);
  assert.ok(feedback);
  assert.equal(feedback.baseSequenceNumber, 65530);
  assertReports(
    [feedback],
    [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3, 4, 5].map((seq): [number, number] => [
      seq,
      T0 + arrivalOrder.indexOf(seq) * 1000,
    ]),
  );

  // Across two feedbacks.
  const split = new TwccRecorder({ senderSsrc: 1 });
  split.onPacket(65533, T0);
  assert.equal(parseAll(split.buildFeedback())[0]!.baseSequenceNumber, 65533);
  split.onPacket(0, T0 + 2000);
  split.onPacket(65535, T0 + 1000);
  const [second] = parseAll(split.buildFeedback());
  assert.ok(second);
  assert.equal(second.baseSequenceNumber, 65534);
  assertReports(
    [second],
    [
      [65534, undefined],
      [65535, T0 + 1000],
      [0, T0 + 2000],
    ],
  );
});

test('a delta beyond int16 ticks (8.19 s) ends the feedback; the rest gets its own base and reference time', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  const expected: Array<[number, number]> = [];
  const record = (seq: number, arrival: number): void => {
    expected.push([seq, arrival]);
    recorder.onPacket(seq, arrival);
  };
  for (let seq = 0; seq < 5; seq++) record(seq, T0 + seq * 1000);
  record(5, T0 + 10_004_000);
  record(6, T0 + 10_005_000);
  const feedbacks = parseAll(recorder.buildFeedback());
  assert.deepEqual(
    feedbacks.map((f) => [f.baseSequenceNumber, f.packets.length]),
    [
      [0, 5],
      [5, 2],
    ],
  );
  assert.equal(feedbacks[1]!.referenceTimeUs, Math.floor((T0 + 10_004_000) / REFERENCE_TICK_US) * REFERENCE_TICK_US);
  assertReports(feedbacks, expected);

  // Backwards too: sequence number 0 arrives 9 s after 1.
  const backwards = new TwccRecorder({ senderSsrc: 1 });
  backwards.onPacket(1, T0);
  backwards.onPacket(0, T0 + 9_000_000);
  const backwardsFeedbacks = parseAll(backwards.buildFeedback());
  assert.equal(backwardsFeedbacks.length, 2);
  assertReports(backwardsFeedbacks, [
    [0, T0 + 9_000_000],
    [1, T0],
  ]);

  // The limits themselves: from a reference time on a 64 ms boundary, 32767 ticks fit and 32768 do not.
  const base = Math.ceil(T0 / REFERENCE_TICK_US) * REFERENCE_TICK_US;
  for (const [ticks, packetCount] of [
    [32767, 1],
    [32768, 2],
  ] as const) {
    const limit = new TwccRecorder({ senderSsrc: 1 });
    limit.onPacket(0, base);
    limit.onPacket(1, base + ticks * 250);
    const limitFeedbacks = parseAll(limit.buildFeedback());
    assert.equal(limitFeedbacks.length, packetCount, `${ticks} ticks`);
    assertReports(limitFeedbacks, [
      [0, base],
      [1, base + ticks * 250],
    ]);
  }
});

test('long runs take run length chunks', () => {
  // 1000 received with one-byte deltas: one chunk, so 20 + 2 + 1000 bytes, padded to 1024.
  const received = new TwccRecorder({ senderSsrc: 1 });
  for (let seq = 0; seq < 1000; seq++) received.onPacket(seq, T0 + seq * 1000);
  const receivedPackets = received.buildFeedback();
  assert.deepEqual(
    receivedPackets.map((p) => p.length),
    [1024],
  );
  assert.equal(parseBuilt(receivedPackets[0]!).packets.length, 1000);

  // Received, 4999 lost, received: a one-bit vector (received + 13 lost), a run of 4986 lost, a run of 1 received and two deltas.
  const lost = new TwccRecorder({ senderSsrc: 1 });
  lost.onPacket(0, T0);
  lost.onPacket(5000, T0 + 1000);
  const lostPackets = lost.buildFeedback();
  assert.deepEqual(
    lostPackets.map((p) => p.length),
    [28],
  );
  assertReports(parseAll(lostPackets), [
    [0, T0],
    ...Array.from({ length: 4999 }, (_, i): [number, undefined] => [i + 1, undefined]),
    [5000, T0 + 1000],
  ]);

  // A run longer than a chunk holds (8191) takes several run length chunks: 20 + 5 chunks + 2 deltas.
  const longer = new TwccRecorder({ senderSsrc: 1 });
  longer.onPacket(0, T0);
  longer.onPacket(20_000, T0 + 1000);
  const longerPackets = longer.buildFeedback();
  assert.deepEqual(
    longerPackets.map((p) => p.length),
    [32],
  );
  const [longerFeedback] = parseAll(longerPackets);
  assert.equal(longerFeedback!.packets.length, 20_001);
  assert.equal(longerFeedback!.packets.filter((p) => p.arrivalTimeUs !== undefined).length, 2);
});

test('feedback is split into packets of at most 1200 bytes that fill most of it', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  const next = random(7);
  const expected: Array<[number, number | undefined]> = [];
  let arrival = T0;
  for (let seq = 0; seq < 3000; seq++) {
    // Mostly small deltas, some large ones (> 63.75 ms) and some losses, so that all chunk kinds occur.
    arrival += next() < 0.1 ? 70_000 : next() * 3000;
    const isLost = next() < 0.05 && seq < 2999;
    expected.push([seq, isLost ? undefined : arrival]);
    if (!isLost) recorder.onPacket(seq, arrival);
  }
  const packets = recorder.buildFeedback();
  assert.ok(packets.length >= 3, `${packets.length} packets`);
  packets.slice(0, -1).forEach((p) => assert.ok(p.length >= 1150, `${p.length} bytes`));
  assertReports(parseAll(packets), expected);
});

test('a packet arriving after it was reported lost is reported in the next feedback', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  for (let seq = 0; seq < 10; seq++) if (seq !== 5) recorder.onPacket(seq, T0 + seq * 1000);
  const [first] = parseAll(recorder.buildFeedback());
  assert.equal(first!.packets[5]!.arrivalTimeUs, undefined);

  recorder.onPacket(5, T0 + 20_000);
  const [second, ...rest] = parseAll(recorder.buildFeedback());
  assert.equal(rest.length, 0);
  assert.ok(second);
  assert.equal(second.baseSequenceNumber, 5);
  // As in libwebrtc, what follows the late packet is reported again.
  assertReports(
    [second],
    [5, 6, 7, 8, 9].map((seq): [number, number] => [seq, seq === 5 ? T0 + 20_000 : T0 + seq * 1000]),
  );
  assert.deepEqual(recorder.buildFeedback(), []);

  // Arrivals are kept 500 ms: a packet older than everything kept is ignored.
  const old = new TwccRecorder({ senderSsrc: 1 });
  for (let seq = 0; seq < 10; seq++) if (seq !== 5) old.onPacket(seq, T0 + seq * 1000);
  old.buildFeedback();
  for (let seq = 10; seq < 20; seq++) old.onPacket(seq, T0 + 1_000_000 + seq * 1000);
  old.buildFeedback();
  old.onPacket(5, T0 + 1_100_000);
  assert.deepEqual(old.buildFeedback(), []);
});

test('at most 32768 sequence numbers are kept: without feedback being built, the oldest are forgotten', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  for (let i = 0; i < 40_000; i++) recorder.onPacket(i & 0xffff, T0 + i * 100);
  const feedbacks = parseAll(recorder.buildFeedback());
  assert.equal(feedbacks[0]!.baseSequenceNumber, 40_000 - 32_768);
  assertReports(
    feedbacks,
    Array.from({ length: 32_768 }, (_, i): [number, number] => [40_000 - 32_768 + i, T0 + (40_000 - 32_768 + i) * 100]),
  );
});

test('duplicates are ignored: the first arrival counts, and a reported packet is not reported again', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  for (let seq = 0; seq < 5; seq++) recorder.onPacket(seq, T0 + seq * 1000);
  recorder.onPacket(2, T0 + 50_000);
  assertReports(
    parseAll(recorder.buildFeedback()),
    [0, 1, 2, 3, 4].map((seq): [number, number] => [seq, T0 + seq * 1000]),
  );
  recorder.onPacket(3, T0 + 60_000);
  assert.deepEqual(recorder.buildFeedback(), []);
});

test('arrival times over 10,000 packets come back within half a tick, without drift', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  const next = random(42);
  const expected: Array<[number, number]> = [];
  const feedbacks: TwccFeedback[] = [];
  let arrival = T0;
  for (let i = 0; i < 10_000; i++) {
    // Spacing of 333.3 µs ± jitter: never a whole number of ticks, so naive rounding per delta would drift.
    arrival += 333.3 + next() * 200;
    const seq = (60_000 + i) & 0xffff;
    expected.push([seq, arrival]);
    recorder.onPacket(seq, arrival);
    if (i % 500 === 499) feedbacks.push(...parseAll(recorder.buildFeedback()));
  }
  assert.equal(feedbacks.length, 20);
  assertReports(feedbacks, expected);
});

test('feedbackPacketCount counts built packets modulo 256', () => {
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  for (let i = 0; i < 300; i++) {
    recorder.onPacket(i, T0 + i * 1000);
    const [feedback, ...rest] = parseAll(recorder.buildFeedback());
    assert.equal(rest.length, 0);
    assert.equal(feedback!.feedbackPacketCount, i % 256);
  }
});

/** An RTCP transport-cc packet from its fields; `padding` bytes end with their count and set the P bit unless `zeroPadding`. */
function feedbackBytes(fields: {
  base: number;
  count: number;
  referenceTicks: number;
  feedbackPacketCount: number;
  chunks: number[];
  deltas: number[];
  zeroPadding?: boolean;
}): Buffer {
  const unpadded = 20 + fields.chunks.length * 2 + fields.deltas.length;
  const padding = (4 - (unpadded % 4)) % 4;
  const packet = Buffer.alloc(unpadded + padding);
  packet[0] = 0x80 | (padding > 0 && !fields.zeroPadding ? 0x20 : 0) | 15;
  packet[1] = 205;
  packet.writeUInt16BE(packet.length / 4 - 1, 2);
  packet.writeUInt32BE(1, 4);
  packet.writeUInt32BE(0x12345678, 8);
  packet.writeUInt16BE(fields.base, 12);
  packet.writeUInt16BE(fields.count, 14);
  packet.writeUIntBE(fields.referenceTicks, 16, 3);
  packet[19] = fields.feedbackPacketCount;
  fields.chunks.forEach((chunk, i) => packet.writeUInt16BE(chunk, 20 + i * 2));
  packet.set(fields.deltas, 20 + fields.chunks.length * 2);
  if (padding > 0 && !fields.zeroPadding) packet[packet.length - 1] = padding;
  return packet;
}

/**
 * Made by hand from the draft's layout:
 *   af cd 00 06   V=2 P=1 FMT=15, PT=205, length 6 (28 bytes)
 *   00 00 00 01   sender SSRC
 *   12 34 56 78   media source SSRC
 *   ff fe 00 04   base sequence number 65534, status count 4
 *   00 00 10 07   reference time 16 × 64 ms = 1.024 s, feedback packet count 7
 *   d2 40         two-bit status vector 11|01 00 10 01 00 00 00: small, not received, large, small (the rest beyond the count)
 *   04            +4 ticks = +1 ms
 *   ff fc         -4 ticks = -1 ms
 *   08            +8 ticks = +2 ms
 *   00 02         padding, its last byte the padding count
 */
const HAND_MADE = Buffer.from('afcd0006' + '00000001' + '12345678' + 'fffe0004' + '00001007' + 'd240' + '04fffc08' + '0002', 'hex');

test('parses a hand-made packet', () => {
  assert.deepEqual(parseTwccFeedback(HAND_MADE), {
    senderSsrc: 1,
    mediaSsrc: 0x12345678,
    baseSequenceNumber: 65534,
    feedbackPacketCount: 7,
    referenceTimeUs: 1_024_000,
    packets: [
      { sequenceNumber: 65534, arrivalTimeUs: 1_025_000 },
      { sequenceNumber: 65535, arrivalTimeUs: undefined },
      { sequenceNumber: 0, arrivalTimeUs: 1_024_000 },
      { sequenceNumber: 1, arrivalTimeUs: 1_026_000 },
    ],
  });
  assert.deepEqual(
    feedbackBytes({
      base: 65534,
      count: 4,
      referenceTicks: 16,
      feedbackPacketCount: 7,
      chunks: [0xd240],
      deltas: [0x04, 0xff, 0xfc, 0x08],
    }),
    HAND_MADE,
  );

  // Zero padding without the P bit (libwebrtc before 2019), a run of 221 not received (0 00 0000011011101), a one-bit vector
  // cut short by the status count (1 0 11000000000000: two received), and the largest reference time.
  const older = parseTwccFeedback(
    feedbackBytes({
      base: 0,
      count: 223,
      referenceTicks: 0xffffff,
      feedbackPacketCount: 0xff,
      chunks: [0x00dd, 0xb000],
      deltas: [0xff, 0x00],
      zeroPadding: true,
    }),
  );
  assert.ok(older);
  assert.equal(older.feedbackPacketCount, 0xff);
  assert.equal(older.referenceTimeUs, 0xffffff * REFERENCE_TICK_US);
  assert.equal(older.packets.length, 223);
  assert.ok(older.packets.slice(0, 221).every((p) => p.arrivalTimeUs === undefined));
  assert.deepEqual(older.packets.slice(221), [
    { sequenceNumber: 221, arrivalTimeUs: older.referenceTimeUs + 63_750 },
    { sequenceNumber: 222, arrivalTimeUs: older.referenceTimeUs + 63_750 },
  ]);

  // The first packet of a compound packet: what follows the length is not part of it.
  assert.deepEqual(
    parseTwccFeedback(Buffer.concat([HAND_MADE, Buffer.from('81c90001' + '00000001', 'hex')])),
    parseTwccFeedback(HAND_MADE),
  );
});

test('rejects malformed packets with undefined', () => {
  for (let length = 0; length < HAND_MADE.length; length++) {
    assert.equal(parseTwccFeedback(HAND_MADE.subarray(0, length)), undefined, `truncated to ${length} bytes`);
  }
  const withByte = (index: number, value: number): Buffer => {
    const copy = Buffer.from(HAND_MADE);
    copy[index] = value;
    return copy;
  };
  assert.equal(parseTwccFeedback(withByte(0, 0xa1)), undefined, 'FMT 1 (generic NACK)');
  assert.equal(parseTwccFeedback(withByte(1, 206)), undefined, 'PT 206 (PSFB)');
  assert.equal(parseTwccFeedback(withByte(0, 0x6f)), undefined, 'version 1');
  assert.equal(parseTwccFeedback(withByte(3, 0x07)), undefined, 'length beyond the data');
  assert.equal(parseTwccFeedback(withByte(27, 0)), undefined, 'P bit with a padding count of 0');
  assert.equal(parseTwccFeedback(withByte(27, 28)), undefined, 'padding count beyond the payload');

  const fields = { base: 0, count: 4, referenceTicks: 0, feedbackPacketCount: 0, chunks: [0xd240], deltas: [0x04, 0xff, 0xfc, 0x08] };
  assert.ok(parseTwccFeedback(feedbackBytes(fields)));
  assert.equal(parseTwccFeedback(feedbackBytes({ ...fields, count: 0 })), undefined, 'status count 0');
  assert.equal(parseTwccFeedback(feedbackBytes({ ...fields, count: 8 })), undefined, 'status count beyond the chunks');
  assert.equal(parseTwccFeedback(feedbackBytes({ ...fields, deltas: [0x04, 0xff, 0xfc] })), undefined, 'deltas missing');
  // With delta bytes to spare, so that only the symbol is wrong.
  const spareDeltas = new Array(16).fill(0);
  assert.equal(
    parseTwccFeedback(feedbackBytes({ ...fields, chunks: [0xf240], deltas: spareDeltas })),
    undefined,
    'reserved symbol in a vector',
  );
  assert.equal(
    parseTwccFeedback(feedbackBytes({ ...fields, chunks: [0x6004], deltas: spareDeltas })),
    undefined,
    'reserved symbol in a run',
  );

  // Never throws, whatever the bytes.
  const next = random(1);
  const built = new TwccRecorder({ senderSsrc: 1 });
  for (let seq = 0; seq < 40; seq++) if (next() < 0.8) built.onPacket(seq, T0 + seq * 30_000 * next());
  built.onPacket(40, T0);
  const valid = built.buildFeedback()[0]!;
  for (let i = 0; i < 20_000; i++) {
    const bytes = Buffer.from(i % 2 === 0 ? valid : HAND_MADE);
    for (let flips = 1 + Math.floor(next() * 3); flips > 0; flips--) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
    const length = next() < 0.2 ? Math.floor(next() * bytes.length) : bytes.length;
    assert.doesNotThrow(() => parseTwccFeedback(bytes.subarray(0, length)));
  }
});

test('twccResults reads werift-parsed feedback as parseTwccFeedback reads the bytes: losses, reordering, small and large deltas, every chunk kind', () => {
  const next = random(7);
  const recorder = new TwccRecorder({ senderSsrc: 1 });
  let arrival = T0;
  const sequences: number[] = [];
  for (let i = 0; i < 600; i++) {
    // Runs of received and lost packets, some large (and negative) deltas, wrapping numbers.
    const phase = Math.floor(i / 50) % 4;
    if (phase === 1 && next() < 0.5) continue;
    if (phase === 3 && i % 50 < 30) continue;
    sequences.push((65_300 + i) & 0xffff);
  }
  for (let i = 0; i + 1 < sequences.length; i += 7) if (next() < 0.3) [sequences[i], sequences[i + 1]] = [sequences[i + 1]!, sequences[i]!];
  for (const sequence of sequences) {
    arrival += next() < 0.1 ? 70_000 * next() : 2000 * next();
    recorder.onPacket(sequence, arrival);
  }
  const packets = recorder.buildFeedback();
  assert.ok(packets.length >= 1, 'feedback built');
  for (const packet of packets) {
    const parsed = parseBuilt(packet);
    const werift = TransportWideCC.deSerialize(packet.subarray(4), RtcpHeader.deSerialize(packet));
    assert.deepEqual(twccResults(werift), parsed.packets);
  }
  // Chunks that do not cover the status count, or a missing delta, are rejected.
  const werift = TransportWideCC.deSerialize(packets[0]!.subarray(4), RtcpHeader.deSerialize(packets[0]!));
  assert.equal(twccResults({ ...werift, packetStatusCount: werift.packetStatusCount + 200 }), undefined);
  assert.equal(twccResults({ ...werift, recvDeltas: werift.recvDeltas.slice(1) }), undefined);
});
