/**
 * A call under a flood of forged datagrams (needs root and iptables): for 30 s, thousands a
 * second, with the publisher's or the player's own address and port as their source to the
 * server's media port, and with the server's as their source to the publisher and the player
 * (see the test kit's forgery and spoof). Every frame must reach the player byte for byte, in
 * order and on time, and nobody may see anything change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MEDIA_DROP_REASONS } from '@parley/protocol/rtp';
import { FORGERY_KINDS, serverMetric, teardown } from '@parley/testkit';
import { sleep } from './helpers.js';
import { floodFromCallAddresses, loopbackNumberedCall, LOOPBACK } from './numberedCall.js';

const FLOOD_MS = 30_000;
/** Forged datagrams a second, over the four directions. */
const FLOOD_RATE = 2000;
/** A frame later than this after it was sent is not on time. */
const ON_TIME_MS = 250;

test("forged datagrams (every kind, 2,000 a second for 30 s, from the publisher's, the player's and the server's own addresses) change nothing: every frame reaches the player intact, in order and on time", async (t) => {
  const closeLater = teardown(t);
  const { env, mediaPort, call } = await loopbackNumberedCall(closeLater, 'r-forged');
  const flood = await floodFromCallAddresses(call, LOOPBACK, mediaPort);
  closeLater(() => flood.close());

  const changes = call.mark();
  const stallsBefore = await serverMetric(env.server.httpUrl, 'parley_media_stalls_total');
  const floodStart = Date.now();
  await flood.send((FLOOD_RATE * FLOOD_MS) / 1000, FLOOD_RATE);
  const floodEnd = Date.now();
  flood.close();
  await sleep(1000);

  // Every frame sent from a second before the flood to its end.
  const frames = call.check(floodStart - 1000, floodEnd, ON_TIME_MS);
  const serverDrops = Object.fromEntries(
    await Promise.all(
      MEDIA_DROP_REASONS.map(
        async (reason) => [reason, await serverMetric(env.server.httpUrl, 'parley_media_dropped_packets_total', { reason })] as const,
      ),
    ),
  );
  const [publisherDrops, playerDrops] = [call.pub.engine.getMediaDrops(), call.player.engine.getMediaDrops()];
  const forged = [...flood.sent.values()].reduce((a, b) => a + b, 0);
  const { delays } = frames;
  t.diagnostic(
    `forged ${forged} datagrams of ${flood.sent.size} kinds in ${floodEnd - floodStart} ms; frames ${frames.frames}, missing ${frames.missing.length}, ` +
      `altered ${frames.altered.length}, late (> ${ON_TIME_MS} ms) ${frames.late}; delay median ${delays[Math.floor(delays.length / 2)]} ms, ` +
      `p95 ${delays[Math.floor(delays.length * 0.95)]} ms, max ${delays.at(-1)} ms`,
  );
  t.diagnostic(`server dropped ${JSON.stringify(serverDrops)}`);
  t.diagnostic(`publisher dropped ${JSON.stringify(publisherDrops)}; player dropped ${JSON.stringify(playerDrops)}`);

  assert.equal(flood.sent.size, FORGERY_KINDS.length, 'every kind was sent');
  assert.deepEqual(frames.missing, [], 'every frame reached the player');
  assert.deepEqual(frames.altered, [], 'byte for byte');
  assert.ok(frames.inOrder, 'in order');
  assert.ok(frames.late <= frames.frames * 0.05, `${frames.late} of ${frames.frames} frames later than ${ON_TIME_MS} ms`);
  assert.deepEqual(changes(), [], 'neither the publisher nor the player saw a change');
  assert.equal(await serverMetric(env.server.httpUrl, 'parley_media_stalls_total'), stallsBefore, 'the server saw no stall');
  for (const reason of [
    'unknown-protocol',
    'dtls-malformed',
    'dtls-unknown-type',
    'dtls-wrong-epoch',
    'dtls-unauthenticated',
    'srtp-unauthenticated',
    'srtcp-unauthenticated',
  ]) {
    assert.ok(serverDrops[reason]! > 0, `the server counted ${reason}`);
  }
  // The forged STUN requests name ufrags of no agent here: the shared port drops them before any agent sees them.
  assert.ok((await serverMetric(env.server.httpUrl, 'parley_media_unroutable_datagrams_total')) > 0, 'the server counted unroutable STUN');
  for (const [who, drops] of [
    ['publisher', publisherDrops],
    ['player', playerDrops],
  ] as const) {
    for (const reason of ['unknown-protocol', 'stun-unauthenticated', 'dtls-wrong-epoch', 'dtls-unknown-type', 'srtcp-unauthenticated']) {
      assert.ok((drops[reason] ?? 0) > 0, `the ${who} counted ${reason}`);
    }
  }
});
