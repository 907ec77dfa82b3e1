/**
 * A smoke run of the benchmark harness: every section end to end with the smallest loads, so the
 * harness keeps working. It measures nothing and checks no thresholds (npm run bench does that).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Row } from './lib.js';

test('npm run bench works end to end: every section reports rows of numbers (smoke loads, no thresholds)', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'parley-bench-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  await promisify(execFile)(process.execPath, ['--import', 'tsx', new URL('./run.ts', import.meta.url).pathname, '--smoke', '--out', out], {
    timeout: 180_000,
  });
  const { mode, results } = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as { mode: string; results: Record<string, Row[]> };
  assert.equal(mode, 'smoke');
  assert.deepEqual(Object.keys(results), ['join', 'first-frame', 'capacity', 'forwarding', 'cluster']);
  for (const [section, rows] of Object.entries(results)) {
    assert.ok(rows.length > 0, `${section} has rows`);
    for (const row of rows) assert.ok(Number.isFinite(row.p50) && row.n > 0, `${section}: ${row.measure} = ${row.p50} (n ${row.n})`);
  }
  const markdown = readFileSync(join(out, 'latest.md'), 'utf8');
  assert.match(markdown, /^\| section \| measure \| unit \| n \| p50 \| p99 \| notes \|$/m);
});
