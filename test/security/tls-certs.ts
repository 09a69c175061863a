/**
 * Throwaway certificates for the TLS tests, made with the `openssl` CLI exactly as docs/SECURITY.md
 * tells operators to: a cluster CA, a node certificate (SAN IP:127.0.0.1, DNS:localhost, server and
 * client use), a client certificate, and a CA of another cluster with a client and a node
 * certificate of its own. `makeTestCerts()` returns null when openssl is missing (tests skip).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertPair {
  cert: string;
  key: string;
}

export interface TestCerts {
  dir: string;
  /** The cluster CA's certificate. */
  ca: string;
  /** Node certificate from `ca`: SAN IP:127.0.0.1, DNS:localhost, DNS:shoal-node. */
  node: CertPair;
  /** Client certificate from `ca` (clientAuth only). */
  client: CertPair;
  /** Another CA, and a client and a node certificate it signed (same names as `node`). */
  foreignCa: string;
  foreignClient: CertPair;
  foreignNode: CertPair;
  remove(): void;
}

const OPENSSL = process.env.OPENSSL ?? 'openssl';

export function opensslAvailable(): boolean {
  try {
    execFileSync(OPENSSL, ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const NO_OPENSSL = 'the openssl CLI is not installed (set OPENSSL=/path/to/openssl); TLS tests skipped';

const NODE_EXT = `basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, DNS:shoal-node, IP:127.0.0.1
`;

const CLIENT_EXT = `basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
`;

function run(dir: string, args: string[]): void {
  execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  run(dir, [
    'req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '30', '-subj', `/CN=Shoal test CA ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

function issue(dir: string, ca: string, name: string, ext: string): CertPair {
  writeFileSync(join(dir, `${name}.ext`), ext);
  run(dir, ['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  run(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '30', '-extfile', `${name}.ext`]);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** Makes the whole set in a fresh temp dir (about a second of openssl), or null without openssl. */
export function makeTestCerts(): TestCerts | null {
  if (!opensslAvailable()) return null;
  const dir = mkdtempSync(join(tmpdir(), 'shoal-tls-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    makeCa(dir, 'ca');
    makeCa(dir, 'foreign-ca');
    return {
      dir,
      ca: join(dir, 'ca.crt'),
      node: issue(dir, 'ca', 'node', NODE_EXT),
      client: issue(dir, 'ca', 'client', CLIENT_EXT),
      foreignCa: join(dir, 'foreign-ca.crt'),
      foreignClient: issue(dir, 'foreign-ca', 'foreign-client', CLIENT_EXT),
      foreignNode: issue(dir, 'foreign-ca', 'foreign-node', NODE_EXT),
      remove,
    };
  } catch (err) {
    remove();
    throw err;
  }
}
