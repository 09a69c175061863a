import test from 'ava';
import { join } from 'node:path';
import { ShoalError } from '../../src/errors.js';
import type { LogFields, Logger } from '../../src/log.js';
import { startNode, type Node } from '../../src/node/node.js';
import { loadClientTls } from '../../src/rpc/tls.js';
import { ShoalClient } from '../../src/rpc/shoal-client.js';
import { eventually, tempDir, testConfig } from '../node/helpers.js';
import { NO_OPENSSL, makeTestCerts, type TestCerts } from './tls-certs.js';

const certs = makeTestCerts();
test.after.always(() => certs?.remove());
if (certs === null) console.warn(`test/security/tls-cluster.test.ts: ${NO_OPENSSL}`);
const tlsTest = certs === null ? test.skip : test;
const c = certs as TestCerts;

/** A logger keeping warn lines (to prove a loopback node warns about nothing). */
function warnings(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn(message: string, _fields?: LogFields) {
      lines.push(message);
    },
    error() {},
    child: () => logger,
  };
  return { logger, lines };
}

function securitySet(cert = c.node): Record<string, string> {
  return {
    'security.tls': 'true',
    'security.tlsCa': c.ca,
    'security.tlsCert': cert.cert,
    'security.tlsKey': cert.key,
    'security.tlsClientAuth': 'true',
  };
}

function client(addr: string, withCert: boolean): ShoalClient {
  const tls = loadClientTls(withCert ? { caFile: c.ca, certFile: c.client.cert, keyFile: c.client.key } : { caFile: c.ca });
  return new ShoalClient({ addresses: [addr], clusterName: 'dev', timeoutMs: 30_000, pool: { connectTimeoutMs: 30_000 }, tls });
}

tlsTest('three agents with TLS and mutual TLS: a put through one node is read through the others (node to node over TLS)', async (t) => {
  const tmp = tempDir('shoal-tls-cluster-');
  t.teardown(tmp.remove);
  const nodes: Node[] = [];
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  const fast = { 'membership.probeIntervalMs': '200', 'membership.probeTimeoutMs': '100', 'membership.gossipIntervalMs': '50', 'cluster.ringSettleMs': '50' };
  const log = warnings();
  nodes.push(await startNode(testConfig(join(tmp.dir, 'n1'), { 'node.id': 'n1', ...fast, ...securitySet() }), { processMetrics: false, logger: log.logger }));
  for (const id of ['n2', 'n3']) {
    const config = testConfig(join(tmp.dir, id), { 'node.id': id, 'membership.seeds': nodes[0].addresses.gossip, ...fast, ...securitySet() });
    nodes.push(await startNode(config, { processMetrics: false }));
  }
  t.deepEqual(log.lines, [], 'a loopback node with TLS warns about nothing');
  const clients = nodes.map((n) => client(n.addresses.rpc, true));
  t.teardown(() => Promise.all(clients.map((cl) => cl.close())));

  const converged = await eventually(15_000, async () => {
    const views = (await Promise.all(clients.map((cl) => cl.members()))) as Array<Array<{ state: string }>>;
    return views.every((v) => v.length === 3 && v.every((m) => m.state === 'alive'));
  });
  t.true(converged, 'every node sees three alive members');

  // consistency all: the coordinator must reach both other replicas, over TLS with its node certificate.
  await clients[0].put('greeting', 'hello over tls', { consistency: 'all' });
  for (const cl of clients.slice(1)) t.is((await cl.get('greeting', { consistency: 'all' }))?.value.toString(), 'hello over tls');
  const internal = nodes.map((n) => {
    const rpc = n.stats().rpc as { requests: Record<string, number>; tlsFailures: number };
    t.is(rpc.tlsFailures, 0);
    return Object.entries(rpc.requests).filter(([op]) => op.startsWith('internal.')).reduce((sum, [, count]) => sum + count, 0);
  });
  t.true(internal.every((count) => count > 0), `every node served internal requests: ${internal.join(', ')}`);

  // A client without a certificate, and a plaintext one, are refused by every node.
  const noCert = client(nodes[1].addresses.rpc, false);
  const plain = new ShoalClient({ addresses: [nodes[2].addresses.rpc], clusterName: 'dev', timeoutMs: 30_000, pool: { connectTimeoutMs: 30_000 } });
  t.teardown(() => Promise.all([noCert.close(), plain.close()]));
  const refused = await t.throwsAsync(noCert.get('greeting'));
  t.is((refused as ShoalError).code, 'BAD_HANDSHAKE');
  const plaintext = await t.throwsAsync(plain.get('greeting'));
  t.is((plaintext as ShoalError).code, 'UNAVAILABLE');
  t.notRegex(plaintext!.message, /timed out/);
});

tlsTest('a node whose TLS files are wrong does not start: CONFIG naming the file', async (t) => {
  const tmp = tempDir('shoal-tls-bad-');
  t.teardown(tmp.remove);
  const missing = join(tmp.dir, 'nope.crt');
  const config = testConfig(join(tmp.dir, 'n1'), { ...securitySet(), 'security.tlsCert': missing });
  const err = await t.throwsAsync(startNode(config, { processMetrics: false }));
  t.is((err as ShoalError).code, 'CONFIG');
  t.regex(err!.message, new RegExp(`TLS certificate file ${missing}: no such file`));
});
