/**
 * The server and the Node.js SDK contact no host but those configured (needs root, iptables): a
 * capture of what this machine sends during a call finds no lookup of werift's default STUN
 * server and nothing sent to it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { PlayerState, VideoBufferType } from '@parley/sdk';
import { teardown, TestNetwork } from '@parley/testkit';
import { loopFixtures, sleep, startTestServer } from './helpers.js';

test("a call contacts no host but the server: no DNS query for werift's default STUN server and no STUN request to it", async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  // DNS names travel as labels: "google" is one, whole.
  const lookups = network.countSent(['-p', 'udp', '--dport', '53', '-m', 'string', '--algo', 'bm', '--string', 'google']);
  const stunRequests = network.countSent(['-p', 'udp', '--dport', '19302']);
  // The capture sees such a lookup when one is made.
  await lookup('stun.l.google.com').catch(() => undefined);
  const control = lookups();
  assert.ok(control > 0, 'the capture sees a lookup of stun.l.google.com');

  const env = await startTestServer({ host: network.serverIp });
  closeLater(() => env.close());
  const [pub, viewer] = await env.inRoom('r-contacts', 'pub', 'viewer');
  await pub!.publish('s-contacts');
  closeLater(loopFixtures(pub!.engine));
  let frames = 0;
  viewer!.engine.enableCustomVideoRender(true, { bufferType: VideoBufferType.EncodedData });
  viewer!.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => frames++ });
  viewer!.engine.startPlayingStream('s-contacts');
  await viewer!.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);
  // Gathering (and with it a reflexive candidate's lookup) begins before media flows.
  await sleep(1000);
  assert.ok(frames > 0, 'the call works');
  assert.deepEqual({ lookups: lookups() - control, stunRequests: stunRequests() }, { lookups: 0, stunRequests: 0 });
});
