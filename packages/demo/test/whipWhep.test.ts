/**
 * WHIP and WHEP from Chromium with the `whip-whep` clients (by the WHIP RFC's author): a page
 * publishes its camera over WHIP, another plays it over WHEP, both trickling their candidates; an
 * ICE restart of the publisher (PATCH) keeps the picture going; the SDK's players in the room see
 * the WHIP publisher and its stream like any other, and play it; its DELETE ends them, and the WHEP
 * player of its stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';
import { DEV_APP, generateToken04, startServer } from '@parley/server';
import { cameraClip, gotoSteady, launchChromium, openDemo, remoteVideoSize, teardown } from '@parley/testkit';

const require = createRequire(import.meta.url);
/** A whip-whep module's source, with its class put on `window` for the test's scripts. */
const clientScript = (file: 'whip.js' | 'whep.js', name: string): string =>
  `${readFileSync(require.resolve(`whip-whep/${file}`), 'utf8')}\nwindow.${name} = ${name};`;

const tokenFor = (userID: string): string =>
  generateToken04({ appID: DEV_APP.appID, userID, serverSecret: DEV_APP.serverSecret, effectiveTimeInSeconds: 3600 });

/** Frames the page's WHEP video decoded so far (0 before it plays). */
const framesDecoded = (page: Page): Promise<number> =>
  page.evaluate(`(async () => {
    let frames = 0;
    (await window.whepPc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded ?? 0; });
    return frames;
  })()`);

async function framesGrow(page: Page, by: number, timeoutMs: number): Promise<void> {
  const from = await framesDecoded(page);
  const until = Date.now() + timeoutMs;
  let now = from;
  while (Date.now() < until) {
    now = await framesDecoded(page);
    if (now - from >= by) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`decoded ${now - from} frames in ${timeoutMs} ms, wanted ${by}`);
}

test('Chromium publishes over WHIP and plays over WHEP with the whip-whep clients; an ICE restart keeps the picture; the room sees the WHIP user and stream', async (t) => {
  const closeLater = teardown(t);
  const server = await startServer({ host: '127.0.0.1', port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent' });
  closeLater(() => server.close());
  const chromium = await launchChromium({
    secureOrigin: server.httpUrl,
    fakeVideoFile: cameraClip({ width: 640, height: 360, fps: 15, seconds: 4 }),
  });
  closeLater(() => chromium.close());
  const { browser } = chromium;

  // An SDK user of the room, on the demo page: it sees the WHIP publisher as a user with a stream.
  const member = await openDemo(server.httpUrl, browser, 'member', { roomID: 'whip', publish: false });

  const publisher = await browser.newPage();
  await gotoSteady(publisher, `${server.httpUrl}/`);
  await publisher.addScriptTag({ type: 'module', content: clientScript('whip.js', 'WHIPClient') });
  await publisher.waitForFunction('window.WHIPClient !== undefined');
  const whipUrl = `${server.httpUrl}/whip/${DEV_APP.appID}/whip/chromium-whip`;
  await publisher.evaluate(`(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
    const pc = new RTCPeerConnection();
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
    window.whip = new WHIPClient();
    await window.whip.publish(pc, ${JSON.stringify(whipUrl)}, ${JSON.stringify(tokenFor('chromium-whip-user'))});
  })()`);
  // The room's SDK user gets the WHIP stream like any other, and plays it.
  const played = await remoteVideoSize(member, 'chromium-whip');
  assert.deepEqual(played, { width: 640, height: 360 });
  assert.match(await member.evaluate(() => document.getElementById('log')!.textContent!), /chromium-whip-user/, 'told of the WHIP user');

  const player = await browser.newPage();
  await gotoSteady(player, `${server.httpUrl}/`);
  await player.addScriptTag({ type: 'module', content: clientScript('whep.js', 'WHEPClient') });
  await player.waitForFunction('window.WHEPClient !== undefined');
  // The demo's tile of the stream links the URL a WHEP player plays it at.
  const whepUrl = await member.getAttribute('.tile[data-stream-id="chromium-whip"] a.whep', 'href');
  assert.equal(whepUrl, `${server.httpUrl}/whep/${DEV_APP.appID}/chromium-whip`);
  await player.evaluate(`(async () => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    const video = document.createElement('video');
    video.id = 'whep';
    video.autoplay = true;
    video.muted = true;
    document.body.append(video);
    pc.ontrack = (event) => { video.srcObject = event.streams[0] ?? new MediaStream([event.track]); };
    window.whepPc = pc;
    window.whep = new WHEPClient();
    await window.whep.view(pc, ${JSON.stringify(whepUrl)}, ${JSON.stringify(tokenFor('chromium-whep-user'))});
  })()`);
  await framesGrow(player, 30, 15_000);
  const size = await player.evaluate(() => {
    const video = document.querySelector<HTMLVideoElement>('#whep')!;
    return [video.videoWidth, video.videoHeight];
  });
  assert.ok(size[0]! > 0 && size[1]! > 0, `the WHEP player shows a picture: ${size.join('×')}`);

  // An ICE restart of the publisher: new credentials by PATCH, the same DTLS and streams.
  const etagBefore = String(await publisher.evaluate('window.whip.etag'));
  await publisher.evaluate('window.whip.restart()');
  const etagAfter = String(await publisher.evaluate('window.whip.etag'));
  assert.match(etagAfter, /^"[0-9a-f]+"$/, 'the restart answered with an ETag');
  assert.notEqual(etagAfter, etagBefore, 'a new one');
  const whipResource = String(await publisher.evaluate('window.whip.resourceURL.href'));
  const stale = await fetch(whipResource, {
    method: 'PATCH',
    body: 'a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n',
    headers: {
      'content-type': 'application/trickle-ice-sdpfrag',
      'if-match': etagBefore,
      authorization: `Bearer ${tokenFor('chromium-whip-user')}`,
    },
  });
  assert.equal(stale.status, 412, 'the ETag of the ICE session before the restart is refused');
  // The transport is connected on the new credentials (Chromium's stats name the ICE username in use).
  const onNewCredentials = `(async () => {
    let transport;
    (await window.whip.pc.getStats()).forEach((s) => { if (s.type === 'transport') transport = s; });
    return transport?.iceLocalUsernameFragment === window.whip.iceUsername && transport?.iceState === 'connected';
  })()`;
  for (const until = Date.now() + 10_000; !(await publisher.evaluate(onNewCredentials)); await new Promise((r) => setTimeout(r, 200))) {
    assert.ok(Date.now() < until, 'the publisher connected on its new ICE credentials');
  }
  await framesGrow(player, 30, 15_000);

  // The publisher's DELETE ends its user and stream, and with the stream the WHEP player's resource and user.
  const whepResource = String(await player.evaluate('window.whep.resourceURL.href'));
  await publisher.evaluate('window.whip.stop()');
  await member.waitForFunction(() => !document.querySelector('.tile[data-stream-id="chromium-whip"]'), undefined, { timeout: 10_000 });
  for (const until = Date.now() + 5000; ; await new Promise((r) => setTimeout(r, 100))) {
    const users = (await server.rooms.describeRoom(DEV_APP.appID, 'whip'))?.users.map((u) => u.userID);
    if (users?.length === 1) break;
    assert.ok(Date.now() < until, `only the member is left: ${users?.join(', ')}`);
  }
  const ended = await fetch(whepResource, { method: 'DELETE', headers: { authorization: `Bearer ${tokenFor('chromium-whep-user')}` } });
  assert.equal(ended.status, 404, 'the WHEP resource ended with the stream it played');
});
