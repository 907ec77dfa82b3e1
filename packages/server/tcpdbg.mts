import { RTCPeerConnection, useOPUS, useVP8, MediaStreamTrack, RtpPacket, RtpHeader } from 'werift';
import { WeriftMediaPlane } from './src/media/index.js';
const plane = await WeriftMediaPlane.open({ listenIp: '127.0.0.1', tcpPort: 0 });
const pc = new RTCPeerConnection({
  iceServers: [],
  iceUseIpv6: false,
  iceUseTcp: true,
  bundlePolicy: 'max-bundle',
  codecs: { audio: [useOPUS()], video: [useVP8()] },
  iceAdditionalHostAddresses: ['127.0.0.1'],
});
pc.addTransceiver('audio', { direction: 'sendonly' });
const track = new MediaStreamTrack({ kind: 'video' });
pc.addTransceiver(track, { direction: 'sendonly' });
await pc.setLocalDescription(await pc.createOffer());
const tcpOnly = (sdp: string) =>
  sdp
    .split('\r\n')
    .filter((l) => !l.startsWith('a=candidate') || l.includes(' tcp '))
    .join('\r\n');
const pub = await plane.publish(tcpOnly(pc.localDescription!.sdp));
await pc.setRemoteDescription({ type: 'answer', sdp: tcpOnly(pub.answer) });
pub.observer.on('connected', () => console.log('SERVER CONNECTED'));
pc.connectionStateChange.subscribe((s) => console.log('client', s));
pc.iceConnectionStateChange.subscribe((s) => console.log('client ice', s));
let seq = 0;
const timer = setInterval(
  () =>
    track.writeRtp(
      new RtpPacket(
        new RtpHeader({ payloadType: 96, sequenceNumber: seq++, timestamp: seq * 3000, marker: true }),
        Buffer.from([0x90, 0x80, 0x80, 1, 0x10, 2, 0, 0x9d, 1, 0x2a, 0x40, 1, 0xf0, 0]),
      ),
    ),
  50,
);
setTimeout(async () => {
  clearInterval(timer);
  console.log('stats', JSON.stringify(plane.stats));
  await pc.close();
  await plane.close();
  process.exit(0);
}, 6000);
