/**
 * Parley as a cluster: three `parley start` processes sharing a redis-server of the test's own.
 * The app's rules hold across the nodes: one session per userID, one publisher per streamID, one
 * order of each room's events, and the server API of any node acting on all of them.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { RTCPeerConnection, useOPUS, useVP8 } from 'werift';
import { ErrorCode } from '@parley/protocol';
import { randomApp, type AppConfig } from '@parley/server';
import { callServerApi, startCluster, startRedis, startServerProcess, teardown, type ServerProcess } from '@parley/testkit';
import { RawClient } from './rawClient.js';
import { loggedIn } from './clusterClients.js';
import { sleep } from './helpers.js';

/** The userUpdates of `userID` a client was told: ADD 0, DELETE 1. */
const updatesOf = (client: RawClient, userID: string): number[] =>
  client.messages
    .filter((m) => m.type === 'userUpdate' && (m.users as Array<{ userID: string }>)[0]!.userID === userID)
    .map((m) => m.updateType as number);

/** A publisher's SDP offer (audio and VP8 video), as a werift client makes it. */
async function offer(t: TestContext): Promise<string> {
  const pc = new RTCPeerConnection({ codecs: { audio: [useOPUS()], video: [useVP8()] } });
  t.after(() => pc.close());
  pc.addTransceiver('audio', { direction: 'sendonly' });
  pc.addTransceiver('video', { direction: 'sendonly' });
  await pc.setLocalDescription(await pc.createOffer());
  return pc.localDescription!.sdp;
}

test('cluster: a login on node B ends the same userID’s session on node A within a second (KickOut 1002050)', async (t) => {
  const { app, nodes } = await startCluster(t);
  const [a, b] = nodes as [ServerProcess, ServerProcess];
  const watcher = await loggedIn(b, app, 'r-twin', 'watcher');
  const first = await loggedIn(a, app, 'r-twin', 'twin');
  const started = Date.now();
  await loggedIn(b, app, 'r-twin', 'twin');
  const kicked = await first.next((m) => m.type === 'kickedOut', 0, 1_000);
  assert.equal(kicked.code, ErrorCode.KickedOut);
  await first.closed(1_000);
  t.diagnostic(`kicked out on node A ${Date.now() - started} ms after the login on node B`);
  // The room saw the old session leave and the new one arrive, in that order.
  const updates = watcher.messages.filter((m) => m.type === 'userUpdate').map((m) => m.updateType);
  assert.deepEqual(updates, [0, 1, 0]);
});

test('cluster: the same streamID published on two nodes at once, 50 times: exactly one publisher wins each time', async (t) => {
  const { app, nodes } = await startCluster(t);
  const [a, b] = nodes as [ServerProcess, ServerProcess];
  const sdp = await offer(t);
  const onA = await loggedIn(a, app, 'r-race', 'on-a');
  const onB = await loggedIn(b, app, 'r-race', 'on-b');
  for (let round = 0; round < 50; round++) {
    const streamID = `race-${round}`;
    const replies = await Promise.all([onA, onB].map((c) => c.request('publish', { streamID, sdp, extraInfo: '' })));
    const codes = replies.map((r) => r.code as number);
    assert.deepEqual([...codes].sort(), [0, ErrorCode.StreamAlreadyPublished], `round ${round}: ${JSON.stringify(replies)}`);
    const winner = codes[0] === 0 ? onA : onB;
    assert.equal((await winner.request('unpublish', { streamID })).code, 0);
  }
});

test('cluster: six users over three nodes see the room’s events in one order, none missing', async (t) => {
  const { app, nodes } = await startCluster(t);
  const users = await Promise.all(Array.from({ length: 6 }, (_, i) => loggedIn(nodes[i % 3]!, app, 'r-six', `u${i}`)));
  const MESSAGES = 10;
  await Promise.all(
    users.map(async (user, i) => {
      for (let n = 0; n < MESSAGES; n++) {
        const reply = await user.request('broadcastMessage', { clientSeq: n + 1, message: `u${i}:${n}` });
        assert.equal(reply.code, 0);
      }
    }),
  );
  const heard = (user: RawClient): Array<[number, string]> =>
    user.messages.filter((m) => m.type === 'broadcastMessage').map((m) => [m.seq as number, (m.message as { message: string }).message]);
  // Each hears every message of the others once.
  for (const [i, user] of users.entries()) {
    await user.next(() => heard(user).length === 5 * MESSAGES, 0, 5_000).catch(() => undefined);
    assert.equal(heard(user).length, 5 * MESSAGES, `u${i} heard ${heard(user).length}`);
  }
  // In one order: numbers increase, and a number means the same message to everyone.
  const meaning = new Map<number, string>();
  for (const user of users) {
    const seqs = heard(user).map(([seq]) => seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
      'told in the order of the room’s numbers',
    );
    for (const [seq, text] of heard(user)) {
      assert.equal(meaning.get(seq) ?? text, text, `seq ${seq} is one message`);
      meaning.set(seq, text);
    }
  }
  assert.equal(meaning.size, 6 * MESSAGES);
});

test('cluster: the server API of node C sees and acts on users of nodes A and B', async (t) => {
  const { app, nodes } = await startCluster(t);
  const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
  const onA = await loggedIn(a, app, 'r-api', 'on-a');
  await loggedIn(b, app, 'r-api', 'on-b');
  const described = await callServerApi(c.httpUrl, app, 'DescribeUsers', { RoomId: 'r-api' });
  assert.deepEqual(
    (described.Data as { UserList: Array<{ UserId: string }> }).UserList.map((u) => u.UserId),
    ['on-a', 'on-b'],
  );
  const kicked = await callServerApi(c.httpUrl, app, 'KickoutUser', { RoomId: 'r-api', UserId: 'on-a' });
  assert.equal(kicked.Code, 0);
  const told = await onA.next((m) => m.type === 'kickedOut', 0, 2_000);
  assert.equal(told.code, ErrorCode.KickedByServer);
  await onA.closed(2_000);
  const after = await callServerApi(c.httpUrl, app, 'DescribeUserNum', { RoomId: 'r-api' });
  assert.deepEqual(after.Data, { UserCountList: [{ RoomId: 'r-api', UserCount: 1 }] });
});

test('cluster: a node whose Redis is unreachable at start says so in one line and exits 1', async () => {
  const unreachable = 'redis://127.0.0.1:1';
  await assert.rejects(
    startServerProcess({ listen: { host: '127.0.0.1', port: 0 }, apps: [randomApp(8_000_002)], cluster: { redisUrl: unreachable } }),
    (err: Error) => {
      // startServerProcess quotes what the process wrote on stderr: one line.
      assert.equal(err.message.trim().split('\n').length, 1, err.message);
      assert.match(err.message, /exited \(1\): parley: cluster\.redisUrl: Redis at redis:\/\/127\.0\.0\.1:1 is unreachable: \S/);
      return true;
    },
  );
});

test('cluster: while Redis is down a node is not ready and refuses state changes at once; ready again within 2 s of its return, the room intact', async (t) => {
  const closeLater = teardown(t);
  const redis = await startRedis({ persistent: true });
  closeLater(() => redis.stop());
  const app = randomApp(8_000_003);
  const node = await startServerProcess({
    listen: { host: '127.0.0.1', port: 0 },
    apps: [app],
    media: { listenIp: '127.0.0.1', udpPort: 0, tcpPort: false },
    cluster: { redisUrl: redis.url, nodeId: 'solo' },
  });
  closeLater(() => node.stop());
  const ready = async (): Promise<number> => (await fetch(new URL('/ready', node.httpUrl))).status;
  /** How long until /ready answers `status`. */
  const until = async (status: number): Promise<number> => {
    const started = Date.now();
    while ((await ready()) !== status) {
      if (Date.now() - started > 10_000) throw new Error(`/ready did not turn ${status}`);
      await sleep(20);
    }
    return Date.now() - started;
  };
  const alice = await loggedIn(node, app, 'r-outage', 'alice');
  assert.equal(await ready(), 200);

  await redis.halt();
  t.diagnostic(`/ready 503 ${await until(503)} ms after Redis stopped`);
  const started = Date.now();
  const refused = await alice.request('broadcastMessage', { clientSeq: 1, message: 'while Redis is down' });
  assert.equal(refused.code, ErrorCode.RoomInternalError);
  assert.ok(Date.now() - started < 1_000, 'refused at once, not held');
  assert.equal(alice.closeCode, undefined, 'the user stays connected');

  await redis.resume();
  const back = await until(200);
  t.diagnostic(`/ready 200 ${back} ms after Redis was back`);
  assert.ok(back < 2_000, `ready again within 2 s (${back} ms)`);
  // What Redis held is there still, and the room goes on.
  assert.equal((await alice.request('broadcastMessage', { clientSeq: 2, message: 'after' })).code, 0);
  const bob = await loggedIn(node, app, 'r-outage', 'bob');
  const login = bob.messages.find((m) => m.type === 'reply' && (m.data as { users?: unknown })?.users) as {
    data: { users: Array<{ userID: string }> };
  };
  assert.deepEqual(
    login.data.users.map((u) => u.userID),
    ['alice'],
  );
});

test('cluster: the sessions of a SIGKILLed node end once, cluster-wide, a heartbeat timeout after its lease lapsed', async (t) => {
  const heartbeatTimeoutMs = 1_500;
  const { app, nodes } = await startCluster(t, { heartbeatTimeoutMs, leaseMs: 600 });
  const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess];
  await loggedIn(a, app, 'r-dead', 'alice');
  const bob = await loggedIn(b, app, 'r-dead', 'bob');
  const carol = await loggedIn(c, app, 'r-dead', 'carol');
  const killed = Date.now();
  process.kill(a.pid, 'SIGKILL');
  for (const watcher of [bob, carol]) await watcher.next(() => updatesOf(watcher, 'alice').includes(1), 0, 10_000);
  t.diagnostic(`alice left ${Date.now() - killed} ms after her node was killed`);
  await sleep(1_500); // both B and C sweep: a second logout would come now
  assert.deepEqual(updatesOf(bob, 'alice'), [1]);
  assert.deepEqual(updatesOf(carol, 'alice'), [1]);
  const users = await callServerApi(b.httpUrl, app, 'DescribeUsers', { RoomId: 'r-dead' });
  assert.deepEqual(
    (users.Data as { UserList: Array<{ UserId: string }> }).UserList.map((u) => u.UserId),
    ['bob', 'carol'],
  );
});

test('cluster: a node paused past its lease changes nothing when it wakes: its swept session stays gone, it lets go of it and serves on', async (t) => {
  const heartbeatTimeoutMs = 1_500;
  const { app, nodes } = await startCluster(t, { heartbeatTimeoutMs, leaseMs: 600 });
  const [a, b] = nodes as [ServerProcess, ServerProcess];
  const alice = await loggedIn(a, app, 'r-pause', 'alice');
  const bob = await loggedIn(b, app, 'r-pause', 'bob');
  process.kill(a.pid, 'SIGSTOP');
  await bob.next(() => updatesOf(bob, 'alice').includes(1), 0, 10_000);
  process.kill(a.pid, 'SIGCONT');
  // Node A finds its lease lapsed, takes a new one and lets go of alice, whose session the cluster ended.
  await alice.closed(5_000);
  assert.ok(
    a.logs.some((entry) => entry.msg === 'lease lapsed: taking a new one'),
    'node A says its lease lapsed',
  );
  await sleep(500);
  assert.deepEqual(updatesOf(bob, 'alice'), [1], 'alice did not come back');
  // Node A serves on with its new lease.
  const again = await loggedIn(a, app, 'r-pause', 'alice');
  assert.equal((await again.request('broadcastMessage', { clientSeq: 1, message: 'back' })).code, 0);
  await bob.next((m) => m.type === 'broadcastMessage', 0, 2_000);
});

test('cluster: a node whose app has other secrets than the running nodes’ says so in one line and exits 1', async (t) => {
  const closeLater = teardown(t);
  const redis = await startRedis();
  closeLater(() => redis.stop());
  const app = randomApp(8_000_004);
  const node = (apps: AppConfig[], nodeId: string) =>
    startServerProcess({
      listen: { host: '127.0.0.1', port: 0 },
      apps,
      media: { listenIp: '127.0.0.1', udpPort: 0, tcpPort: false },
      cluster: { redisUrl: redis.url, nodeId },
    });
  const first = await node([app], 'first');
  closeLater(() => first.stop());
  const other = randomApp(app.appID);
  await assert.rejects(node([other], 'second'), (err: Error) => {
    assert.equal(err.message.trim().split('\n').length, 1, err.message);
    assert.match(
      err.message.trim(),
      /exited \(1\): parley: apps: app 8000004 has other secrets than on node first of the cluster; give every node the same apps$/,
    );
    return true;
  });
  // The same secrets join.
  const same = await node([app], 'third');
  closeLater(() => same.stop());
});

test('cluster: a reliable request re-sent on another node after a resume is not done twice: the same outcome, one message', async (t) => {
  const { app, nodes } = await startCluster(t);
  const [a, b] = nodes as [ServerProcess, ServerProcess];
  const watcher = await loggedIn(b, app, 'r-once', 'watcher');
  const sender = await RawClient.open(a.url);
  const login = await sender.login(app, 'r-once', { userID: 'sender' }, true);
  const session = login.data as { sessionID: string; resumeToken: string; seq: number };
  const first = await sender.request('broadcastMessage', { clientSeq: 1, message: 'once' });
  assert.equal(first.code, 0);
  // The reply was lost with the connection, say: the client resumes on node B and sends it again.
  sender.ws.terminate();
  const moved = await RawClient.open(b.url);
  t.after(() => moved.ws.terminate());
  assert.equal((await moved.resume(app.appID, session, session.seq)).code, 0);
  const again = await moved.request('broadcastMessage', { clientSeq: 1, message: 'once' });
  assert.deepEqual(again, { ...first, id: again.id });
  assert.equal((await moved.request('broadcastMessage', { clientSeq: 2, message: 'twice' })).code, 0);
  const text = (m: Record<string, unknown>): string => (m.message as { message: string }).message;
  await watcher.next((m) => m.type === 'broadcastMessage' && text(m) === 'twice');
  const told = watcher.messages.filter((m) => m.type === 'broadcastMessage').map(text);
  assert.deepEqual(told, ['once', 'twice']);
});
