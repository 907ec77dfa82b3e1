/**
 * The reference C SFU: Janus (Debian's `janus` package) with its VideoRoom plugin, started with a
 * configuration of our own (HTTP API on 127.0.0.1, ICE on loopback only) and pinned to CPU 0.
 * A publisher and N subscribers are werift peer connections driven through Janus's HTTP API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, useOPUS, useVP8, type PeerConfig } from 'werift';
import { sendVp8Frame } from './vp8Sender.js';
import { pin, processCpu, sleep, type CpuTime } from './lib.js';

const LIB = '/usr/lib/x86_64-linux-gnu/janus';
const UNUSED_PLUGINS = [
  'audiobridge',
  'duktape',
  'echotest',
  'lua',
  'nosip',
  'recordplay',
  'sip',
  'streaming',
  'textroom',
  'videocall',
  'voicemail',
];
const UNUSED_TRANSPORTS = ['mqtt', 'nanomsg', 'pfunix', 'rabbitmq', 'websockets'];
const libraries = (names: string[]): string => names.map((name) => `libjanus_${name}.so`).join(',');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class JanusServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly apiUrl: string,
  ) {}

  static available(): boolean {
    try {
      readFileSync(`${LIB}/plugins/libjanus_videoroom.so`);
      return true;
    } catch {
      return false;
    }
  }

  static async start(): Promise<JanusServer> {
    const dir = mkdtempSync(join(tmpdir(), 'parley-janus-'));
    const port = await freePort();
    writeFileSync(
      join(dir, 'janus.jcfg'),
      `general: { configs_folder = "${dir}", plugins_folder = "${LIB}/plugins", transports_folder = "${LIB}/transports",
  events_folder = "${LIB}/events", loggers_folder = "${LIB}/loggers", debug_level = 2 }
plugins: { disable = "${libraries(UNUSED_PLUGINS)}" }
transports: { disable = "${libraries(UNUSED_TRANSPORTS)}" }
loggers: { disable = "libjanus_jsonlog.so" }
events: { broadcast = false }
media: { rtp_port_range = "46000-46999" }
nat: { ice_enforce_list = "127.0.0.1", nice_debug = false }
`,
    );
    writeFileSync(
      join(dir, 'janus.transport.http.jcfg'),
      `general: { json = "compact", base_path = "/janus", http = true, port = ${port}, ip = "127.0.0.1", https = false }
admin: { admin_http = false }
`,
    );
    writeFileSync(join(dir, 'janus.plugin.videoroom.jcfg'), 'general: { }\n');
    const child = spawn('janus', ['-F', dir, '-C', join(dir, 'janus.jcfg')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const apiUrl = `http://127.0.0.1:${port}/janus`;
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${apiUrl}/info`)).ok) break;
      } catch {
        if (i > 100) throw new Error('janus did not start');
      }
      await sleep(100);
    }
    pin(child.pid!, 0);
    return new JanusServer(child, dir, apiUrl);
  }

  cpu(): CpuTime {
    return processCpu(this.child.pid!);
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await Promise.race([exited, sleep(3000)]);
    this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

type JanusMessage = {
  janus: string;
  transaction?: string;
  data?: { id: number };
  plugindata?: { data: Record<string, unknown> };
  jsep?: { type: string; sdp: string };
  sender?: number;
};

/** One Janus API session with a videoroom handle, its events read by long polling. */
class JanusHandle {
  private readonly events: JanusMessage[] = [];
  private polling = true;

  private constructor(
    private readonly apiUrl: string,
    private readonly session: number,
    readonly handle: number,
  ) {
    void this.poll();
  }

  static async attach(apiUrl: string): Promise<JanusHandle> {
    const post = async (url: string, body: object): Promise<JanusMessage> =>
      (await (
        await fetch(url, { method: 'POST', body: JSON.stringify({ ...body, transaction: Math.random().toString(36) }) })
      ).json()) as JanusMessage;
    const session = (await post(apiUrl, { janus: 'create' })).data!.id;
    const handle = (await post(`${apiUrl}/${session}`, { janus: 'attach', plugin: 'janus.plugin.videoroom' })).data!.id;
    return new JanusHandle(apiUrl, session, handle);
  }

  private async poll(): Promise<void> {
    while (this.polling) {
      try {
        const reply = (await (await fetch(`${this.apiUrl}/${this.session}?maxev=10`)).json()) as JanusMessage | JanusMessage[];
        this.events.push(...(Array.isArray(reply) ? reply : [reply]));
      } catch {
        await sleep(50);
      }
    }
  }

  /** Sends a plugin request; returns the synchronous reply or, for asynchronous ones, the event that answers it. */
  async message(body: object, jsep?: object): Promise<JanusMessage> {
    const transaction = Math.random().toString(36).slice(2);
    const url = `${this.apiUrl}/${this.session}/${this.handle}`;
    const reply = (await (
      await fetch(url, { method: 'POST', body: JSON.stringify({ janus: 'message', transaction, body, jsep }) })
    ).json()) as JanusMessage;
    if (reply.janus !== 'ack') return reply;
    for (let i = 0; i < 1000; i++) {
      const found = this.events.find((e) => e.transaction === transaction && e.janus === 'event');
      if (found) return found;
      await sleep(10);
    }
    throw new Error(`janus did not answer ${JSON.stringify(body)}`);
  }

  async close(): Promise<void> {
    this.polling = false;
    await fetch(`${this.apiUrl}/${this.session}`, { method: 'POST', body: JSON.stringify({ janus: 'destroy', transaction: 'bye' }) }).catch(
      () => undefined,
    );
  }
}

function peerConfig(): Partial<PeerConfig> {
  return {
    codecs: { audio: [useOPUS()], video: [useVP8(), new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000 })] },
    iceServers: [],
    iceUseIpv6: false,
    bundlePolicy: 'max-bundle',
    iceAdditionalHostAddresses: ['127.0.0.1'],
  };
}

async function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState !== 'complete') await pc.iceGatheringStateChange.watch((s) => s === 'complete');
}

export interface WireSubscriber {
  packets(): number;
  frames(): number;
  latencies: number[];
  close(): Promise<void>;
}

/** A room with one werift publisher sending `frame()` at `fps` and Opus-sized audio at 50/s. */
export async function janusRoom(
  janus: JanusServer,
  frame: () => Uint8Array,
  fps: number,
): Promise<{ subscribe(): Promise<WireSubscriber>; framesSent(): number; close(): Promise<void> }> {
  const owner = await JanusHandle.attach(janus.apiUrl);
  const room = 4242;
  await owner.message({ request: 'create', room, publishers: 1, videocodec: 'vp8', audiocodec: 'opus', bitrate: 0, fir_freq: 0 });
  const pc = new RTCPeerConnection(peerConfig());
  const video = pc.addTransceiver('video', { direction: 'sendonly' }).sender;
  const audio = pc.addTransceiver('audio', { direction: 'sendonly' }).sender;
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const joined = await owner.message(
    { request: 'joinandconfigure', room, ptype: 'publisher', display: 'publisher', audio: true, video: true },
    { type: 'offer', sdp: pc.localDescription!.sdp },
  );
  await pc.setRemoteDescription({ type: 'answer', sdp: joined.jsep!.sdp } as never);
  const publisherID = joined.plugindata!.data.id as number;
  await pc.connectionStateChange.watch((s) => s === 'connected');

  let videoSeq = 1000;
  let audioSeq = 1000;
  let pictureId = 0;
  let sent = 0;
  const videoTimer = setInterval(() => {
    videoSeq = sendVp8Frame(video, frame(), ++pictureId, Math.round(performance.now() * 90) >>> 0, videoSeq);
    sent++;
  }, 1000 / fps);
  const audioTimer = setInterval(() => {
    const header = new RtpHeader({
      sequenceNumber: audioSeq++ & 0xffff,
      timestamp: Math.round(performance.now() * 48) >>> 0,
      payloadType: 0,
      ssrc: 0,
    });
    void audio.sendRtp(new RtpPacket(header, Buffer.alloc(80))).catch(() => undefined);
  }, 20);

  const subscribers: WireSubscriber[] = [];
  return {
    framesSent: () => sent,
    async subscribe(): Promise<WireSubscriber> {
      const handle = await JanusHandle.attach(janus.apiUrl);
      const offer = await handle.message({ request: 'join', room, ptype: 'subscriber', feed: publisherID });
      const sub = new RTCPeerConnection(peerConfig());
      let packets = 0;
      let frames = 0;
      const latencies: number[] = [];
      sub.onTrack.subscribe((track) =>
        track.onReceiveRtp.subscribe((rtp) => {
          packets++;
          if (track.kind === 'video' && rtp.header.marker) {
            frames++;
            // The publisher stamps each frame's last 8 bytes with its send time.
            latencies.push(performance.now() - rtp.payload.readDoubleBE(rtp.payload.length - 8));
          }
        }),
      );
      await sub.setRemoteDescription({ type: 'offer', sdp: offer.jsep!.sdp } as never);
      await sub.setLocalDescription(await sub.createAnswer());
      await gathered(sub);
      await handle.message({ request: 'start', room }, { type: 'answer', sdp: sub.localDescription!.sdp });
      await sub.connectionStateChange.watch((s) => s === 'connected');
      const subscriber: WireSubscriber = {
        packets: () => packets,
        frames: () => frames,
        latencies,
        close: async () => {
          await handle.close();
          await sub.close();
        },
      };
      subscribers.push(subscriber);
      return subscriber;
    },
    async close(): Promise<void> {
      clearInterval(videoTimer);
      clearInterval(audioTimer);
      await Promise.all(subscribers.map((s) => s.close()));
      await owner.close();
      await pc.close();
    },
  };
}
