/**
 * nginx (Debian's) in front of a Parley server as deploy/nginx/parley.conf puts it, with the
 * test's certificate, address and upstream in place of the sample's.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon, type ReverseProxyOptions } from './daemon.js';

const SAMPLE = new URL('../../../deploy/nginx/parley.conf', import.meta.url).pathname;

export async function startNginx({ listen, upstream, certificate }: ReverseProxyOptions): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-nginx-'));
  // nginx's workers run as an unprivileged user: they buffer large responses in these folders.
  chmodSync(dir, 0o755);
  for (const temp of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
    mkdirSync(join(dir, temp));
    chmodSync(join(dir, temp), 0o777);
  }
  const site = readFileSync(SAMPLE, 'utf8')
    .replace('listen 443 ssl;', `listen ${listen} ssl;`)
    .replace(/\/etc\/letsencrypt\/live\/parley\.example\.com\/fullchain\.pem/, certificate.chainFile)
    .replace(/\/etc\/letsencrypt\/live\/parley\.example\.com\/privkey\.pem/, certificate.keyFile)
    .replace('http://127.0.0.1:7800', `http://${upstream}`);
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
  return startDaemon(['nginx', '-p', dir, '-c', join(dir, 'nginx.conf')], { readyAt: [host, Number(port)], stopSignal: 'SIGQUIT', dir });
}
