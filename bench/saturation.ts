/**
 * Forwarding at saturation: the most packets a second the server forwards with at most 0.5 % lost,
 * on one core (media on the main thread) and on all of them (a media worker per core). Rooms of
 * one WHIP publisher and N WHEP players (werift peers with no transport-cc, so the server sends at
 * once, unpaced); the publishers' rate rises by a quarter a step until more than 0.5 % of what
 * should reach the players does not.
 *
 * What arrives is counted by the kernel, not read. The players' peers are on 127.0.0.2, where an
 * iptables rule in INPUT counts and drops the server's RTP (datagrams of 300 bytes and more; STUN
 * and RTCP pass; the rule comes once the players are connected, as it would drop their DTLS
 * handshakes). The publishers' are on 127.0.0.3, where a rule counts what the server was given.
 * Meanwhile the loopback device takes no GSO (`gso_max_segs 1`): the kernel cuts the server's UDP
 * GSO messages into their datagrams before delivering them, as a NIC does before the wire, so the
 * rule counts each datagram, not each message.
 * Players that decrypted their packets would cost the load generator more than the server, which
 * must have the machine's cores to itself to show what it does with them. Needs root and iptables.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RTCPeerConnection, RTCRtpCodecParameters, type PeerConfig } from 'werift';
import { DEV_APP, generateToken04 } from '@parley/server';
import { MAX_VP8_PAYLOAD } from '../packages/sdk/src/node/vp8.js';
import { sendVp8Frame } from './vp8Sender.js';
import { paddedFrame } from './forwarding.js';
import { processCpu, sleep, type CpuTime, type Row, type ServerUnderTest, type ServerVariant } from './lib.js';

const PLAYERS_HOST = '127.0.0.2';
const PUBLISHERS_HOST = '127.0.0.3';
const FPS = 30;
const MAX_LOSS_PERCENT = 0.5;
const RATE_STEP = 1.25;
const WARM_UP_MS = 5000;
/** After a rate with loss, the publishers pause this long: the server's queues empty. */
const DRAIN_MS = 3000;
/** After a change of rate, before it is measured. */
const SETTLE_MS = 1000;

export interface SaturationSizes {
  rooms: number;
  players: number;
  /** How long each rate is measured, after a second to settle. */
  stepSeconds: number;
  /** Packets per second each publisher starts at, and the most it goes to. */
  firstRate: number;
  lastRate: number;
}

/** Two INPUT rules, tagged with a comment of their own: what the server was given, and what it sent the players. */
class KernelCounters {
  private readonly tag = `parley-bench-saturation-${process.pid}`;
  private readonly rules = [
    ['-s', PUBLISHERS_HOST, '-p', 'udp', '-m', 'length', '--length', '300:65535', '-m', 'comment', '--comment', this.tag, '-j', 'ACCEPT'],
    ['-d', PLAYERS_HOST, '-p', 'udp', '-m', 'length', '--length', '300:65535', '-m', 'comment', '--comment', this.tag, '-j', 'DROP'],
  ];

  static available(): boolean {
    try {
      execFileSync('iptables', ['-S', 'INPUT'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  /** The loopback device's `gso_max_segs` before the run. */
  private loopbackGsoSegments: string | undefined;

  open(): void {
    this.loopbackGsoSegments = /gso_max_segs (\d+)/.exec(execFileSync('ip', ['-d', 'link', 'show', 'lo'], { encoding: 'utf8' }))?.[1];
    execFileSync('ip', ['link', 'set', 'dev', 'lo', 'gso_max_segs', '1']);
    for (const rule of this.rules) execFileSync('iptables', ['-I', 'INPUT', '1', ...rule]);
    // A bench stopped meanwhile (Ctrl-C, a timeout) leaves no rule behind.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, this.onSignal);
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.close();
    process.kill(process.pid, signal);
  };

  read(): { given: number; sent: number } {
    const lines = execFileSync('iptables', ['-L', 'INPUT', '-v', '-x', '-n'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(this.tag));
    const packets = (target: string): number =>
      Number(
        lines
          .find((line) => line.trim().split(/\s+/)[2] === target)
          ?.trim()
          .split(/\s+/)[0],
      );
    return { given: packets('ACCEPT'), sent: packets('DROP') };
  }

  close(): void {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.off(signal, this.onSignal);
    for (const rule of this.rules) {
      try {
        execFileSync('iptables', ['-D', 'INPUT', ...rule], { stdio: 'ignore' });
      } catch {
        // not there: never added
      }
    }
    if (this.loopbackGsoSegments) execFileSync('ip', ['link', 'set', 'dev', 'lo', 'gso_max_segs', this.loopbackGsoSegments]);
    this.loopbackGsoSegments = undefined;
  }
}

/** The machine's UDP datagrams dropped so far for full socket buffers, receiving and sending (/proc/net/snmp). */
function udpErrors(): { receive: number; send: number } {
  const [names, values] = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('Udp:'))
    .map((line) => line.split(/\s+/).slice(1));
  const value = (name: string): number => Number(values![names!.indexOf(name)]);
  return { receive: value('RcvbufErrors'), send: value('SndbufErrors') };
}

const peerOn = (host: string): Partial<PeerConfig> => ({
  codecs: { audio: [], video: [new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: [{ type: 'nack' }] })] },
  iceServers: [],
  iceUseIpv6: false,
  bundlePolicy: 'max-bundle',
  iceInterfaceAddresses: { udp4: host },
  iceAdditionalHostAddresses: [host],
});

/** POSTs a werift peer's offer to a WHIP or WHEP URL and applies the answer; resolves once connected. */
async function negotiate(pc: RTCPeerConnection, url: string, userID: string): Promise<void> {
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') await pc.iceGatheringStateChange.watch((s) => s === 'complete');
  const token = generateToken04({ appID: DEV_APP.appID, userID, serverSecret: DEV_APP.serverSecret, effectiveTimeInSeconds: 3600 });
  const response = await fetch(url, {
    method: 'POST',
    body: pc.localDescription!.sdp,
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
  });
  if (response.status !== 201) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
  if (pc.connectionState !== 'connected') await pc.connectionStateChange.watch((s) => s === 'connected');
}

/** A WHIP publisher of VP8 at about `rate` packets a second (frames of rate/30 whole packets or more, a keyframe a second). */
async function whipPublisher(
  server: ServerUnderTest,
  room: number,
): Promise<{ setRate(rate: number): void; pause(): void; close(): Promise<void> }> {
  const pc = new RTCPeerConnection(peerOn(PUBLISHERS_HOST));
  const sender = pc.addTransceiver('video', { direction: 'sendonly' }).sender;
  await negotiate(pc, `${server.httpUrl}/whip/${DEV_APP.appID}/saturation-${room}/s${room}`, `publisher${room}`);
  let packetsPerFrame = 1;
  let frame = 0;
  let sequenceNumber = 0;
  let timer: NodeJS.Timeout | undefined;
  const sendFrame = (): void => {
    // Whole packets only: a short last one would pass the players' rule, and they would ask for what they missed.
    const chunk = MAX_VP8_PAYLOAD - 4;
    let { data } = paddedFrame(frame, packetsPerFrame * chunk);
    if (data.length % chunk) data = paddedFrame(frame, Math.ceil(data.length / chunk) * chunk).data;
    sequenceNumber = sendVp8Frame(sender, data, frame, (frame * 3000) >>> 0, sequenceNumber);
    frame++;
  };
  return {
    // Sending starts with the first rate, once the players are in: their joining is not measured.
    setRate: (rate) => {
      packetsPerFrame = Math.max(1, Math.round(rate / FPS));
      timer ??= setInterval(sendFrame, 1000 / FPS);
    },
    pause: () => {
      clearInterval(timer);
      timer = undefined;
    },
    close: async () => {
      clearInterval(timer);
      await pc.close();
    },
  };
}

async function whepPlayer(server: ServerUnderTest, room: number, i: number): Promise<RTCPeerConnection> {
  const pc = new RTCPeerConnection(peerOn(PLAYERS_HOST));
  pc.addTransceiver('video', { direction: 'recvonly' });
  await negotiate(pc, `${server.httpUrl}/whep/${DEV_APP.appID}/s${room}`, `player${room}-${i}`);
  return pc;
}

/** The most packets a second the server forwarded with at most MAX_LOSS_PERCENT lost, and the steps that led there. */
async function saturate(server: ServerUnderTest, sizes: SaturationSizes): Promise<{ packetsPerSecond: number; steps: string[] }> {
  const counters = new KernelCounters();
  const publishers: Array<Awaited<ReturnType<typeof whipPublisher>>> = [];
  const players: RTCPeerConnection[] = [];
  try {
    // Publishers first: each goes to the media worker with the fewest endpoints, and its players follow it.
    for (let room = 0; room < sizes.rooms; room++) publishers.push(await whipPublisher(server, room));
    for (let room = 0; room < sizes.rooms; room++) {
      for (let first = 0; first < sizes.players; first += 25) {
        const batch = Array.from({ length: Math.min(25, sizes.players - first) }, (_, k) => whepPlayer(server, room, first + k));
        players.push(...(await Promise.all(batch)));
      }
    }
    // Only now: the rule that drops the players' RTP would drop their DTLS handshakes too.
    counters.open();
    const steps: string[] = [];
    /** Forwards at `rate` a step's time: the packets a second that reached the players, and whether within the loss allowed. */
    const step = async (rate: number): Promise<{ packetsPerSecond: number; within: boolean }> => {
      for (const publisher of publishers) publisher.setRate(rate);
      await sleep(SETTLE_MS);
      const [before, cpuBefore, socketsBefore, generatorBefore] = [
        counters.read(),
        processCpu(server.pid),
        udpErrors(),
        processCpu(process.pid),
      ];
      await sleep(sizes.stepSeconds * 1000);
      const [after, cpuAfter, socketsAfter, generatorAfter] = [
        counters.read(),
        processCpu(server.pid),
        udpErrors(),
        processCpu(process.pid),
      ];
      const sent = after.sent - before.sent;
      const expected = (after.given - before.given) * sizes.players;
      const lossPercent = expected > 0 ? Math.max(0, 100 * (1 - sent / expected)) : 100;
      // More than expected is a backlog going out, not this rate's.
      const packetsPerSecond = Math.min(sent, expected) / sizes.stepSeconds;
      const coresOf = (from: CpuTime, to: CpuTime): string => ((to.cpuMs - from.cpuMs) / 1000 / sizes.stepSeconds).toFixed(2);
      const given = (after.given - before.given) / sizes.stepSeconds / sizes.rooms;
      const socketDrops = socketsAfter.receive - socketsBefore.receive + socketsAfter.send - socketsBefore.send;
      steps.push(
        `${rate}/s (${given.toFixed(0)} in) → ${(packetsPerSecond / 1000).toFixed(1)}k/s ${lossPercent.toFixed(2)} % (${coresOf(cpuBefore, cpuAfter)} cores, load generator ${coresOf(generatorBefore, generatorAfter)}${socketDrops ? `, ${socketDrops} socket drops` : ''})`,
      );
      const within = lossPercent <= MAX_LOSS_PERCENT;
      if (!within) {
        // What the server queued is not the next rate's to forward.
        for (const publisher of publishers) publisher.pause();
        await sleep(DRAIN_MS);
      }
      return { packetsPerSecond, within };
    };
    // What joining left behind (code not yet optimized, garbage) is not measured.
    for (const publisher of publishers) publisher.setRate(sizes.firstRate);
    await sleep(WARM_UP_MS);
    // Up by a quarter a step until loss shows, then halving the gap between the last good rate and the
    // first bad, twice. A rate is too much when a second try loses too: a loss once (a stray pause of
    // the machine's) is not saturation.
    let best = 0;
    let [good, bad] = [0, Infinity];
    const judge = async (rate: number): Promise<void> => {
      const first = await step(rate);
      const result = first.within ? first : await step(rate);
      if (result.within) [good, best] = [rate, Math.max(best, result.packetsPerSecond)];
      else bad = rate;
    };
    for (let rate = sizes.firstRate; rate <= sizes.lastRate && bad === Infinity; rate = Math.round(rate * RATE_STEP)) await judge(rate);
    for (let round = 0; round < 2 && bad !== Infinity && good > 0; round++) await judge(Math.round((good + bad) / 2));
    return { packetsPerSecond: best, steps };
  } finally {
    await Promise.all([...players.map((pc) => pc.close()), ...publishers.map((p) => p.close())]);
    counters.close();
  }
}

/** The saturation rows: the server on one core (media on its main thread), then on all (a media worker per core). */
export async function benchSaturation(
  startServer: (variant: ServerVariant) => Promise<ServerUnderTest>,
  sizes: SaturationSizes,
  cores: number,
): Promise<Row[]> {
  if (!KernelCounters.available()) {
    console.log('# forwarding at saturation: skipped (needs root and iptables)');
    return [];
  }
  const run = async (variant: ServerVariant): Promise<{ packetsPerSecond: number; steps: string[] }> => {
    const server = await startServer(variant);
    try {
      return await saturate(server, sizes);
    } finally {
      await server.stop();
    }
  };
  const one = await run({});
  const all = await run({ workers: cores });
  const topology = `${sizes.rooms} rooms × 1 WHIP publisher → ${sizes.players} WHEP players`;
  return [
    {
      measure: `Forwarding at saturation on 1 core (${topology}): packets/s with ≤ ${MAX_LOSS_PERCENT} % loss`,
      unit: 'packets/s',
      n: sizes.rooms * sizes.players,
      p50: one.packetsPerSecond,
      note: `steps: ${one.steps.join(', ')}`,
    },
    {
      measure: `Forwarding at saturation on all ${cores} cores (media.workers: ${cores}), same load: packets/s with ≤ ${MAX_LOSS_PERCENT} % loss`,
      unit: 'packets/s',
      n: sizes.rooms * sizes.players,
      p50: all.packetsPerSecond,
      note: `${(all.packetsPerSecond / one.packetsPerSecond).toFixed(2)}× 1 core; steps: ${all.steps.join(', ')}`,
    },
  ];
}
