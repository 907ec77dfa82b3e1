import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { RTCPeerConnection, useOPUS, useVP8 } from 'werift';
import { SdpError, WorkerMediaPlane } from '../src/media/index.js';
import { distinct, forwardingCall, frames, sendEach } from './forwardingCall.js';

const until = async (done: () => boolean, what: string, timeoutMs = 3000): Promise<void> => {
  for (const deadline = Date.now() + timeoutMs; !done(); await new Promise((resolve) => setTimeout(resolve, 20))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
};

async function sendOnlyOffer(t: { after(fn: () => unknown): void }): Promise<string> {
  const pc = new RTCPeerConnection({ iceServers: [], iceUseIpv6: false, codecs: { audio: [useOPUS()], video: [useVP8()] } });
  t.after(() => pc.close());
  pc.addTransceiver('audio', { direction: 'sendonly' });
  pc.addTransceiver('video', { direction: 'sendonly' });
  await pc.setLocalDescription(await pc.createOffer());
  return pc.localDescription!.sdp;
}

const portOf = (answer: string): number => Number(/^a=candidate:\S+ \d+ udp \d+ \S+ (\d+)/m.exec(answer)![1]);

test('through media workers, a player gets the publisher’s packets byte for byte, and the plane’s stats add up the workers’', async (t) => {
  const call = await forwardingCall(t, undefined, { workers: 2 });
  const sent = frames(5);
  await sendEach(call, sent);
  assert.deepEqual(
    distinct(call.received).map(([, payload]) => payload),
    sent.map((frame) => frame.toString('hex')),
  );
  await until(() => call.plane.stats.packetsSent >= 5 && call.plane.stats.subscribers === 1, 'the workers’ stats');
  assert.equal(call.plane.stats.publishers, 1);
  assert.ok(call.plane.stats.packetsReceived >= 5);
});

test('publishers go to the worker with the fewest endpoints, each worker on its own UDP port (udpPort + i)', async (t) => {
  const plane = await WorkerMediaPlane.open({ listenIp: '127.0.0.1', workers: 2 });
  t.after(() => plane.close());
  const [first, second, third] = [
    await plane.publish(await sendOnlyOffer(t)),
    await plane.publish(await sendOnlyOffer(t)),
    await plane.publish(await sendOnlyOffer(t)),
  ];
  const ports = plane.ports.udp;
  assert.equal(new Set(ports).size, 2);
  assert.deepEqual(
    [first, second, third].map((p) => portOf(p!.answer)),
    [ports[0], ports[1], ports[0]],
  );
  await until(() => plane.stats.publishers === 3, 'three publishers');
  second!.close();
  assert.equal(second!.closed, true);
  // The second worker has none now: the next goes there.
  assert.equal(portOf((await plane.publish(await sendOnlyOffer(t))).answer), ports[1]);
});

test('an offer a worker cannot take is refused with SdpError, and leaves nothing behind', async (t) => {
  const plane = await WorkerMediaPlane.open({ listenIp: '127.0.0.1', workers: 1 });
  t.after(() => plane.close());
  await assert.rejects(plane.publish('v=0\r\nnot an offer'), SdpError);
  const publisher = await plane.publish(await sendOnlyOffer(t));
  assert.throws(() => publisher.addRemoteCandidates(['candidate:garbage']), SdpError);
  await until(() => plane.stats.publishers === 1, 'one publisher');
});

test('a worker that dies: its endpoints move, and close if no restart comes in time; its counters stay in the totals, and a new worker takes its place', async (t) => {
  const call = await forwardingCall(t, undefined, { workers: 2, moveTimeoutMs: 300 });
  await sendEach(call, frames(3));
  const plane = call.plane as WorkerMediaPlane;
  await until(() => plane.stats.packetsSent >= 3, 'packets sent');
  const slot = plane.ports.udp.indexOf(portOf(call.endpoint.answer));
  const sentBefore = plane.stats.packetsSent;
  const moved = once(call.endpoint.observer, 'moved');
  const closed = once(call.endpoint.observer, 'closed');
  const restarted = once(plane.observer, 'workerRestarted');
  plane.stopWorker(slot);
  await moved;
  assert.equal(call.endpoint.closed, false);
  assert.equal(call.endpoint.connected, true, 'moved, it takes an ICE restart');
  await closed;
  assert.equal(call.endpoint.closed, true, 'no restart within moveTimeoutMs');
  assert.deepEqual(await restarted, [slot]);
  assert.equal(plane.stats.publishers, 0);
  assert.equal(plane.stats.subscribers, 0);
  assert.equal(plane.stats.packetsSent, sentBefore);
  // The new worker takes publishers again: of two, one goes to each.
  const answers = [await plane.publish(await sendOnlyOffer(t)), await plane.publish(await sendOnlyOffer(t))].map((p) => portOf(p.answer));
  assert.deepEqual(answers.sort(), [...plane.ports.udp].sort());
});

test("a moved endpoint's ICE restart opens it on a live worker: another DTLS fingerprint, in the client agent's generation", async (t) => {
  const call = await forwardingCall(t, undefined, { workers: 2, restartDelayMs: 60_000 });
  const plane = call.plane as WorkerMediaPlane;
  const slot = plane.ports.udp.indexOf(portOf(call.endpoint.answer));
  assert.deepEqual(plane.endpointCounts[slot], 2, 'the publisher and its player');
  const fingerprint = (sdp: string): string => /^a=fingerprint:(.+)$/m.exec(sdp)![1]!;
  const generation = (sdp: string): number => Number(/^a=candidate:.* generation (\d+)/m.exec(sdp)![1]);
  const moved = once(call.endpoint.observer, 'moved');
  plane.stopWorker(slot);
  await moved;
  call.publisher.restartIce();
  await call.publisher.setLocalDescription(await call.publisher.createOffer());
  const offer = call.publisher.localDescription!.sdp;
  assert.equal(generation(offer), 1, "the client's agent restarted");
  const answer = await call.endpoint.restartIce(offer);
  assert.equal(portOf(answer), plane.ports.udp[1 - slot], 'on the live worker');
  assert.notEqual(fingerprint(answer), fingerprint(call.endpoint.answer), "that worker's certificate");
  assert.equal(generation(answer), 1, "its candidates in the client agent's generation");
  assert.equal(await call.endpoint.restartIce(offer), answer, 'the same offer again: the same answer');
  assert.deepEqual(plane.endpointCounts[1 - slot], 1);
  assert.equal(call.endpoint.closed, false);
});

test('an endpoint that never connected closes with its worker (it has no ICE to restart); a moved publisher that closes takes its moved players with it', async (t) => {
  const call = await forwardingCall(t, undefined, { workers: 1, restartDelayMs: 60_000 });
  const plane = call.plane as WorkerMediaPlane;
  const unconnected = await plane.publish(await sendOnlyOffer(t));
  const seen: string[] = [];
  call.endpoint.observer.on('moved', () => seen.push('publisher moved')).on('closed', () => seen.push('publisher closed'));
  call.subscriber.observer.on('moved', () => seen.push('player moved')).on('closed', () => seen.push('player closed'));
  unconnected.observer.on('moved', () => seen.push('unconnected moved')).on('closed', () => seen.push('unconnected closed'));
  plane.stopWorker(0);
  await until(() => seen.length === 3, 'the worker gone');
  assert.deepEqual(seen.sort(), ['player moved', 'publisher moved', 'unconnected closed']);
  call.endpoint.close();
  assert.deepEqual(seen.slice(3).sort(), ['player closed', 'publisher closed']);
  assert.equal(call.subscriber.closed, true);
});
