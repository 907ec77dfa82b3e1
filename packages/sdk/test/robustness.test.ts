import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { WebSocket } from 'ws';
import { ErrorCode, hexKeyBytes, appSignProofMessage, MAX_FRAME_BYTES } from '@parley/protocol';
import { liveCall, sleep, startTestServer } from './helpers.js';

/** A hand-driven signalling connection that can send anything. */
class RawClient {
  readonly messages: Array<Record<string, unknown>> = [];
  closeCode: number | undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
    ws.on('close', (code) => (this.closeCode = code));
  }

  static async open(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    const client = new RawClient(ws);
    await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
    await client.next((m) => m.type === 'hello');
    return client;
  }

  async next(match: (m: Record<string, unknown>) => boolean, from = 0, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching message; got ${JSON.stringify(this.messages)}`);
      await sleep(10);
    }
  }

  /** Sends a frame and returns the server's answer to it (reply or error). */
  async exchange(frame: string | Buffer, id?: number): Promise<Record<string, unknown>> {
    const from = this.messages.length;
    this.ws.send(frame);
    return this.next((m) => (id === undefined ? m.type === 'error' : m.type === 'reply' && m.id === id), from);
  }
}

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
  const hello = raw.messages[0]!;
  const proof = createHmac('sha256', hexKeyBytes(env.app.appSign))
    .update(appSignProofMessage(hello.nonce as string, env.app.appID, 'elsewhere', 'raw'))
    .digest('hex');
  const login = {
    type: 'login',
    id: 20,
    appID: env.app.appID,
    roomID: 'elsewhere',
    user: { userID: 'raw', userName: 'raw' },
    config: { isUserStatusNotify: false, maxMemberCount: 0 },
    auth: { appSignProof: proof },
  };
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
  assert.equal(env.server.rooms.stats().publications, 1);

  // An oversized frame closes that connection (1009) and only that one.
  raw.ws.send('x'.repeat(MAX_FRAME_BYTES + 1));
  const deadline = Date.now() + 5000;
  while (raw.closeCode === undefined && Date.now() < deadline) await sleep(10);
  assert.equal(raw.closeCode, 1009);

  // The call went on: frames kept flowing and nobody saw anything of the above.
  await sleep(500);
  assert.ok(call.frames() > framesBefore + 10, `the call's frames kept flowing (${framesBefore} → ${call.frames()})`);
  assert.deepEqual(call.roomEventsSinceStart(), [[], []]);
  // The server still accepts new users.
  assert.equal(await env.client().login('call2', 'after'), 0);
});
