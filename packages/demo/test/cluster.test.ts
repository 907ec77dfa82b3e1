/**
 * Browsers on different nodes of a cluster: each plays the other's stream, relayed between the
 * nodes, as it would on one server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertMediaFlows, launchChromium, openDemo, remoteVideoSize, startCluster, teardown } from '@parley/testkit';

test('cluster: a browser on node A and one on node B play each other’s camera, relayed between the nodes', async (t) => {
  // Registered first, so run first: the browser goes before the nodes.
  const closeLater = teardown(t);
  const { app, nodes } = await startCluster(t, { nodeIds: ['a', 'b'], config: { demo: true } });
  const chromium = await launchChromium();
  closeLater(() => chromium.close());
  const params = { appID: String(app.appID), appSign: app.appSign };
  const alice = await openDemo(nodes[0]!.httpUrl, chromium.browser, 'alice', { roomID: 'r-browsers', params });
  const bob = await openDemo(nodes[1]!.httpUrl, chromium.browser, 'bob', { roomID: 'r-browsers', params });
  assert.ok((await remoteVideoSize(alice, 'stream_bob')).width > 0);
  assert.ok((await remoteVideoSize(bob, 'stream_alice')).width > 0);
  await assertMediaFlows(alice);
  await assertMediaFlows(bob);
});
