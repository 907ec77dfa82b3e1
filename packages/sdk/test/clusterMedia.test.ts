/**
 * Media across the nodes of a cluster: a stream published on one node is played on every node,
 * relayed once to each other node whatever the number of players there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlayerState } from '@parley/sdk';
import { serverMetric, startCluster, teardown, type ServerProcess } from '@parley/testkit';
import type { AppConfig } from '@parley/server';
import { TestClient, sleep } from './helpers.js';
import { checkFrames, publishNumberedFrames, receiveNumberedFrames } from './numberedCall.js';

function clientOf(node: ServerProcess, app: AppConfig, closeLater: (close: () => unknown) => void): TestClient {
  const client = new TestClient({ appID: app.appID, appSign: app.appSign, server: node.url });
  closeLater(() => client.destroy());
  return client;
}

test('cluster: one publisher on node A, players on nodes A, B (two) and C get every frame byte for byte, one relay per node', async (t) => {
  const { app, nodes } = await startCluster(t);
  const closeLater = teardown(t);
  const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
  const roomID = 'r-relay';
  const publisher = clientOf(a, app, closeLater);
  assert.equal(await publisher.login(roomID, 'pub'), 0);
  await publisher.publish('s-relay');
  const published = publishNumberedFrames(publisher.engine);
  closeLater(() => published.stop());

  const playersAt = [a, b, b, c];
  const players = await Promise.all(
    playersAt.map(async (node, i) => {
      const player = clientOf(node, app, closeLater);
      assert.equal(await player.login(roomID, `viewer-${i}`), 0);
      const received = receiveNumberedFrames(player.engine);
      player.engine.startPlayingStream('s-relay');
      await player.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);
      await player.waitFor('playerRecvVideoFirstFrame');
      return { player, received };
    }),
  );
  const from = Date.now() + 500;
  await sleep(3_500);
  const to = Date.now() - 500;
  for (const [i, { received }] of players.entries()) {
    const check = checkFrames(published, received, from, to, 1_000);
    assert.ok(check.frames >= 60, `player ${i}: ${check.frames} frames in the window`);
    assert.deepEqual(check.missing, [], `player ${i} misses none`);
    assert.deepEqual(check.altered, [], `player ${i} gets them byte for byte`);
    assert.ok(check.inOrder, `player ${i} gets them in order`);
    t.diagnostic(`player ${i} (node ${'abbc'[i]}): median delay ${check.delays[check.delays.length >> 1]} ms`);
  }
  // Node A sends each packet once to B and once to C: B's two players share one relay.
  const [sentByA, receivedByB, receivedByC, sentToPlayersByA] = await Promise.all([
    serverMetric(a.httpUrl, 'parley_relay_sent_packets_total'),
    serverMetric(b.httpUrl, 'parley_relay_received_packets_total'),
    serverMetric(c.httpUrl, 'parley_relay_received_packets_total'),
    serverMetric(a.httpUrl, 'parley_media_rtp_sent_packets_total'),
  ]);
  t.diagnostic(
    `node A relayed ${sentByA} packets; B received ${receivedByB}, C ${receivedByC}; A sent ${sentToPlayersByA} to its own player`,
  );
  assert.ok(receivedByB > 0 && receivedByC > 0);
  // Each of B and C got about what A's own (one) player got: one copy per node, not per player.
  assert.ok(receivedByB < sentToPlayersByA * 1.3, `node B received one copy (${receivedByB} against ${sentToPlayersByA})`);
  assert.ok(sentByA < sentToPlayersByA * 2.6, `node A sent two copies (${sentByA} against ${sentToPlayersByA})`);
});
