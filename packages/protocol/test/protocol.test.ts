import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, parseClientMessage, validateRoomID, validateStreamID, validateUserID, validateUserName } from '@parley/protocol';

test('identifier rules map each violation to its code', () => {
  const cases: Array<[(v: string) => number, string, number]> = [
    [validateUserID, 'user_1.A-b', 0],
    [validateUserID, '', ErrorCode.UserIDEmpty],
    [validateUserID, 'u'.repeat(63), 0],
    [validateUserID, 'u'.repeat(64), ErrorCode.UserIDTooLong],
    [validateUserID, 'a b', ErrorCode.UserIDInvalidCharacter],
    [validateUserID, 'ü', ErrorCode.UserIDInvalidCharacter],
    [validateUserName, 'Zhang San 张三', 0],
    [validateUserName, '', ErrorCode.UserNameEmpty],
    [validateUserName, '张'.repeat(86), ErrorCode.UserNameTooLong], // 258 bytes
    [validateUserName, 'a\u0000b', ErrorCode.UserNameInvalidCharacter],
    [validateRoomID, 'room-1', 0],
    [validateRoomID, '', ErrorCode.RoomIDEmpty],
    [validateRoomID, 'r'.repeat(128), ErrorCode.RoomIDTooLong],
    [validateRoomID, 'room/1', ErrorCode.RoomIDInvalidCharacter],
    [validateStreamID, 'stream_1-a', 0],
    [validateStreamID, '', ErrorCode.StreamIDEmpty],
    [validateStreamID, 's'.repeat(256), 0],
    [validateStreamID, 's'.repeat(257), ErrorCode.StreamIDTooLong],
    [validateStreamID, 'stream.1', ErrorCode.StreamIDInvalidCharacter],
  ];
  for (const [validate, value, code] of cases)
    assert.equal(validate(value), code, `${validate.name}(${JSON.stringify(value.slice(0, 20))})`);
});

test('client frames are validated at the edge, echoing a usable request id', () => {
  assert.deepEqual(parseClientMessage('{"type":"heartbeat","id":7}'), { ok: true, value: { type: 'heartbeat', id: 7 } });
  const bad = parseClientMessage('{"type":"publish","id":8,"streamID":5}');
  assert.equal(bad.ok, false);
  assert.equal(!bad.ok && bad.id, 8);
  assert.equal(parseClientMessage('{"type":"publish","id":-1}').ok, false);
  const noId = parseClientMessage('nonsense');
  assert.ok(!noId.ok && noId.id === undefined);
  // Unknown fields are dropped, not passed on.
  const extra = parseClientMessage('{"type":"heartbeat","id":1,"admin":true}');
  assert.ok(extra.ok && !('admin' in extra.value));
});
