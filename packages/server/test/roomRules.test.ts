/**
 * The room rules on their own: the room service with fake links, a fake media plane and simulated
 * time, against every RoomStore implementation. No sockets, no WebRTC.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, UpdateType } from '@parley/protocol';
import { actionHandlers, ApiCode } from '../src/api/actions.js';
import { ROOM_EVENT_LOG_SIZE } from '../src/rooms/store/roomStore.js';
import { closeStores, HEARTBEAT_TIMEOUT_MS, playRequest, publishRequest, RoomWorld, STORES, type User } from './roomFakes.js';

after(closeStores);

const userUpdates = (user: User): Array<[UpdateType, string]> => user.link.of('userUpdate').map((m) => [m.updateType, m.users[0]!.userID]);
const streamUpdates = (user: User): Array<[UpdateType, string]> =>
  user.link.of('streamUpdate').map((m) => [m.updateType, m.streams[0]!.streamID]);

async function userIDs(world: RoomWorld, roomID: string): Promise<string[] | undefined> {
  return (await world.rooms.describeRoom(world.app.appID, roomID))?.users.map((u) => u.userID);
}

for (const [storeName, makeStore] of STORES) {
  const named = (name: string): string => `${name} (${storeName} store)`;

  test(
    named('a login replaces the user’s session in the same room: the old one is kicked out, the room sees it leave and come back'),
    async (t) => {
      const world = await RoomWorld.open(t, makeStore);
      const bob = await world.login('r', 'bob');
      const alice1 = await world.login('r', 'alice');
      const alice2 = await world.login('r', 'alice');
      assert.deepEqual(
        alice1.link.of('kickedOut').map((m) => [m.code, m.reason]),
        [[ErrorCode.KickedOut, 'replaced']],
      );
      assert.equal(alice1.link.closed, true);
      assert.deepEqual(await userIDs(world, 'r'), ['bob', 'alice']);
      assert.deepEqual(userUpdates(bob), [
        [UpdateType.Add, 'alice'],
        [UpdateType.Delete, 'alice'],
        [UpdateType.Add, 'alice'],
      ]);
      // What the observer reports carries the numbers the room's users see.
      const joins = world.reports('userJoined').filter((e) => e.user.userID === 'alice');
      assert.deepEqual(
        joins.map((e) => e.seq),
        bob.link
          .of('userUpdate')
          .filter((m) => m.updateType === UpdateType.Add)
          .map((m) => m.seq),
      );
      assert.equal(alice2.login.seq, joins[1]!.seq);
      // The replaced session speaks for no one.
      assert.equal((await world.rooms.publish(alice1.ref, publishRequest('s'))).code, ErrorCode.NotLoggedIn);
      assert.equal(world.rooms.speaksFor(alice1.ref, alice1.link), false);
    },
  );

  test(
    named('a login’s reply shows the room as of its number: the others in the order they joined, announced streams, extra infos'),
    async (t) => {
      const world = await RoomWorld.open(t, makeStore);
      const alice = await world.login('r', 'alice');
      await world.login('r', 'bob');
      await world.publish(alice, 'announced');
      assert.equal((await world.rooms.publish(alice.ref, publishRequest('reserved'))).code, 0); // negotiated, never connected
      assert.equal((await world.rooms.say(alice.ref, (messaging, s) => messaging.setRoomExtraInfo(s, 'topic', 'rules'))).code, 0);
      const carol = await world.login('r', 'carol');
      assert.deepEqual(
        carol.login.users.map((u) => u.userID),
        ['alice', 'bob'],
      );
      assert.deepEqual(
        carol.login.streams.map((s) => s.streamID),
        ['announced'],
      );
      assert.deepEqual(
        carol.login.extraInfos.map((e) => [e.key, e.value]),
        [['topic', 'rules']],
      );
      assert.equal(carol.login.seq, world.reports('userJoined').at(-1)!.seq);
    },
  );

  test(
    named('a reliable request is done once however often it is sent; a refused one is tried anew; the memory ends with the session'),
    async (t) => {
      const world = await RoomWorld.open(t, makeStore);
      const alice = await world.login('r', 'alice');
      const bob = await world.login('r', 'bob');
      let done = 0;
      const broadcast = (clientSeq: number) =>
        world.rooms.once(alice.ref, clientSeq, () => {
          done++;
          return world.rooms.say(alice.ref, (messaging, s) =>
            messaging.broadcast({ appID: s.appID, roomID: s.roomID }, { user: s.user, sessionID: s.sessionID }, `m${clientSeq}`),
          );
        });
      const first = await broadcast(1);
      assert.equal(first.code, 0);
      assert.deepEqual(await broadcast(1), first);
      assert.equal(done, 1);
      assert.equal(bob.link.of('broadcastMessage').length, 1);
      const refused = () => Promise.resolve({ code: ErrorCode.RateLimited, message: 'slow down' } as const);
      assert.equal((await world.rooms.once(alice.ref, 2, refused)).code, ErrorCode.RateLimited);
      assert.equal((await broadcast(2)).code, 0, 'a refused request is tried anew');
      await world.rooms.logout(alice.ref);
      const again = await world.login('r', 'alice');
      assert.equal((await world.rooms.once(again.ref, 1, () => Promise.resolve({ code: 0 as const, data: 'new session' }))).code, 0);
      assert.equal(done, 2);
    },
  );

  test(named('a login in another room replaces the session there (the room closes) unless both are multi-room'), async (t) => {
    const world = await RoomWorld.open(t, makeStore);
    const first = await world.login('a', 'alice');
    await world.login('b', 'alice');
    assert.deepEqual(first.link.of('kickedOut').length, 1);
    assert.equal(await userIDs(world, 'a'), undefined);
    assert.deepEqual(
      world.reports('roomClosed').map((e) => [e.roomID, e.reason]),
      [['a', 'replaced']],
    );

    const inA = await world.login('a', 'dana', { multiRoom: true });
    const inB = await world.login('b', 'dana', { multiRoom: true });
    assert.deepEqual([inA.link.of('kickedOut').length, inB.link.of('kickedOut').length], [0, 0]);
    assert.deepEqual([await userIDs(world, 'a'), await userIDs(world, 'b')], [['dana'], ['alice', 'dana']]);
    // Again in a room it is in: only that session is replaced.
    await world.login('a', 'dana', { multiRoom: true });
    assert.deepEqual([inA.link.of('kickedOut').length, inB.link.of('kickedOut').length], [1, 0]);
    // A single-room login replaces all of them.
    await world.login('c', 'dana');
    assert.equal(inB.link.of('kickedOut').length, 1);
    assert.deepEqual(await userIDs(world, 'b'), ['alice']);
  });

  test(named('a full room refuses a login with RoomFull and nothing changes; a replaced session does not count'), async (t) => {
    const world = await RoomWorld.open(t, makeStore);
    await world.login('full', 'alice', { maxMemberCount: 2 });
    const bob = await world.login('full', 'bob');
    const refused = await world.rooms.login(world.link(), 'n', world.loginRequest('n', 'full', 'carol'));
    assert.equal(refused.code, ErrorCode.RoomFull);
    assert.deepEqual(await userIDs(world, 'full'), ['alice', 'bob']);
    assert.equal(world.reports('userJoined').length, 2);
    assert.deepEqual(userUpdates(bob), []);
    // Alice again takes her own place.
    await world.login('full', 'alice');
    assert.deepEqual(await userIDs(world, 'full'), ['bob', 'alice']);
    // A rejoin loses to the session that replaced it.
    const rejoin = await world.rooms.login(world.link(), 'n', world.loginRequest('n', 'full', 'bob', {}, true));
    assert.equal(rejoin.code, ErrorCode.KickedOut);
    assert.deepEqual(await userIDs(world, 'full'), ['bob', 'alice']);
  });

  test(named('a kicked session’s resume learns why; a wrong proof is an unknown session; a lost link resumes'), async (t) => {
    const world = await RoomWorld.open(t, makeStore);
    const alice = await world.login('r', 'alice');
    const bob = await world.login('r', 'bob');
    const kicked = await actionHandlers.KickoutUser({ rooms: world.rooms, recordings: undefined, mixing: undefined }, world.app.appID, {
      RoomId: 'r',
      UserId: ['alice'],
    });
    assert.equal(kicked.Code, ApiCode.Success);
    const resumed = await world.rooms.resume(world.link(), 'n2', world.resumeRequest(alice, 'n2', alice.login.seq));
    assert.equal(resumed.code, ErrorCode.KickedByServer);

    const wrongProof = { ...world.resumeRequest(bob, 'other nonce', bob.login.seq) };
    assert.equal((await world.rooms.resume(world.link(), 'n3', wrongProof)).code, ErrorCode.SessionNotFound);

    world.rooms.linkLost(bob.ref, bob.link);
    const link = world.link();
    const back = await world.rooms.resume(link, 'n4', world.resumeRequest(bob, 'n4', bob.login.seq));
    assert.equal(back.code, 0);
    assert.equal(world.rooms.speaksFor(bob.ref, link), true);
    assert.equal(world.rooms.speaksFor(bob.ref, bob.link), false);
  });

  test(
    named('two publishes of one streamID racing: one wins, the other gets StreamAlreadyPublished; a session’s own repeat supersedes'),
    async (t) => {
      const world = await RoomWorld.open(t, makeStore);
      const alice = await world.login('r', 'alice');
      const bob = await world.login('r', 'bob');
      let release = world.media.hold();
      const racing = [world.rooms.publish(alice.ref, publishRequest('s')), world.rooms.publish(bob.ref, publishRequest('s'))];
      release();
      assert.deepEqual(
        (await Promise.all(racing)).map((o) => o.code),
        [0, ErrorCode.StreamAlreadyPublished],
      );

      release = world.media.hold();
      const twice = [world.rooms.publish(bob.ref, publishRequest('t')), world.rooms.publish(bob.ref, publishRequest('t'))];
      release();
      assert.deepEqual(
        (await Promise.all(twice)).map((o) => o.code),
        [ErrorCode.PublishInterrupted, 0],
      );
      assert.deepEqual(
        world.media.publishers.map((p) => p.closed),
        [false, true, false],
        'the superseded negotiation’s media is closed',
      );

      // A publish that fails frees its streamID.
      assert.equal((await world.rooms.publish(alice.ref, publishRequest('u', 'not sdp'))).code, ErrorCode.InvalidSdp);
      assert.equal((await world.rooms.publish(bob.ref, publishRequest('u'))).code, 0);
    },
  );

  test(named('a publication whose media died waits a heartbeat timeout to be published again, then ends'), async (t) => {
    const world = await RoomWorld.open(t, makeStore);
    const alice = await world.login('r', 'alice');
    const bob = await world.login('r', 'bob');
    let publisher = await world.publish(alice, 's');
    assert.equal((await world.rooms.play(bob.ref, playRequest('s', 7))).code, 0);
    assert.deepEqual(streamUpdates(bob), [[UpdateType.Add, 's']]);

    assert.equal((await world.rooms.addRemoteCandidates(alice.ref, 'publish', 's', ['candidate:1 1 udp 1 10.0.0.1 9 typ host'])).code, 0);
    assert.deepEqual(publisher.candidates, ['candidate:1 1 udp 1 10.0.0.1 9 typ host'], 'trickled to its media');
    const garbled = await world.rooms.addRemoteCandidates(alice.ref, 'publish', 's', ['garbage']);
    assert.equal(garbled.code, ErrorCode.InvalidSdp);
    assert.equal((await world.rooms.addRemoteCandidates(bob.ref, 'publish', 's', [])).code, ErrorCode.PublishInterrupted, 'not its stream');

    publisher.close();
    await world.rooms.settled();
    assert.deepEqual(
      bob.link.of('playStopped').map((m) => [m.streamID, m.attempt, m.code]),
      [['s', 7, ErrorCode.PlayInterrupted]],
      'its player is told to play again',
    );
    assert.deepEqual(alice.link.mediaClosedOf, ['publish/s'], 'its publisher is told its media closed');
    await world.pass(HEARTBEAT_TIMEOUT_MS - 1);
    assert.equal((await world.rooms.describeRoom(world.app.appID, 'r'))?.streams.length, 1, 'still announced');
    publisher = await world.publish(alice, 's');
    await world.pass(HEARTBEAT_TIMEOUT_MS * 2);
    assert.deepEqual(streamUpdates(bob), [[UpdateType.Add, 's']], 'published again in time: nothing changed for the room');

    publisher.close();
    await world.pass(HEARTBEAT_TIMEOUT_MS);
    assert.deepEqual(streamUpdates(bob), [
      [UpdateType.Add, 's'],
      [UpdateType.Delete, 's'],
    ]);
    assert.deepEqual(
      world.reports('streamClosed').map((e) => [e.stream.streamID, e.reason]),
      [['s', 'mediaLost']],
    );
    assert.equal((await world.rooms.stats()).publications, 0);
  });

  test(named('a session whose link is gone ends after the heartbeat timeout, unless it resumes'), async (t) => {
    const world = await RoomWorld.open(t, makeStore);
    const alice = await world.login('r', 'alice');
    const bob = await world.login('r', 'bob');
    world.rooms.linkLost(bob.ref, bob.link);
    await world.pass(HEARTBEAT_TIMEOUT_MS - 1);
    assert.equal(world.rooms.speaksFor(bob.ref, world.link()), false);
    const back = await world.rooms.resume(world.link(), 'n', world.resumeRequest(bob, 'n', bob.login.seq));
    assert.equal(back.code, 0);
    await world.pass(HEARTBEAT_TIMEOUT_MS * 2);
    assert.deepEqual(await userIDs(world, 'r'), ['alice', 'bob'], 'the resumed session stays');

    // Heard from just now: the timeout counts from its last heartbeat.
    alice.link.lastHeardMs = world.clock.now();
    world.rooms.linkLost(alice.ref, alice.link);
    await world.pass(HEARTBEAT_TIMEOUT_MS - 1);
    assert.deepEqual(await userIDs(world, 'r'), ['alice', 'bob']);
    await world.pass(1);
    assert.deepEqual(await userIDs(world, 'r'), ['bob']);
    assert.deepEqual(
      world.reports('userLeft').map((e) => [e.user.userID, e.reason]),
      [['alice', 'heartbeatTimeout']],
    );
  });

  test(named('a resume replays the events it missed that concern it, or a snapshot when too many were missed'), async (t) => {
    const world = await RoomWorld.open(t, makeStore);
    const alice = await world.login('r', 'alice');
    const bob = await world.login('r', 'bob');
    await world.login('r', 'carol');
    world.rooms.linkLost(bob.ref, bob.link);
    const lastSeen = Math.max(...bob.link.sent.flatMap((m) => ('seq' in m ? [m.seq] : [])));
    const send = (text: string, to: string[] | null) =>
      world.rooms.say(alice.ref, (messaging, s) =>
        messaging.customCommand({ appID: s.appID, roomID: s.roomID }, { user: s.user, sessionID: s.sessionID }, text, to),
      );
    assert.equal((await send('to everyone', null)).code, 0);
    assert.equal((await send('to carol', ['carol'])).code, 0);
    assert.equal((await send('to bob', ['bob'])).code, 0);
    const resumed = await world.rooms.resume(world.link(), 'n', world.resumeRequest(bob, 'n', lastSeen));
    assert.equal(resumed.code, 0);
    assert.ok(resumed.code === 0 && resumed.data.events);
    assert.deepEqual(
      resumed.data.events.map((e) => (e.type === 'customCommand' ? e.command : e.type)),
      ['to everyone', 'to bob'],
    );

    // Far behind: the room as it is now.
    world.rooms.linkLost(bob.ref, world.link());
    const dave = await world.login('r', 'dave');
    for (let i = 0; i < ROOM_EVENT_LOG_SIZE / 2 + 1; i++) {
      await world.rooms.logout(dave.ref);
      Object.assign(dave, await world.login('r', 'dave'));
    }
    const far = await world.rooms.resume(world.link(), 'n5', world.resumeRequest(bob, 'n5', lastSeen));
    assert.ok(far.code === 0 && far.data.snapshot);
    assert.deepEqual(
      far.data.snapshot.users.map((u) => u.userID),
      ['alice', 'carol', 'dave'],
    );
  });

  test(named('the server API: KickoutUser, CloseRoom and ForbidRTCStream'), async (t) => {
    const world = await RoomWorld.open(t, makeStore);
    const { appID } = world.app;
    const alice = await world.login('r', 'alice');
    const bob = await world.login('r', 'bob');
    const carol = await world.login('r', 'carol');
    await world.publish(alice, 's');
    assert.equal((await world.rooms.play(bob.ref, playRequest('s'))).code, 0);

    const forbidden = await actionHandlers.ForbidRTCStream({ rooms: world.rooms, recordings: undefined, mixing: undefined }, appID, {
      StreamId: 's',
    });
    assert.equal(forbidden.Code, ApiCode.Success);
    await world.rooms.settled();
    assert.deepEqual(
      alice.link.of('publishStopped').map((m) => [m.streamID, m.code]),
      [['s', ErrorCode.StreamForbidden]],
    );
    assert.deepEqual(streamUpdates(bob), [
      [UpdateType.Add, 's'],
      [UpdateType.Delete, 's'],
    ]);
    assert.deepEqual(
      bob.link.of('playStopped').map((m) => m.code),
      [ErrorCode.StreamNotFound],
    );
    assert.equal((await world.rooms.publish(alice.ref, publishRequest('s'))).code, ErrorCode.StreamForbidden);
    await actionHandlers.ResumeRTCStream({ rooms: world.rooms, recordings: undefined, mixing: undefined }, appID, {
      StreamId: 's',
    });
    assert.equal((await world.rooms.publish(alice.ref, publishRequest('s'))).code, 0);

    const kicked = await actionHandlers.KickoutUser({ rooms: world.rooms, recordings: undefined, mixing: undefined }, appID, {
      RoomId: 'r',
      UserId: ['bob', 'nobody'],
    });
    assert.deepEqual(kicked.Data, { KickedUsers: ['bob'] });
    assert.deepEqual(
      bob.link.of('kickedOut').map((m) => [m.code, m.reason]),
      [[ErrorCode.KickedByServer, 'kicked']],
    );
    assert.deepEqual(await userIDs(world, 'r'), ['alice', 'carol']);
    assert.equal(
      (
        await actionHandlers.KickoutUser({ rooms: world.rooms, recordings: undefined, mixing: undefined }, appID, {
          RoomId: 'none',
          UserId: ['bob'],
        })
      ).Code,
      ApiCode.RoomNotFound,
    );

    assert.equal(
      (await actionHandlers.CloseRoom({ rooms: world.rooms, recordings: undefined, mixing: undefined }, appID, { RoomId: 'none' })).Code,
      ApiCode.RoomNotFound,
    );
    assert.equal(
      (await actionHandlers.CloseRoom({ rooms: world.rooms, recordings: undefined, mixing: undefined }, appID, { RoomId: 'r' })).Code,
      ApiCode.Success,
    );
    assert.deepEqual(
      [alice, carol].map((u) => u.link.of('kickedOut').map((m) => m.reason)),
      [['roomClosed'], ['roomClosed']],
    );
    assert.equal(await userIDs(world, 'r'), undefined);
    assert.deepEqual(
      world.reports('userLeft').map((e) => [e.user.userID, e.reason]),
      [
        ['bob', 'kicked'],
        ['alice', 'roomClosed'],
        ['carol', 'roomClosed'],
      ],
    );
    assert.deepEqual(
      world.reports('roomClosed').map((e) => e.reason),
      ['roomClosed'],
    );
    assert.deepEqual(await world.rooms.stats(), { rooms: 0, sessions: 0, publications: 0, streams: 0 });
  });
}
