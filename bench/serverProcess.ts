/** The server under benchmark: the dev app, per-address limits lifted (all load comes from 127.0.0.1). */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startServer, DEV_APP } from '@parley/server';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const lifted = 1e9;
const server = await startServer({
  host: '127.0.0.1',
  port: 0,
  apps: [DEV_APP],
  devMode: true,
  logLevel: 'silent',
  limits: {
    framesPerSecondPerIp: lifted,
    frameBurstPerIp: lifted,
    connectionsPerSecondPerIp: lifted,
    connectionBurstPerIp: lifted,
    loginsPerSecondPerIp: lifted,
    loginBurstPerIp: lifted,
  },
});
process.send!({ url: server.url, httpUrl: server.httpUrl });
process.on('message', (message) => {
  if (message === 'stats') {
    gc();
    const cpu = process.cpuUsage();
    const { rss, heapUsed } = process.memoryUsage();
    process.send!({ cpuMs: (cpu.user + cpu.system) / 1000, systemMs: cpu.system / 1000, rss, heapUsed, ...server.rooms.stats() });
  } else if (message === 'close') {
    void server.close().then(() => process.exit(0));
  }
});
