/**
 * coturn (Debian's `turnserver`) for tests: the TURN REST API scheme with a shared secret, as a
 * deployment runs it (see deploy/coturn), listening on one address of this namespace.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestCertificate } from './tls.js';

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
  const child = spawn('turnserver', ['-c', join(dir, 'turnserver.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready once its TCP listener takes connections.
  for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 100))) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`turnserver exited: ${output}`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: ip, port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`turnserver did not listen on ${ip}:${port}: ${output}`);
    }
  }
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
