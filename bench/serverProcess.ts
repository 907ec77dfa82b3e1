/** The server under benchmark: the dev app, per-address limits lifted (all load comes from 127.0.0.1). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startServer, DEV_APP } from '@parley/server';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const lifted = 1e9;
const portPerConnection = process.argv[2] === 'port per connection';
const cluster = (JSON.parse(process.argv[3] ?? 'null') as { redisUrl: string; nodeId: string } | null) ?? undefined;
const recordingDir = JSON.parse(process.argv[4] ?? 'null') as string | null;
const server = await startServer({
  media: portPerConnection ? { portRange: [20000, 39999] } : undefined,
  host: '127.0.0.1',
  port: 0,
  apps: [DEV_APP],
  devMode: true,
  logLevel: 'silent',
  cluster,
  ...(recordingDir && { recording: { dir: recordingDir } }),
  limits: {
    framesPerSecondPerIp: lifted,
    frameBurstPerIp: lifted,
    connectionsPerSecondPerIp: lifted,
    connectionBurstPerIp: lifted,
    loginsPerSecondPerIp: lifted,
    loginBurstPerIp: lifted,
  },
});
process.send!({ url: server.url, httpUrl: server.httpUrl, udpPort: server.media.udpPort });
/** PARLEY_BENCH_PROFILE=dir: a CPU profile of each measured window (from one stats reading to the next). */
const profileDir = process.env.PARLEY_BENCH_PROFILE;
const profiler = profileDir ? new Session() : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });
profiler?.connect();
let readings = 0;

process.on('message', (message) => {
  if (message === 'stats') {
    const opensWindow = ++readings % 2 === 1;
    void (async () => {
      if (profiler && !opensWindow) {
        const { profile } = await profiler.post('Profiler.stop');
        writeFileSync(join(profileDir!, `server-${process.pid}-window-${readings / 2}.cpuprofile`), JSON.stringify(profile));
      }
      // CPU before the collection, which is for the memory reading, not part of the window's work.
      const cpu = process.cpuUsage();
      gc();
      const { rss, heapUsed } = process.memoryUsage();
      process.send!({ cpuMs: (cpu.user + cpu.system) / 1000, systemMs: cpu.system / 1000, rss, heapUsed, ...(await server.rooms.stats()) });
      if (profiler && opensWindow) {
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.start');
      }
    })();
  } else if (message === 'close') {
    void server.close().then(() => process.exit(0));
  }
});
