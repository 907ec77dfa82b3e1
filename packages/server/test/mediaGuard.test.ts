/**
 * What a peer connection of the server takes from the network (see the protocol's mediaGuard):
 * datagrams forged from a connected client's own address, replays of its real packets, and its
 * real close_notify, sent from werift clients' own ICE connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RTCPeerConnection } from 'werift';
import { createSocket } from 'node:dgram';
import { classes, Message, methods } from 'werift';
import { FORGERY_KINDS, forgedDatagrams } from '@parley/testkit';
import type { DtlsRecord } from '@parley/protocol/rtp';
import { distinct, forwardingCall, frames, sendEach } from './forwardingCall.js';

/** werift's ICE connection of a client, as far as sending from its pair in use and its credentials go. */
interface ClientIce {
  localUsername: string;
  remoteUsername: string;
  send(data: Buffer): Promise<void>;
}
const iceOf = (pc: RTCPeerConnection): ClientIce => pc.iceTransports[0]!.connection as unknown as ClientIce;

/** What a client sends from now on, through its ICE connection. */
function recordSent(ice: ClientIce): Buffer[] {
  const sent: Buffer[] = [];
  const send = ice.send.bind(ice);
  ice.send = (data) => {
    sent.push(Buffer.from(data));
    return send(data);
  };
  return sent;
}

const settle = (ms = 200): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const isRtcp = (packet: Buffer): boolean => packet[0]! >> 6 === 2 && packet[1]! >= 192 && packet[1]! <= 223;
const isRtp = (packet: Buffer): boolean => packet[0]! >> 6 === 2 && !isRtcp(packet);

test("forged datagrams of every kind from a publisher's and a player's own address change nothing, and are counted by why they were dropped", async (t) => {
  const call = await forwardingCall(t);
  await sendEach(call, frames(1));
  const clients = [iceOf(call.publisher), iceOf(call.player)];
  const forged = forgedDatagrams({ usernames: clients.map((ice) => `${ice.remoteUsername}:${ice.localUsername}`) });
  const sentKinds = new Set<string>();
  for (let i = 0; i < 4 * FORGERY_KINDS.length * 2; i++) {
    const { kind, datagram } = forged.next().value!;
    sentKinds.add(kind);
    await clients[i % 2]!.send(datagram);
    if (i % 50 === 0) await settle(5);
  }
  assert.equal(sentKinds.size, FORGERY_KINDS.length);
  await settle();
  const payloads = frames(20);
  await sendEach(call, payloads, 1);
  assert.deepEqual(
    distinct(call.received).slice(1),
    payloads.map((payload, n) => [1001 + n, payload.toString('hex')]),
    'every frame after the flood, intact and in order',
  );
  assert.equal(call.plane.stats.publishers, 1);
  assert.equal(call.plane.stats.subscribers, 1);
  const { drops } = call.plane.stats;
  t.diagnostic(`dropped: ${JSON.stringify(drops)}; unroutable ${call.plane.stats.unroutableDatagrams}`);
  for (const reason of [
    'unknown-protocol',
    'stun-unauthenticated',
    'dtls-malformed',
    'dtls-unknown-type',
    'dtls-wrong-epoch',
    'dtls-unauthenticated',
    'srtp-unauthenticated',
    'srtcp-unauthenticated',
  ] as const) {
    assert.ok(drops[reason] > 0, `${reason} counted`);
  }
});

test("a publisher's and a player's real packets sent again are dropped as replays: players get each packet once", async (t) => {
  const call = await forwardingCall(t);
  await sendEach(call, frames(1));
  const [publisher, player] = [iceOf(call.publisher), iceOf(call.player)];
  const fromPublisher = recordSent(publisher);
  const fromPlayer = recordSent(player);
  const payloads = frames(5);
  await sendEach(call, payloads, 1);
  await settle(1500); // the player's receiver reports
  const rtp = fromPublisher.filter(isRtp);
  const rtcp = fromPlayer.filter(isRtcp);
  assert.ok(rtp.length >= 5 && rtcp.length > 0, `recorded ${rtp.length} RTP and ${rtcp.length} RTCP packets`);
  const receivedBefore = call.received.length;
  for (const packet of [...rtp, ...rtp]) await publisher.send(packet);
  for (const packet of rtcp) await player.send(packet);
  await settle();
  assert.equal(call.received.length, receivedBefore, 'no packet reached the player twice');
  assert.equal(call.plane.stats.drops['srtp-replay'], 2 * rtp.length);
  assert.equal(call.plane.stats.drops['srtcp-replay'], rtcp.length);
  await sendEach(call, frames(3), 6);
  assert.equal(distinct(call.received).length, 9, 'the stream goes on');
});

test('a signed check sent again from another address is dropped as a replay', async (t) => {
  const call = await forwardingCall(t);
  await sendEach(call, frames(1));
  const player = call.player.iceTransports[0]!.connection as unknown as ClientIce & {
    remotePassword: string;
    nominated: { remoteCandidate: { host: string; port: number } };
  };
  // A check as the player signs them, sent from two other addresses.
  const check = new Message(methods.BINDING, classes.REQUEST)
    .setAttribute('USERNAME', `${player.remoteUsername}:${player.localUsername}`)
    .addMessageIntegrity(Buffer.from(player.remotePassword)).bytes;
  const { host, port } = player.nominated.remoteCandidate;
  for (let i = 0; i < 2; i++) {
    const elsewhere = createSocket('udp4');
    t.after(() => elsewhere.close());
    await new Promise<void>((resolve) => elsewhere.bind(0, '127.0.0.1', resolve));
    elsewhere.send(check, port, host);
    await settle(100);
  }
  assert.equal(call.plane.stats.drops['stun-unauthenticated'], 0);
  assert.equal(call.plane.stats.drops['stun-replay'], 1);
});

test("a player's Finished sent again (its last flight resent byte for byte) is answered, at most once per 500 ms", async (t) => {
  let handshake: Buffer[] = [];
  const call = await forwardingCall(t, undefined, {}, (player) => (handshake = recordSent(iceOf(player))));
  await sendEach(call, frames(1));
  // The datagram that carried the player's Finished: an epoch-1 handshake record.
  const finished = handshake.find((d) => d[0]! >= 20 && d[0]! < 64 && containsEpoch1Handshake(d));
  assert.ok(finished, 'the Finished was sent');
  const answers = countDtlsFrom(call.player);
  const again = async (waitMs: number): Promise<number> => {
    await iceOf(call.player).send(finished);
    await settle(waitMs);
    return answers();
  };
  const first = await again(600);
  const second = await again(50);
  const third = await again(300);
  assert.ok(first > 0, 'answered');
  assert.ok(second > first, 'answered again 600 ms later');
  assert.equal(third, second, 'not answered 50 ms later');
  assert.equal(call.plane.stats.drops['dtls-replay'], 1);
  await sendEach(call, frames(2), 1);
  assert.equal(call.plane.stats.subscribers, 1);
});

/** Whether a datagram's DTLS records include a handshake record of epoch 1. */
function containsEpoch1Handshake(datagram: Buffer): boolean {
  for (let at = 0; at + 13 <= datagram.length; at += 13 + datagram.readUInt16BE(at + 11)) {
    if (datagram[at] === 22 && datagram.readUInt16BE(at + 3) === 1) return true;
  }
  return false;
}

/** Counts the DTLS datagrams the client receives from now on. */
function countDtlsFrom(pc: RTCPeerConnection): () => number {
  let count = 0;
  const ice = pc.iceTransports[0]!.connection as unknown as { onData: { subscribe(listener: (data: Buffer) => void): unknown } };
  ice.onData.subscribe((data) => {
    if (data[0]! >= 20 && data[0]! < 64) count++;
  });
  return () => count;
}

/** werift's DTLS client of a peer connection: its record sequence and cipher. */
interface DtlsClient {
  dtls: { recordSequenceNumber: number };
  cipher: { encryptPacket(record: DtlsRecord): { fragment: Buffer } };
}

test("a player's real close_notify (encrypted, epoch 1) still closes its transport; its publisher is untouched", async (t) => {
  const call = await forwardingCall(t);
  await sendEach(call, frames(1));
  const client = (call.player.dtlsTransports[0] as unknown as { dtls: DtlsClient }).dtls;
  const sequenceNumber = ++client.dtls.recordSequenceNumber;
  const { fragment } = client.cipher.encryptPacket({
    recordLayerHeader: { contentType: 21, protocolVersion: { major: 0xfe, minor: 0xfd }, epoch: 1, sequenceNumber, contentLen: 2 },
    fragment: Buffer.from([1, 0]),
  });
  const header = Buffer.alloc(13);
  header.writeUInt8(21, 0);
  header.writeUInt16BE(0xfefd, 1);
  header.writeUInt16BE(1, 3);
  header.writeUIntBE(sequenceNumber, 5, 6);
  header.writeUInt16BE(fragment.length, 11);
  await iceOf(call.player).send(Buffer.concat([header, fragment]));
  for (const deadline = Date.now() + 2000; call.plane.stats.subscribers > 0 && Date.now() < deadline;) await settle(20);
  assert.equal(call.plane.stats.subscribers, 0, "the player's transport closed");
  assert.equal(call.plane.stats.publishers, 1);
});
