/**
 * Forwarding cost: one publisher (video ~1 Mbit/s at 30 fps + Opus) to N players, for each N. The
 * SFU's CPU time per forwarded packet and packets per second per core, frame loss and latency at
 * the players, side by side with a plain UDP relay of the same packet sizes and rates and with
 * Janus's VideoRoom (if the `janus` package is installed).
 */
import { fork } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { DEV_APP } from '@parley/server';
import { ParleyEngine, PublisherState } from '@parley/sdk';
import { TestClient, audioFixture, videoFixture } from '../packages/sdk/test/helpers.js';
import { pin, quantile, sleep, type CpuTime, type Row, type ServerUnderTest, type ServerVariant } from './lib.js';
import { JanusServer, janusRoom, type WireSubscriber } from './janus.js';

const FPS = 30;
const VIDEO_BITS_PER_SECOND = 1_000_000;
const FRAME_BYTES = Math.round(VIDEO_BITS_PER_SECOND / 8 / FPS);
const PACKET_BYTES = 1100; // about what the SDK's packetizer makes of a frame this size
const AUDIO_PACKETS_PER_SECOND = 50;
/**
 * Before a window opens, each server forwards this long: what joining left behind (garbage, code
 * not yet optimized) would otherwise weigh on the window, most on small rooms' few packets.
 */
const WARM_UP_MS = 5000;

/** The fixture's frames padded to `bytes` (~1 Mbit/s by default; a VP8 decoder ignores trailing bytes, the SFU never looks). */
export function paddedFrame(index: number, bytes = FRAME_BYTES): { data: Uint8Array; isKeyFrame: boolean } {
  const source = videoFixture.frames[index % videoFixture.frames.length]!;
  const data = new Uint8Array(Math.max(bytes, source.data.length));
  data.set(source.data);
  return { data, isKeyFrame: index % 30 === 0 };
}

/** Publishes padded video and the fixture audio, stamped with this process's clock; answers keyframe requests. */
export function publishLoad(engine: ParleyEngine): { frames(): number; stop(): void } {
  let frame = 0;
  engine.on('customVideoCaptureKeyFrameRequested', () => (frame = Math.ceil(frame / 30) * 30));
  const video = setInterval(() => {
    const { data, isKeyFrame } = paddedFrame(frame++);
    engine.sendCustomVideoCaptureEncodedData(
      data,
      { codec: 'vp8', isKeyFrame, width: videoFixture.width, height: videoFixture.height },
      performance.now(),
    );
  }, 1000 / FPS);
  let packet = 0;
  const audio = setInterval(
    () => engine.sendCustomAudioCaptureEncodedData(audioFixture[packet++ % audioFixture.length]!, { codec: 'opus' }, performance.now()),
    1000 / AUDIO_PACKETS_PER_SECOND,
  );
  let sent = 0;
  const count = setInterval(() => sent++, 1000 / FPS);
  return {
    frames: () => sent,
    stop: () => [video, audio, count].forEach(clearInterval),
  };
}

/** The server's counts of first transmissions to players, of retransmissions, and of the NACKs that asked for them. */
async function sentPackets(server: ServerUnderTest): Promise<{ packets: number; retransmissions: number; nacks: number }> {
  const text = await (await fetch(new URL('/metrics', server.httpUrl))).text();
  const metric = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    packets: metric('parley_media_rtp_sent_packets_total'),
    retransmissions: metric('parley_media_retransmitted_packets_total'),
    nacks: metric('parley_media_nacks_received_total'),
  };
}

interface Measured {
  cpuUsPerPacket: number;
  packetsPerCoreSecond: number;
  /** The share of the CPU time spent in the kernel (sockets). */
  kernelPercent: number;
  lossPercent: number;
  latencies: number[];
  /** The SFU's repairs in the window: packets resent, NACKs that asked. */
  retransmissions?: number;
  nacks?: number;
}

/**
 * From the server's CPU time at the start and end of the window and the counts: CPU per forwarded
 * packet, packets per CPU-second, and the share of what should have arrived (`expected`) that did not.
 */
function costs(
  before: CpuTime,
  after: CpuTime,
  forwarded: number,
  received: number[],
  expected: number,
): Omit<Measured, 'latencies' | 'retransmissions' | 'nacks'> {
  const cpuSeconds = (after.cpuMs - before.cpuMs) / 1000;
  const delivered = received.reduce((a, b) => a + b, 0);
  return {
    cpuUsPerPacket: (cpuSeconds * 1e6) / forwarded,
    packetsPerCoreSecond: forwarded / cpuSeconds,
    kernelPercent: (100 * (after.systemMs - before.systemMs)) / 1000 / cpuSeconds,
    lossPercent: Math.max(0, 100 * (1 - delivered / expected)),
  };
}

export async function measureSfu(server: ServerUnderTest, players: number, seconds: number): Promise<Measured> {
  // The bots report no quality: a hundred of them sampling werift's statistics every 3 s take CPU
  // from the server beside them (about 12 µs per forwarded packet at 100 players).
  const profile = { appID: DEV_APP.appID, appSign: DEV_APP.appSign, server: server.url, timeouts: { qualityIntervalMs: 3_600_000 } };
  const publisher = new TestClient(profile);
  await publisher.login('fwd', 'publisher');
  publisher.engine.startPublishingStream('fwd');
  await publisher.waitFor('publisherStateUpdate', (_, s) => s === PublisherState.Publishing);
  const load = publishLoad(publisher.engine);
  const received: number[] = new Array(players).fill(0);
  const latencies: number[] = [];
  let measuring = false;
  const viewers: TestClient[] = [];
  for (let i = 0; i < players; i++) {
    const viewer = new TestClient(profile);
    viewers.push(viewer);
    await viewer.login('fwd', `player${i}`);
    viewer.engine.setCustomVideoRenderHandler({
      onRemoteVideoFrameEncodedDataReceived: (_data, _params, referenceTime) => {
        if (!measuring) return;
        received[i]!++;
        latencies.push(performance.now() - referenceTime);
      },
    });
    viewer.engine.startPlayingStream('fwd');
  }
  await Promise.all(viewers.map((v) => v.waitFor('playerRecvVideoFirstFrame', () => true, 60_000)));
  await sleep(WARM_UP_MS);
  const before = await server.stats();
  const packetsBefore = await sentPackets(server);
  const framesBefore = load.frames();
  measuring = true;
  await sleep(seconds * 1000);
  measuring = false;
  const framesSent = load.frames() - framesBefore;
  const after = await server.stats();
  const packetsAfter = await sentPackets(server);
  load.stop();
  await Promise.all([...viewers, publisher].map((c) => c.destroy()));
  return {
    ...costs(before, after, packetsAfter.packets - packetsBefore.packets, received, framesSent * players),
    latencies,
    retransmissions: packetsAfter.retransmissions - packetsBefore.retransmissions,
    nacks: packetsAfter.nacks - packetsBefore.nacks,
  };
}

/** The same packet sizes and rates through the UDP relay; packets carry their send time and number. */
export async function measureRelay(players: number, seconds: number): Promise<Measured> {
  const relay = fork(new URL('./udpRelay.ts', import.meta.url).pathname, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { port } = await new Promise<{ port: number }>((resolve) => relay.once('message', (m) => resolve(m as { port: number })));
  pin(relay.pid!, 0);
  const ask = <T>(message: object): Promise<T> =>
    new Promise((resolve) => {
      relay.once('message', (m) => resolve(m as T));
      relay.send(message);
    });
  const received: number[] = new Array(players).fill(0);
  const latencies: number[] = [];
  const sockets: Socket[] = await Promise.all(
    Array.from(
      { length: players },
      (_, i) =>
        new Promise<Socket>((resolve) => {
          const socket = createSocket('udp4');
          socket.on('message', (packet) => {
            received[i]!++;
            if (packet.readUInt8(0) === 1) latencies.push(performance.now() - packet.readDoubleBE(1));
          });
          socket.bind(0, '127.0.0.1', () => resolve(socket));
        }),
    ),
  );
  relay.send({ subscribers: sockets.map((s) => ({ port: s.address().port })) });
  const source = createSocket('udp4');
  let sent = 0;
  const packetsPerFrame = Math.ceil(FRAME_BYTES / PACKET_BYTES);
  const video = setInterval(() => {
    for (let p = 0; p < packetsPerFrame; p++) {
      const packet = Buffer.alloc(p < packetsPerFrame - 1 ? PACKET_BYTES : FRAME_BYTES - PACKET_BYTES * (packetsPerFrame - 1));
      packet.writeUInt8(p === packetsPerFrame - 1 ? 1 : 0, 0); // the last packet of a frame carries its time
      packet.writeDoubleBE(performance.now(), 1);
      source.send(packet, port, '127.0.0.1');
      sent++;
    }
  }, 1000 / FPS);
  const audio = setInterval(() => {
    source.send(Buffer.alloc(audioFixture[0]!.length + 12), port, '127.0.0.1');
    sent++;
  }, 1000 / AUDIO_PACKETS_PER_SECOND);
  await sleep(WARM_UP_MS);
  received.fill(0);
  latencies.length = 0;
  const sentBefore = sent;
  const before = await ask<CpuTime & { forwarded: number }>({ stats: true });
  await sleep(seconds * 1000);
  const after = await ask<CpuTime & { forwarded: number }>({ stats: true });
  const sentDuring = sent - sentBefore;
  clearInterval(video);
  clearInterval(audio);
  await sleep(100);
  relay.send({ close: true });
  source.close();
  for (const socket of sockets) socket.close();
  return {
    ...costs(before, after, after.forwarded - before.forwarded, received, sentDuring * players),
    latencies,
  };
}

/** The same load through Janus's VideoRoom; the publisher stamps each frame's last 8 bytes with its send time. */
async function measureJanus(players: number, seconds: number): Promise<Measured> {
  const janus = await JanusServer.start();
  try {
    let index = 0;
    const room = await janusRoom(
      janus,
      () => {
        const { data } = paddedFrame(index++);
        Buffer.from(data.buffer, data.byteOffset, data.byteLength).writeDoubleBE(performance.now(), data.length - 8);
        return data;
      },
      FPS,
    );
    const subscribers: WireSubscriber[] = [];
    for (let i = 0; i < players; i++) subscribers.push(await room.subscribe());
    await sleep(WARM_UP_MS);
    const packets = (): number => subscribers.reduce((sum, s) => sum + s.packets(), 0);
    const frames = (): number => subscribers.reduce((sum, s) => sum + s.frames(), 0);
    for (const s of subscribers) s.latencies.length = 0;
    const [cpuBefore, packetsBefore, framesBefore, sentBefore] = [janus.cpu(), packets(), frames(), room.framesSent()];
    await sleep(seconds * 1000);
    const cpuAfter = janus.cpu();
    const forwarded = packets() - packetsBefore;
    const delivered = frames() - framesBefore;
    const sent = room.framesSent() - sentBefore;
    const latencies = subscribers.flatMap((s) => s.latencies);
    await room.close();
    return {
      ...costs(cpuBefore, cpuAfter, forwarded, [delivered], sent * players),
      latencies,
    };
  } finally {
    await janus.stop();
  }
}

export async function benchForwarding(
  startServer: (variant: ServerVariant) => Promise<ServerUnderTest>,
  { players, seconds }: { players: number[]; seconds: number },
): Promise<Row[]> {
  const rows: Row[] = [];
  const measureWith = async (variant: ServerVariant, n: number): Promise<Measured> => {
    const server = await startServer(variant);
    try {
      return await measureSfu(server, n, seconds);
    } finally {
      await server.stop();
    }
  };
  for (const n of players) {
    const sfu = await measureWith({}, n);
    const typeScript = await measureWith({ fastPath: 'typescript' }, n);
    const relay = await measureRelay(n, seconds);
    const janus = JanusServer.available() ? await measureJanus(n, seconds) : undefined;
    const describe = (m: Measured): string =>
      `${m.packetsPerCoreSecond.toFixed(0)} packets/s per core (${m.kernelPercent.toFixed(0)} % in the kernel), loss ${m.lossPercent.toFixed(2)} %, latency p50 ${quantile(m.latencies, 0.5).toFixed(1)} / p99 ${quantile(m.latencies, 0.99).toFixed(1)} ms`;
    rows.push({
      measure: `SFU, 1 publisher → ${n} players: CPU per forwarded packet`,
      unit: 'µs',
      n,
      p50: sfu.cpuUsPerPacket,
      note: `${describe(sfu)}, ${sfu.retransmissions} retransmissions for ${sfu.nacks} NACKs`,
    });
    rows.push({
      measure: `SFU on its TypeScript path (no native addon), same load → ${n}: CPU per forwarded packet`,
      unit: 'µs',
      n,
      p50: typeScript.cpuUsPerPacket,
      note: `${describe(typeScript)}; TypeScript/native ${(typeScript.cpuUsPerPacket / sfu.cpuUsPerPacket).toFixed(2)}×`,
    });
    rows.push({
      measure: `UDP relay, same load → ${n}: CPU per forwarded packet`,
      unit: 'µs',
      n,
      p50: relay.cpuUsPerPacket,
      note: `${describe(relay)}; SFU/relay ${(sfu.cpuUsPerPacket / relay.cpuUsPerPacket).toFixed(1)}×`,
    });
    if (janus) {
      rows.push({
        measure: `Janus VideoRoom, same load → ${n}: CPU per forwarded packet`,
        unit: 'µs',
        n,
        p50: janus.cpuUsPerPacket,
        note: `${describe(janus)}; SFU/Janus ${(sfu.cpuUsPerPacket / janus.cpuUsPerPacket).toFixed(1)}×`,
      });
    }
  }
  return rows;
}
