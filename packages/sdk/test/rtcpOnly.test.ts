/**
 * A player whose path carries RTCP but no RTP (needs root and iptables): the server's sender
 * reports go on counting what it sends, so the player knows media is owed, restarts ICE as for a
 * dead path, and plays again once RTP gets through. The publisher notices nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { PlayerState } from '@parley/sdk';
import { teardown } from '@parley/testkit';
import { sleep } from './helpers.js';
import { loopbackNumberedCall, LOOPBACK } from './numberedCall.js';

const BLOCK_MS = 6000;

test('RTP lost on the way to a player while RTCP still arrives: the player restarts ICE (PlayRequesting) and plays on once RTP comes again; the publisher sees nothing', async (t) => {
  const closeLater = teardown(t);
  const { mediaPort, call } = await loopbackNumberedCall(closeLater, 'r-rtcp-only');
  const changes = call.mark();

  // RTP from the server's media port (version 2, payload type 96-127 with or without the marker
  // bit): what players get, on whichever of their candidates an ICE restart settles; RTCP
  // (packet types 200-206) still passes.
  const rule = [
    'INPUT',
    '-p',
    'udp',
    '-s',
    LOOPBACK,
    '--sport',
    String(mediaPort),
    '-m',
    'u32',
    '--u32',
    '0>>22&0x3C@8>>24&0xC0=0x80 && 0>>22&0x3C@8>>16&0x60=0x60',
    '-m',
    'comment',
    '--comment',
    `parley-rtcp-only-${process.pid}`,
    '-j',
    'DROP',
  ];
  execFileSync('iptables', ['-I', ...rule]);
  let blocked = true;
  const unblock = (): void => {
    if (blocked) execFileSync('iptables', ['-D', ...rule]);
    blocked = false;
  };
  closeLater(unblock);
  const blockedAt = Date.now();
  await call.player.waitFor('playerStateUpdate', (_, state, code) => state === PlayerState.PlayRequesting && code === 1004020, BLOCK_MS);
  const noticedAfter = Date.now() - blockedAt;
  await sleep(blockedAt + BLOCK_MS - Date.now());
  unblock();
  const unblockedAt = Date.now();
  const eventsAtUnblock = call.player.events.length;
  const playingAgain = (): boolean =>
    call.player.events.slice(eventsAtUnblock).some((e) => e.event === 'playerStateUpdate' && e.args[1] === PlayerState.Playing);
  for (const deadline = unblockedAt + 10_000; !playingAgain(); await sleep(20)) {
    if (Date.now() > deadline) throw new Error('not Playing again within 10 s of RTP coming back');
  }
  const playingAfter = Date.now() - unblockedAt;
  await sleep(1000);
  const seen = changes();
  t.diagnostic(
    `the player noticed after ${noticedAfter} ms and played again ${playingAfter} ms after RTP came back; changes: ${JSON.stringify(seen)}`,
  );
  // The second sender report after RTP stopped says it is owed (the first may count packets that
  // arrived; werift reports every 0.5-1.5 s), then the stall time runs, seen at the next sample.
  assert.ok(noticedAfter < 2 * 1500 + 3000 + 750, `noticed within two report intervals, the stall time and a sample (${noticedAfter} ms)`);
  assert.deepEqual(
    seen.filter((change) => !change.startsWith('player: playerStateUpdate')),
    [],
    'only the player changed state',
  );
  const frames = call.check(Date.now() - 1000, Date.now(), Infinity);
  assert.ok(frames.frames > 0 && frames.missing.length < frames.frames, 'frames flow again');
});
