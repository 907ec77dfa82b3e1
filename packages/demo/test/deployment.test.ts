/**
 * Parley deployed as production runs it: `parley start --config` behind a reverse proxy that ends
 * TLS (deploy/nginx/parley.conf, deploy/caddy/Caddyfile). Browsers in a network namespace use the
 * demo page through the proxy (needs root, nginx, caddy).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { generateToken04, randomApp } from '@parley/server';
import {
  TestNetwork,
  teardown,
  launchChromium,
  makeCertificate,
  openDemo,
  startCaddy,
  startNginx,
  startServerProcess,
  waitDecoding,
} from '@parley/testkit';

for (const [name, startProxy] of [
  ['nginx', startNginx],
  ['Caddy', startCaddy],
] as const) {
  test(`${name} ends TLS in front of Parley: the demo page and signalling work through it, and the server logs each client’s real address`, (t) =>
    behindProxy(t, startProxy));
}

async function behindProxy(t: TestContext, startProxy: typeof startNginx): Promise<void> {
  const closeLater = teardown(t);
  const network = new TestNetwork();
  closeLater(() => network.close());
  const home = network.addHost();
  const app = randomApp(7_000_001);
  const server = await startServerProcess({
    listen: { host: '127.0.0.1', port: 0 },
    publicUrl: `https://${network.serverIp}`,
    apps: [app],
    behindProxy: ['127.0.0.1'],
    demo: true,
    media: { listenIp: network.serverIp, udpPort: 0, tcpPort: false },
  });
  closeLater(() => server.stop());
  const certificate = makeCertificate({ ips: [network.serverIp] });
  closeLater(() => certificate.remove());
  const proxy = await startProxy({ listen: `${network.serverIp}:443`, upstream: new URL(server.httpUrl).host, certificate });
  closeLater(() => proxy.stop());

  const publicUrl = `https://${network.serverIp}`;
  const pageOf = async (userID: string, inHome: boolean) => {
    const chromium = await launchChromium({ ...(inHome && { host: { network, host: home } }), trustSpki: [certificate.spki] });
    closeLater(() => chromium.close());
    // A production server: the page logs in with a token the business server would mint.
    const token = generateToken04({ appID: app.appID, userID, serverSecret: app.serverSecret, effectiveTimeInSeconds: 600 });
    return openDemo(publicUrl, chromium.browser, userID, { roomID: 'proxied', params: { appID: String(app.appID), token } });
  };
  const pages = [await pageOf('alice', true), await pageOf('bob', false)];
  for (const page of pages) {
    assert.equal(await page.evaluate('document.getElementById("server").value'), `wss://${network.serverIp}/ws`);
    await waitDecoding(page);
  }
  const logins = server.logs.filter((entry) => entry.msg === 'login').map((entry) => [entry.userID, entry.address]);
  assert.deepEqual(
    new Map(logins as Array<[string, string]>).get('alice'),
    home.ip,
    `the login is logged with the browser's address, not the proxy's: ${JSON.stringify(logins)}`,
  );

  // From the home, `parley doctor --config` checks what the file's publicUrl gives clients: signalling through nginx, media on UDP.
  const cli = new URL('../../server/dist/cli.js', import.meta.url).pathname;
  const argv = home.command([process.execPath, cli, 'doctor', '--config', server.configFile]);
  const { stdout } = await promisify(execFile)(argv[0]!, argv.slice(1), {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: certificate.caFile },
  });
  t.diagnostic(stdout.trim().replaceAll('\n', ' | '));
  assert.match(stdout, new RegExp(`^signalling +ok +wss://${network.serverIp.replaceAll('.', '\\.')}/ws: `, 'm'));
  assert.match(stdout, /^udp +ok /m);
}
