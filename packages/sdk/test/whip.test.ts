/**
 * WHIP and WHEP: the HTTP endpoints' statuses (RFC 9725 and the WHEP draft) with a werift client's
 * offers, and a real third-party client: GStreamer's `whip-client` (trickled, not, and relayed by
 * the TURN server its Link headers name) publishing, to a Node.js SDK player.
 */
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RTCPeerConnection } from 'werift';
import { UpdateType, VideoBufferType } from '@parley/sdk';
import { generateToken04, randomApp, startServer, type AppConfig } from '@parley/server';
import { startTurnServer, startWhipClient, teardown, TestNetwork } from '@parley/testkit';
import { sleep, TestClient, startTestServer } from './helpers.js';

const TOKEN_SECONDS = 3600;
const token = (app: AppConfig, userID: string, privileges?: { room_id: string; privilege: Record<string, 0 | 1> }): string =>
  generateToken04({
    appID: app.appID,
    userID,
    serverSecret: app.serverSecret,
    effectiveTimeInSeconds: TOKEN_SECONDS,
    ...(privileges && { payload: { ...privileges, stream_id_list: null } }),
  });

/** A werift peer's offer to send (WHIP) or receive (WHEP) audio and video (never answered here); its peer connection closes with the test. */
async function offerOf(
  direction: 'sendonly' | 'recvonly',
  closeLater: (close: () => unknown) => void,
): Promise<{ pc: RTCPeerConnection; sdp: string }> {
  const pc = new RTCPeerConnection();
  closeLater(() => pc.close());
  pc.addTransceiver('audio', { direction });
  pc.addTransceiver('video', { direction });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise<void>((resolve) =>
    pc.iceGatheringState === 'complete' ? resolve() : pc.iceGatheringStateChange.subscribe((s) => s === 'complete' && resolve()),
  );
  return { pc, sdp: pc.localDescription!.sdp };
}

const fragment = (ufrag: string, pwd: string, candidates: string[] = []): string =>
  [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, 'm=audio 9 UDP/TLS/RTP/SAVPF 0', 'a=mid:0', ...candidates.map((c) => `a=${c}`), ''].join(
    '\r\n',
  );

const codeOf = async (response: Response): Promise<number> => ((await response.json()) as { code: number }).code;

test('WHIP and WHEP endpoints answer with the RFC statuses and the spec codes, and a refused request changes nothing', async (t) => {
  const closeLater = teardown(t);
  const env = await startTestServer();
  closeLater(() => env.close());
  const { app } = env;
  const base = env.server.httpUrl;
  const whip = `${base}/whip/${app.appID}/stage/show`;
  const post = (url: string, body: string, headers: Record<string, string>): Promise<Response> =>
    fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/sdp', ...headers } });
  const bearer = (userID: string, privileges?: Parameters<typeof token>[2]): Record<string, string> => ({
    authorization: `Bearer ${token(app, userID, privileges)}`,
  });
  const { sdp: offer } = await offerOf('sendonly', closeLater);

  await t.test('OPTIONS: CORS and Accept-Post', async () => {
    const response = await fetch(whip, { method: 'OPTIONS' });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('accept-post'), 'application/sdp');
    assert.equal(response.headers.get('access-control-allow-origin'), '*');
    assert.match(response.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(response.headers.get('access-control-allow-headers') ?? '', /Authorization/);
  });

  await t.test('refused offers: content type, token, app, SDP (three video sections too), privilege, method', async () => {
    const wrongType = await fetch(whip, { method: 'POST', body: offer, headers: { 'content-type': 'text/plain', ...bearer('u1') } });
    assert.equal(wrongType.status, 415);
    const noToken = await post(whip, offer, {});
    assert.equal(noToken.status, 401);
    assert.equal(noToken.headers.get('www-authenticate'), 'Bearer');
    const otherApp = randomApp(app.appID + 1);
    const badToken = await post(whip, offer, { authorization: `Bearer ${token(otherApp, 'u1')}` });
    assert.equal(badToken.status, 401);
    assert.equal(await codeOf(badToken), 1002033);
    const unknownApp = await post(`${base}/whip/42/stage/show`, offer, bearer('u1'));
    assert.equal(unknownApp.status, 404);
    assert.equal(await codeOf(unknownApp), 1001004);
    const notSdp = await post(whip, 'hello', bearer('u1'));
    assert.equal(notSdp.status, 400);
    const badSdp = await post(whip, 'v=0\r\nm=video 9 RTP/AVP 0\r\n', bearer('u1'));
    assert.equal(badSdp.status, 400);
    assert.equal(await codeOf(badSdp), 1000092);
    // Three video sections: one stream has one picture.
    const threeVideo = new RTCPeerConnection();
    closeLater(() => threeVideo.close());
    for (const kind of ['audio', 'video', 'video', 'video'] as const) threeVideo.addTransceiver(kind, { direction: 'sendonly' });
    await threeVideo.setLocalDescription(await threeVideo.createOffer());
    const tooMany = await post(whip, threeVideo.localDescription!.sdp, bearer('u1'));
    assert.equal(tooMany.status, 400);
    assert.equal(await codeOf(tooMany), 1000092);
    const noPublish = await post(whip, offer, bearer('u1', { room_id: 'stage', privilege: { 1: 1, 2: 0 } }));
    assert.equal(noPublish.status, 403);
    assert.equal(await codeOf(noPublish), 1003072);
    const otherRoom = await post(whip, offer, bearer('u1', { room_id: 'elsewhere', privilege: { 1: 1, 2: 1 } }));
    assert.equal(otherRoom.status, 401);
    const badStreamID = await post(`${base}/whip/${app.appID}/stage/${'x'.repeat(300)}`, offer, bearer('u1'));
    assert.equal(badStreamID.status, 400);
    assert.equal(await codeOf(badStreamID), 1000014);
    const get = await fetch(whip);
    assert.equal(get.status, 405);
    assert.match(get.headers.get('allow') ?? '', /POST/);
    const noStream = await post(`${base}/whep/${app.appID}/nothing`, offer, bearer('u2'));
    assert.equal(noStream.status, 404);
    assert.equal(await codeOf(noStream), 1004002);
    assert.deepEqual(await env.roomUserIDs('stage'), [], 'no refused request left a user in the room');
  });

  await t.test('over-long offers, too many logins from one address, a draining server', async () => {
    const huge = await post(whip, `v=0\r\n${'a=x\r\n'.repeat(10_000)}`, bearer('u1'));
    assert.equal(huge.status, 413);
    const limited = await startTestServer({ limits: { loginsPerSecondPerIp: 0.001, loginBurstPerIp: 1 } });
    closeLater(() => limited.close());
    const limitedWhip = `${limited.server.httpUrl}/whip/${limited.app.appID}/stage/show`;
    const limitedToken = { authorization: `Bearer ${token(limited.app, 'u1')}` };
    assert.equal(
      (await post(limitedWhip, 'v=0\r\n', limitedToken)).status,
      400,
      'the first login is let through (and refused for its SDP)',
    );
    const refused = await post(limitedWhip, offer, limitedToken);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '1');
    limited.server.health.setReady(false);
    assert.equal((await post(limitedWhip, offer, limitedToken)).status, 503);
  });

  await t.test('a resource: 201 with Location, ETag and Accept-Patch; PATCH preconditions; trickle; DELETE', async () => {
    const [watcher] = await env.inRoom('stage', 'watcher');
    const created = await post(whip, offer, bearer('obs'));
    assert.equal(created.status, 201, await created.clone().text());
    assert.equal(created.headers.get('content-type'), 'application/sdp');
    assert.match(await created.text(), /^v=0/);
    const location = created.headers.get('location')!;
    assert.match(location, new RegExp(`^/whip/${app.appID}/stage/show/[0-9a-f-]{36}$`));
    const etag = created.headers.get('etag')!;
    assert.match(etag, /^"[0-9a-f]+"$/);
    assert.equal(created.headers.get('accept-patch'), 'application/trickle-ice-sdpfrag');
    assert.match(created.headers.get('access-control-expose-headers') ?? '', /Location/);
    await watcher!.waitFor('roomUserUpdate', (_, type, users) => type === UpdateType.Add && users.some((u) => u.userID === 'obs'));

    const again = await post(whip, offer, bearer('other'));
    assert.equal(again.status, 409, 'the streamID is taken');
    assert.equal(await codeOf(again), 1003028);

    const resource = `${base}${location}`;
    const { ufrag, pwd } = { ufrag: /a=ice-ufrag:(.*)\r\n/.exec(offer)![1]!, pwd: /a=ice-pwd:(.*)\r\n/.exec(offer)![1]! };
    const patch = (body: string, headers: Record<string, string>): Promise<Response> =>
      fetch(resource, {
        method: 'PATCH',
        body,
        headers: { 'content-type': 'application/trickle-ice-sdpfrag', ...bearer('obs'), ...headers },
      });
    const candidate = 'candidate:1 1 udp 2130706431 127.0.0.1 9 typ host';
    assert.equal((await patch(fragment(ufrag, pwd, [candidate]), {})).status, 428, 'If-Match is required');
    assert.equal((await patch(fragment(ufrag, pwd, [candidate]), { 'if-match': '"stale"' })).status, 412);
    assert.equal((await patch(fragment(ufrag, pwd), { 'if-match': etag, 'content-type': 'application/sdp' })).status, 415);
    assert.equal((await patch('a=candidate:1 1 udp', { 'if-match': etag })).status, 400, 'no ICE credentials');
    assert.equal((await patch(fragment(ufrag, pwd, ['candidate:garbage']), { 'if-match': etag })).status, 400);
    const wrongToken = await fetch(resource, { method: 'DELETE', headers: bearer('someone-else') });
    assert.equal(wrongToken.status, 401);
    assert.equal((await patch(fragment(ufrag, pwd, [candidate]), { 'if-match': etag })).status, 204, 'trickled');
    const unknown = await fetch(`${base}/whip/${app.appID}/stage/show/00000000-0000-0000-0000-000000000000`, { method: 'DELETE' });
    assert.equal(unknown.status, 404);
    const options = await fetch(resource, { method: 'OPTIONS' });
    assert.equal(options.status, 204);
    assert.equal(options.headers.get('accept-patch'), 'application/trickle-ice-sdpfrag');

    assert.equal((await fetch(resource, { method: 'DELETE', headers: bearer('obs') })).status, 200);
    await watcher!.waitFor('roomUserUpdate', (_, type, users) => type === UpdateType.Delete && users.some((u) => u.userID === 'obs'));
    assert.deepEqual(await env.roomUserIDs('stage'), ['watcher']);
    assert.equal((await fetch(resource, { method: 'DELETE', headers: bearer('obs') })).status, 404);
  });

  await t.test('a resource ends with its session: its media closing, a kick, its stream forbidden', async () => {
    const [watcher] = await env.inRoom('endings', 'watcher');
    const endingsWhip = (streamID: string): string => `${base}/whip/${app.appID}/endings/${streamID}`;
    const left = (userID: string): Promise<unknown> =>
      watcher!.waitFor('roomUserUpdate', (_, type, users) => type === UpdateType.Delete && users.some((u) => u.userID === userID));
    // Made and not connected: the session and its stream exist meanwhile (their media would time out).
    const publishUnanswered = async (userID: string, streamID: string): Promise<string> => {
      const { sdp } = await offerOf('sendonly', closeLater);
      const created = await post(endingsWhip(streamID), sdp, bearer(userID));
      assert.equal(created.status, 201);
      return `${base}${created.headers.get('location')!}`;
    };
    const gone = async (resource: string, userID: string): Promise<void> =>
      assert.equal((await fetch(resource, { method: 'DELETE', headers: bearer(userID) })).status, 404, 'the resource is gone');

    // Media that never connects is closed at the connect timeout; so is media whose ICE consent ends.
    const quick = await startTestServer({ media: { connectTimeoutMs: 1000 } });
    closeLater(() => quick.close());
    const [quickWatcher] = await quick.inRoom('endings', 'watcher');
    const { sdp: unanswered } = await offerOf('sendonly', closeLater);
    const stranded = await post(`${quick.server.httpUrl}/whip/${quick.app.appID}/endings/stranded`, unanswered, {
      authorization: `Bearer ${token(quick.app, 'stranded')}`,
    });
    assert.equal(stranded.status, 201);
    await quickWatcher!.waitFor(
      'roomUserUpdate',
      (_, type, users) => type === UpdateType.Delete && users.some((u) => u.userID === 'stranded'),
    );
    const strandedResource = `${quick.server.httpUrl}${stranded.headers.get('location')!}`;
    const strandedDelete = await fetch(strandedResource, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token(quick.app, 'stranded')}` },
    });
    assert.equal(strandedDelete.status, 404, 'the resource is gone');

    const kicked = await publishUnanswered('kicked', 'kicked');
    assert.ok(await env.server.rooms.kickOut(app.appID, 'endings', 'kicked'));
    await left('kicked');
    await gone(kicked, 'kicked');

    const forbidden = await publishUnanswered('forbidden', 'forbidden');
    await env.server.rooms.forbidStream(app.appID, 'forbidden');
    await left('forbidden');
    await gone(forbidden, 'forbidden');
    assert.deepEqual(await env.roomUserIDs('endings'), ['watcher']);
  });
});

test("WHIP's Link headers carry the user's TURN credentials: in the 201, and in OPTIONS given a token (not in a CORS preflight)", async (t) => {
  const closeLater = teardown(t);
  const app = randomApp(7_000_002);
  const turn = { urls: ['turn:127.0.0.1:3478?transport=udp', 'turn:127.0.0.1:3478?transport=tcp'], secret: 'turn-secret' };
  const server = await startServer({ host: '127.0.0.1', port: 0, apps: [app], logLevel: 'silent', staticDir: false, turn });
  closeLater(() => server.close());
  const whip = `${server.httpUrl}/whip/${app.appID}/stage/linked`;
  const authorization = `Bearer ${token(app, 'linked-user')}`;
  const { sdp } = await offerOf('sendonly', closeLater);
  const created = await fetch(whip, { method: 'POST', body: sdp, headers: { 'content-type': 'application/sdp', authorization } });
  assert.equal(created.status, 201);
  const links = created.headers.get('link') ?? '';
  for (const url of turn.urls) {
    assert.ok(links.includes(`<${url}>; rel="ice-server"; username="`), `${url} in ${links}`);
  }
  assert.match(links, /username="\d+:linked-user"; credential="[A-Za-z0-9+/=]+"/);
  assert.match((await fetch(whip, { method: 'OPTIONS', headers: { authorization } })).headers.get('link') ?? '', /rel="ice-server"/);
  assert.equal((await fetch(whip, { method: 'OPTIONS' })).headers.get('link'), null);
  await fetch(`${server.httpUrl}${created.headers.get('location')!}`, { method: 'DELETE', headers: { authorization } });
});

test('GStreamer publishes VP8 and Opus over WHIP, trickled and not; a Node.js player gets its frames; stopping it ends its user', async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const host = network.addHost();
  const app = randomApp(7_000_001);
  const server = await startServer({ host: network.serverIp, port: 0, apps: [app], logLevel: 'silent', staticDir: false });
  closeLater(() => server.close());
  const player = new TestClient({ appID: app.appID, appSign: app.appSign, server: server.url });
  closeLater(() => player.destroy());
  assert.equal(await player.login('studio', 'player'), 0);
  let frames = 0;
  let keyFrames = 0;
  player.engine.enableCustomVideoRender(true, { bufferType: VideoBufferType.EncodedData });
  player.engine.setCustomVideoRenderHandler({
    onRemoteVideoFrameEncodedDataReceived: (_data, params) => {
      frames++;
      if (params.isKeyFrame) keyFrames++;
    },
  });

  for (const trickle of [true, false]) {
    await t.test(trickle ? 'trickled' : 'candidates in the offer', async () => {
      const userID = trickle ? 'gst-trickle' : 'gst-offer';
      const streamID = `${userID}-stream`;
      const client = startWhipClient({
        url: `${server.httpUrl}/whip/${app.appID}/studio/${streamID}`,
        token: token(app, userID),
        host,
        trickle,
      });
      closeLater(() => client.stop());
      await player
        .waitFor('roomStreamUpdate', (_, type, streams) => type === UpdateType.Add && streams.some((s) => s.streamID === streamID), 15_000)
        .catch((err: Error) => assert.fail(`${err.message.slice(0, 200)}\nwhip-client: ${client.output()}`));
      // The WHIP publisher is a user of the room.
      await player.waitFor('roomUserUpdate', (_, type, users) => type === UpdateType.Add && users.some((u) => u.userID === userID));
      const before = frames;
      player.engine.startPlayingStream(streamID);
      await player.waitFor('playerRecvVideoFirstFrame', (id) => id === streamID, 15_000);
      await sleep(2000);
      assert.ok(frames - before >= 40, `frames in 2 s at 30 fps: ${frames - before}\n${client.output()}`);
      assert.ok(keyFrames >= 1);
      player.engine.stopPlayingStream(streamID);
      await client.stop();
      await player.waitFor(
        'roomUserUpdate',
        (_, type, users) => type === UpdateType.Delete && users.some((u) => u.userID === userID),
        10_000,
      );
      assert.ok(!player.view.streams.has(streamID), 'its stream ended with it');
    });
  }
});

test('GStreamer over WHIP through the TURN server its Link headers name, relayed only', async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const host = network.addHost();
  const turn = await startTurnServer({ ip: network.addServerAddress(), secret: randomBytes(16).toString('hex') });
  closeLater(() => turn.stop());
  const app = randomApp(7_000_003);
  const turnUrl = turn.urls[0]!;
  const server = await startServer({
    host: network.serverIp,
    port: 0,
    apps: [app],
    logLevel: 'silent',
    staticDir: false,
    turn: { urls: [turnUrl], secret: turn.secret },
  });
  closeLater(() => server.close());
  const client = startWhipClient({
    url: `${server.httpUrl}/whip/${app.appID}/studio/relayed`,
    token: token(app, 'gst-turn'),
    host,
    relayed: true,
  });
  closeLater(() => client.stop());
  // A stream is announced once its media connected: here only through the relay.
  for (const until = Date.now() + 15_000; ; await sleep(200)) {
    const streams = (await server.rooms.describeRoom(app.appID, 'studio'))?.streams ?? [];
    if (streams.some((stream) => stream.streamID === 'relayed')) break;
    assert.ok(Date.now() < until, `the relayed stream is announced\n${client.output()}`);
  }
  assert.ok(client.output().includes(turnUrl.split('?')[0]!.replace('turn:', '')), 'it took the TURN server from the Link headers');
  await client.stop();
  for (const until = Date.now() + 10_000; (await server.rooms.describeRoom(app.appID, 'studio')) !== undefined; await sleep(200)) {
    assert.ok(Date.now() < until, 'its DELETE ended its user, and the room with it');
  }
});
