import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { liveCall, sleep, startTestServer } from './helpers.js';
import { FuzzClient, fuzzFrame, generator } from './fuzzFrames.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('protocol fuzz: 10,000 random and mutated frames beside a live call', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const random = generator(Number(process.env.PARLEY_FUZZ_SEED ?? 424242));

  const call = await liveCall(env, 'r-fuzz');
  t.after(call.stop);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;

  let limited = 0;
  const fuzz = new FuzzClient(env.server.url, (message) => {
    if (message.code === 1000095) limited++;
  });
  const counts: Record<string, number> = { reply: 0, error: 0, close: 0, silent: 0 };
  const FRAMES = 10_000;
  const framesBefore = call.frames();
  for (let i = 0; i < FRAMES; i++) {
    const outcome = await fuzz.send(fuzzFrame(random));
    counts[outcome] = (counts[outcome] ?? 0) + 1;
  }
  fuzz.close();
  await sleep(500);
  gc();
  const heapGrowthMB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  console.log(
    `# fuzz: ${FRAMES} frames → ${JSON.stringify(counts)}; rate-limited ${limited}; call frames during fuzz ${call.frames() - framesBefore}; heap ${heapGrowthMB.toFixed(1)} MB`,
  );

  assert.equal(counts.silent, 0, 'every frame got a reply, an error or a close');
  assert.ok(call.frames() - framesBefore > 30, 'the call kept flowing');
  assert.deepEqual(call.roomEventsSinceStart(), [[], []]);
  assert.ok(heapGrowthMB < 20, `heap grew ${heapGrowthMB.toFixed(1)} MB`);
  assert.deepEqual(await env.roomUserIDs('r-fuzz'), ['pub', 'viewer']);
});
