/**
 * nginx (Debian's) in front of Parley as a deploy/ example puts it (deploy/nginx/parley.conf for
 * one server, deploy/cluster/nginx.conf for a cluster), with the test's certificate, address and
 * upstreams in place of the example's.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon, type ReverseProxyOptions } from './daemon.js';
import type { TestCertificate } from './tls.js';

const SAMPLE = new URL('../../../deploy/nginx/parley.conf', import.meta.url).pathname;

/** An example site's text listening on `listen` ("host:port") with `certificate` in place of the example's. */
export function siteWithCertificate(site: string, listen: string, certificate: TestCertificate): string {
  return site
    .replace('listen 443 ssl;', `listen ${listen} ssl;`)
    .replace(/\/etc\/letsencrypt\/live\/parley\.example\.com\/fullchain\.pem/, certificate.chainFile)
    .replace(/\/etc\/letsencrypt\/live\/parley\.example\.com\/privkey\.pem/, certificate.keyFile);
}

/** nginx serving `site` (a server block and what it needs, as a deploy/ example has it); ready once `listen` accepts. */
export async function startNginxSite(site: string, listen: string): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-nginx-'));
  // nginx's workers run as an unprivileged user: they buffer large responses in these folders.
  chmodSync(dir, 0o755);
  for (const temp of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
    mkdirSync(join(dir, temp));
    chmodSync(join(dir, temp), 0o777);
  }
  writeFileSync(join(dir, 'parley.conf'), site);
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'worker_processes 1;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'events {}',
      'http {',
      '  access_log off;',
      ...['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
        (temp) => `  ${temp === 'body' ? 'client_body' : temp}_temp_path ${join(dir, temp)};`,
      ),
      `  include ${join(dir, 'parley.conf')};`,
      '}',
    ].join('\n'),
  );
  const [host, port] = listen.split(':') as [string, string];
  return startDaemon(['nginx', '-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')], {
    readyAt: [host, Number(port)],
    stopSignal: 'SIGQUIT',
    dir,
  });
}

/** deploy/nginx/parley.conf in front of the server at `upstream`. */
export async function startNginx({ listen, upstream, certificate }: ReverseProxyOptions): Promise<Daemon> {
  const site = siteWithCertificate(readFileSync(SAMPLE, 'utf8'), listen, certificate).replace(
    'http://127.0.0.1:7800',
    `http://${upstream}`,
  );
  return startNginxSite(site, listen);
}
