import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ErrorCode, PublisherState, RoomStateChangedReason, UpdateType } from '@parley/sdk';
import { ApiCode, apiSignature } from '@parley/server';
import { sleep, startTestServer, type TestServer } from './helpers.js';

type Reply = { Code: number; Message: string; RequestId: string; Data: Record<string, unknown> };

interface CallOptions {
  body?: Record<string, unknown>;
  nonce?: string;
  timestamp?: number;
  secret?: string;
  common?: Record<string, string>;
}

/** Calls the server API as a business server would: signed with the app's serverSecret. */
async function api(
  env: TestServer,
  action: string,
  query: Record<string, string | string[]> = {},
  options: CallOptions = {},
): Promise<Reply> {
  const nonce = options.nonce ?? randomBytes(8).toString('hex');
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const signature = apiSignature(env.app.appID, nonce, options.secret ?? env.app.serverSecret, timestamp);
  const url = new URL('/api', env.server.httpUrl);
  const common = {
    Action: action,
    AppId: String(env.app.appID),
    SignatureNonce: nonce,
    Timestamp: String(timestamp),
    SignatureVersion: '2.0',
    Signature: signature,
    ...options.common,
  };
  for (const [key, value] of Object.entries(common)) if (value !== '') url.searchParams.set(key, value);
  for (const [key, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(Array.isArray(value) ? `${key}[]` : key, item);
  }
  const response = await fetch(
    url,
    options.body ? { method: 'POST', body: JSON.stringify(options.body), headers: { 'content-type': 'application/json' } } : {},
  );
  assert.equal(response.status, 200);
  return (await response.json()) as Reply;
}

test('the signature of the spec’s vector', () => {
  assert.equal(apiSignature(12345, '4fd24687296dd9f3', '9193cc662a4c0ec135ec71fb57194b38', 1615186943), '43e5cfcca828314675f91b001390566a');
});

test('server API: every action against a live server', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());
  const [a, b, c] = await env.inRoom('r-api', 'a', 'b', 'c');
  const [d] = await env.inRoom('r-other', 'd');
  a.engine.startPublishingStream('s-a', { extraInfo: 'cam' });
  await b.waitFor('roomStreamUpdate', (_, type) => type === UpdateType.Add);

  await t.test('describe: user counts, users page by page, streams', async () => {
    const counts = await api(env, 'DescribeUserNum', { RoomId: ['r-api', 'r-other', 'r-none'] });
    assert.equal(counts.Code, 0);
    assert.deepEqual(counts.Data.UserCountList, [
      { RoomId: 'r-api', UserCount: 3 },
      { RoomId: 'r-other', UserCount: 1 },
      { RoomId: 'r-none', UserCount: 0 },
    ]);
    const first = await api(env, 'DescribeUsers', { RoomId: 'r-api', Limit: '2' });
    assert.deepEqual(first.Data, {
      Marker: '2',
      UserList: [
        { UserId: 'a', UserName: 'a' },
        { UserId: 'b', UserName: 'b' },
      ],
    });
    const second = await api(env, 'DescribeUsers', { RoomId: 'r-api', Limit: '2', Marker: '2' });
    assert.deepEqual(second.Data, { Marker: '', UserList: [{ UserId: 'c', UserName: 'c' }] });
    const newest = await api(env, 'DescribeUsers', { RoomId: 'r-api', Mode: '1', Limit: '1' });
    assert.deepEqual(newest.Data.UserList, [{ UserId: 'c', UserName: 'c' }]);
    const streams = await api(env, 'DescribeSimpleStreamList', { RoomId: 'r-api' });
    assert.deepEqual(streams.Data.StreamList, [{ StreamId: 's-a', UserId: 'a', UserName: 'a', ExtraInfo: 'cam' }]);
    assert.equal((await api(env, 'DescribeUsers', { RoomId: 'r-none' })).Code, ApiCode.RoomNotFound);
    assert.ok((await api(env, 'DescribeUsers', { RoomId: 'r-api' })).RequestId.length > 0);
  });

  await t.test('messages on behalf of a user: broadcast (JSON body) and custom command', async () => {
    const sent = await api(
      env,
      'SendBroadcastMessage',
      {},
      { body: { RoomId: 'r-api', FromUserId: 'admin', MessageContent: 'hello all' } },
    );
    assert.equal(sent.Code, 0);
    assert.equal(typeof sent.Data.MessageId, 'number');
    for (const client of [a, b, c]) {
      const [, [message]] = await client.waitFor('IMRecvBroadcastMessage');
      assert.deepEqual([message!.message, message!.fromUser.userID, message!.messageID], ['hello all', 'admin', sent.Data.MessageId]);
    }
    assert.equal(
      (await api(env, 'SendCustomCommand', { RoomId: 'r-api', FromUserId: 'admin', MessageContent: 'psst', ToUserId: ['b'] })).Code,
      0,
    );
    await b.waitFor('IMRecvCustomCommand', (_, from, command) => from.userID === 'admin' && command === 'psst');
    const tooLong = await api(env, 'SendBroadcastMessage', { RoomId: 'r-api', FromUserId: 'admin', MessageContent: 'x'.repeat(1025) });
    assert.equal(tooLong.Code, ApiCode.InvalidParameter);
    await sleep(100);
    assert.equal(a.of('IMRecvCustomCommand').length + c.of('IMRecvCustomCommand').length + d.broadcasts().length, 0);
  });

  await t.test('forbid a stream: the publisher gets 1003025, players see it deleted, until it is resumed', async () => {
    assert.equal((await api(env, 'ForbidRTCStream', { StreamId: 's-a' })).Code, 0);
    const [, state, code] = await a.waitFor('publisherStateUpdate', (id, s) => id === 's-a' && s === PublisherState.NoPublish);
    assert.deepEqual([state, code], [PublisherState.NoPublish, ErrorCode.StreamForbidden]);
    await b.waitFor('roomStreamUpdate', (_, type, streams) => type === UpdateType.Delete && streams[0]!.streamID === 's-a');
    const stops = (): Array<[string, PublisherState, number, string]> =>
      a.of('publisherStateUpdate').filter(([, st]) => st === PublisherState.NoPublish);
    a.engine.startPublishingStream('s-a');
    await a.waitFor('publisherStateUpdate', () => stops().length === 2);
    const again = stops()[1]![2];
    assert.equal(again, ErrorCode.StreamForbidden, 'publishing it again is refused');
    assert.equal((await api(env, 'ResumeRTCStream', { StreamId: 's-a' })).Code, 0);
    await a.publish('s-a');
  });

  await t.test('kick a user (KickOut 1002055) and close a room', async () => {
    const kicked = await api(env, 'KickoutUser', { RoomId: 'r-api', UserId: ['c', 'nobody'], CustomReason: 'spam' });
    assert.deepEqual([kicked.Code, kicked.Data.KickedUsers], [0, ['c']]);
    const [, reason, code] = await c.waitFor('roomStateChanged', (_, r) => r === RoomStateChangedReason.KickOut);
    assert.deepEqual([reason, code], [RoomStateChangedReason.KickOut, ErrorCode.KickedByServer]);
    await a.waitFor('roomUserUpdate', (_, type, users) => type === UpdateType.Delete && users[0]!.userID === 'c');
    assert.equal((await api(env, 'CloseRoom', { RoomId: 'r-other' })).Code, 0);
    await d.waitFor('roomStateChanged', (_, r, c2) => r === RoomStateChangedReason.KickOut && c2 === ErrorCode.KickedByServer);
    assert.deepEqual(await env.roomUserIDs('r-other'), []);
    assert.deepEqual(await env.roomUserIDs('r-api'), ['a', 'b']);
    assert.equal((await api(env, 'CloseRoom', { RoomId: 'r-other' })).Code, ApiCode.RoomNotFound);
  });

  await t.test('refused: wrong signature, stale timestamp, reused nonce, missing or bad parameters; nothing changes', async () => {
    const kick = { RoomId: 'r-api', UserId: ['a'] };
    const refusals: Array<[string, Promise<Reply>, number]> = [
      ['wrong secret', api(env, 'KickoutUser', kick, { secret: 'x'.repeat(32) }), ApiCode.SignatureWrong],
      ['11 minutes old', api(env, 'KickoutUser', kick, { timestamp: Math.floor(Date.now() / 1000) - 660 }), ApiCode.SignatureExpired],
      ['11 minutes ahead', api(env, 'KickoutUser', kick, { timestamp: Math.floor(Date.now() / 1000) + 660 }), ApiCode.SignatureExpired],
      ['no Action', api(env, '', kick), ApiCode.ActionMissing],
      ['unknown Action', api(env, 'DropTables', kick), ApiCode.ActionUnsupported],
      ['unknown app', api(env, 'KickoutUser', kick, { common: { AppId: '42' } }), ApiCode.AppUnknown],
      ['no nonce', api(env, 'KickoutUser', kick, { common: { SignatureNonce: '' } }), ApiCode.NonceMissing],
      ['version 1.0', api(env, 'KickoutUser', kick, { common: { SignatureVersion: '1.0' } }), ApiCode.SignatureVersionUnsupported],
      ['six users', api(env, 'KickoutUser', { RoomId: 'r-api', UserId: ['1', '2', '3', '4', '5', '6'] }), ApiCode.InvalidParameter],
      ['no room', api(env, 'KickoutUser', { UserId: ['a'] }), ApiCode.InvalidParameter],
    ];
    for (const [what, reply, code] of refusals) assert.equal((await reply).Code, code, what);
    const nonce = randomBytes(8).toString('hex');
    assert.equal((await api(env, 'DescribeUserNum', { RoomId: 'r-api' }, { nonce })).Code, 0);
    assert.equal((await api(env, 'KickoutUser', kick, { nonce })).Code, ApiCode.SignatureWrong, 'a nonce is good once');
    assert.deepEqual(await env.roomUserIDs('r-api'), ['a', 'b']);
    assert.equal(a.of('roomStateChanged').at(-1)?.[1], RoomStateChangedReason.Logined);
  });

  await t.test('the OpenAPI document describes every action', async () => {
    const doc = (await (await fetch(new URL('/api/openapi.json', env.server.httpUrl))).json()) as {
      openapi: string;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    assert.equal(doc.openapi, '3.1.0');
    for (const action of [
      'KickoutUser',
      'CloseRoom',
      'DescribeUserNum',
      'DescribeUsers',
      'DescribeSimpleStreamList',
      'SendBroadcastMessage',
      'SendCustomCommand',
      'ForbidRTCStream',
      'ResumeRTCStream',
    ])
      assert.ok(doc.components.schemas[action]?.properties, action);
  });
});
