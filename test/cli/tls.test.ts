import test from 'ava';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT } from '../../src/cli/exit-codes.js';
import { LOCAL_TLS_FILES, localTls } from '../../src/cli/local-command.js';
import { runCli } from '../../src/cli/run.js';
import { ShoalError } from '../../src/errors.js';
import { startNode, type Node } from '../../src/node/node.js';
import { NO_OPENSSL, makeTestCerts, type TestCerts } from '../security/tls-certs.js';
import { bufferIo, tempDir, testConfig } from '../node/helpers.js';

const certs = makeTestCerts();
if (certs === null) console.warn(`test/cli/tls.test.ts: ${NO_OPENSSL}`);
const tlsTest = certs === null ? test.skip : test;
const c = certs as TestCerts;

/** One node with TLS and mutual TLS, shared by the tests of this file. */
let node: Node | null = null;
const tmp = tempDir('shoal-cli-tls-');

test.before(async () => {
  if (certs === null) return;
  const config = testConfig(join(tmp.dir, 'n1'), {
    'node.id': 'n1',
    'security.tls': 'true',
    'security.tlsCa': c.ca,
    'security.tlsCert': c.node.cert,
    'security.tlsKey': c.node.key,
    'security.tlsClientAuth': 'true',
  });
  node = await startNode(config, { processMetrics: false });
});

test.after.always(async () => {
  await node?.stop();
  certs?.remove();
  tmp.remove();
});

function addr(): string {
  return node!.addresses.rpc;
}

async function cli(args: string[], env: Record<string, string> = {}) {
  const b = bufferIo(undefined, env);
  const code = await runCli([...args, '--addr', addr(), '--timeout', '30s'], b.io);
  return { code, out: b.stdout(), err: b.stderr() };
}

const withCert = () => ['--tls-ca', c.ca, '--tls-cert', c.client.cert, '--tls-key', c.client.key];

tlsTest('put, get, del and members over mutual TLS with --tls-ca/--tls-cert/--tls-key', async (t) => {
  let r = await cli(['put', 'cli-k', 'v1', ...withCert()]);
  t.is(r.code, EXIT.OK, r.err);
  r = await cli(['get', 'cli-k', ...withCert()]);
  t.is(r.code, EXIT.OK, r.err);
  t.is(r.out, 'v1');
  r = await cli(['members', '--json', ...withCert()]);
  t.is(r.code, EXIT.OK, r.err);
  t.like(JSON.parse(r.out), [{ id: 'n1', state: 'alive' }]);
  r = await cli(['del', 'cli-k', ...withCert()]);
  t.is(r.code, EXIT.OK, r.err);
  t.is((await cli(['get', 'cli-k', ...withCert()])).code, EXIT.NOT_FOUND);
});

tlsTest('the same through SHOAL_TLS_CA / SHOAL_TLS_CERT / SHOAL_TLS_KEY, and --tls-server-name', async (t) => {
  const env = { SHOAL_TLS_CA: c.ca, SHOAL_TLS_CERT: c.client.cert, SHOAL_TLS_KEY: c.client.key };
  const r = await cli(['health'], env);
  t.is(r.code, EXIT.OK, r.err);
  t.regex(r.out, /^ok: node n1/);
  t.is((await cli(['health', '--tls-server-name', 'shoal-node'], env)).code, EXIT.OK);
  const wrong = await cli(['health', '--tls-server-name', 'elsewhere.example'], env);
  t.is(wrong.code, EXIT.UNAVAILABLE);
  t.regex(wrong.err, /TLS handshake with .* failed: certificate name mismatch/);
});

tlsTest('refusals: no client certificate, plaintext, a CA the node is not signed by (exit 3, one clear line)', async (t) => {
  const noCert = await cli(['get', 'x', '--tls-ca', c.ca]);
  t.is(noCert.code, EXIT.UNAVAILABLE);
  t.regex(noCert.err, /^shoal: client certificate refused: the client sent no certificate .*\(BAD_HANDSHAKE\)\n$/);
  const plain = await cli(['get', 'x']);
  t.is(plain.code, EXIT.UNAVAILABLE);
  t.regex(plain.err, /does it require TLS\?/);
  const foreign = await cli(['get', 'x', '--tls-ca', c.foreignCa]);
  t.is(foreign.code, EXIT.UNAVAILABLE);
  t.regex(foreign.err, /certificate signed by unknown authority/);
});

tlsTest('usage mistakes exit 2 before connecting: missing --tls-ca, half a pair, an unreadable file', async (t) => {
  const noCa = await cli(['get', 'x', '--tls']);
  t.is(noCa.code, EXIT.USAGE);
  t.regex(noCa.err, /--tls needs --tls-ca FILE/);
  const half = await cli(['get', 'x', '--tls-ca', c.ca, '--tls-cert', c.client.cert]);
  t.is(half.code, EXIT.USAGE);
  t.regex(half.err, /--tls-cert and --tls-key go together/);
  const missing = join(c.dir, 'nope.pem');
  const bad = await cli(['get', 'x', '--tls-ca', missing]);
  t.is(bad.code, EXIT.USAGE);
  t.is(bad.err, `shoal: cannot read the TLS CA file ${missing}: no such file\n`);
  const orphan = await cli(['get', 'x', '--tls-cert', c.client.cert]);
  t.is(orphan.code, EXIT.USAGE);
  t.regex(orphan.err, /need --tls-ca/);
});

tlsTest('shoal local --tls-dir: the node settings and the launcher\'s client from ca.pem, node.pem, node-key.pem', (t) => {
  const dir = tempDir('shoal-local-tls-');
  t.teardown(dir.remove);
  const err = t.throws(() => localTls(dir.dir));
  t.true(err instanceof ShoalError && err.code === 'CONFIG');
  t.regex(err!.message, new RegExp(`${join(dir.dir, LOCAL_TLS_FILES.ca)}: no such file`));
  copyFileSync(c.ca, join(dir.dir, LOCAL_TLS_FILES.ca));
  copyFileSync(c.node.cert, join(dir.dir, LOCAL_TLS_FILES.cert));
  copyFileSync(c.node.key, join(dir.dir, LOCAL_TLS_FILES.key));
  const tls = localTls(dir.dir);
  t.deepEqual(tls.security, {
    tls: true,
    tlsCa: join(dir.dir, 'ca.pem'),
    tlsCert: join(dir.dir, 'node.pem'),
    tlsKey: join(dir.dir, 'node-key.pem'),
    tlsClientAuth: true,
  });
  t.true(tls.client.cert !== undefined && tls.client.key !== undefined, 'the launcher presents the node certificate');
});
