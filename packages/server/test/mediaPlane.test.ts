import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PictureLossIndication,
  RtcpPacketConverter,
  RTCPeerConnection,
  RtcpPayloadSpecificFeedback,
  useH264,
  useOPUS,
  useVP8,
  RTCRtpCodecParameters,
  type RtcpPacket,
} from 'werift';
import { WeriftMediaPlane, SdpError } from '../src/media/index.js';
import { asksForKeyFrame } from '../src/media/weriftPlane.js';

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

const rtx = (): RTCRtpCodecParameters => new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000 });
const rtpmaps = (sdp: string): string[] =>
  sdp
    .split('\r\n')
    .filter((l) => l.startsWith('a=rtpmap:'))
    .map((l) => l.split(' ')[1]!);

test('a publisher is answered with one codec per kind (plus RTX), and only loopback candidates on a loopback server', async (t) => {
  const plane = new WeriftMediaPlane({ listenIp: '127.0.0.1' });
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
  publisher.close();
});

test('offers the server cannot take are refused with SdpError', async (t) => {
  const plane = new WeriftMediaPlane({ listenIp: '127.0.0.1' });
  t.after(() => plane.close());
  const twoVideos = await offer([useVP8()], 2);
  t.after(() => twoVideos.close());
  await assert.rejects(plane.publish(twoVideos.sdp), SdpError);
  await assert.rejects(plane.publish('v=0\r\nnot sdp'), SdpError);
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
