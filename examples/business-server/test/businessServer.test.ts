/**
 * The example business server beside a real Parley server: a client logs in with a token it
 * minted, the webhooks of the call reach it verified, and its server API call sees the user.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ParleyEngine } from '@parley/sdk';
import { randomApp, startServer } from '@parley/server';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium, openDemo, remoteVideoSize, teardown, waitDecoding } from '@parley/testkit';
import { BusinessServer } from '../src/businessServer.js';

test('the business server mints tokens clients log in with, verifies the webhooks of their calls, and calls the server API', async (t) => {
  const closeLater = teardown(t);
  const app = randomApp(9_000_001);
  const callbackSecret = 'business-callback-secret';
  const parley = await startServer({ host: '127.0.0.1', port: 0, apps: [app], logLevel: 'silent', staticDir: false });
  closeLater(() => parley.close());
  const business = new BusinessServer({ appID: app.appID, serverSecret: app.serverSecret, callbackSecret, parleyHttpUrl: parley.httpUrl });
  const businessUrl = await business.listen();
  closeLater(() => business.close());
  // Each needs the other's address: the app's callback comes with a configuration reload.
  parley.reload({ apps: [{ ...app, callbackUrl: `${businessUrl}/parley/callback`, callbackSecret }] });

  // A client gets its token from the business server (it never holds the app's secrets).
  const minted = (await (await fetch(`${businessUrl}/token?userID=alice&roomID=business`)).json()) as { appID: number; token: string };
  assert.equal(minted.appID, app.appID);
  assert.equal((await fetch(`${businessUrl}/token?userID=&roomID=business`)).status, 400);
  const engine = ParleyEngine.createEngine({ appID: minted.appID, server: parley.url });
  closeLater(() => new Promise<void>((resolve) => ParleyEngine.destroyEngine(engine, resolve)));
  const code = await new Promise<number>((resolve) =>
    engine.loginRoom('business', { userID: 'alice', userName: 'Alice' }, { token: minted.token }, resolve),
  );
  assert.equal(code, 0, 'the minted token logs in');
  const wrongRoom = ParleyEngine.createEngine({ appID: minted.appID, server: parley.url });
  closeLater(() => new Promise<void>((resolve) => ParleyEngine.destroyEngine(wrongRoom, resolve)));
  const refused = await new Promise<number>((resolve) =>
    wrongRoom.loginRoom('elsewhere', { userID: 'alice2', userName: 'x' }, { token: minted.token }, resolve),
  );
  assert.notEqual(refused, 0, 'the token is for its user and room only');

  // The webhooks of the login arrive, signed, and are verified.
  for (
    const deadline = Date.now() + 5000;
    !business.events.some((e) => e.event === 'room_login');
    await new Promise((r) => setTimeout(r, 20))
  ) {
    if (Date.now() > deadline) throw new Error(`no room_login webhook: ${JSON.stringify(business.events)}`);
  }
  assert.deepEqual(
    business.events.filter((e) => e.event === 'room_create' || e.event === 'room_login').map((e) => [e.event, e.room_id]),
    [
      ['room_create', 'business'],
      ['room_login', 'business'],
    ],
  );
  assert.deepEqual(business.refused, []);
  // A forged one is refused.
  const forged = await fetch(`${businessUrl}/parley/callback`, { method: 'POST', body: JSON.stringify({ event: 'room_login' }) });
  assert.equal(forged.status, 401);

  // The server API, signed with the app's serverSecret, sees her in the room.
  const users = (await (await fetch(`${businessUrl}/rooms/business/users`)).json()) as { Code: number; Data: unknown };
  assert.equal(users.Code, 0);
  assert.match(JSON.stringify(users.Data), /"alice"/);
});

test('the demo page served by a production server logs in with tokens from the business server, calls, records the room and mixes its streams', async (t) => {
  const closeLater = teardown(t);
  const app = randomApp(9_000_002);
  const dir = mkdtempSync(join(tmpdir(), 'parley-demo-rec-'));
  closeLater(() => rmSync(dir, { recursive: true, force: true }));
  const parley = await startServer({ host: '127.0.0.1', port: 0, apps: [app], logLevel: 'silent', recording: { dir, syncWaitMs: 2000 } });
  closeLater(() => parley.close());
  const business = new BusinessServer({
    appID: app.appID,
    serverSecret: app.serverSecret,
    callbackSecret: 'unused',
    parleyHttpUrl: parley.httpUrl,
    allowedOrigins: [parley.httpUrl],
  });
  const businessUrl = await business.listen();
  closeLater(() => business.close());
  const chromium = await launchChromium();
  closeLater(() => chromium.close());
  // No dev credentials: the page knows only where to ask for a token.
  const pages = [
    await openDemo(parley.httpUrl, chromium.browser, 'carol', { roomID: 'tokens', params: { tokenUrl: `${businessUrl}/token` } }),
    await openDemo(parley.httpUrl, chromium.browser, 'dave', { roomID: 'tokens', params: { tokenUrl: `${businessUrl}/token` } }),
  ];
  for (const page of pages) await waitDecoding(page);
  assert.equal(await pages[0]!.evaluate('document.getElementById("appID").value'), String(app.appID));

  // Record: the business server starts and stops the room's recording; the page lists its files.
  const logText = (): Promise<string> => pages[0]!.evaluate(() => document.getElementById('log')!.textContent ?? '');
  const untilLogged = async (pattern: RegExp): Promise<string> => {
    for (const deadline = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 100))) {
      const match = pattern.exec(await logText());
      if (match) return match[0];
      if (Date.now() > deadline) throw new Error(`not logged: ${pattern}; log: ${(await logText()).slice(-1500)}`);
    }
  };
  await pages[0]!.click('#record');
  const task = (await untilLogged(/recording the room: task (\w+)/)).split(' ').pop()!;
  await new Promise((r) => setTimeout(r, 4000));
  await pages[0]!.click('#record');
  const ended = await untilLogged(/recording \w+ ended: .*/);
  const files = readdirSync(join(dir, task)).filter((f) => f.endsWith('.webm'));
  assert.equal(files.length, 2, `${ended}; ${files.join(', ')}`);
  for (const file of files) assert.ok(ended.includes(file));

  // Mix: both streams side by side in the room's mixed stream, which the other page plays.
  await pages[0]!.click('#mix');
  await untilLogged(/mixing .* into mix_tokens/);
  assert.deepEqual(await remoteVideoSize(pages[1]!, 'mix_tokens'), { width: 640, height: 180 });
});
