/**
 * A media plane with a werift publisher and player in this process: what the server's media
 * tests drive, sending and forging from the clients' own ICE connections.
 */
import type { TestContext } from 'node:test';
import { randomBytes } from 'node:crypto';
import { MediaStreamTrack, RtpHeader, RtpPacket, RTCPeerConnection, RTCRtpCodecParameters, useOPUS, useVP8 } from 'werift';
import {
  WeriftMediaPlane,
  WorkerMediaPlane,
  type MediaPlane,
  type MediaPublisher,
  type MediaSubscriber,
  type WeriftPlaneOptions,
  type WorkerPlaneOptions,
} from '../src/media/index.js';

export const rtx = (): RTCRtpCodecParameters => new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000 });

/**
 * A werift publisher and player through `plane`: `send` writes a video packet at the publisher;
 * `received` is what the player got, as (sequence number, payload) pairs. `playerProfiles` limits
 * the SRTP profiles the player's DTLS client offers.
 */
export async function forwardingCall(
  t: TestContext,
  playerProfiles?: number[],
  /** With `workers`, the plane is a WorkerMediaPlane of that many media workers. */
  planeOptions: Partial<WeriftPlaneOptions> & Partial<Pick<WorkerPlaneOptions, 'workers' | 'restartDelayMs' | 'moveTimeoutMs'>> = {},
  /** Called with the player's peer connection before it negotiates (its ICE connection exists then). */
  beforePlayerConnects: (player: RTCPeerConnection) => void = () => undefined,
): Promise<{
  send(packet: RtpPacket): void;
  received: Array<[number, Buffer]>;
  playerProfiles(): number[];
  plane: MediaPlane & { readonly fastPathNote: string };
  player: RTCPeerConnection;
  publisher: RTCPeerConnection;
  /** The server's endpoint of the publisher. */
  endpoint: MediaPublisher;
  /** The server's endpoint of the player. */
  subscriber: MediaSubscriber;
}> {
  const { workers, restartDelayMs, moveTimeoutMs, ...options } = planeOptions;
  const plane = workers
    ? await WorkerMediaPlane.open({ listenIp: '127.0.0.1', ...options, workers, restartDelayMs, moveTimeoutMs })
    : await WeriftMediaPlane.open({ listenIp: '127.0.0.1', ...options });
  t.after(() => plane.close());
  const config = { iceServers: [], iceUseIpv6: false, bundlePolicy: 'max-bundle' as const, iceAdditionalHostAddresses: ['127.0.0.1'] };
  type DtlsInternals = { srtpProfiles: number[]; srtp: { config: { profile: number } } };
  const dtls = (pc: RTCPeerConnection): DtlsInternals[] => (pc as unknown as { dtlsTransports: DtlsInternals[] }).dtlsTransports;
  const negotiate = async (pc: RTCPeerConnection, answerFor: (sdp: string) => Promise<{ answer: string }>): Promise<void> => {
    await pc.setLocalDescription(await pc.createOffer());
    const { answer } = await answerFor(pc.localDescription!.sdp);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  };
  const connected = (pc: RTCPeerConnection): Promise<unknown> =>
    pc.connectionState === 'connected' ? Promise.resolve() : pc.connectionStateChange.watch((s) => s === 'connected');

  const sender = new RTCPeerConnection({ ...config, codecs: { audio: [useOPUS()], video: [useVP8()] } });
  t.after(() => sender.close());
  const track = new MediaStreamTrack({ kind: 'video' });
  sender.addTransceiver('audio', { direction: 'sendonly' });
  sender.addTransceiver(track, { direction: 'sendonly' });
  let publisher: MediaPublisher | undefined;
  let subscriber: MediaSubscriber | undefined;
  await negotiate(sender, async (sdp) => (publisher = await plane.publish(sdp)));

  const player = new RTCPeerConnection({ ...config, codecs: { audio: [useOPUS()], video: [useVP8(), rtx()] } });
  t.after(() => player.close());
  player.addTransceiver('audio', { direction: 'recvonly' });
  player.addTransceiver('video', { direction: 'recvonly' });
  beforePlayerConnects(player);
  const received: Array<[number, Buffer]> = [];
  player.onTrack.subscribe(
    (remote) => remote.kind === 'video' && remote.onReceiveRtp.subscribe((rtp) => received.push([rtp.header.sequenceNumber, rtp.payload])),
  );
  await negotiate(player, async (sdp) => {
    // The player is the DTLS client (the server answers passive): what it offers is what can be used.
    if (playerProfiles) for (const transport of dtls(player)) transport.srtpProfiles = playerProfiles;
    return (subscriber = await publisher!.subscribe(sdp));
  });
  await Promise.all([sender, player].map(connected));
  return {
    send: (packet) => track.writeRtp(packet),
    received,
    playerProfiles: () => dtls(player).map((d) => d.srtp.config.profile),
    plane,
    player,
    publisher: sender,
    endpoint: publisher!,
    subscriber: subscriber!,
  };
}

/** A one-packet VP8 frame (RFC 7741 descriptor with a 15-bit PictureID) with `body` after the frame header. */
export function vp8Frame(pictureId: number, keyFrame: boolean, body: Buffer): Buffer {
  const descriptor = Buffer.from([0x90, 0x80, 0x80 | (pictureId >> 8), pictureId & 0xff]);
  // Frame tag (P bit 0 for a keyframe), then a keyframe's start code and 320×240.
  const header = keyFrame ? Buffer.from([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]) : Buffer.from([0x11, 0x02, 0x00]);
  return Buffer.concat([descriptor, header, body]);
}

/**
 * Sends each payload (a VP8 frame, or empty as a padding-only probe becomes) until the player
 * has it: the first may go out before its DTLS is up. Empty ones are sent once. The first is
 * packet number `first` of the stream (sequence number 1000 + first).
 */
export async function sendEach(call: Awaited<ReturnType<typeof forwardingCall>>, payloads: Buffer[], first = 0): Promise<void> {
  for (const [i, payload] of payloads.entries()) {
    const n = first + i;
    const header = new RtpHeader({ payloadType: 96, sequenceNumber: 1000 + n, timestamp: 3000 * n, marker: payload.length > 0 });
    for (let i = 0; i < 50 && !call.received.some(([, got]) => got.equals(payload)); i++) {
      call.send(new RtpPacket(header, payload));
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (payload.length === 0) break;
    }
  }
}

export const frames = (count: number): Buffer[] =>
  Array.from({ length: count }, (_, i) => vp8Frame(100 + i, i === 0, randomBytes(100 + i)));

export const distinct = (received: Array<[number, Buffer]>): Array<[number, string]> =>
  [...new Map(received.map(([seq, payload]) => [seq, payload.toString('hex')]))].sort((a, b) => a[0] - b[0]);
