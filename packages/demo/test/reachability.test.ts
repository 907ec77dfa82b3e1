/**
 * Calls across the networks real users have: Chromium in homes behind NAT routers and firewalls,
 * the server behind a 1:1 NAT, all built from network namespaces (see @parley/testkit's
 * TestNetwork; needs root and iptables). Each test asserts which candidate pair carried the media.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { startServer, DEV_APP, type ParleyServer, type ServerOptions } from '@parley/server';
import {
  TestNetwork,
  teardown,
  launchChromium,
  makeCertificate,
  mediaPaths,
  openDemo,
  startTurnServer,
  waitDecoding,
  type ChromiumOptions,
  type TestCertificate,
  type TurnServer,
  type TestHost,
  type PathEnd,
} from '@parley/testkit';

type Closer = (close: () => unknown) => void;

/** A server in this namespace on the network's address, with `options` as given. */
async function serverOn(
  network: TestNetwork,
  closeLater: Closer,
  options: Pick<ServerOptions, 'media' | 'turn' | 'port' | 'tls'> = {},
): Promise<ParleyServer> {
  const server = await startServer({ host: network.serverIp, port: 0, apps: [DEV_APP], devMode: true, logLevel: 'silent', ...options });
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
  options: ChromiumOptions = {},
): Promise<Page> {
  const secureOrigin = server.httpUrl.startsWith('https:') ? undefined : server.httpUrl;
  const chromium = await launchChromium({ ...(host && { host: { network, host } }), secureOrigin, ...options });
  closeLater(() => chromium.close());
  return openDemo(server.httpUrl, chromium.browser, userID, { roomID: 'reach' });
}

/** Waits until each page decodes video from the other (both publish, both play). */
async function bothDecode(pages: Page[]): Promise<void> {
  for (const page of pages) await waitDecoding(page);
}

/** The page's media paths once it has both its publishing and its playing peer connection. */
async function pathsOf(page: Page): Promise<Array<{ local: PathEnd; remote: PathEnd }>> {
  for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 250))) {
    const paths = await mediaPaths(page);
    if (paths.length >= 2 || Date.now() > deadline) return paths;
  }
}

/** A network with a home behind a NAT router whose firewall lets through what `policy` allows. */
function walledHome(closeLater: Closer, policy: 'no-udp' | 'tcp-443'): { network: TestNetwork; lan: TestHost } {
  const network = new TestNetwork();
  closeLater(() => network.close());
  const router = network.addHost();
  const lan = router.addLanHost();
  router.masquerade();
  router.firewall(policy);
  return { network, lan };
}

/** coturn on a second address of `network`, over UDP and TCP on 3478 and over TLS on 443. */
async function turnServerOn(
  network: TestNetwork,
  closeLater: Closer,
): Promise<{ turn: TurnServer; turnIp: string; certificate: TestCertificate }> {
  const turnIp = network.addServerAddress();
  const certificate = makeCertificate({ ips: [turnIp] });
  closeLater(() => certificate.remove());
  const turn = await startTurnServer({ ip: turnIp, secret: randomBytes(16).toString('hex'), tls: { certificate, port: 443 } });
  closeLater(() => turn.stop());
  return { turn, turnIp, certificate };
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
  const { network, lan } = walledHome(closeLater, 'no-udp');
  const server = await serverOn(network, closeLater, { media: { tcpPort: 0 } });
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

/** A home whose router lets through what `policy` allows, a page in it and one beside the server, with coturn on a second address. */
async function turnCall(
  t: { after(fn: () => unknown): void },
  policy: 'no-udp' | 'tcp-443',
): Promise<{ network: TestNetwork; turnIp: string; pages: Page[] }> {
  const closeLater = teardown(t);
  const { network, lan } = walledHome(closeLater, policy);
  const { turn, turnIp, certificate } = await turnServerOn(network, closeLater);
  // No ICE-TCP: what UDP cannot reach goes through TURN. Behind a TCP-443-only firewall, signalling is on 443 too.
  const server = await serverOn(network, closeLater, {
    port: policy === 'tcp-443' ? 443 : 0,
    // Where only UDP is blocked, TURN over TLS would do as well as over TCP and a browser picks
    // either: offered no TLS, it shows that TURN over TCP works.
    turn: { urls: policy === 'no-udp' ? turn.urls.filter((url) => !url.startsWith('turns:')) : turn.urls, secret: turn.secret },
  });
  const pages = [
    await pageIn(closeLater, network, lan, server, 'walled', { trustSpki: [certificate.spki] }),
    await pageIn(closeLater, network, undefined, server, 'open'),
  ];
  await bothDecode(pages);
  return { network, turnIp, pages };
}

test('a home whose router forwards no UDP, with ICE-TCP off, connects through TURN over TCP (coturn, REST credentials from the login)', async (t) => {
  const { network, turnIp, pages } = await turnCall(t, 'no-udp');
  const walled = await pathsOf(pages[0]!);
  t.diagnostic(walled.map(describe).join('; '));
  assert.equal(walled.length, 2);
  for (const { local, remote } of walled) {
    assert.deepEqual([local.candidateType, local.relayProtocol, local.address], ['relay', 'tcp', turnIp], 'a relay reached over TCP');
    assert.deepEqual([remote.address, remote.protocol], [network.serverIp, 'udp'], 'relayed to the server’s UDP port');
  }
});

test('a home that may reach only TCP port 443 connects through TURN over TLS on 443', async (t) => {
  const { turnIp, pages } = await turnCall(t, 'tcp-443');
  const walled = await pathsOf(pages[0]!);
  t.diagnostic(walled.map(describe).join('; '));
  assert.equal(walled.length, 2);
  for (const { local } of walled) assert.deepEqual([local.candidateType, local.relayProtocol, local.address], ['relay', 'tls', turnIp]);
});

test('https and wss with a certificate of the test’s own CA: the demo page, from an address that is not localhost, gets the camera and calls', async (t) => {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const home = network.addHost();
  const certificate = makeCertificate({ ips: [network.serverIp] });
  closeLater(() => certificate.remove());
  const server = await serverOn(network, closeLater, {
    tls: { cert: readFileSync(certificate.chainFile), key: readFileSync(certificate.keyFile) },
  });
  assert.ok(server.httpUrl.startsWith(`https://${network.serverIp}:`) && server.url.startsWith('wss://'));
  // No flag makes the origin secure: https does, with the certificate trusted.
  const trust = { trustSpki: [certificate.spki] };
  const pages = [
    await pageIn(closeLater, network, home, server, 'alice', trust),
    await pageIn(closeLater, network, undefined, server, 'bob', trust),
  ];
  for (const page of pages) assert.equal(await page.evaluate('window.isSecureContext && location.protocol'), 'https:');
  await bothDecode(pages);
});

test('parley doctor from a home whose router forwards no UDP: signalling, ICE-TCP and TURN over TCP and TLS work, UDP does not; from outside, everything works', async (t) => {
  const closeLater = teardown(t);
  const { network, lan } = walledHome(closeLater, 'no-udp');
  const { turn, certificate } = await turnServerOn(network, closeLater);
  const server = await serverOn(network, closeLater, { media: { tcpPort: 0 }, turn: { urls: turn.urls, secret: turn.secret } });
  const cli = new URL('../../server/dist/cli.js', import.meta.url).pathname;
  const doctor = async (prefix: string[]): Promise<Record<string, boolean>> => {
    const argv = [...prefix, process.execPath, cli, 'doctor', server.url, '--app-id', String(DEV_APP.appID), '--app-sign', DEV_APP.appSign];
    // Node trusts the TURN server's certificate as a browser that knows its CA would.
    const { stdout } = await promisify(execFile)(argv[0]!, argv.slice(1), {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: certificate.caFile },
    });
    t.diagnostic(stdout.trim().replaceAll('\n', ' | '));
    // "name ok|FAIL what: detail", keyed by name and, for TURN, by URL.
    return Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((line) => /^(\S+)\s+(ok|FAIL)\s+(\S+?):? /.exec(line)!)
        .map(([, name, ok, what]) => [name === 'turn' ? what! : name!, ok === 'ok']),
    );
  };
  const [udpUrl, tcpUrl, tlsUrl] = turn.urls as [string, string, string];
  assert.deepEqual(await doctor(lan.command([])), {
    signalling: true,
    udp: false,
    tcp: true,
    [udpUrl]: false,
    [tcpUrl]: true,
    [tlsUrl]: true,
  });
  assert.deepEqual(await doctor([]), { signalling: true, udp: true, tcp: true, [udpUrl]: true, [tcpUrl]: true, [tlsUrl]: true });
});
