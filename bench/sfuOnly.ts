/**
 * The SFU's forwarding cost alone (native path), and the UDP relay's beside it: for alternating
 * runs of two builds (two checkouts) when a change on the forwarding path is measured.
 *   node --import tsx bench/sfuOnly.ts [players=200] [seconds=15] [relay]
 */
import { measureRelay, measureSfu } from './forwarding.js';
import { quantile, ServerUnderTest } from './lib.js';

const players = Number(process.argv[2] ?? 200);
const seconds = Number(process.argv[3] ?? 15);
const server = await ServerUnderTest.start({});
try {
  const sfu = await measureSfu(server, players, seconds);
  const latency = (q: number): string => quantile(sfu.latencies, q).toFixed(1);
  console.log(
    `SFU, ${players} players: ${sfu.cpuUsPerPacket.toFixed(2)} µs per forwarded packet (${sfu.kernelPercent.toFixed(0)} % in the kernel), ` +
      `loss ${sfu.lossPercent.toFixed(2)} %, latency p50 ${latency(0.5)} ms, p99 ${latency(0.99)} ms`,
  );
} finally {
  await server.stop();
}
if (process.argv[4] === 'relay') {
  const relay = await measureRelay(players, seconds);
  console.log(`UDP relay, ${players} players: ${relay.cpuUsPerPacket.toFixed(2)} µs per forwarded packet`);
}
