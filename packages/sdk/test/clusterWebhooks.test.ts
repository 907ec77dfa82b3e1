/**
 * Webhooks of a cluster (three `parley start` nodes on a redis-server of the test's own): each
 * event reaches the app's callback at least once, with its own `event_id` and in its room's
 * `room_seq` order, though the node that caused it, and was delivering some of them, is SIGKILLed
 * while the receiver refuses them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, teardown, type ServerProcess } from '@parley/testkit';
import { webhookPartition } from '../../server/src/webhooks/redisWebhookQueue.js';
import { appWithCallback, assertGenuine, startReceiver, until, type Arrival } from '../../server/test/webhookHelpers.js';
import { loggedIn } from './clusterClients.js';

/** The webhook partitions a node holds now, as its log tells. */
function partitionsOf(node: ServerProcess): Set<number> {
  const held = new Set<number>();
  for (const { msg, partition } of node.logs) {
    if (msg === 'webhook partition taken') held.add(partition as number);
    if (msg === 'webhook partition handed over' || String(msg).startsWith('webhook partition lease lapsed'))
      held.delete(partition as number);
  }
  return held;
}

/** What a webhook reports, in a few words: its event, its user and its reason. */
function summary({ body }: Arrival): unknown[] {
  switch (body.event) {
    case 'room_login':
      return [body.event, body.user_account];
    case 'room_logout':
      return [body.event, body.user_account, body.reason];
    case 'room_close':
      return [body.event, body.close_reason];
    default:
      return [body.event];
  }
}

test('cluster webhooks: every event arrives, with its own event_id and in its room’s order, though its node is SIGKILLed while they are refused', async (t) => {
  const closeLater = teardown(t);
  let accepting = false;
  const receiver = await startReceiver(() => (accepting ? 200 : 500));
  closeLater(() => receiver.close());
  const app = appWithCallback(8_000_021, receiver.url);
  const { nodes } = await startCluster(t, {
    heartbeatTimeoutMs: 1_500,
    leaseMs: 600,
    config: { apps: [app], webhooks: { retryDelaysMs: [300, 600, 1_200, 2_400, 4_800] } },
  });
  const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
  // The webhook partitions spread over the three nodes.
  await until(
    () => nodes.every((node) => partitionsOf(node).size > 0) && nodes.reduce((n, node) => n + partitionsOf(node).size, 0) === 16,
    15_000,
  );
  // Rooms whose webhooks node A delivers, and rooms whose webhooks the others do.
  const onA = partitionsOf(a);
  const names = Array.from({ length: 200 }, (_, i) => `wh-${i}`);
  const rooms = [
    ...names.filter((r) => onA.has(webhookPartition(app.appID, r))).slice(0, 2),
    ...names.filter((r) => !onA.has(webhookPartition(app.appID, r))).slice(0, 2),
  ];
  assert.equal(rooms.length, 4);

  // In each room on node A: alice and bob log in, alice logs out, bob stays until node A dies (userIDs are app-wide: one of each per room).
  for (const roomID of rooms) {
    const alice = await loggedIn(a, app, roomID, `${roomID}-alice`);
    await loggedIn(a, app, roomID, `${roomID}-bob`);
    assert.equal((await alice.request('logout')).code, 0);
    alice.ws.close();
  }
  // A room everyone leaves before.
  const carol = await loggedIn(a, app, 'wh-done', 'carol');
  assert.equal((await carol.request('logout')).code, 0);
  carol.ws.close();
  // Each room's first webhook has been refused at least once before node A is killed.
  await receiver.waitFor((arrivals) => [...rooms, 'wh-done'].every((roomID) => arrivals.some((x) => x.body.room_id === roomID)));
  const refused = receiver.arrivals.length;
  process.kill(a.pid, 'SIGKILL');
  const killed = Date.now();
  accepting = true;

  const expected = new Map<string, unknown[][]>([
    ...rooms.map((roomID): [string, unknown[][]] => [
      roomID,
      [
        ['room_create'],
        ['room_login', `${roomID}-alice`],
        ['room_login', `${roomID}-bob`],
        ['room_logout', `${roomID}-alice`, 0],
        ['room_logout', `${roomID}-bob`, 1],
        ['room_close', 1],
      ],
    ]),
    ['wh-done', [['room_create'], ['room_login', 'carol'], ['room_logout', 'carol', 0], ['room_close', 0]]],
  ]);
  /** Each room's accepted webhooks, each event once (its first), in order of arrival. */
  const delivered = (roomID: string): Arrival[] => {
    const seen = new Set<string>();
    return receiver.arrivals.filter(
      (x) => x.body.room_id === roomID && Number(x.answer) < 300 && !seen.has(x.body.event_id) && seen.add(x.body.event_id),
    );
  };
  await until(() => [...expected].every(([roomID, events]) => delivered(roomID).length === events.length), 30_000);
  t.diagnostic(
    `all webhooks delivered ${Date.now() - killed} ms after node A was killed (${refused} attempts refused before, ${receiver.arrivals.length} in all)`,
  );

  for (const arrival of receiver.arrivals) assertGenuine(arrival, app.appID);
  for (const [roomID, events] of expected) {
    const arrivals = delivered(roomID);
    assert.deepEqual(arrivals.map(summary), events, `${roomID}: every event once, in room_seq order`);
    const seqs = arrivals.map((x) => x.body.room_seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
      `${roomID}: increasing room_seq`,
    );
    assert.equal(new Set(arrivals.map((x) => x.body.room_session_id)).size, 1);
  }
  // An event_id names one event: the same on each of its attempts, another for every other event.
  const eventOf = new Map<string, string>();
  for (const { body } of receiver.arrivals) {
    const event = `${body.room_session_id}/${body.room_seq}`;
    assert.equal(eventOf.get(body.event_id) ?? event, event, `${body.event_id} names one event`);
    eventOf.set(body.event_id, event);
  }
  assert.equal(new Set(eventOf.values()).size, eventOf.size);
  assert.equal(
    eventOf.size,
    [...expected.values()].reduce((n, events) => n + events.length, 0),
  );
  // What node A held was taken over by nodes B and C.
  const claimed = [b, c].flatMap((node) => node.logs.filter((l) => l.msg === 'webhook partition taken' && onA.has(l.partition as number)));
  assert.ok(
    claimed.some((l) => Number(l.claimed) > 0),
    `node A's partitions taken over: ${JSON.stringify(claimed)}`,
  );
});
