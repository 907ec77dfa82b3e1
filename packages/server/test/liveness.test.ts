/**
 * The server's judgement of a publisher's media (see the protocol's LivenessJudge): RTP that
 * stops while RTCP goes on is a stall; a publisher that pauses (its sender reports stop counting)
 * or has muted all it sends is not stalled; nothing at all is a silent stall.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { RtpHeader, RtpPacket, type RTCPeerConnection } from 'werift';
import { forwardingCall, sendEach, frames, vp8Frame } from './forwardingCall.js';

const STALL_MS = 2000;
/** werift's sender reports come every 0.5-1.5 s: a few stall times show what the judge makes of them. */
const WATCH_MS = 3 * STALL_MS;

const isRtcp = (packet: Buffer): boolean => packet[0]! >> 6 === 2 && packet[1]! >= 192 && packet[1]! <= 223;
const isRtp = (packet: Buffer): boolean => packet.length > 1 && packet[0]! >> 6 === 2 && !isRtcp(packet);

/** From now on, what the client's ICE connection sends and `drop` picks is lost on the way. */
function loseSent(pc: RTCPeerConnection, drop: (datagram: Buffer) => boolean): void {
  const ice = pc.iceTransports[0]!.connection as unknown as { send(data: Buffer): Promise<void> };
  const send = ice.send.bind(ice);
  ice.send = async (data) => (drop(data) ? undefined : send(data));
}

/** A call whose publisher sends a frame every 33 ms while `sending()`; returns when it flows, and what the server's publisher endpoint reports. */
async function call(t: Parameters<typeof forwardingCall>[0], sending: () => boolean) {
  const c = await forwardingCall(t, undefined, { mediaStallMs: STALL_MS });
  await sendEach(c, frames(1));
  let n = 1;
  const timer = setInterval(() => {
    if (!sending()) return;
    c.send(
      new RtpPacket(
        new RtpHeader({ payloadType: 96, sequenceNumber: 1000 + n, timestamp: 3000 * n, marker: true }),
        vp8Frame(100 + n, false, randomBytes(100)),
      ),
    );
    n++;
  }, 33);
  t.after(() => clearInterval(timer));
  let stalls = 0;
  c.endpoint.observer.on('stalled', () => stalls++);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return { ...c, stalls: () => stalls };
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('a publisher whose RTP is lost while its RTCP (sender reports that go on counting) arrives is stalled: rtcp-only', async (t) => {
  const c = await call(t, () => true);
  loseSent(c.publisher, isRtp);
  await wait(WATCH_MS);
  assert.equal(c.stalls(), 1);
  assert.deepEqual(c.plane.stats.mediaStalls, { silent: 0, 'rtcp-only': 1 });
});

test('a publisher that stops sending (its sender reports stop counting) is not stalled', async (t) => {
  let sending = true;
  const c = await call(t, () => sending);
  sending = false;
  await wait(WATCH_MS);
  assert.equal(c.stalls(), 0);
  assert.deepEqual(c.plane.stats.mediaStalls, { silent: 0, 'rtcp-only': 0 });
});

test('a publisher from which nothing arrives is stalled: silent; one that muted all it sends is not', async (t) => {
  const dead = await call(t, () => true);
  loseSent(dead.publisher, () => true);
  const muted = await call(t, () => true);
  muted.endpoint.setMediaDue(false);
  loseSent(muted.publisher, () => true);
  await wait(WATCH_MS);
  assert.deepEqual(dead.plane.stats.mediaStalls, { silent: 1, 'rtcp-only': 0 });
  assert.equal(muted.stalls(), 0);
  assert.deepEqual(muted.plane.stats.mediaStalls, { silent: 0, 'rtcp-only': 0 });
});
