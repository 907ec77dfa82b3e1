/**
 * Parley benchmarks on this machine's loopback. The server runs in its own process pinned to CPU 0;
 * this process (the load generator, SDK clients, Chromium) runs on CPU 1. Writes
 * bench/results/latest.json and latest.md.
 *
 *   npm run bench                 # full
 *   npm run bench -- --quick      # fewer runs and users (under 2 minutes)
 *   npm run bench -- --smoke --out dir   # the smallest loads, for the test suite (seconds)
 *   npm run bench -- --only join  # one section: join, first-frame, capacity, forwarding, cluster
 *   npm run bench -- --only egress    # recording's CPU per stream, mixing 4 × 360p into 720p30 (ffmpeg; only when named)
 *   npm run bench -- --only forwarding --players 1,50
 *   npm run bench -- --only network   # impaired links, Parley beside a direct call, at 0 and 100 ms round trip (root, ~55 min; only when named)
 *   npm run bench -- --only network --rtt 0,100,300 --view 640x360   # the round trips and views to run each scenario at
 *   npm run bench -- --only network --codec VP9   # the codec Parley's publisher sends (VP8 simulcast by default)
 *   npm run bench -- --only soak      # a call under 10⁶ forged datagrams and 10⁶ malformed signalling frames (root; only when named)
 *   PARLEY_BENCH_PROFILE=dir npm run bench ...   # CPU profiles of the server processes
 *   node --import tsx bench/sfuOnly.ts 200 15 relay  # the SFU's forwarding cost alone, for alternating runs of two builds
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pin, type Row, ServerUnderTest } from './lib.js';
import { benchJoin } from './join.js';
import { benchFirstFrame } from './firstFrame.js';
import { benchCapacity } from './capacity.js';
import { benchForwarding } from './forwarding.js';
import { benchSaturation } from './saturation.js';
import { benchNetwork } from './network.js';
import { benchSoak } from './soak.js';
import { benchCluster } from './cluster.js';
import { benchEgress } from './egress.js';
import type { VideoCodec } from '@parley/sdk';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    /** Every section with the smallest loads, for the test suite: shows the harness works, measures nothing. */
    smoke: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    /** Numbers of players for the forwarding section, e.g. --players 1,50. */
    players: { type: 'string' },
    /** Round trips (ms) the network section runs each scenario at, e.g. --rtt 0,100,300 (default 0,100). */
    rtt: { type: 'string' },
    /** Cameras and views the network section runs at: 640x360 (15 fps), 1280x720 (30 fps); both by default. */
    view: { type: 'string' },
    /** Only the network scenarios whose names contain this, e.g. --scenario "uplink 30". */
    scenario: { type: 'string' },
    /** The codec Parley's publisher sends in the network section: VP8 (simulcast, the default), VP9 (SVC) or H264. */
    codec: { type: 'string' },
    /** Where latest.json and latest.md go (default: bench/results). */
    out: { type: 'string' },
  },
});
const mode = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full';
const sizes = {
  full: {
    runs: 20,
    concurrent: 1000,
    latencySeconds: 10,
    sessions: 10_000,
    players: [1, 10, 50, 100, 200],
    // Forwarding windows: a 10-player room forwards ~1,700 packets a second, and shorter windows vary by a third.
    seconds: 30,
    impairedSeconds: 30,
    soak: 1_000_000,
    cluster: { concurrent: 1000, players: 90, seconds: 10, resumers: 100, repeats: 5 },
    egress: { seconds: 10, recorded: 8, windows: 3 },
    saturation: { rooms: 2, players: 100, stepSeconds: 5, firstRate: 300, lastRate: 5000 },
  },
  quick: {
    runs: 5,
    concurrent: 200,
    latencySeconds: 3,
    sessions: 1000,
    players: [1, 10],
    seconds: 3,
    impairedSeconds: 15,
    soak: 100_000,
    cluster: { concurrent: 200, players: 15, seconds: 3, resumers: 30, repeats: 3 },
    egress: { seconds: 5, recorded: 4, windows: 2 },
    saturation: { rooms: 2, players: 20, stepSeconds: 2, firstRate: 1000, lastRate: 10000 },
  },
  smoke: {
    runs: 1,
    concurrent: 20,
    latencySeconds: 1,
    sessions: 100,
    players: [2],
    seconds: 1,
    impairedSeconds: 3,
    soak: 2000,
    cluster: { concurrent: 20, players: 3, seconds: 1, resumers: 5, repeats: 1 },
    egress: { seconds: 1, recorded: 1, windows: 1 },
    saturation: { rooms: 2, players: 2, stepSeconds: 1, firstRate: 30, lastRate: 30 },
  },
}[mode];

/** Runs `section` against a fresh server, so one section's leftovers do not weigh on the next. */
async function withServer(section: (server: ServerUnderTest) => Promise<Row[]>): Promise<Row[]> {
  const server = await ServerUnderTest.start();
  try {
    return await section(server);
  } finally {
    await server.stop();
  }
}

const sections: Record<string, () => Promise<Row[]>> = {
  join: () => withServer((server) => benchJoin(server, { runs: sizes.runs, concurrent: sizes.concurrent })),
  'first-frame': () => withServer((server) => benchFirstFrame(server, { runs: sizes.runs, latencySeconds: sizes.latencySeconds })),
  capacity: () => withServer((server) => benchCapacity(server, { sessions: sizes.sessions, inFlight: 50 })),
  // A fresh server for each number of players.
  forwarding: async () => [
    ...(await benchForwarding((variant) => ServerUnderTest.start(variant), {
      players: values.players ? values.players.split(',').map(Number) : sizes.players,
      seconds: sizes.seconds,
    })),
    ...(await benchSaturation((variant) => ServerUnderTest.start(variant), sizes.saturation, cpus().length)),
  ],
  // In-process server: it listens on the test network's address.
  network: () =>
    benchNetwork({
      seconds: sizes.impairedSeconds,
      roundTripsMs: values.rtt ? values.rtt.split(',').map(Number) : [0, 100],
      views: values.view ? values.view.split(',') : ['640x360', '1280x720'],
      only: values.scenario,
      videoCodec: parseCodec(values.codec),
    }),
  soak: () => withServer((server) => benchSoak(server, { datagrams: sizes.soak, frames: sizes.soak })),
  // Its own nodes and redis-server.
  cluster: () => benchCluster(sizes.cluster),
  // Its own servers: one that records, one that mixes.
  egress: () => benchEgress(sizes.egress),
};
function parseCodec(codec = 'VP8'): VideoCodec {
  if (codec === 'VP8' || codec === 'VP9' || codec === 'H264') return codec;
  throw new Error(`--codec ${codec}: VP8, VP9 or H264`);
}

/** Sections that run only when named with --only. */
const onRequest = new Set(['network', 'soak', 'egress']);

pin(process.pid, 1);
const results: Record<string, Row[]> = {};
for (const [name, run] of Object.entries(sections)) {
  if (values.only ? !values.only.includes(name) : onRequest.has(name)) continue;
  results[name] = await run();
  console.log(`${name}: done`);
}

const fmt = (x: number | undefined): string => (x === undefined ? '' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const markdown = [
  `Parley benchmarks, ${new Date().toISOString().slice(0, 16)}Z, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, loopback${mode === 'full' ? '' : ` (${mode})`}`,
  '',
  '| section | measure | unit | n | p50 | p99 | notes |',
  '|---|---|---|---|---|---|---|',
  ...Object.entries(results).flatMap(([section, rows]) =>
    rows.map((r) => `| ${section} | ${r.measure} | ${r.unit} | ${r.n} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r.note ?? ''} |`),
  ),
].join('\n');
const dir = values.out ?? fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'latest.json'), JSON.stringify({ date: new Date().toISOString(), mode, results }, null, 2));
writeFileSync(join(dir, 'latest.md'), `${markdown}\n`);
console.log(`\n${markdown}`);
process.exit(0);
