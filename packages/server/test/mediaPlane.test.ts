import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  MediaStreamTrack,
  PictureLossIndication,
  ProtectionProfileAeadAes128Gcm,
  ProtectionProfileAes128CmHmacSha1_80,
  RtpHeader,
  RtpPacket,
  SrtpSession,
  RtcpPacketConverter,
  RTCPeerConnection,
  RtcpPayloadSpecificFeedback,
  RtcpSourceDescriptionPacket,
  RtcpSrPacket,
  useH264,
  useOPUS,
  useVP8,
  RTCRtpCodecParameters,
  type RtcpPacket,
} from 'werift';
import { WeriftMediaPlane, SdpError } from '../src/media/index.js';
import { asksForKeyFrame } from '../src/media/werift/keyFrames.js';
import { chooseLayer } from '../src/media/core/layerChoice.js';
import { distinct, forwardingCall, frames, rtx, sendEach, vp8Frame } from './forwardingCall.js';
import { outgoingPacket, sealGcm } from '../src/media/werift/forwardingSender.js';
import { openFastPath } from '../src/media/fastpath/fastPath.js';
import { openGcm } from '@parley/protocol/rtp';

/** An offer from a werift client that sends audio and video with the given video codecs. */
async function offer(video: RTCRtpCodecParameters[], videoSections = 1): Promise<{ sdp: string; close(): Promise<void> }> {
  const pc = new RTCPeerConnection({
    iceServers: [],
    iceUseIpv6: false,
    bundlePolicy: 'max-bundle',
    codecs: { audio: [useOPUS()], video },
  });
  pc.addTransceiver('audio', { direction: 'sendonly' });
  for (let i = 0; i < videoSections; i++) pc.addTransceiver('video', { direction: 'sendonly' });
  await pc.setLocalDescription(await pc.createOffer());
  return { sdp: pc.localDescription!.sdp, close: () => pc.close() };
}

const rtpmaps = (sdp: string): string[] =>
  sdp
    .split('\r\n')
    .filter((l) => l.startsWith('a=rtpmap:'))
    .map((l) => l.split(' ')[1]!);

test('a publisher is answered with one codec per kind (plus RTX), only loopback candidates on a loopback server, and the server as DTLS server', async (t) => {
  const plane = await WeriftMediaPlane.open({ listenIp: '127.0.0.1' });
  t.after(() => plane.close());
  const client = await offer([useVP8(), rtx(), useH264()]);
  t.after(() => client.close());
  const publisher = await plane.publish(client.sdp);
  assert.deepEqual(rtpmaps(publisher.answer), ['OPUS/48000/2', 'VP8/90000', 'rtx/90000']);
  const hosts = publisher.answer
    .split('\r\n')
    .filter((l) => l.startsWith('a=candidate:'))
    .map((l) => l.split(' ')[4]);
  assert.ok(hosts.length > 0 && hosts.every((h) => h === '127.0.0.1'), `candidates: ${hosts.join(',')}`);
  assert.deepEqual(new Set(publisher.answer.match(/^a=setup:\w+/gm)), new Set(['a=setup:passive']));
  publisher.close();
});

test('offers the server cannot take are refused with SdpError, and leave no peer connection behind', async (t) => {
  const plane = await WeriftMediaPlane.open({ listenIp: '127.0.0.1' });
  t.after(() => plane.close());
  const twoVideos = await offer([useVP8()], 2);
  t.after(() => twoVideos.close());
  await assert.rejects(plane.publish(twoVideos.sdp), SdpError);
  await assert.rejects(plane.publish('v=0\r\nnot sdp'), SdpError);
  await assert.rejects(plane.publish('v=0\r\nm=video 9 RTP/AVP 0\r\n'), SdpError);
  assert.equal(plane.stats.publishers, 0, 'each refused peer connection was closed');
});

test('PLI and FIR addressed to a sender are keyframe requests; others are not', () => {
  const pli = (mediaSsrc: number): RtcpPayloadSpecificFeedback =>
    new RtcpPayloadSpecificFeedback({ feedback: new PictureLossIndication({ senderSsrc: 1, mediaSsrc }) });
  // RFC 5104 §4.3.1: FMT 4, media SSRC 0, then (SSRC, sequence number) entries.
  const fir = (ssrc: number): RtcpPacket => {
    const bytes = Buffer.alloc(20);
    bytes.writeUInt8(0x84, 0);
    bytes.writeUInt8(206, 1);
    bytes.writeUInt16BE(4, 2);
    bytes.writeUInt32BE(1, 4);
    bytes.writeUInt32BE(0, 8);
    bytes.writeUInt32BE(ssrc, 12);
    bytes.writeUInt8(1, 16);
    return RtcpPacketConverter.deSerialize(bytes)[0]!;
  };
  assert.equal(asksForKeyFrame(pli(42), 42), true);
  assert.equal(asksForKeyFrame(pli(43), 42), false);
  assert.equal(asksForKeyFrame(fir(42), 42), true);
  assert.equal(asksForKeyFrame(fir(7), 42), false);
});

for (const path of ['native', 'typescript'] as const)
  test(`forwarded packets are sealed by the ${path} fast path byte for byte as werift seals them (AES-GCM, RTX prefixes, CSRCs, across a sequence-number wrap), open at the player, and the path opens them again`, (t) => {
    const { fastPath, note } = openFastPath(path);
    t.diagnostic(note);
    assert.equal(fastPath.kind, path, 'the native addon is built by npm install (build-essential)');
    const [serverKey, serverSalt, playerKey, playerSalt] = [randomBytes(16), randomBytes(12), randomBytes(16), randomBytes(12)];
    const session = (localMasterKey: Buffer, localMasterSalt: Buffer, remoteMasterKey: Buffer, remoteMasterSalt: Buffer): SrtpSession =>
      new SrtpSession({
        keys: { localMasterKey, localMasterSalt, remoteMasterKey, remoteMasterSalt },
        profile: ProtectionProfileAeadAes128Gcm,
      });
    const fast = session(serverKey, serverSalt, playerKey, playerSalt);
    const reference = session(serverKey, serverSalt, playerKey, playerSalt);
    const player = session(playerKey, playerSalt, serverKey, serverSalt);
    const ssrc = 0x8765_4321;
    const state = fast.localContext.getSrtpSsrcState(ssrc);
    for (const [i, sequenceNumber] of [65_533, 65_534, 65_535, 0, 1].entries()) {
      const csrc = i % 2 ? [] : [0x1111_1111, 0x2222_2222];
      // What the publisher sent: its own SSRC and payload type, an extension, the marker on one packet.
      const source = new RtpHeader({
        sequenceNumber,
        timestamp: 3000 * i,
        ssrc: 42,
        payloadType: 120,
        marker: i === 2,
        csrc,
        csrcLength: csrc.length,
      });
      const payload = randomBytes(200 + i);
      fast.localContext.updateRolloverCount(sequenceNumber, state);
      const out = Object.assign(outgoingPacket(), {
        marker: source.marker,
        payloadType: 96,
        sequenceNumber,
        timestamp: source.timestamp,
        ssrc,
      });
      // An RTX header in place of the payload's first bytes on some packets, none on others.
      const replaced = i % 3 === 1 ? 2 : 0;
      if (replaced) out.prefixLength = out.prefix.writeUInt16BE(0xabcd, 0);
      out.replaced = replaced;
      const sealer = fastPath.gcmSealer(fast.localContext.srtpSessionKey, fast.localContext.srtpSessionSalt);
      const sealed = sealGcm(sealer, state.rolloverCounter, out, csrc, payload);
      const plain = replaced ? Buffer.concat([Buffer.from([0xab, 0xcd]), payload.subarray(replaced)]) : payload;
      const own = new RtpHeader({
        sequenceNumber,
        timestamp: 3000 * i,
        ssrc,
        payloadType: 96,
        marker: i === 2,
        csrc,
        csrcLength: csrc.length,
      });
      assert.deepEqual(sealed, reference.encrypt(plain, own), `packet ${sequenceNumber}`);
      assert.deepEqual(player.decrypt(sealed), Buffer.concat([own.serialize(own.serializeSize), plain]));
      // What the path opens (a publisher's packets): the same bytes back, and nothing from a packet altered anywhere.
      const opener = fastPath.gcmOpener(fast.localContext.srtpSessionKey, fast.localContext.srtpSessionSalt);
      const opened = Buffer.alloc(sealed.length - 16);
      assert.ok(opener.open(opened, sealed, own.serializeSize, ssrc, state.rolloverCounter, sequenceNumber));
      assert.deepEqual(opened, Buffer.concat([own.serialize(own.serializeSize), plain]));
      for (const at of [1, own.serializeSize + 3, sealed.length - 1]) {
        const altered = Buffer.from(sealed);
        altered[at]! ^= 0x01;
        assert.equal(
          opener.open(Buffer.alloc(sealed.length - 16), altered, own.serializeSize, ssrc, state.rolloverCounter, sequenceNumber),
          false,
        );
      }
    }
    assert.equal(state.rolloverCounter, 1);
  });

for (const fastPath of ['native', 'typescript'] as const)
  test(`the SFU forwards payloads intact under AES-GCM on the ${fastPath} fast path; a padding-only packet takes no sequence number, so none is missing`, async (t) => {
    const call = await forwardingCall(t, undefined, { fastPath });
    assert.match(call.plane.fastPathNote, fastPath === 'native' ? /^native/ : /^TypeScript/);
    const [key, delta, last] = frames(3);
    await sendEach(call, [key!, delta!, Buffer.alloc(0), last!]);
    assert.deepEqual(call.playerProfiles(), [ProtectionProfileAeadAes128Gcm]);
    assert.deepEqual(distinct(call.received), [
      [1000, key!.toString('hex')],
      [1001, delta!.toString('hex')],
      [1002, last!.toString('hex')],
    ]);
  });

for (const path of ['native', 'typescript'] as const)
  test(`packets that do not open (forged around a sequence-number wrap) leave the rollover counter as it was, on the ${path} path`, () => {
    const { fastPath } = openFastPath(path);
    const [key, salt, otherKey, otherSalt] = [randomBytes(16), randomBytes(12), randomBytes(16), randomBytes(12)];
    const profile = ProtectionProfileAeadAes128Gcm;
    const sender = new SrtpSession({
      keys: { localMasterKey: key, localMasterSalt: salt, remoteMasterKey: otherKey, remoteMasterSalt: otherSalt },
      profile,
    });
    const receiver = new SrtpSession({
      keys: { localMasterKey: otherKey, localMasterSalt: otherSalt, remoteMasterKey: key, remoteMasterSalt: salt },
      profile,
    });
    const open = openGcm(receiver.remoteContext, fastPath.gcmOpener);
    const header = (sequenceNumber: number): RtpHeader =>
      new RtpHeader({ sequenceNumber, timestamp: sequenceNumber, ssrc: 42, payloadType: 96 });
    const real = (sequenceNumber: number): Buffer => sender.encrypt(randomBytes(100), header(sequenceNumber));
    assert.equal(open(real(65_534)).readUInt16BE(2), 65_534);
    // Had they counted, these would leave the counter at 2, and the real 65535 would not open.
    for (const forged of [3, 30_000, 65_500, 3]) {
      assert.throws(() => open(Buffer.concat([header(forged).serialize(12), randomBytes(60)])));
    }
    for (const sequenceNumber of [65_535, 0, 1]) assert.equal(open(real(sequenceNumber)).readUInt16BE(2), sequenceNumber);
    assert.equal(receiver.remoteContext.srtpSSRCStates[42]!.rolloverCounter, 1);
  });

test('a player gets sender reports about every second for what it was sent: packets and payload bytes as forwarded, with the CNAME', async (t) => {
  const call = await forwardingCall(t);
  const reports: Array<{ at: number; ssrc: number; packets: number; octets: number }> = [];
  let named = false;
  call.player.getTransceivers()[0]!.receiver.dtlsTransport.onRtcp.subscribe((rtcp) => {
    if (rtcp instanceof RtcpSrPacket) {
      const { packetCount, octetCount } = rtcp.senderInfo;
      reports.push({ at: performance.now(), ssrc: rtcp.ssrc, packets: packetCount, octets: octetCount });
    }
    if (rtcp instanceof RtcpSourceDescriptionPacket) named ||= rtcp.chunks.some((c) => c.items.some((i) => i.type === 1 && i.text));
  });
  const payloads = frames(5);
  await sendEach(call, payloads);
  const sentAt = performance.now();
  const forwarded = distinct(call.received);
  const octets = forwarded.reduce((sum, [, hex]) => sum + hex.length / 2, 0);
  for (const deadline = Date.now() + 5000; reports.filter((r) => r.at > sentAt).length < 2;) {
    if (Date.now() > deadline) throw new Error(`sender reports: ${JSON.stringify(reports)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const [first, second] = reports.filter((r) => r.at > sentAt);
  assert.deepEqual([first!.packets, first!.octets], [forwarded.length, octets]);
  // Only video was sent: the audio sender has nothing to report.
  assert.equal(new Set(reports.map((r) => r.ssrc)).size, 1);
  const intervalMs = second!.at - first!.at;
  assert.ok(intervalMs > 700 && intervalMs < 1500, `${intervalMs} ms between reports`);
  assert.ok(named, 'the sender’s CNAME');
});

test('a player whose DTLS offers only AES-CM SRTP gets packets sealed with it, payloads intact', async (t) => {
  const call = await forwardingCall(t, [ProtectionProfileAes128CmHmacSha1_80]);
  const payloads = frames(10);
  await sendEach(call, payloads);
  assert.deepEqual(call.playerProfiles(), [ProtectionProfileAes128CmHmacSha1_80]);
  assert.deepEqual(
    distinct(call.received),
    payloads.map((payload, n) => [1000 + n, payload.toString('hex')]),
  );
});

test('a player gets the layer its video type asks for, in automatic mode the smallest that fills its view unscaled', () => {
  const layers = [
    { width: 320, height: 180 },
    { width: 640, height: 360 },
    { width: 1280, height: 720 },
  ];
  const auto = (viewWidth: number, viewHeight: number): number => chooseLayer({ type: 0, viewWidth, viewHeight }, layers);
  assert.equal(chooseLayer({ type: 1, viewWidth: 1920, viewHeight: 1080 }, layers), 0, 'Small');
  assert.equal(chooseLayer({ type: 2, viewWidth: 160, viewHeight: 90 }, layers), 2, 'Big');
  assert.equal(auto(0, 0), 2, 'no view: the largest');
  assert.equal(auto(160, 90), 0, 'a 160-px tile gets the smallest');
  assert.equal(auto(320, 240), 0, '320×180 fills the width of a 320×240 view');
  assert.equal(auto(400, 240), 1);
  assert.equal(auto(700, 360), 1, 'a wide view: filled by height');
  assert.equal(auto(960, 540), 2);
  assert.equal(auto(1920, 1080), 2, 'a view larger than every layer: the largest');
  // Layers not seen yet count as the largest halved per step down; with nothing seen, the largest.
  const unseen = [
    { width: 0, height: 0 },
    { width: 0, height: 0 },
    { width: 1280, height: 720 },
  ];
  assert.equal(chooseLayer({ type: 0, viewWidth: 300, viewHeight: 170 }, unseen), 0);
  assert.equal(chooseLayer({ type: 0, viewWidth: 600, viewHeight: 400 }, unseen), 1);
  assert.equal(
    chooseLayer(
      { type: 0, viewWidth: 300, viewHeight: 170 },
      unseen.map(() => ({ width: 0, height: 0 })),
    ),
    2,
  );
});

test('packets that fail SRTP or SRTCP authentication (sealed with other keys: meant for another peer, or forged) are dropped and counted', async (t) => {
  const call = await forwardingCall(t);
  await sendEach(call, frames(1));
  const connection = call.player.iceTransports[0]!.connection;
  // An RTCP receiver report and an RTP packet, each with a tag no key of this peer's made.
  const forgedRtcp = Buffer.concat([Buffer.from([0x81, 201, 0, 7]), randomBytes(28), Buffer.from([0x80, 0, 0, 1]), randomBytes(10)]);
  const forgedRtp = Buffer.concat([Buffer.from([0x80, 96, 0, 1]), randomBytes(60)]);
  await connection.send(forgedRtcp);
  await connection.send(forgedRtp);
  const { drops } = call.plane.stats;
  for (const deadline = Date.now() + 2000; drops['srtp-unauthenticated'] + drops['srtcp-unauthenticated'] < 2 && Date.now() < deadline;) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual([drops['srtp-unauthenticated'], drops['srtcp-unauthenticated']], [1, 1]);
});

test(
  'a client that offers only ICE-TCP candidates connects through the server’s TCP port, and its media arrives',
  { timeout: 20_000 },
  async (t) => {
    const plane = await WeriftMediaPlane.open({ listenIp: '127.0.0.1', tcpPort: 0 });
    t.after(() => plane.close());
    const client = new RTCPeerConnection({
      iceServers: [],
      iceUseIpv6: false,
      iceUseTcp: true,
      bundlePolicy: 'max-bundle',
      codecs: { audio: [useOPUS()], video: [useVP8()] },
      iceAdditionalHostAddresses: ['127.0.0.1'],
    });
    t.after(() => client.close());
    const track = new MediaStreamTrack({ kind: 'video' });
    client.addTransceiver('audio', { direction: 'sendonly' });
    client.addTransceiver(track, { direction: 'sendonly' });
    await client.setLocalDescription(await client.createOffer());
    // As a client whose UDP is blocked: no UDP candidates on either side.
    const tcpOnly = (sdp: string): string =>
      sdp
        .split('\r\n')
        .filter((line) => !line.startsWith('a=candidate') || line.includes(' tcp '))
        .join('\r\n');
    const publisher = await plane.publish(tcpOnly(client.localDescription!.sdp));
    t.after(() => publisher.close());
    await client.setRemoteDescription({ type: 'answer', sdp: tcpOnly(publisher.answer) });
    await client.connectionStateChange.watch((state) => state === 'connected');
    const header = (n: number): RtpHeader => new RtpHeader({ payloadType: 96, sequenceNumber: n, timestamp: n * 3000, marker: true });
    for (let n = 0; n < 50 && plane.stats.packetsReceived === 0; n++) {
      track.writeRtp(new RtpPacket(header(n), vp8Frame(n, n === 0, randomBytes(50))));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(plane.stats.packetsReceived > 0, 'the server received the media');
    assert.equal(plane.stats.unroutableTcpConnections, 0);
  },
);
