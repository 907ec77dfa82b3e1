/**
 * A publisher behind a home router whose NAT changes mid-call (needs root, iptables, conntrack):
 * it maps the LAN to another public address, or to other ports, and forgets its flows. The
 * publisher's media and signalling both break. Hearing nothing, it checks its pair at once; the
 * server follows it to its new address (a NAT rebinding), and its signalling session resumes.
 * Its players see a pause, and no state or room change; the stream is never published again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlayerState, VideoBufferType } from '@parley/sdk';
import { serverMetric, teardown, TestNetwork } from '@parley/testkit';
import { sleep, startTestServer } from './helpers.js';
import { startPublisherIn } from './publisherChild.js';

/** Events that are changes (not media reports such as quality, levels or keyframe requests). */
const CHANGES = /^(roomStateChanged|roomUserUpdate|roomStreamUpdate|playerStateUpdate|roomStreamExtraInfoUpdate|remote\w+StateUpdate)$/;
/** Long enough for a broken signalling connection to be noticed and resumed, and for anything that follows it. */
const WATCH_AFTER_CHANGE_MS = 12_000;

for (const change of ['address', 'port'] as const) {
  test(`NAT ${change} change mid-call: frames back within 3 s, the publisher keeps its stream, its player sees no change`, async (t) => {
    const closeLater = teardown(t);
    const network = new TestNetwork();
    closeLater(() => network.close());
    const router = network.addHost();
    const home = router.addLanHost();
    router.snat(router.ip, '20000-29999');
    // Heartbeats every 2 s: the signalling connection, broken by the NAT too, is found broken and resumed within the watch.
    const env = await startTestServer({ host: network.serverIp, heartbeatTimeoutMs: 6000 });
    closeLater(() => env.close());

    const publisher = startPublisherIn(home, env, 'r-nat', 'pub', 's-nat');
    closeLater(() => publisher.kill());
    const { lines } = publisher;
    await publisher.waitLine(/^publishing$/, 0, 20_000);

    const [player] = await env.inRoom('r-nat', 'player');
    const frameTimes: number[] = [];
    player!.engine.enableCustomVideoRender(true, { bufferType: VideoBufferType.EncodedData });
    player!.engine.setCustomVideoRenderHandler({ onRemoteVideoFrameEncodedDataReceived: () => frameTimes.push(Date.now()) });
    player!.engine.startPlayingStream('s-nat');
    await player!.waitFor('playerStateUpdate', (_, state) => state === PlayerState.Playing);
    await sleep(2000);
    const eventsBefore = player!.events.length;
    const linesBefore = lines.length;

    const changedAt = Date.now();
    if (change === 'address') router.snat(router.addWanAddress(), '20000-29999');
    else router.snat(router.ip, '30000-39999');
    let backAt: number | undefined;
    for (const deadline = changedAt + 10_000; backAt === undefined && Date.now() < deadline; await sleep(20)) {
      // Back: three frames since the change, the first of them after a gap (the old path's last frames may still arrive).
      const since = frameTimes.filter((at) => at > changedAt + 100);
      if (since.length >= 3) backAt = since[0];
    }
    await sleep(Math.max(0, changedAt + WATCH_AFTER_CHANGE_MS - Date.now()));

    const publisherLines = lines.slice(linesBefore).map((l) => `${l.atMs - changedAt} ms: ${l.line}`);
    const seenByPlayer = player!.events.slice(eventsBefore).filter((e) => CHANGES.test(e.event));
    t.diagnostic(
      `frames back ${backAt === undefined ? 'never' : `${backAt - changedAt} ms`} after the change; the publisher: ${JSON.stringify(publisherLines)}`,
    );
    assert.ok(
      backAt !== undefined && backAt - changedAt <= 3000,
      `frames back within 3 s (${backAt === undefined ? 'never' : backAt - changedAt} ms)`,
    );
    assert.deepEqual(
      seenByPlayer.map((e) => `${e.event} ${JSON.stringify(e.args)}`),
      [],
      'the player saw no state or room change',
    );
    const publishStates = lines.slice(linesBefore).filter((l) => l.line.startsWith('state '));
    assert.ok(
      publishStates.every((l) => /^state (PublishRequesting 1003020|Publishing 0)$/.test(l.line)),
      'the publisher went through PublishRequesting at most',
    );
    assert.ok((await serverMetric(env.server.httpUrl, 'parley_media_nat_rebindings_total')) >= 1, 'the server followed the new address');
    const recent = frameTimes.filter((at) => at > Date.now() - 1000).length;
    assert.ok(recent >= 20, `frames still flow at the end (${recent} in the last second)`);
  });
}
