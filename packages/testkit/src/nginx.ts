/**
 * nginx (Debian's) in front of a Parley server as deploy/nginx/parley.conf puts it, with the
 * test's certificate, address and upstream in place of the sample's.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestCertificate } from './tls.js';

const SAMPLE = new URL('../../../deploy/nginx/parley.conf', import.meta.url).pathname;

export async function startNginx({
  listen,
  upstream,
  certificate,
}: {
  /** ip:port nginx listens on (TLS). */
  listen: string;
  /** host:port of the Parley server. */
  upstream: string;
  certificate: TestCertificate;
}): Promise<{ stop(): Promise<void> }> {
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
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const [host, port] = listen.split(':') as [string, string];
  for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 100))) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port: Number(port) }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not start: ${output}`);
    }
  }
  return { stop };
}
