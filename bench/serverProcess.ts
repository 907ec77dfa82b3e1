/** The server under benchmark: the dev app, per-address limits lifted (all load comes from 127.0.0.1). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startServer, setServerHeapPolicy, DEV_APP } from '@parley/server';
import type { ServerVariant } from './lib.js';

setFlagsFromString('--expose-gc');
// As `parley start` runs.
setServerHeapPolicy();
const gc = runInNewContext('gc') as () => void;

const lifted = 1e9;
const { sockets, cluster, recordingDir, fastPath, workers } = JSON.parse(process.argv[2] ?? '{}') as ServerVariant;
const server = await startServer({
  media: { ...(sockets === 'port per connection' && { portRange: [20000, 39999] }), fastPath, workers },
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
      // The collection is for the memory reading, not part of the window's work: a window opens after it, and ends before it.
      if (opensWindow) gc();
      const cpu = process.cpuUsage();
      if (!opensWindow) gc();
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
