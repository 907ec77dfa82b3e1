/**
 * Caddy (Debian's) in front of a Parley server as deploy/caddy/Caddyfile puts it, with the test's
 * certificate (no ACME), address and upstream in place of the sample's.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon, type ReverseProxyOptions } from './daemon.js';

const SAMPLE = new URL('../../../deploy/caddy/Caddyfile', import.meta.url).pathname;

export async function startCaddy({ listen, upstream, certificate }: ReverseProxyOptions): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-caddy-'));
  const [host, port] = listen.split(':') as [string, string];
  const site = readFileSync(SAMPLE, 'utf8')
    .replace('parley.example.com {', `https://${listen} {\n\tbind ${host}\n\ttls ${certificate.chainFile} ${certificate.keyFile}`)
    .replace('reverse_proxy 127.0.0.1:7800', `reverse_proxy ${upstream}`);
  writeFileSync(
    join(dir, 'Caddyfile'),
    `{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system ${join(dir, 'data')}\n}\n\n${site}`,
  );
  return startDaemon(['caddy', 'run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], {
    readyAt: [host, Number(port)],
    stopSignal: 'SIGTERM',
    dir,
  });
}
