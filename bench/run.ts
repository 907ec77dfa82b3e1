/**
 * Parley benchmarks on this machine's loopback. The server runs in its own process pinned to CPU 0;
 * this process (the load generator, SDK clients, Chromium) runs on CPU 1. Writes
 * bench/results/latest.json and latest.md.
 *
 *   npm run bench                 # full
 *   npm run bench -- --quick      # fewer runs and users, for a smoke test
 *   npm run bench -- --only join  # one section: join, first-frame, capacity
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { pin, type Row, ServerUnderTest } from './lib.js';
import { benchJoin } from './join.js';
import { benchFirstFrame } from './firstFrame.js';
import { benchCapacity } from './capacity.js';

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string', multiple: true } },
});
const quick = values.quick;
const sections: Record<string, (server: ServerUnderTest) => Promise<Row[]>> = {
  join: (server) => benchJoin(server, { runs: quick ? 5 : 20, concurrent: quick ? 200 : 1000 }),
  'first-frame': (server) => benchFirstFrame(server, { runs: quick ? 5 : 20, latencySeconds: quick ? 3 : 10 }),
  capacity: (server) => benchCapacity(server, { sessions: quick ? 1000 : 10_000, inFlight: 50 }),
};

pin(process.pid, 1);
const results: Record<string, Row[]> = {};
for (const [name, run] of Object.entries(sections)) {
  if (values.only && !values.only.includes(name)) continue;
  // A fresh server per section, so one section's leftovers do not weigh on the next.
  const server = await ServerUnderTest.start();
  try {
    results[name] = await run(server);
  } finally {
    await server.stop();
  }
  console.log(`${name}: done`);
}

const fmt = (x: number | undefined): string => (x === undefined ? '' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const markdown = [
  `Parley benchmarks, ${new Date().toISOString().slice(0, 16)}Z, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, loopback${quick ? ' (quick)' : ''}`,
  '',
  '| section | measure | unit | n | p50 | p99 | notes |',
  '|---|---|---|---|---|---|---|',
  ...Object.entries(results).flatMap(([section, rows]) =>
    rows.map((r) => `| ${section} | ${r.measure} | ${r.unit} | ${r.n} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r.note ?? ''} |`),
  ),
].join('\n');
const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL('latest.json', dir), JSON.stringify({ date: new Date().toISOString(), quick, results }, null, 2));
writeFileSync(new URL('latest.md', dir), `${markdown}\n`);
console.log(`\n${markdown}`);
process.exit(0);
