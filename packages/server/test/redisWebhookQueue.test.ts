/**
 * The webhook queue of a cluster, against a redis-server of the test's own: nodes are the webhook
 * side of a server alone (a dispatcher on the Redis queue, fed room events by hand), in this
 * process or, to be killed, in one of their own.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startRedis, teardown, type RedisServer } from '@parley/testkit';
import type { AppConfig } from '../src/config.js';
import type { RoomServiceEvents } from '../src/rooms/observer.js';
import type { RedisClient } from '../src/rooms/store/redisRoomStore.js';
import { webhookPartition } from '../src/webhooks/redisWebhookQueue.js';
import {
  appWithCallback,
  assertGenuine,
  memoryLogger,
  nodeConnection,
  roomEvent,
  startReceiver,
  until,
  webhookNode,
  type Arrival,
  type Receiver,
} from './webhookHelpers.js';

const PARTITIONS = 4;
const LEASE_MS = 600;

/** A room event as its observer emits it: the event's name and its one argument. */
type RoomEvent = { [K in keyof RoomServiceEvents]: [K, RoomServiceEvents[K][0]] }[keyof RoomServiceEvents];

/** The events of `roomID`'s lifetime numbered `seq`. */
const room = (appID: number, roomID: string) => ({
  created: (seq: number): RoomEvent => ['roomCreated', roomEvent(appID, roomID, seq)],
  joined: (seq: number, userID: string): RoomEvent => [
    'userJoined',
    { ...roomEvent(appID, roomID, seq), user: { userID, userName: userID }, sessionID: `s-${userID}` },
  ],
  left: (seq: number, userID: string): RoomEvent => [
    'userLeft',
    { ...roomEvent(appID, roomID, seq), user: { userID, userName: userID }, sessionID: `s-${userID}`, reason: 'logout' },
  ],
  closed: (seq: number): RoomEvent => ['roomClosed', { ...roomEvent(appID, roomID, seq), reason: 'logout' }],
});

interface Setup {
  redis: RedisServer;
  /** The test's own connection to it. */
  client: RedisClient;
  app: AppConfig;
  receiver: Receiver;
  closeLater: (close: () => unknown) => void;
  retryDelaysMs: number[];
}

async function setup(
  t: TestContext,
  appID: number,
  answer: Parameters<typeof startReceiver>[0],
  retryDelaysMs: number[],
  persistent = false,
): Promise<Setup> {
  const closeLater = teardown(t);
  const redis = await startRedis({ persistent });
  closeLater(() => redis.stop());
  const client = await nodeConnection(redis.url);
  closeLater(() => client.destroy());
  const receiver = await startReceiver(answer);
  closeLater(() => receiver.close());
  return { redis, client, app: appWithCallback(appID, receiver.url), receiver, closeLater, retryDelaysMs };
}

/** A node in this process, logging into memory. */
async function nodeHere({ redis, app, closeLater, retryDelaysMs }: Setup, nodeId: string) {
  const { log, lines } = memoryLogger();
  const node = await webhookNode({
    redisUrl: redis.url,
    nodeId,
    app,
    leaseMs: LEASE_MS,
    partitions: PARTITIONS,
    webhooks: { retryDelaysMs },
    log,
  });
  closeLater(() => node.close());
  return {
    ...node,
    logs: lines,
    emit: ([name, payload]: RoomEvent) => void (node.observer as EventEmitter).emit(name, payload),
  };
}

/** A node in a process of its own, killed at the end of the test if the test has not. */
async function nodeProcess({ redis, app, closeLater, retryDelaysMs }: Setup, nodeId: string) {
  const options = { redisUrl: redis.url, nodeId, app, leaseMs: LEASE_MS, partitions: PARTITIONS, webhooks: { retryDelaysMs } };
  const script = fileURLToPath(new URL('./webhookNodeProcess.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  closeLater(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const logs: Array<Record<string, unknown>> = [];
  createInterface({ input: child.stdout }).on('line', (line) => logs.push(JSON.parse(line) as Record<string, unknown>));
  await until(() => logs.some((entry) => entry.msg === 'node ready'));
  return {
    logs,
    emit: (event: RoomEvent) => void child.stdin.write(`${JSON.stringify(event)}\n`),
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Who holds each partition's lease now. */
const owners = (client: RedisClient): Promise<Array<string | null>> =>
  client.mGet(Array.from({ length: PARTITIONS }, (_, p) => `parley:{webhooks:${p}}:owner`));

/** What the partitions' streams and attempt counts still hold. */
async function leftInRedis(client: RedisClient): Promise<number> {
  let left = 0;
  for (let p = 0; p < PARTITIONS; p++)
    left += (await client.xLen(`parley:{webhooks:${p}}`)) + (await client.hLen(`parley:{webhooks:${p}}:attempts`));
  return left;
}

/** The first accepted (2xx) arrival of each event, in order of arrival. */
function firstAccepted(receiver: Receiver): Arrival[] {
  const seen = new Set<string>();
  return receiver.arrivals.filter((a) => Number(a.answer) < 300 && !seen.has(a.body.event_id) && seen.add(a.body.event_id));
}

/** Every room's accepted webhooks are in increasing room_seq, and each event_id names one event, the same on each of its attempts. */
function assertOrderAndIds(receiver: Receiver, firsts: Arrival[]): void {
  const byRoom = new Map<string, number[]>();
  for (const { body } of firsts) byRoom.set(body.room_session_id, [...(byRoom.get(body.room_session_id) ?? []), body.room_seq]);
  for (const [life, seqs] of byRoom)
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
      `${life}: delivered in room_seq order`,
    );
  for (const { body } of receiver.arrivals) assert.equal(body.event_id, `${body.appid}-${body.room_session_id}-${body.room_seq}`);
}

test('cluster webhooks: a node that dies with webhooks it caused and was delivering: another node delivers each, in each room’s order', async (t) => {
  let accepting = false;
  const s = await setup(t, 4_000_001, () => (accepting ? 200 : 500), [200, 400, 800, 1_600, 3_200]);
  const n1 = await nodeProcess(s, 'n1');
  await until(() => n1.logs.filter((l) => l.msg === 'webhook partition taken').length === PARTITIONS, 10_000);
  const rooms = Array.from({ length: 6 }, (_, i) => `r${i}`);
  for (const roomID of rooms) {
    const r = room(s.app.appID, roomID);
    for (const event of [r.created(1), r.joined(2, 'alice'), r.joined(3, 'bob'), r.left(5, 'alice')]) n1.emit(event);
  }
  // Each room's first webhook has been refused at least once: node 1 holds them all, unacknowledged.
  await s.receiver.waitFor((a) => rooms.every((roomID) => a.some((x) => x.body.room_id === roomID && x.body.room_seq === 1)));
  await n1.kill();
  accepting = true;
  const killed = Date.now();
  const n2 = await nodeHere(s, 'n2');
  await until(() => firstAccepted(s.receiver).length === rooms.length * 4, 15_000);
  t.diagnostic(`all ${rooms.length * 4} webhooks delivered ${Date.now() - killed} ms after node 1 was killed`);

  for (const arrival of s.receiver.arrivals) assertGenuine(arrival, s.app.appID);
  assertOrderAndIds(s.receiver, firstAccepted(s.receiver));
  for (const roomID of rooms) {
    const seqs = s.receiver.arrivals.filter((a) => a.body.room_id === roomID).map((a) => a.body.room_seq);
    assert.deepEqual([...new Set(seqs)], [1, 2, 3, 5], `${roomID}: every event, in order`);
  }
  // Node 2 took node 1's partitions over with what node 1 had read and left unacknowledged, and acknowledged it all.
  const claimed = n2.logs.filter((l) => l.msg === 'webhook partition taken').reduce((sum, l) => sum + Number(l.claimed), 0);
  t.diagnostic(`node 2 claimed ${claimed} webhooks left by node 1`);
  assert.ok(claimed >= rooms.length, `node 2 claimed ${claimed}`);
  await until(() => n2.dispatcher.stats().pending === 0);
  assert.equal(await leftInRedis(s.client), 0, 'delivered webhooks are acknowledged and deleted');
});

test('cluster webhooks: retries are bounded across nodes: the attempts of a dead node count, and the last failure drops and removes the webhook', async (t) => {
  const retryDelaysMs = [300, 300, 300, 300, 300];
  const s = await setup(t, 4_000_002, () => 500, retryDelaysMs);
  const n1 = await nodeProcess(s, 'n1');
  await until(() => n1.logs.filter((l) => l.msg === 'webhook partition taken').length === PARTITIONS, 10_000);
  n1.emit(room(s.app.appID, 'doomed').created(1));
  const attemptsKey = `parley:{webhooks:${webhookPartition(s.app.appID, 'doomed', PARTITIONS)}}:attempts`;
  // Killed as soon as its second failure is recorded, a retry delay before its third attempt.
  await until(async () => Object.values(await s.client.hGetAll(attemptsKey)).some((v) => v.startsWith('2:')), 10_000);
  await n1.kill();
  assert.equal(s.receiver.arrivals.length, 2);
  const n2 = await nodeHere(s, 'n2');
  await until(() => n2.dispatcher.stats().dropped === 1, 15_000);
  const dropped = n2.logs.filter((l) => l.msg === 'webhook dropped');
  assert.deepEqual(
    dropped.map((l) => [l.event, l.room_id, l.attempts, l.why]),
    [['room_create', 'doomed', 1 + retryDelaysMs.length, 'HTTP 500']],
  );
  await sleep(retryDelaysMs[0]! + 300);
  assert.equal(s.receiver.arrivals.length, 1 + retryDelaysMs.length, 'one first attempt and the retries, between both nodes');
  assert.equal(new Set(s.receiver.arrivals.map((a) => a.body.event_id)).size, 1, 'the same event_id on every attempt');
  assert.equal(await leftInRedis(s.client), 0, 'dropped webhooks are acknowledged and deleted');
});

test('cluster webhooks: two nodes share the partitions; a room’s events caused on both and appended out of order arrive in order; a failing room holds up only itself', async (t) => {
  const s = await setup(
    t,
    4_000_003,
    (arrival, before) => (arrival.body.room_id === 'stuck' && arrival.body.room_seq === 1 && before < 2 ? 500 : 200),
    [300, 300, 300],
  );
  const [n1, n2] = [await nodeHere(s, 'n1'), await nodeHere(s, 'n2')];
  // The partitions spread over both nodes, two each.
  await until(async () => {
    const held = await owners(s.client);
    return held.filter((owner) => owner === 'n1').length === 2 && held.filter((owner) => owner === 'n2').length === 2;
  }, 10_000);
  const rooms = ['stuck', 'r1', 'r2', 'r3', 'r4'];
  for (const roomID of rooms) {
    const r = room(s.app.appID, roomID);
    n1.emit(r.created(1));
    // Number 3, logged on node 2, is appended before number 2 of node 1.
    n2.emit(r.joined(3, 'bob'));
    await sleep(20);
    n1.emit(r.joined(2, 'alice'));
    n2.emit(r.left(4, 'alice'));
  }
  await until(() => firstAccepted(s.receiver).length === rooms.length * 4, 10_000);

  for (const arrival of s.receiver.arrivals) assertGenuine(arrival, s.app.appID);
  for (const roomID of rooms) {
    assert.deepEqual(
      s.receiver.arrivals.filter((a) => a.body.room_id === roomID).map((a) => a.body.room_seq),
      roomID === 'stuck' ? [1, 1, 1, 2, 3, 4] : [1, 2, 3, 4],
      `${roomID}: in room_seq order, each after the one before was delivered`,
    );
  }
  assertOrderAndIds(s.receiver, firstAccepted(s.receiver));
  assert.equal(new Set(s.receiver.arrivals.map((a) => a.body.event_id)).size, rooms.length * 4, 'an event_id for each event');
  // The other rooms were all delivered while the stuck room waited for its retries.
  const stuckDelivered = s.receiver.arrivals.filter((a) => a.body.room_id === 'stuck')[2]!.at;
  assert.ok(s.receiver.arrivals.filter((a) => a.body.room_id !== 'stuck').every((a) => a.at < stuckDelivered));
  assert.ok(![...n1.logs, ...n2.logs].some((l) => l.msg === 'webhook delivered after later ones of its room'));
});

test('cluster webhooks: while Redis is out of reach a node’s webhooks wait in its memory, then are appended and delivered in order', async (t) => {
  const s = await setup(t, 4_000_004, () => 200, [200, 400], true);
  const n1 = await nodeHere(s, 'n1');
  await until(() => n1.logs.filter((l) => l.msg === 'webhook partition taken').length === PARTITIONS, 10_000);
  await s.redis.halt();
  await until(() => !n1.redis.isReady);
  const r = room(s.app.appID, 'outage');
  for (const event of [r.created(1), r.joined(2, 'alice'), r.left(3, 'alice'), r.closed(4)]) n1.emit(event);
  assert.equal(n1.dispatcher.stats().pending, 4);
  assert.ok(n1.logs.some((l) => l.msg === 'Redis out of reach: webhooks wait in memory until it is back'));
  await sleep(300);
  assert.equal(s.receiver.arrivals.length, 0);

  await s.redis.resume();
  await s.receiver.waitFor((a) => a.length === 4, 10_000);
  assert.deepEqual(
    s.receiver.arrivals.map((a) => [a.body.event, a.body.room_seq]),
    [
      ['room_create', 1],
      ['room_login', 2],
      ['room_logout', 3],
      ['room_close', 4],
    ],
  );
  assert.deepEqual(
    n1.logs.filter((l) => l.msg === 'webhooks that waited for Redis appended').map((l) => l.appended),
    [4],
  );
});

test('cluster webhooks: stream entries a node cannot read are logged and skipped, and what follows is delivered', async (t) => {
  const s = await setup(t, 4_000_005, () => 200, [200]);
  const n1 = await nodeHere(s, 'n1');
  await until(() => n1.logs.filter((l) => l.msg === 'webhook partition taken').length === PARTITIONS, 10_000);
  const stream = `parley:{webhooks:${webhookPartition(s.app.appID, 'r-odd', PARTITIONS)}}`;
  await s.client.xAdd(stream, '*', { webhook: '{"event":' });
  await s.client.xAdd(stream, '*', { webhook: JSON.stringify({ event: 'room_party', appid: s.app.appID }) });
  await s.client.xAdd(stream, '*', { something: 'else' });
  n1.emit(room(s.app.appID, 'r-odd').created(1));
  await s.receiver.waitFor((a) => a.length === 1);
  await until(() => n1.logs.filter((l) => l.msg === 'unreadable webhook entry skipped').length === 3);
  assert.deepEqual(
    n1.logs.filter((l) => l.msg === 'unreadable webhook entry skipped').map((l) => l.why),
    ['not JSON', 'not a webhook', 'not JSON'],
  );
  await until(() => n1.dispatcher.stats().pending === 0);
  await sleep(100);
  assert.equal(await leftInRedis(s.client), 0, 'skipped entries are acknowledged and deleted too');
});
