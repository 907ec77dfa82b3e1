import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '@parley/sdk';
import { sleep, startTestServer, type TestClient } from './helpers.js';
import { RawClient } from './rawClient.js';

const callback = <T extends unknown[]>(call: (done: (...args: T) => void) => void): Promise<T> =>
  new Promise((resolve) => call((...args) => resolve(args)));

test('room messaging between three users: in order, never to the sender, never to another room', async (t) => {
  const env = await startTestServer({ onlineCountIntervalMs: 200 });
  t.after(() => env.close());
  const [a, b, c] = await env.inRoom('r-chat', 'a', 'b', 'c');
  const [elsewhere] = await env.inRoom('r-other', 'elsewhere');
  const users = { a, b, c };

  await t.test('broadcast: each receiver gets everyone else’s messages in one order, once', async () => {
    // All three send at once, interleaved.
    const sent: Array<Promise<[number, number]>> = [];
    for (let i = 0; i < 10; i++) for (const [name, client] of Object.entries(users)) sent.push(client.broadcast('r-chat', `${name}${i}`));
    const results = await Promise.all(sent);
    assert.ok(results.every(([code]) => code === 0));
    const ids = results.map(([, id]) => id);
    assert.equal(new Set(ids).size, 30, 'every message has its own messageID');
    await sleep(300);
    const order = new Map(results.map(([, id], i) => [id, i]));
    for (const [name, client] of Object.entries(users)) {
      const got = client.of('IMRecvBroadcastMessage').flatMap(([, list]) => list);
      assert.equal(got.length, 20, `${name} gets the 20 messages of the others`);
      assert.ok(
        got.every((m) => m.fromUser.userID !== name && m.message.startsWith(m.fromUser.userID)),
        `${name} never gets its own messages`,
      );
      const ranks = got.map((m) => m.messageID);
      assert.deepEqual(
        ranks,
        [...ranks].sort((x, y) => x - y),
        `${name} gets them in messageID order`,
      );
      // Each sender's messages keep the order they were sent in.
      for (const from of Object.keys(users).filter((n) => n !== name)) {
        const theirs = got.filter((m) => m.fromUser.userID === from).map((m) => m.message);
        assert.deepEqual(
          theirs,
          Array.from({ length: 10 }, (_, i) => `${from}${i}`),
        );
      }
      assert.ok(got.every((m) => order.has(m.messageID) && m.sendTime > 0));
    }
    assert.deepEqual(elsewhere.broadcasts(), [], 'another room hears nothing');
  });

  await t.test('custom commands go to the listed users, or to everyone else', async () => {
    const commands = (client: TestClient): string[] =>
      client.of('IMRecvCustomCommand').map(([, from, command]) => `${from.userID}:${command}`);
    const toB = await callback<[number]>((done) => a.engine.sendCustomCommand('r-chat', 'just-b', [{ userID: 'b', userName: 'b' }], done));
    const toAll = await callback<[number]>((done) => a.engine.sendCustomCommand('r-chat', 'all', null, done));
    assert.deepEqual([toB, toAll], [[0], [0]]);
    await b.waitFor('IMRecvCustomCommand', (_, __, command) => command === 'all');
    await c.waitFor('IMRecvCustomCommand', (_, __, command) => command === 'all');
    assert.deepEqual(commands(b), ['a:just-b', 'a:all']);
    assert.deepEqual(commands(c), ['a:all']);
    assert.deepEqual(commands(a), []);
    assert.deepEqual(commands(elsewhere), []);
  });

  await t.test('barrage messages reach the others (best effort)', async () => {
    const [code, messageID] = await callback<[number, string]>((done) => b.engine.sendBarrageMessage('r-chat', 'whoosh', done));
    assert.equal(code, 0);
    assert.ok(messageID.length > 0);
    for (const client of [a, c]) {
      const [, [message]] = await client.waitFor('IMRecvBarrageMessage');
      assert.deepEqual([message!.message, message!.fromUser.userID, message!.messageID], ['whoosh', 'b', messageID]);
    }
    await sleep(100);
    assert.equal(b.of('IMRecvBarrageMessage').length + elsewhere.of('IMRecvBarrageMessage').length, 0);
  });

  await t.test('room extra info reaches the others and later joiners; stream extra info reaches players-to-be', async () => {
    assert.deepEqual(await callback<[number]>((done) => a.engine.setRoomExtraInfo('r-chat', 'topic', 'planning', done)), [0]);
    const [, [info]] = await b.waitFor('roomExtraInfoUpdate');
    assert.deepEqual([info!.key, info!.value, info!.updateUser.userID], ['topic', 'planning', 'a']);
    assert.equal(a.of('roomExtraInfoUpdate').length, 0, 'not back to the setter');
    const late = env.client();
    assert.equal(await late.login('r-chat', 'late'), 0);
    const [, infos] = await late.waitFor('roomExtraInfoUpdate');
    assert.deepEqual(
      infos.map((i) => [i.key, i.value]),
      [['topic', 'planning']],
    );
    // The online count: at once for the newcomer, within the interval for the others.
    await late.waitFor('roomOnlineUserCountUpdate', (_, count) => count === 4);
    await a.waitFor('roomOnlineUserCountUpdate', (_, count) => count === 4);
    assert.deepEqual(
      elsewhere.of('roomOnlineUserCountUpdate').map(([, count]) => count),
      [1],
    );
    await late.destroy();

    c.engine.startPublishingStream('s-c', { extraInfo: 'camera' });
    await a.waitFor('roomStreamUpdate', (_, __, streams) => streams.some((s) => s.streamID === 's-c' && s.extraInfo === 'camera'));
    assert.deepEqual(await callback<[number]>((done) => c.engine.setStreamExtraInfo('screen', done)), [0]);
    const [, streams] = await b.waitFor('roomStreamExtraInfoUpdate');
    assert.deepEqual(
      streams.map((s) => [s.streamID, s.extraInfo]),
      [['s-c', 'screen']],
    );
    assert.deepEqual(
      (await env.server.rooms.describeRoom(env.app.appID, 'r-chat'))?.streams.map((s) => s.extraInfo),
      ['screen'],
    );
    assert.equal(c.of('roomStreamExtraInfoUpdate').length, 0);
  });

  await t.test('limits: sizes and keys get the spec’s codes, in the SDK and at the server; a flooded room is slowed', async () => {
    const long = 'x'.repeat(1025);
    const multibyte = 'é'.repeat(513); // 1026 bytes
    assert.deepEqual(await a.broadcast('r-chat', long), [ErrorCode.MessageTooLong, 0]);
    assert.deepEqual(await a.broadcast('r-chat', multibyte), [ErrorCode.MessageTooLong, 0]);
    assert.deepEqual(await a.broadcast('r-chat', 'x'.repeat(1024)), [0, (await a.broadcast('r-chat', 'probe'))[1] - 1]);
    assert.deepEqual(await a.broadcast('r-nowhere', 'hi'), [ErrorCode.NotLoggedIn, 0]);
    const extra = (key: string, value: string): Promise<[number]> =>
      callback<[number]>((done) => a.engine.setRoomExtraInfo('r-chat', key, value, done));
    assert.deepEqual(await extra('', 'v'), [ErrorCode.RoomExtraInfoKeyEmpty]);
    assert.deepEqual(await extra('k'.repeat(128), 'v'), [ErrorCode.RoomExtraInfoKeyTooLong]);
    assert.deepEqual(await extra('k', 'v'.repeat(128)), [ErrorCode.RoomExtraInfoValueTooLong]);
    const codes: number[] = [];
    for (let i = 0; i < 10; i++) codes.push((await extra(`key${i}`, 'v'))[0]);
    assert.deepEqual(codes, [...Array(9).fill(0), ErrorCode.RoomExtraInfoTooManyKeys], 'ten keys per room (topic was the first)');
    assert.deepEqual(await callback<[number]>((done) => b.engine.setStreamExtraInfo('x', done)), [ErrorCode.StreamNotFound]);

    // The server checks on its own, whatever the client.
    const raw = await RawClient.open(env.server.url);
    assert.equal((await raw.login(env.app, 'r-chat', { userID: 'raw' })).code, 0);
    assert.equal((await raw.request('broadcastMessage', { clientSeq: 1, message: long })).code, ErrorCode.MessageTooLong);
    assert.equal((await raw.request('setRoomExtraInfo', { clientSeq: 2, key: '', value: '' })).code, ErrorCode.RoomExtraInfoKeyEmpty);
    assert.equal((await raw.request('broadcastMessage', { clientSeq: 3, message: 'once' })).code, 0);
    assert.equal((await raw.request('broadcastMessage', { clientSeq: 3, message: 'once' })).code, 0, 'a repeat is answered');
    await sleep(200);
    assert.equal(b.broadcasts().filter((m) => m === 'once').length, 1, 'but not delivered twice');
    // 50 messages a second per room, bursts of 100: in a room of its own, whose bucket the messages above have not drawn on.
    const flooder = await RawClient.open(env.server.url);
    assert.equal((await flooder.login(env.app, 'r-flood', { userID: 'flooder' })).code, 0);
    const started = performance.now();
    const flood = await Promise.all(Array.from({ length: 150 }, (_, i) => flooder.request('barrageMessage', { message: `f${i}` })));
    const refilled = Math.ceil(((performance.now() - started) / 1000) * 50);
    const limited = flood.filter((r) => r.code === ErrorCode.RateLimited).length;
    assert.ok(limited >= 50 - refilled && limited <= 50, `${limited} of 150 refused, ${refilled} tokens refilled meanwhile`);
    flooder.ws.close();
  });
});
