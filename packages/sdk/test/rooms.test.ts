import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, PlayerState, PublisherState, RoomMode, RoomStateChangedReason, UpdateType } from '@parley/sdk';
import { createServer } from 'node:net';
import { loopFixtures, startTestServer, sleep, type TestClient } from './helpers.js';

const reasons = (c: { of(e: 'roomStateChanged'): unknown[][] }) => c.of('roomStateChanged').map((a) => [a[1], a[2]]);

test('room, publisher and player state machines', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());

  await t.test('wrong appSign fails the login with 1001005', async () => {
    const c = env.client({ appSign: 'f'.repeat(64) });
    assert.equal(await c.login('r-auth', 'u1'), ErrorCode.AppSignWrong);
    assert.deepEqual(reasons(c), [
      [RoomStateChangedReason.Logining, 0],
      [RoomStateChangedReason.LoginFailed, ErrorCode.AppSignWrong],
    ]);
  });

  await t.test('unknown appID fails the login with 1001004', async () => {
    const c = env.client({ appID: 42 });
    assert.equal(await c.login('r-auth', 'u1'), ErrorCode.AppIDUnknown);
  });

  await t.test('neither appSign nor token fails with 1002067', async () => {
    const c = env.client({ appSign: undefined });
    assert.equal(await c.login('r-auth', 'u1'), ErrorCode.NoTokenNorAppSign);
  });

  await t.test('a server that is not there fails with 1002030', async () => {
    const c = env.client({ server: 'ws://127.0.0.1:1/ws' });
    assert.equal(await c.login('r-auth', 'u1'), ErrorCode.ConnectFailed);
  });

  await t.test('invalid identifiers are refused locally with their codes', async () => {
    const c = env.client();
    assert.equal(await c.login('', 'u1'), ErrorCode.RoomIDEmpty);
    assert.equal(await c.login('r'.repeat(128), 'u1'), ErrorCode.RoomIDTooLong);
    assert.equal(await c.login('room with spaces', 'u1'), ErrorCode.RoomIDInvalidCharacter);
    assert.equal(await c.login('r1', ''), ErrorCode.UserIDEmpty);
    assert.equal(await c.login('r1', 'u'.repeat(64)), ErrorCode.UserIDTooLong);
    assert.equal(await c.login('r1', 'bad/id'), ErrorCode.UserIDInvalidCharacter);
    assert.throws(() => c.engine.loginRoom(42 as unknown as string, { userID: 'u', userName: 'u' }), TypeError);
  });

  await t.test('login twice is refused with 1002001 and changes nothing', async () => {
    const c = env.client();
    assert.equal(await c.login('r-twice', 'twice'), 0);
    assert.equal(await c.login('r-twice', 'twice'), ErrorCode.RoomCountExceeded);
    assert.equal(await c.login('r-other', 'twice'), ErrorCode.RoomCountExceeded);
    assert.deepEqual(reasons(c), [
      [RoomStateChangedReason.Logining, 0],
      [RoomStateChangedReason.Logined, 0],
    ]);
    c.engine.logoutRoom();
    await c.waitFor('roomStateChanged', (_, r) => r === RoomStateChangedReason.Logout);
  });

  await t.test('publish and play before login report 1000002', async () => {
    const c = env.client();
    c.engine.startPublishingStream('s-early');
    c.engine.startPlayingStream('s-early');
    assert.deepEqual(c.of('publisherStateUpdate'), [['s-early', PublisherState.NoPublish, ErrorCode.NotLoggedIn, '']]);
    assert.deepEqual(c.of('playerStateUpdate'), [['s-early', PlayerState.NoPlay, ErrorCode.NotLoggedIn, '']]);
    c.engine.startPublishingStream('bad stream id');
    assert.equal(c.of('publisherStateUpdate')[1]![2], ErrorCode.StreamIDInvalidCharacter);
  });

  await t.test('a repeat login of the same userID kicks the older session out (1002050)', async () => {
    const first = env.client();
    const watcher = env.client();
    assert.equal(await watcher.login('r-kick', 'watcher'), 0);
    assert.equal(await first.login('r-kick', 'dup'), 0);
    await first.publish('s-kick');
    const second = env.client();
    assert.equal(await second.login('r-kick', 'dup'), 0);
    await first.waitFor('roomStateChanged', (_, r) => r === RoomStateChangedReason.KickOut);
    assert.deepEqual(reasons(first).at(-1), [RoomStateChangedReason.KickOut, ErrorCode.KickedOut]);
    assert.deepEqual(first.of('publisherStateUpdate').at(-1)?.slice(1, 3), [PublisherState.NoPublish, ErrorCode.KickedOut]);
    // The watcher sees the old stream go away and the user re-enter.
    await watcher.waitFor('roomStreamUpdate', (_, type) => type === UpdateType.Delete);
    const userUpdates = watcher.of('roomUserUpdate').map(([, type, users]) => [type, users.map((u) => u.userID)]);
    assert.deepEqual(userUpdates, [
      [UpdateType.Add, ['dup']],
      [UpdateType.Delete, ['dup']],
      [UpdateType.Add, ['dup']],
    ]);
    // The kicked engine can do nothing in the room any more.
    first.engine.startPublishingStream('s-kick2');
    assert.equal(first.of('publisherStateUpdate').at(-1)?.[2], ErrorCode.NotLoggedIn);
  });

  await t.test('a streamID already live for another user is refused with 1003028', async () => {
    const owner = env.client();
    const thief = env.client();
    assert.equal(await owner.login('r-dup', 'owner'), 0);
    assert.equal(await thief.login('r-dup', 'thief'), 0);
    await owner.publish('s-dup');
    thief.engine.startPublishingStream('s-dup');
    await thief.waitFor('publisherStateUpdate', (_, s) => s === PublisherState.NoPublish);
    assert.deepEqual(
      thief.of('publisherStateUpdate').map((a) => [a[1], a[2]]),
      [
        [PublisherState.PublishRequesting, 0],
        [PublisherState.NoPublish, ErrorCode.StreamAlreadyPublished],
      ],
    );
    // The owner's stream is untouched: a newcomer still sees exactly one stream.
    const late = env.client();
    assert.equal(await late.login('r-dup', 'late'), 0);
    const [, , streams] = await late.waitFor('roomStreamUpdate');
    assert.deepEqual(
      streams.map((s) => [s.streamID, s.user.userID]),
      [['s-dup', 'owner']],
    );
  });

  await t.test('a second stream on a busy channel is refused with 1003023', async () => {
    const c = env.client();
    assert.equal(await c.login('r-chan', 'chan'), 0);
    c.engine.startPublishingStream('s-chan-1');
    c.engine.startPublishingStream('s-chan-2');
    assert.deepEqual(c.of('publisherStateUpdate').at(-1), ['s-chan-2', PublisherState.NoPublish, ErrorCode.ChannelAlreadyPublishing, '']);
    await c.waitFor('publisherStateUpdate', (id, s) => id === 's-chan-1' && s === PublisherState.Publishing);
  });

  await t.test(
    'playing a stream that does not exist waits in PlayRequesting (1004002) until it appears, and again after it stops',
    async () => {
      const viewer = env.client({ timeouts: { playRetryIntervalMs: 60_000 } });
      const pub = env.client();
      assert.equal(await viewer.login('r-wait', 'viewer'), 0);
      assert.equal(await pub.login('r-wait', 'pub'), 0);
      viewer.engine.startPlayingStream('s-later');
      await viewer.waitFor('playerStateUpdate', (_, s, code) => s === PlayerState.PlayRequesting && code === ErrorCode.StreamNotFound);
      await sleep(200);
      pub.engine.startPublishingStream('s-later');
      await viewer.waitFor('playerStateUpdate', (_, s) => s === PlayerState.Playing);
      pub.engine.stopPublishingStream();
      const count = (state: PlayerState): number => viewer.of('playerStateUpdate').filter((a) => a[1] === state).length;
      await viewer.waitFor('playerStateUpdate', () => count(PlayerState.PlayRequesting) === 3);
      pub.engine.startPublishingStream('s-later');
      await viewer.waitFor('playerStateUpdate', () => count(PlayerState.Playing) === 2);
      viewer.engine.stopPlayingStream('s-later');
      assert.deepEqual(
        viewer.of('playerStateUpdate').map((a) => [a[1], a[2]]),
        [
          [PlayerState.PlayRequesting, 0],
          [PlayerState.PlayRequesting, ErrorCode.StreamNotFound],
          [PlayerState.Playing, 0],
          [PlayerState.PlayRequesting, ErrorCode.StreamNotFound],
          [PlayerState.Playing, 0],
          [PlayerState.NoPlay, 0],
        ],
      );
    },
  );

  await t.test('user updates go only to users who asked for them', async () => {
    const quiet = env.client();
    assert.equal(await quiet.login('r-notify', 'quiet', { isUserStatusNotify: false }), 0);
    const loud = env.client();
    assert.equal(await loud.login('r-notify', 'loud'), 0);
    await loud.waitFor('roomUserUpdate');
    await sleep(100);
    assert.equal(quiet.of('roomUserUpdate').length, 0);
    assert.deepEqual(loud.of('roomUserUpdate'), [['r-notify', UpdateType.Add, [{ userID: 'quiet', userName: 'quiet' }]]]);
  });

  await t.test('maxMemberCount of the first user limits the room (1002034)', async () => {
    const first = env.client();
    assert.equal(await first.login('r-full', 'm1', { maxMemberCount: 2 }), 0);
    assert.equal(await env.client().login('r-full', 'm2', { maxMemberCount: 10 }), 0);
    assert.equal(await env.client().login('r-full', 'm3'), ErrorCode.RoomFull);
  });

  await t.test('logoutRoom while the login is in flight leaves nothing behind on the server', async () => {
    const watcher = env.client();
    assert.equal(await watcher.login('r-early', 'watcher'), 0);
    const { sessions } = await env.server.rooms.stats();
    const c = env.client();
    const login = c.login('r-early', 'early');
    await sleep(5); // the socket is open and the login request may be on its way
    c.engine.logoutRoom();
    await login;
    await sleep(300);
    assert.equal((await env.server.rooms.stats()).sessions, sessions);
    assert.deepEqual(reasons(c).at(-1), [RoomStateChangedReason.Logout, 0]);
    // Whatever the watcher saw, the user is not left in the room.
    const seen = watcher.of('roomUserUpdate').map(([, type]) => type);
    assert.ok(seen.length === 0 || seen.at(-1) === UpdateType.Delete, JSON.stringify(seen));
  });

  await t.test('a server that never answers: logging out during Logining ends with Logout, and nothing fires later', async () => {
    const silent = createServer((socket) => socket.on('data', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => silent.close());
    const port = (silent.address() as { port: number }).port;
    const c = env.client({ server: `ws://127.0.0.1:${port}/ws`, timeouts: { connectTimeoutMs: 200 } });
    void c.login('r-silent', 'silent');
    await sleep(50);
    c.engine.logoutRoom();
    await sleep(400); // past the connect timeout
    assert.deepEqual(reasons(c), [
      [RoomStateChangedReason.Logining, 0],
      [RoomStateChangedReason.Logout, 0],
    ]);
    // Without the logout, the connect timeout fails the login with 1002030.
    const d = env.client({ server: `ws://127.0.0.1:${port}/ws`, timeouts: { connectTimeoutMs: 200 } });
    assert.equal(await d.login('r-silent', 'silent2'), ErrorCode.ConnectFailed);
  });

  await t.test('stream extra info of 1024 bytes or more is refused with 1003051', async () => {
    const c = env.client();
    assert.equal(await c.login('r-extra', 'extra'), 0);
    c.engine.startPublishingStream('s-extra', { extraInfo: '流'.repeat(342) }); // 1026 bytes, 342 characters
    await c.waitFor('publisherStateUpdate', (_, s) => s === PublisherState.NoPublish);
    assert.equal(c.of('publisherStateUpdate').at(-1)?.[2], ErrorCode.StreamExtraInfoTooLong);
    c.engine.startPublishingStream('s-extra', { extraInfo: 'e'.repeat(1023) });
    await c.waitFor('publisherStateUpdate', (_, s) => s === PublisherState.Publishing);
  });

  await t.test('rooms are removed when their last user leaves; destroyEngine logs out', async () => {
    const c = env.client();
    assert.equal(await c.login('r-gone', 'leaver'), 0);
    const before = (await env.server.rooms.stats()).rooms;
    await c.destroy();
    assert.equal((await env.server.rooms.stats()).rooms, before - 1);
    assert.deepEqual(reasons(c).at(-1), [RoomStateChangedReason.Logout, 0]);
  });
});

test('switchRoom: Logout of the first room, then Logining and Logined in the second; the first room sees the user and its stream go, the second sees the user come', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const [alice, bob] = await env.inRoom('r-from', 'alice', 'bob');
  const [carol] = await env.inRoom('r-to', 'carol');
  alice!.engine.startPublishingStream('s-alice');
  await bob!.waitFor('roomStreamUpdate', (_, type) => type === UpdateType.Add);
  const statesBefore = alice!.of('roomStateChanged').length;

  const code = await new Promise<number>((resolve) => alice!.engine.switchRoom('r-from', 'r-to', undefined, (c) => resolve(c)));
  assert.equal(code, 0);
  assert.deepEqual(
    alice!
      .of('roomStateChanged')
      .slice(statesBefore)
      .map(([roomID, reason]) => `${roomID} ${RoomStateChangedReason[reason]}`),
    ['r-from Logout', 'r-to Logining', 'r-to Logined'],
  );
  await bob!.waitFor('roomUserUpdate', (_, type, users) => type === UpdateType.Delete && users[0]?.userID === 'alice');
  await bob!.waitFor('roomStreamUpdate', (_, type, streams) => type === UpdateType.Delete && streams[0]?.streamID === 's-alice');
  await carol!.waitFor('roomUserUpdate', (_, type, users) => type === UpdateType.Add && users[0]?.userID === 'alice');
  assert.ok(alice!.view.users.has('carol') && !alice!.view.users.has('bob'), 'alice sees the new room');
  assert.equal(alice!.of('publisherStateUpdate').at(-1)?.[1], PublisherState.NoPublish, 'publishing stopped with the first room');

  // Refused: not in the room switched from, or an invalid roomID; nothing changes.
  const refusals = await Promise.all(
    [
      ['r-nope', 'r-x'],
      ['r-to', ''],
    ].map(([from, to]) => new Promise<number>((resolve) => alice!.engine.switchRoom(from!, to!, undefined, (c) => resolve(c)))),
  );
  assert.deepEqual(refusals, [ErrorCode.NotLoggedIn, ErrorCode.RoomIDEmpty]);
  assert.deepEqual(await env.roomUserIDs('r-to'), ['alice', 'carol']);
});

test('MultiRoom: one engine in two rooms, each with its own callbacks; publishing and playing name their room; leaving one leaves the other as it is', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const alice = env.client();
  assert.equal(alice.engine.setRoomMode(7 as RoomMode), ErrorCode.InvalidParameter);
  assert.equal(alice.engine.setRoomMode(RoomMode.MultiRoom), 0);
  const [bob] = await env.inRoom('r-one', 'bob');
  const [carol] = await env.inRoom('r-two', 'carol');
  assert.deepEqual([await alice.login('r-one', 'alice'), await alice.login('r-two', 'alice')], [0, 0]);
  assert.deepEqual(
    alice.of('roomStateChanged').map(([roomID, reason]) => `${roomID} ${RoomStateChangedReason[reason]}`),
    ['r-one Logining', 'r-one Logined', 'r-two Logining', 'r-two Logined'],
  );
  assert.deepEqual(
    alice.of('roomUserUpdate').map(([roomID, type, users]) => `${roomID} ${UpdateType[type]} ${users.map((u) => u.userID)}`),
    ['r-one Add bob', 'r-two Add carol'],
  );
  assert.deepEqual(await env.roomUserIDs('r-one'), ['alice', 'bob']);
  assert.deepEqual(await env.roomUserIDs('r-two'), ['alice', 'carol']);
  // Refused while in rooms: the mode, switchRoom, the same room twice.
  assert.equal(alice.engine.setRoomMode(RoomMode.SingleRoom), ErrorCode.UnsupportedRequest);
  const switched = await new Promise<number>((resolve) => alice.engine.switchRoom('r-one', 'r-three', undefined, resolve));
  assert.deepEqual([switched, await alice.login('r-one', 'alice')], [ErrorCode.UnsupportedRequest, ErrorCode.RoomCountExceeded]);

  // Bob's stream in r-one is played through r-one (the room that announced it); alice publishes into r-two.
  bob!.engine.startPublishingStream('s-bob');
  t.after(loopFixtures(bob!.engine));
  await alice.waitFor(
    'roomStreamUpdate',
    (roomID, type, streams) => roomID === 'r-one' && type === UpdateType.Add && streams[0]?.streamID === 's-bob',
  );
  alice.engine.startPlayingStream('s-bob');
  await alice.waitFor('playerStateUpdate', (streamID, state) => streamID === 's-bob' && state === PlayerState.Playing);
  alice.engine.startPublishingStream('s-alice', { roomID: 'r-two' });
  await alice.waitFor('publisherStateUpdate', (streamID, state) => streamID === 's-alice' && state === PublisherState.Publishing);
  await carol!.waitFor(
    'roomStreamUpdate',
    (roomID, type, streams) => roomID === 'r-two' && type === UpdateType.Add && streams[0]?.streamID === 's-alice',
  );
  assert.equal(bob!.of('roomStreamUpdate').length, 0, 'r-one does not see what is published in r-two');
  // Messages go to the room named.
  assert.equal((await alice.broadcast('r-two', 'hello two'))[0], 0);
  await carol!.waitFor('IMRecvBroadcastMessage', (roomID) => roomID === 'r-two');
  assert.deepEqual([bob!.broadcasts(), carol!.broadcasts()], [[], ['hello two']]);
  await new Promise<void>((resolve) =>
    alice.engine.sendBroadcastMessage('r-three', 'nowhere', (code) => (assert.equal(code, ErrorCode.NotLoggedIn), resolve())),
  );

  // Leaving r-one stops what played there; r-two goes on.
  alice.engine.logoutRoom('r-one');
  await bob!.waitFor('roomUserUpdate', (_, type, users) => type === UpdateType.Delete && users[0]?.userID === 'alice');
  await alice.waitFor('playerStateUpdate', (streamID, state) => streamID === 's-bob' && state === PlayerState.NoPlay);
  assert.deepEqual(await env.roomUserIDs('r-two'), ['alice', 'carol']);
  assert.equal(alice.of('publisherStateUpdate').at(-1)?.[1], PublisherState.Publishing, 'still publishing in r-two');
  assert.equal((await alice.broadcast('r-two', 'still here'))[0], 0);
  assert.equal((await alice.broadcast('r-one', 'gone'))[0], ErrorCode.NotLoggedIn);
  assert.deepEqual(
    alice
      .of('roomStateChanged')
      .slice(4)
      .map(([roomID, reason]) => `${roomID} ${RoomStateChangedReason[reason]}`),
    ['r-one Logout'],
  );
  // logoutRoom() without a roomID leaves every room.
  alice.engine.logoutRoom();
  await carol!.waitFor('roomStreamUpdate', (_, type) => type === UpdateType.Delete);
  await carol!.waitFor('roomUserUpdate', (_, type, users) => type === UpdateType.Delete && users[0]?.userID === 'alice');
  assert.deepEqual(await env.roomUserIDs('r-two'), ['carol']);
  assert.equal(alice.engine.setRoomMode(RoomMode.SingleRoom), 0, 'in no room, the mode may change again');
});

test("the same userID elsewhere: a MultiRoom login replaces the user's session in its own room only, any other login replaces them all", async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const multi = (): TestClient => {
    const client = env.client();
    client.engine.setRoomMode(RoomMode.MultiRoom);
    return client;
  };
  const kicked = (client: TestClient): string[] =>
    client
      .of('roomStateChanged')
      .flatMap(([roomID, reason, code]) => (reason === RoomStateChangedReason.KickOut ? [`${roomID} ${code}`] : []));
  const first = multi();
  assert.deepEqual([await first.login('r-a', 'dana'), await first.login('r-b', 'dana')], [0, 0]);
  const second = multi();
  assert.equal(await second.login('r-b', 'dana'), 0);
  await first.waitFor('roomStateChanged', (_, reason) => reason === RoomStateChangedReason.KickOut);
  assert.deepEqual(kicked(first), [`r-b ${ErrorCode.KickedOut}`]);
  assert.deepEqual(await Promise.all([env.roomUserIDs('r-a'), env.roomUserIDs('r-b')]), [['dana'], ['dana']]);
  const single = env.client();
  assert.equal(await single.login('r-c', 'dana'), 0);
  await second.waitFor('roomStateChanged', (_, reason) => reason === RoomStateChangedReason.KickOut);
  await first.waitFor('roomStateChanged', (roomID, reason) => roomID === 'r-a' && reason === RoomStateChangedReason.KickOut);
  assert.deepEqual(await Promise.all([env.roomUserIDs('r-a'), env.roomUserIDs('r-b'), env.roomUserIDs('r-c')]), [[], [], ['dana']]);
});
