/**
 * coturn (Debian's `turnserver`) for tests: the TURN REST API scheme with a shared secret, as a
 * deployment runs it (see deploy/coturn), listening on one address of this namespace.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestCertificate } from './tls.js';
import { startDaemon } from './daemon.js';

export interface TurnServer {
  /** turn:/turns: URLs of what it listens on. */
  urls: string[];
  secret: string;
  stop(): Promise<void>;
}

export async function startTurnServer({
  ip,
  secret,
  port = 3478,
  tls,
}: {
  ip: string;
  secret: string;
  port?: number;
  /** Also TURN over TLS, on `tls.port`. */
  tls?: { certificate: TestCertificate; port: number };
}): Promise<TurnServer> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-turn-'));
  const config = [
    `listening-ip=${ip}`,
    `relay-ip=${ip}`,
    `listening-port=${port}`,
    ...(tls ? [`tls-listening-port=${tls.port}`, `cert=${tls.certificate.chainFile}`, `pkey=${tls.certificate.keyFile}`] : ['no-tls']),
    'no-dtls',
    'use-auth-secret',
    `static-auth-secret=${secret}`,
    'realm=parley.test',
    'fingerprint',
    'no-cli',
    'no-multicast-peers',
    'min-port=49152',
    'max-port=65535',
    'log-file=stdout',
    'simple-log',
    `pidfile=${join(dir, 'turnserver.pid')}`,
  ];
  writeFileSync(join(dir, 'turnserver.conf'), `${config.join('\n')}\n`);
  const { stop } = await startDaemon(['turnserver', '-c', join(dir, 'turnserver.conf')], {
    readyAt: [ip, port],
    stopSignal: 'SIGTERM',
    dir,
  });
  return {
    urls: [
      `turn:${ip}:${port}?transport=udp`,
      `turn:${ip}:${port}?transport=tcp`,
      ...(tls ? [`turns:${ip}:${tls.port}?transport=tcp`] : []),
    ],
    secret,
    stop,
  };
}
