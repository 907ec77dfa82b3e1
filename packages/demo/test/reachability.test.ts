/**
 * Calls across the networks real users have: Chromium in homes behind NAT routers and firewalls,
 * the server behind a 1:1 NAT, all built from network namespaces (see @parley/testkit's
 * TestNetwork; needs root and iptables). Each test asserts which candidate pair carried the media.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startServer, DEV_APP, type ParleyServer, type MediaOptions } from '@parley/server';
import { TestNetwork, teardown, inboundTotals, launchChromium, mediaPaths, openDemo, type TestHost, type PathEnd } from '@parley/testkit';

type Closer = (close: () => unknown) => void;

/** A server in this namespace on the network's address, with `media` as given. */
async function serverOn(network: TestNetwork, closeLater: Closer, media: MediaOptions = {}): Promise<ParleyServer> {
  const server = await startServer({ host: network.serverIp, port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent', media });
  closeLater(() => server.close());
  return server;
}

/** The demo page as `userID` in room `roomID`, from Chromium in `host`'s namespace (or this one). */
async function pageIn(
  closeLater: Closer,
  network: TestNetwork,
  host: TestHost | undefined,
  server: { httpUrl: string },
  userID: string,
): Promise<Page> {
  const chromium = await launchChromium({ ...(host && { host: { network, host } }), secureOrigin: server.httpUrl });
  closeLater(() => chromium.close());
  return openDemo(server.httpUrl, chromium.browser, userID, { roomID: 'reach' });
}

/** Waits until each page decodes video from the other (both publish, both play). */
async function bothDecode(pages: Page[]): Promise<void> {
  for (const page of pages) {
    const start = (await inboundTotals(page)).framesDecoded;
    for (const deadline = Date.now() + 20_000; ; await new Promise((r) => setTimeout(r, 250))) {
      if ((await inboundTotals(page)).framesDecoded > start + 10) break;
      if (Date.now() > deadline) {
        const dump = await page.evaluate(
          `(async () => { const out = []; for (const pc of window.__pcs) { const st = await pc.getStats(); st.forEach((s) => { if (s.type === 'candidate-pair' || s.type === 'local-candidate' || s.type === 'remote-candidate') out.push(JSON.stringify([s.type, s.state, s.candidateType, s.protocol, s.address, s.port, s.tcpType, s.requestsSent, s.responsesReceived])); }); out.push(pc.remoteDescription && pc.remoteDescription.sdp.split('\\r\\n').filter((l) => l.startsWith('a=candidate')).join(' | ')); } return out.join('\\n'); })()`,
        );
        console.error('DBG', dump);
        throw new Error('no video decoded within 20 s');
      }
    }
  }
}

/** The page's media paths once it has both its publishing and its playing peer connection. */
async function pathsOf(page: Page): Promise<Array<{ local: PathEnd; remote: PathEnd }>> {
  for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 250))) {
    const paths = await mediaPaths(page);
    if (paths.length >= 2 || Date.now() > deadline) return paths;
  }
}

const describe = ({ local, remote }: { local: PathEnd; remote: PathEnd }): string =>
  `${local.candidateType}/${local.protocol}${local.relayProtocol ? `(${local.relayProtocol})` : ''} ${local.address}:${local.port} → ${remote.candidateType}/${remote.protocol} ${remote.address}:${remote.port}`;

test('two homes behind NAT routers (MASQUERADE) call each other directly through the server’s one UDP port', async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const homes = [network.addHost(), network.addHost()];
  const lans = homes.map((router) => {
    const lan = router.addLanHost();
    router.masquerade();
    return lan;
  });
  const server = await serverOn(network, closeLater);
  const pages = [await pageIn(closeLater, network, lans[0], server, 'alice'), await pageIn(closeLater, network, lans[1], server, 'bob')];
  await bothDecode(pages);
  for (const [i, page] of pages.entries()) {
    const paths = await pathsOf(page);
    t.diagnostic(paths.map(describe).join('; '));
    assert.equal(paths.length, 2, 'a publishing and a playing peer connection');
    for (const { local, remote } of paths) {
      // From the home's address as the router maps it (learnt from the server's answers), or as the page knows it.
      assert.ok(
        (local.candidateType === 'prflx' && local.address === homes[i]!.ip) || local.address === '192.168.1.2',
        `from the home: ${describe({ local, remote })}`,
      );
      assert.deepEqual(
        [remote.candidateType, remote.protocol, remote.address, remote.port],
        ['host', 'udp', network.serverIp, server.media.udpPort],
        'to the server’s one UDP port',
      );
    }
  }
});

test('a home whose router forwards no UDP connects over ICE-TCP to the server’s TCP port', async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const router = network.addHost();
  const lan = router.addLanHost();
  router.masquerade();
  router.firewall('no-udp');
  const server = await serverOn(network, closeLater, { tcpPort: 0 });
  const pages = [await pageIn(closeLater, network, lan, server, 'blocked'), await pageIn(closeLater, network, undefined, server, 'open')];
  await bothDecode(pages);
  const blocked = await pathsOf(pages[0]!);
  t.diagnostic(blocked.map(describe).join('; '));
  assert.equal(blocked.length, 2);
  for (const { remote } of blocked) {
    assert.deepEqual(
      [remote.candidateType, remote.protocol, remote.address, remote.port],
      ['host', 'tcp', network.serverIp, server.media.tcpPort],
    );
  }
  const open = await pathsOf(pages[1]!);
  for (const { remote } of open) assert.equal(remote.protocol, 'udp', 'where UDP passes, it is preferred');
});
