import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, MAX_FRAME_BYTES } from '@parley/protocol';
import { liveCall, sleep, startTestServer } from './helpers.js';
import { RawClient } from './rawClient.js';

test('malformed and out-of-order signalling gets error codes; the server and a running call are unaffected', async (t) => {
  const env = await startTestServer();
  t.after(() => env.close());

  // A legitimate call runs beside everything below.
  const call = await liveCall(env, 'call');
  t.after(call.stop);
  const framesBefore = call.frames();

  const raw = await RawClient.open(env.server.url);
  const malformed = [
    'not json',
    '42',
    '[1,2,3]',
    'null',
    '{}',
    '{"type":"nope","id":1}',
    '{"type":"login","id":"x"}',
    JSON.stringify({ type: 'login', id: 2, appID: -1, roomID: 'r', user: { userID: 'u', userName: 'u' }, config: {}, auth: {} }),
    JSON.stringify({ type: 'publish', id: 3, streamID: 's', sdp: 'x'.repeat(40_000), extraInfo: '' }),
    '{"type":"heartbeat","id":1e400}',
    `{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`,
  ];
  for (const frame of malformed) {
    const answer = await raw.exchange(
      frame,
      /"id":(\d+)/.test(frame) && !frame.includes('1e400') ? Number(/"id":(\d+)/.exec(frame)![1]) : undefined,
    );
    assert.equal(answer.code, ErrorCode.MalformedMessage, `frame ${frame.slice(0, 40)} → ${JSON.stringify(answer)}`);
  }
  assert.equal((await raw.exchange(Buffer.from([1, 2, 3]))).code, ErrorCode.MalformedMessage);

  // Well-formed requests in the wrong order.
  for (const [id, type, body] of [
    [10, 'publish', { streamID: 's-x', sdp: 'v=0\r\n', extraInfo: '' }],
    [11, 'play', { streamID: 's-call', sdp: 'v=0\r\n', attempt: 1 }],
    [12, 'logout', {}],
    [13, 'unpublish', { streamID: 's-call' }],
  ] as const) {
    const reply = await raw.exchange(JSON.stringify({ type, id, ...body }), id);
    assert.equal(reply.code, ErrorCode.NotLoggedIn, `${type} before login`);
  }

  // Logged in (to another room, so the call sees nobody come), bad SDP is refused with InvalidSdp and reserves nothing.
  const login = { type: 'login', id: 20, ...raw.loginFrame(env.app, 'elsewhere', { userID: 'raw' }) };
  assert.equal((await raw.exchange(JSON.stringify(login), 20)).code, 0);
  assert.equal((await raw.exchange(JSON.stringify({ ...login, id: 21 }), 21)).code, ErrorCode.RoomCountExceeded);
  for (const [id, sdp] of [
    [22, 'garbage'],
    [23, 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 NOPE/90000\r\n'],
    [24, 'v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n'],
  ] as const) {
    const reply = await raw.exchange(JSON.stringify({ type: 'publish', id, streamID: `s-bad${id}`, sdp, extraInfo: '' }), id);
    assert.equal(reply.code, ErrorCode.InvalidSdp, `sdp ${sdp.slice(0, 30)} → ${JSON.stringify(reply)}`);
  }
  const taken = await raw.exchange(JSON.stringify({ type: 'publish', id: 25, streamID: 's-call', sdp: 'v=0\r\n', extraInfo: '' }), 25);
  assert.equal(taken.code, ErrorCode.StreamAlreadyPublished);
  // A layer choice for a stream this user does not play is refused; a type the contract lacks is malformed.
  const video = { type: 2, viewWidth: 0, viewHeight: 0 };
  const notPlayed = await raw.exchange(JSON.stringify({ type: 'playVideo', id: 26, streamID: 's-call', video }), 26);
  assert.equal(notPlayed.code, ErrorCode.StreamNotFound);
  const badType = await raw.exchange(JSON.stringify({ type: 'playVideo', id: 27, streamID: 's-call', video: { ...video, type: 3 } }), 27);
  assert.equal(badType.code, ErrorCode.MalformedMessage);
  assert.equal((await env.server.rooms.stats()).publications, 1);

  // An oversized frame closes that connection (1009) and only that one.
  raw.ws.send('x'.repeat(MAX_FRAME_BYTES + 1));
  assert.equal(await raw.closed(), 1009);

  // The call went on: frames kept flowing and nobody saw anything of the above.
  await sleep(500);
  assert.ok(call.frames() > framesBefore + 10, `the call's frames kept flowing (${framesBefore} → ${call.frames()})`);
  assert.deepEqual(call.roomEventsSinceStart(), [[], []]);
  // The server still accepts new users.
  assert.equal(await env.client().login('call2', 'after'), 0);
});
