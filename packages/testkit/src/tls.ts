/**
 * A certificate authority of the test's own and a server certificate it signs, made with openssl:
 * for https/wss, TURN over TLS and a TLS-terminating proxy. Chromium trusts it through
 * `--ignore-certificate-errors-spki-list` with `spki` (see launchChromium's `trustSpki`).
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  /** PEM files: the server's certificate followed by the CA's (the chain a server presents), its key, and the CA alone. */
  chainFile: string;
  keyFile: string;
  caFile: string;
  /** base64(SHA-256(SubjectPublicKeyInfo)) of the server certificate. */
  spki: string;
  remove(): void;
}

const openssl = (...args: string[]): void => {
  execFileSync('openssl', args, { stdio: 'pipe' });
};

/** A CA and a server certificate for `ips` (and `names`), valid for a day. */
export function makeCertificate({ ips = [], names = [] }: { ips?: string[]; names?: string[] }): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'parley-tls-'));
  const path = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-days', '1', '-subj', '/CN=Parley test CA', '-keyout', path('ca.key'), '-out', path('ca.pem'));
  openssl('req', ...ec, '-subj', `/CN=${names[0] ?? ips[0] ?? 'parley.test'}`, '-keyout', path('server.key'), '-out', path('server.csr'));
  const san = [...ips.map((ip) => `IP:${ip}`), ...names.map((name) => `DNS:${name}`)].join(',');
  writeFileSync(path('ext.cnf'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  openssl(
    'x509',
    '-req',
    '-in',
    path('server.csr'),
    '-CA',
    path('ca.pem'),
    '-CAkey',
    path('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    path('ext.cnf'),
    '-out',
    path('server.pem'),
  );
  writeFileSync(path('chain.pem'), readFileSync(path('server.pem'), 'utf8') + readFileSync(path('ca.pem'), 'utf8'));
  const publicKey = new X509Certificate(readFileSync(path('server.pem'))).publicKey.export({ type: 'spki', format: 'der' });
  return {
    chainFile: path('chain.pem'),
    keyFile: path('server.key'),
    caFile: path('ca.pem'),
    spki: createHash('sha256').update(publicKey).digest('base64'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
