import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateToken04 } from '@parley/server';
import { ErrorCode, PublisherState, RoomStateChangedReason } from '@parley/sdk';
import { sleep, startTestServer, type TestClient } from './helpers.js';

test('token04 logins, privileges and expiry', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const token = (userID: string, extra: Partial<Parameters<typeof generateToken04>[0]> = {}): string =>
    generateToken04({ appID: env.app.appID, userID, serverSecret: env.app.serverSecret, effectiveTimeInSeconds: 3600, ...extra });
  const client = (): TestClient => env.client({ appSign: undefined });
  const login = (c: TestClient, roomID: string, userID: string, tokenString: string): Promise<number> =>
    new Promise((resolve) => c.engine.loginRoom(roomID, { userID, userName: userID }, { token: tokenString }, resolve));
  const publish = async (c: TestClient, streamID: string): Promise<[number, number]> => {
    c.engine.startPublishingStream(streamID);
    const [, state, code] = await c.waitFor('publisherStateUpdate', (id, s) => id === streamID && s !== PublisherState.PublishRequesting);
    return [state, code];
  };

  await t.test('a basic token logs in without the AppSign and may publish', async () => {
    const c = client();
    assert.equal(await login(c, 'r-tok', 'alice', token('alice')), 0);
    assert.deepEqual(await publish(c, 's-alice'), [PublisherState.Publishing, 0]);
  });

  await t.test('a wrong token is refused with the code of what is wrong', async () => {
    const cases: Array<[string, string, number]> = [
      ['bob', token('mallory'), ErrorCode.TokenUserIDMismatch],
      [
        'bob',
        generateToken04({ appID: 99, userID: 'bob', serverSecret: env.app.serverSecret, effectiveTimeInSeconds: 60 }),
        ErrorCode.TokenAppIDMismatch,
      ],
      ['bob', token('bob', { effectiveTimeInSeconds: -1 }), ErrorCode.TokenExpired],
      [
        'bob',
        generateToken04({ appID: env.app.appID, userID: 'bob', serverSecret: 'x'.repeat(32), effectiveTimeInSeconds: 60 }),
        ErrorCode.TokenInvalid,
      ],
      ['bob', '03' + token('bob').slice(2), ErrorCode.TokenVersionInvalid],
      ['bob', 'garbage', ErrorCode.TokenVersionInvalid],
    ];
    for (const [userID, tokenString, code] of cases) {
      const c = client();
      assert.equal(await login(c, 'r-tok', userID, tokenString), code, tokenString.slice(0, 12));
      assert.deepEqual(c.of('roomStateChanged').at(-1)?.slice(1, 3), [RoomStateChangedReason.LoginFailed, code]);
    }
  });

  await t.test('strict payload: room, publish privilege and stream list are enforced', async () => {
    const strict = (userID: string, room_id: string, publishAllowed: number, stream_id_list: string[] | null): string =>
      token(userID, { payload: { room_id, privilege: { '1': 1, '2': publishAllowed }, stream_id_list } });
    assert.equal(await login(client(), 'r-b', 'carol', strict('carol', 'r-a', 1, null)), ErrorCode.TokenInvalid, 'room A token in room B');
    assert.equal(
      await login(
        client(),
        'r-a',
        'carol',
        token('carol', { payload: { room_id: 'r-a', privilege: { '1': 0, '2': 1 }, stream_id_list: null } }),
      ),
      ErrorCode.TokenInvalid,
    );
    const viewer = client();
    assert.equal(await login(viewer, 'r-a', 'dave', strict('dave', 'r-a', 0, null)), 0);
    assert.deepEqual(await publish(viewer, 's-dave'), [PublisherState.NoPublish, ErrorCode.PublishPrivilegeDenied]);
    const limited = client();
    assert.equal(await login(limited, 'r-a', 'erin', strict('erin', 'r-a', 1, ['s-erin-ok'])), 0);
    assert.deepEqual(await publish(limited, 's-erin-other'), [PublisherState.NoPublish, ErrorCode.PublishPrivilegeDenied]);
    assert.deepEqual(await publish(limited, 's-erin-ok'), [PublisherState.Publishing, 0]);
  });

  await t.test('expiry: a warning comes 30 s before; an expired token keeps the user in but cannot publish until renewed', async () => {
    const c = client();
    assert.equal(await login(c, 'r-exp', 'frank', token('frank', { effectiveTimeInSeconds: 2 })), 0);
    const [, remain] = await c.waitFor('roomTokenWillExpire');
    assert.ok(remain <= 2, `warned with ${remain} s left`);
    await sleep(2500);
    assert.deepEqual(await publish(c, 's-frank'), [PublisherState.NoPublish, ErrorCode.PublishPrivilegeDenied]);
    assert.deepEqual(await env.roomUserIDs('r-exp'), ['frank'], 'still in the room');
    const renewed = await new Promise<number>((resolve) => c.engine.renewToken('r-exp', token('frank'), resolve));
    assert.equal(renewed, 0);
    assert.deepEqual(await publish(c, 's-frank-renewed'), [PublisherState.Publishing, 0]);
    const wrong = await new Promise<number>((resolve) => c.engine.renewToken('r-exp', token('someone-else'), resolve));
    assert.equal(wrong, ErrorCode.TokenUserIDMismatch);
  });
});
