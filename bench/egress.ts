/**
 * Streams out of Parley, with Node.js publishers sending a 1 Mbit/s 360p VP8 clip:
 * - recording: the server's CPU per recorded stream (windows while recording against windows
 *   before, side by side in one run), and so how many such recordings one core sustains;
 * - mixing: 4 such inputs into 720p30, ffmpeg's speed against real time (the mix's frames per
 *   second at its player over 30), the cores ffmpeg takes, and the delay from an input turning
 *   white to the mix's player decoding white in that input's place;
 * - WHIP: time to first frame from GStreamer's client.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_APP, generateToken04, startServer } from '@parley/server';
import { readIvf, type IvfFile } from '@parley/sdk';
import { callServerApi, startWhipClient, TestNetwork, vp8Clip } from '@parley/testkit';
import { TestClient, audioFixture, ivfHeader, sendClipInSync } from '../packages/sdk/test/helpers.js';
import { row, sleep, ServerUnderTest, type Row, type ServerStats } from './lib.js';

const FPS = 30;

async function publishers(server: ServerUnderTest, roomID: string, count: number, clip: (i: number) => IvfFile) {
  const profile = { appID: DEV_APP.appID, appSign: DEV_APP.appSign, server: server.url };
  const clients: TestClient[] = [];
  const stops: Array<() => void> = [];
  for (let i = 0; i < count; i++) {
    const client = new TestClient(profile);
    clients.push(client);
    if ((await client.login(roomID, `pub${i}`)) !== 0) throw new Error('publisher login failed');
    await client.publish(`${roomID}${i}`);
    stops.push(sendClipInSync(client.engine, () => ({ video: clip(i), audio: audioFixture })));
  }
  return {
    clients,
    async close() {
      stops.forEach((stop) => stop());
      await Promise.all(clients.map((c) => c.destroy()));
    },
  };
}

/** Server CPU (ms per second) in each of `windows` windows of `seconds`. */
async function cpuWindows(server: ServerUnderTest, windows: number, seconds: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < windows; i++) {
    const before: ServerStats = await server.stats();
    await sleep(seconds * 1000);
    out.push(((await server.stats()).cpuMs - before.cpuMs) / seconds);
  }
  return out;
}

/** The CPU time (ms) of the server's ffmpeg children so far. */
function ffmpegCpuMs(serverPid: number): number {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (!stat.includes('(ffmpeg)') || Number(fields[1]) !== serverPid) continue;
      total += ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/**
 * WHIP: GStreamer's whip-client started → the first frame of its stream at a Node.js player that
 * plays it as soon as it is announced. The server runs in this process on a test network's
 * address (libnice leaves out loopback), so this part needs root.
 */
async function whipFirstFrame(runs: number): Promise<number[]> {
  const network = new TestNetwork();
  const server = await startServer({ host: network.serverIp, port: 0, apps: [DEV_APP], logLevel: 'silent', staticDir: false });
  const player = new TestClient({ appID: DEV_APP.appID, appSign: DEV_APP.appSign, server: server.url });
  const times: number[] = [];
  try {
    const host = network.addHost();
    await player.login('whip', 'player');
    let firstFrameAt = 0;
    player.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => (firstFrameAt ||= performance.now()) });
    for (let i = 0; i < runs; i++) {
      const streamID = `whip${i}`;
      const announced = player.of('roomStreamUpdate').length;
      firstFrameAt = 0;
      const startedAt = performance.now();
      const token = generateToken04({
        appID: DEV_APP.appID,
        userID: `gst${i}`,
        serverSecret: DEV_APP.serverSecret,
        effectiveTimeInSeconds: 600,
      });
      const client = startWhipClient({ url: `${server.httpUrl}/whip/${DEV_APP.appID}/whip/${streamID}`, token, host });
      try {
        for (const deadline = performance.now() + 15_000; player.of('roomStreamUpdate').length === announced; await sleep(5)) {
          if (performance.now() > deadline) throw new Error(`no stream from whip-client: ${client.output()}`);
        }
        player.engine.startPlayingStream(streamID);
        for (const deadline = performance.now() + 15_000; !firstFrameAt; await sleep(5)) {
          if (performance.now() > deadline) throw new Error('no frame from whip-client');
        }
        times.push(firstFrameAt - startedAt);
        player.engine.stopPlayingStream(streamID);
      } finally {
        await client.stop();
      }
    }
  } finally {
    await player.destroy();
    await server.close();
    network.close();
  }
  return times;
}

export async function benchEgress({ seconds, recorded, windows }: { seconds: number; recorded: number; windows: number }): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-rec-'));
  const clip = readIvf(new Uint8Array(readFileSync(vp8Clip({ width: 640, height: 360, fps: FPS, seconds: 4, kbps: 1000 }))));
  const rows: Row[] = [];
  try {
    // Recording.
    const server = await ServerUnderTest.start({ recordingDir: dir });
    try {
      const pubs = await publishers(server, 'rec', recorded, () => clip);
      await sleep(2000);
      const idle = await cpuWindows(server, windows, seconds);
      const api = (action: string, params: Record<string, unknown>) => callServerApi(server.httpUrl, DEV_APP, action, params);
      const task = ((await api('StartRecord', { RoomId: 'rec', RecordInputParams: { RecordMode: 1 } })).Data as { TaskId: string }).TaskId;
      await sleep(3000);
      const recording = await cpuWindows(server, windows, seconds);
      await api('StopRecord', { TaskId: task });
      await pubs.close();
      const perStream = recording.map((ms, i) => (ms - idle[i]!) / recorded / 10); // % of a core
      rows.push(
        row(
          'recording: server CPU per recorded 1 Mbit/s stream',
          '% of a core',
          perStream,
          `${recorded} streams recorded; the calls alone: ${(idle[0]! / 10).toFixed(0)} % of a core`,
        ),
      );
      rows.push(
        row(
          'recording: 1 Mbit/s recordings one core sustains',
          'recordings',
          perStream.map((p) => 100 / p),
        ),
      );
    } finally {
      await server.stop();
    }

    // Mixing: 4 × 360p into 720p30.
    const white = readIvf(new Uint8Array(readFileSync(whiteClip())));
    const mixServer = await ServerUnderTest.start();
    try {
      let turnedWhiteAt = 0;
      const pubs = await publishers(mixServer, 'mix', 4, (i) => (i === 0 && turnedWhiteAt > 0 ? white : clip));
      const api = (action: string, params: Record<string, unknown>) => callServerApi(mixServer.httpUrl, DEV_APP, action, params);
      const rect = (i: number) => ({
        Left: (i % 2) * 640,
        Top: Math.floor(i / 2) * 360,
        Right: (i % 2) * 640 + 640,
        Bottom: Math.floor(i / 2) * 360 + 360,
      });
      const started = await api('StartMix', {
        TaskId: 'bench',
        MixInput: [0, 1, 2, 3].map((i) => ({ StreamId: `mix${i}`, RectInfo: rect(i) })),
        MixOutput: [{ StreamId: 'mix_out', Width: 1280, Height: 720, Fps: FPS, VideoBitrate: 2_500_000 }],
      });
      if (started.Code !== 0) throw new Error(`StartMix: ${started.Message}`);
      const player = new TestClient({ appID: DEV_APP.appID, appSign: DEV_APP.appSign, server: mixServer.url });
      await player.login('mix', 'player');
      // The player decodes the top left quarter (input 0) as it comes, and notes when it turns white.
      const decoder = spawn('ffmpeg', [
        ...[
          '-hide_banner',
          '-loglevel',
          'info',
          '-probesize',
          '32',
          '-analyzeduration',
          '0',
          '-fflags',
          'nobuffer',
          '-f',
          'ivf',
          '-i',
          'pipe:0',
        ],
        ...['-vf', 'crop=640:360:0:0,signalstats,metadata=print:key=lavfi.signalstats.YAVG', '-f', 'null', '-'],
      ]);
      let whiteSeenAt = 0;
      decoder.stderr.on('data', (chunk: Buffer) => {
        const white = [...chunk.toString().matchAll(/YAVG=([\d.]+)/g)].some((m) => Number(m[1]) > 200);
        if (white && turnedWhiteAt > 0 && !whiteSeenAt) whiteSeenAt = performance.now();
      });
      decoder.stdin.on('error', () => undefined);
      decoder.stdin.write(ivfHeader(1280, 720));
      let frames = 0;
      player.engine.setCustomVideoRenderHandler({
        onRemoteVideoFrameEncodedDataReceived: (data) => {
          frames++;
          const header = Buffer.alloc(12);
          header.writeUInt32LE(data.length, 0);
          decoder.stdin.write(Buffer.concat([header, Buffer.from(data)]));
        },
      });
      player.engine.startPlayingStream('mix_out');
      await player.waitFor('playerRecvVideoFirstFrame', () => true, 20_000);
      await sleep(3000);
      const speed: number[] = [];
      const cores: number[] = [];
      for (let i = 0; i < windows; i++) {
        const [f0, c0, t0] = [frames, ffmpegCpuMs(mixServer.pid), performance.now()];
        await sleep(seconds * 1000);
        const elapsed = performance.now() - t0;
        speed.push((frames - f0) / (elapsed / 1000) / FPS);
        cores.push((ffmpegCpuMs(mixServer.pid) - c0) / elapsed);
      }
      const latency: number[] = [];
      turnedWhiteAt = performance.now();
      for (const deadline = performance.now() + 10_000; !whiteSeenAt && performance.now() < deadline;) await sleep(10);
      if (whiteSeenAt) latency.push(whiteSeenAt - turnedWhiteAt);
      rows.push(
        row(
          'mixing 4 × 360p into 720p30: speed',
          '× real time',
          speed,
          "the mix's frames per second at its player, over 30; ffmpeg pinned with the server to one core",
        ),
      );
      rows.push(row('mixing 4 × 360p into 720p30: ffmpeg CPU', 'cores', cores));
      rows.push(
        row(
          'mixing: input turning white → its player decodes white',
          'ms',
          latency,
          'glass to glass, through the SFU, ffmpeg and the SFU again',
        ),
      );
      decoder.stdin.end();
      decoder.kill();
      await player.destroy();
      await pubs.close();
    } finally {
      await mixServer.stop();
    }
    rows.push(
      row('WHIP: whip-client started → first frame at a player', 'ms', await whipFirstFrame(windows * 2), 'GStreamer 1.22, VP8 320×240'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** A white 360p clip (VP8, a keyframe every frame so that the switch to it shows at once). */
function whiteClip(): string {
  const path = join(tmpdir(), 'parley-white-360p.ivf');
  execFileSync('ffmpeg', [
    '-loglevel',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `color=c=white:s=640x360:r=${FPS}:d=1`,
    '-c:v',
    'libvpx',
    '-g',
    '1',
    path,
  ]);
  return path;
}
