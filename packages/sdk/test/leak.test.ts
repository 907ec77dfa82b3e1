import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PlayerState, PublisherState } from '@parley/sdk';
import { TestClient, sleep, startTestServer } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

function heapMB(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

test('48 login/publish/play/logout cycles leave sockets, sessions and memory where they started', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const profile = { appID: env.app.appID, appSign: env.app.appSign, server: env.server.url };

  async function cycle(i: number): Promise<void> {
    const pub = new TestClient(profile);
    const viewer = new TestClient(profile);
    assert.equal(await pub.login(`r-leak-${i % 4}`, `pub${i}`), 0);
    assert.equal(await viewer.login(`r-leak-${i % 4}`, `viewer${i}`), 0);
    pub.engine.startPublishingStream(`s-leak-${i}`);
    await pub.waitFor('publisherStateUpdate', (_, s) => s === PublisherState.Publishing);
    viewer.engine.startPlayingStream(`s-leak-${i}`);
    await viewer.waitFor('playerStateUpdate', (_, s) => s === PlayerState.Playing);
    viewer.engine.logoutRoom();
    pub.engine.logoutRoom();
    await Promise.all([pub.destroy(), viewer.destroy()]);
  }

  await cycle(-1); // warm up: modules, JIT, first allocations
  await sleep(500);
  const before = { resources: resources(), heap: heapMB() };
  const CYCLES = 48;
  const CONCURRENCY = 4;
  for (let round = 0; round < CYCLES / CONCURRENCY; round++) {
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, k) => cycle(round * CONCURRENCY + k)));
  }
  await sleep(1000);
  const soon = { resources: resources(), heap: heapMB() };
  // werift keeps a closed connection's DTLS retransmission timer (and the connection) for up to ~30 s.
  await sleep(35_000);
  const after = { resources: resources(), heap: heapMB() };
  console.log(
    `# leak check: before ${JSON.stringify(before)}; 1 s after ${CYCLES} cycles ${JSON.stringify(soon)}; 36 s after ${JSON.stringify(after)}`,
  );

  assert.deepEqual(await env.server.rooms.stats(), { rooms: 0, sessions: 0, publications: 0, streams: 0 });
  const withoutTimers = ({ Timeout: _, ...handles }: Record<string, number>): Record<string, number> => handles;
  assert.deepEqual(withoutTimers(soon.resources), withoutTimers(before.resources), 'sockets and servers are back at once');
  assert.ok((after.resources.Timeout ?? 0) <= (before.resources.Timeout ?? 0), 'no timer is left behind');
  assert.ok(after.heap - before.heap < 8, `heap grew ${(after.heap - before.heap).toFixed(1)} MB`);
});
