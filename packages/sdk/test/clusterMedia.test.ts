/**
 * Media across the nodes of a cluster: a stream published on one node is played on every node,
 * relayed once to each other node whatever the number of players there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, PlayerState, PublisherState, RoomStateChangedReason, UpdateType } from '@parley/sdk';
import { callServerApi, serverMetric, startCluster, teardown, type ServerProcess } from '@parley/testkit';
import type { AppConfig } from '@parley/server';
import { TestClient, sleep } from './helpers.js';
import { checkFrames, publishNumberedFrames, receiveNumberedFrames, type ReceivedFrames } from './numberedCall.js';

function clientOf(node: ServerProcess, app: AppConfig, closeLater: (close: () => unknown) => void): TestClient {
  const client = new TestClient({ appID: app.appID, appSign: app.appSign, server: node.url });
  closeLater(() => client.destroy());
  return client;
}

test('cluster: one publisher on node A, players on nodes A, B (two) and C get every frame byte for byte, one relay per node', async (t) => {
  // Registered first, so run first: the clients go before the nodes.
  const closeLater = teardown(t);
  const { app, nodes } = await startCluster(t);
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

test('cluster: SIGKILL the publisher’s node mid-call: everyone resumes on another node, no room event is lost, media is back within 5 s', async (t) => {
  // Registered first, so run first: the clients go before the nodes.
  const closeLater = teardown(t);
  const { app, nodes } = await startCluster(t, { leaseMs: 1_500 });
  const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
  // Each client's list starts at its node; A's clients move on to B.
  const listFrom = (...order: ServerProcess[]): string[] => order.map((node) => node.url);
  const client = (servers: string[]): TestClient => {
    const made = new TestClient({ appID: app.appID, appSign: app.appSign, server: servers });
    closeLater(() => made.destroy());
    return made;
  };
  const roomID = 'r-failover';
  const publisher = client(listFrom(a, b, c));
  assert.equal(await publisher.login(roomID, 'pub'), 0);
  await publisher.publish('s-failover');
  const published = publishNumberedFrames(publisher.engine);
  closeLater(() => published.stop());
  const players = await Promise.all(
    [listFrom(a, b, c), listFrom(b, c, a), listFrom(c, a, b)].map(async (servers, i) => {
      const player = client(servers);
      assert.equal(await player.login(roomID, `viewer-${'abc'[i]}`), 0);
      const received = receiveNumberedFrames(player.engine);
      player.engine.startPlayingStream('s-failover');
      await player.waitFor('playerRecvVideoFirstFrame');
      return { player, received };
    }),
  );
  await sleep(1_000);
  const everyone = [publisher, ...players.map((p) => p.player)];
  const killedAt = Date.now();
  process.kill(a.pid, 'SIGKILL');

  // Back within 5 s: every player renders frames sent after the kill.
  const sentAfterKill = (frame: { number: number }): boolean => (published.sent.get(frame.number)?.atMs ?? 0) > killedAt;
  for (const [i, { received }] of players.entries()) {
    const deadline = killedAt + 5_000;
    while (!received.some(sentAfterKill) && Date.now() < deadline) await sleep(50);
    const back = received.find(sentAfterKill);
    assert.ok(back, `player on node ${'abc'[i]} renders frames again within 5 s`);
    t.diagnostic(
      `player on node ${'abc'[i]}: media back ${back.atMs - killedAt} ms after the kill (longest gap ${longestGap(received, killedAt)} ms)`,
    );
  }
  // A user who arrives meanwhile is seen by all, once; nobody saw anyone leave or any stream go.
  const newcomer = client(listFrom(c, b));
  assert.equal(await newcomer.login(roomID, 'newcomer'), 0);
  for (const member of everyone) {
    await member.waitFor('roomUserUpdate', (_, type, users) => type === UpdateType.Add && users.some((u) => u.userID === 'newcomer'));
    assert.deepEqual(member.anomalies, []);
    const deletes = [...member.of('roomUserUpdate'), ...member.of('roomStreamUpdate')].filter(([, type]) => type !== UpdateType.Add);
    assert.deepEqual(deletes, [], 'no DELETE of a user or stream');
    const states = member.of('roomStateChanged').map(([, reason]) => reason);
    const ends = [RoomStateChangedReason.KickOut, RoomStateChangedReason.ReconnectFailed, RoomStateChangedReason.Logout];
    assert.ok(!states.some((reason) => ends.includes(reason)), `the room did not end: ${JSON.stringify(states)}`);
  }
  assert.deepEqual([...newcomer.view.users].sort(), ['pub', 'viewer-a', 'viewer-b', 'viewer-c']);
  assert.deepEqual([...newcomer.view.streams], ['s-failover']);
});

/** The longest time without a frame rendered, from `fromMs` to the last frame. */
function longestGap(received: ReceivedFrames, fromMs: number): number {
  let [gap, last] = [0, fromMs];
  for (const { atMs } of received) {
    if (atMs < fromMs) continue;
    gap = Math.max(gap, atMs - last);
    last = atMs;
  }
  return gap;
}

/** Resolves once the process has exited; its time. */
async function exitOf(pid: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return Date.now();
    }
    if (Date.now() > deadline) throw new Error(`process ${pid} still runs after ${timeoutMs} ms`);
    await sleep(25);
  }
}

test('cluster: SIGTERM drains a node: its clients resume on another node (1012), nobody sees a change, and it exits once they have', async (t) => {
  // Registered first, so run first: the clients go before the nodes.
  const closeLater = teardown(t);
  const { app, nodes } = await startCluster(t, { config: { drainMs: 20_000 } });
  const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
  const client = (...order: ServerProcess[]): TestClient => {
    const made = new TestClient({ appID: app.appID, appSign: app.appSign, server: order.map((node) => node.url) });
    closeLater(() => made.destroy());
    return made;
  };
  const roomID = 'r-drain';
  const publisher = client(a, b, c);
  assert.equal(await publisher.login(roomID, 'pub'), 0);
  await publisher.publish('s-drain');
  const published = publishNumberedFrames(publisher.engine);
  closeLater(() => published.stop());
  const player = client(b, c);
  assert.equal(await player.login(roomID, 'viewer'), 0);
  const received = receiveNumberedFrames(player.engine);
  player.engine.startPlayingStream('s-drain');
  await player.waitFor('playerRecvVideoFirstFrame');
  const watcher = client(a, c);
  assert.equal(await watcher.login(roomID, 'watcher'), 0);
  await sleep(500);

  const stoppedAt = Date.now();
  process.kill(a.pid, 'SIGTERM');
  // Not ready from the moment the signal is handled, while its clients move.
  let ready = 200;
  for (const deadline = Date.now() + 1_000; ready === 200 && Date.now() < deadline; await sleep(5)) {
    ready = await fetch(`${a.httpUrl}/ready`).then((r) => r.status);
  }
  assert.equal(ready, 503, 'a draining node is not ready');
  const exitedAt = await exitOf(a.pid, 15_000);
  t.diagnostic(`node A exited ${exitedAt - stoppedAt} ms after SIGTERM (drain limit 20 s)`);
  for (const moved of [publisher, watcher]) {
    const states = moved.of('roomStateChanged').map(([, reason]) => reason);
    assert.deepEqual(states.slice(-2), [RoomStateChangedReason.Reconnecting, RoomStateChangedReason.Reconnected]);
  }
  const sentAfterStop = (frame: { number: number }): boolean => (published.sent.get(frame.number)?.atMs ?? 0) > stoppedAt;
  const deadline = Date.now() + 5_000;
  while (!received.some(sentAfterStop) && Date.now() < deadline) await sleep(50);
  const back = received.find(sentAfterStop);
  assert.ok(back, 'the player renders the stream again');
  t.diagnostic(
    `media back ${back.atMs - stoppedAt} ms after SIGTERM; longest gap in what the player rendered ${longestGap(received, stoppedAt)} ms`,
  );
  for (const member of [publisher, player, watcher]) {
    assert.deepEqual(member.anomalies, []);
    const deletes = [...member.of('roomUserUpdate'), ...member.of('roomStreamUpdate')].filter(([, type]) => type !== UpdateType.Add);
    assert.deepEqual(deletes, [], 'no DELETE of a user or stream');
  }
});

test('cluster: ForbidRTCStream on node C stops a stream published on node A: its publisher is told (1003025), its player on node B sees it go', async (t) => {
  // Registered first, so run first: the clients go before the nodes.
  const closeLater = teardown(t);
  const { app, nodes } = await startCluster(t);
  const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
  const publisher = clientOf(a, app, closeLater);
  assert.equal(await publisher.login('r-forbid', 'pub'), 0);
  await publisher.publish('s-forbid');
  const player = clientOf(b, app, closeLater);
  assert.equal(await player.login('r-forbid', 'viewer'), 0);
  await player.waitFor('roomStreamUpdate', (_, type) => type === UpdateType.Add);
  const forbidden = await callServerApi(c.httpUrl, app, 'ForbidRTCStream', { StreamId: 's-forbid' });
  assert.equal(forbidden.Code, 0);
  await publisher.waitFor(
    'publisherStateUpdate',
    (_, state, code) => state === PublisherState.NoPublish && code === ErrorCode.StreamForbidden,
  );
  await player.waitFor('roomStreamUpdate', (_, type, streams) => type === UpdateType.Delete && streams[0]!.streamID === 's-forbid');
});

test('cluster: Redis restarted mid-call: media across the nodes flows on throughout, and the room is intact after', async (t) => {
  // Registered first, so run first: the clients go before the nodes.
  const closeLater = teardown(t);
  const { app, nodes, redis } = await startCluster(t, { nodeIds: ['a', 'b'], persistent: true });
  const [a, b] = nodes as [ServerProcess, ServerProcess];
  const publisher = clientOf(a, app, closeLater);
  assert.equal(await publisher.login('r-redis', 'pub'), 0);
  await publisher.publish('s-redis');
  const published = publishNumberedFrames(publisher.engine);
  closeLater(() => published.stop());
  const player = clientOf(b, app, closeLater);
  assert.equal(await player.login('r-redis', 'viewer'), 0);
  const received = receiveNumberedFrames(player.engine);
  player.engine.startPlayingStream('s-redis');
  await player.waitFor('playerRecvVideoFirstFrame');
  await sleep(500);

  const haltedAt = Date.now();
  await redis.halt();
  await sleep(3_000);
  const resumedAt = Date.now();
  await redis.resume();
  await sleep(1_000);
  const check = checkFrames(published, received, haltedAt, resumedAt, 1_000);
  t.diagnostic(`${check.frames} frames sent while Redis was down: ${check.missing.length} missing, ${check.late} late`);
  assert.ok(check.frames >= 60);
  assert.deepEqual(check.missing, [], 'every frame sent while Redis was down arrives');
  for (const [name, member] of [['publisher', publisher] as const, ['player', player] as const]) {
    const ends = [RoomStateChangedReason.KickOut, RoomStateChangedReason.ReconnectFailed, RoomStateChangedReason.Logout];
    assert.ok(!member.of('roomStateChanged').some(([, reason]) => ends.includes(reason)));
    const seen = member.events
      .filter((e) => /^room(StateChanged|StreamUpdate|UserUpdate)$/.test(e.event))
      .map((e) => `${e.event} ${JSON.stringify(e.args)}`);
    assert.deepEqual(member.anomalies, [], `${name} saw: ${seen.join('; ')}`);
  }
  // The room goes on: a newcomer sees both, and the stream.
  const newcomer = clientOf(b, app, closeLater);
  assert.equal(await newcomer.login('r-redis', 'newcomer'), 0);
  await newcomer.waitFor('roomStreamUpdate', (_, type) => type === UpdateType.Add);
  assert.deepEqual([...newcomer.view.users].sort(), ['pub', 'viewer']);
});
