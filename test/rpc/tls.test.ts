import test from 'ava';
import { writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { ShoalError } from '../../src/errors.js';
import { RpcPool } from '../../src/rpc/client.js';
import { FrameDecoder, encodeFrame } from '../../src/rpc/framing.js';
import type { RpcLimits } from '../../src/rpc/limits.js';
import { RpcServer, type RpcHandler } from '../../src/rpc/server.js';
import { ShoalClient } from '../../src/rpc/shoal-client.js';
import { loadClientTls, loadServerTls, readTlsFiles, tlsFailureReason, type RpcTlsClientOptions, type RpcTlsServerOptions } from '../../src/rpc/tls.js';
import { NO_OPENSSL, makeTestCerts, type TestCerts } from '../security/tls-certs.js';
import { CLUSTER, eventually, memoryHandler } from './helpers.js';

const certs = makeTestCerts();
test.after.always(() => certs?.remove());
if (certs === null) console.warn(`test/rpc/tls.test.ts: ${NO_OPENSSL}`);
const tlsTest = certs === null ? test.skip : test;
/** Certs exist in every test that runs (tlsTest skips otherwise). */
const c = certs as TestCerts;

function serverTls(clientAuth = false): RpcTlsServerOptions {
  return loadServerTls({ caFile: c.ca, certFile: c.node.cert, keyFile: c.node.key, clientAuth });
}

/** A client trusting the cluster CA, with the client certificate when `withCert`. */
function clientTls(withCert: boolean, serverName?: string): RpcTlsClientOptions {
  return loadClientTls(withCert ? { caFile: c.ca, certFile: c.client.cert, keyFile: c.client.key, serverName } : { caFile: c.ca, serverName });
}

async function start(tls: RpcTlsServerOptions | undefined, limits: Partial<RpcLimits> = {}, handler: RpcHandler = memoryHandler().handler) {
  const server = new RpcServer({ host: '127.0.0.1', port: 0, nodeId: 'n1', clusterName: CLUSTER, handler, limits, tls });
  const { port } = await server.listen();
  return { server, addr: `127.0.0.1:${port}`, port };
}

/** Generous timeouts: a failure that is not about time must not be reported as a timeout. */
function client(addr: string, tls?: RpcTlsClientOptions): ShoalClient {
  return new ShoalClient({ addresses: [addr], clusterName: CLUSTER, timeoutMs: 20_000, pool: { connectTimeoutMs: 20_000 }, tls });
}

async function failure(t: { fail: (m: string) => void }, run: () => Promise<unknown>): Promise<ShoalError> {
  try {
    await run();
  } catch (err) {
    if (err instanceof ShoalError) return err;
    throw err;
  }
  t.fail('expected a ShoalError');
  throw new Error('unreachable');
}

tlsTest('TLS: put, get and del round trip; the server counts no failure', async (t) => {
  const { server, addr } = await start(serverTls());
  const cl = client(addr, clientTls(false));
  t.teardown(async () => {
    await cl.close();
    await server.close();
  });
  await cl.put('k', 'v1');
  t.is((await cl.get('k'))?.value.toString(), 'v1');
  await cl.del('k');
  t.is(await cl.get('k'), null);
  const stats = server.stats();
  t.is(stats.tlsFailures, 0);
  t.is(stats.connections, 2, 'the pool keeps two connections per address');
  t.is(stats.requests.put, 1);
});

tlsTest('TLS: a large value crosses intact (TLS records below the framing)', async (t) => {
  const { server, addr } = await start(serverTls());
  const cl = client(addr, clientTls(false));
  t.teardown(async () => {
    await cl.close();
    await server.close();
  });
  const value = Buffer.alloc(700_000);
  for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
  await cl.put('big', value);
  t.true((await cl.get('big'))?.value.equals(value));
});

tlsTest('mutual TLS: a client certificate from the CA is served; none and a foreign one are refused', async (t) => {
  const { server, addr } = await start(serverTls(true));
  const good = client(addr, clientTls(true));
  const none = client(addr, clientTls(false));
  const foreign = client(addr, loadClientTls({ caFile: c.ca, certFile: c.foreignClient.cert, keyFile: c.foreignClient.key }));
  t.teardown(async () => {
    await Promise.all([good.close(), none.close(), foreign.close()]);
    await server.close();
  });
  await good.put('k', 'v');
  t.is((await good.get('k'))?.value.toString(), 'v');

  const noCert = await failure(t, () => none.get('k'));
  t.is(noCert.code, 'BAD_HANDSHAKE');
  t.regex(noCert.message, /client certificate refused: the client sent no certificate/);
  const foreignCert = await failure(t, () => foreign.get('k'));
  t.is(foreignCert.code, 'BAD_HANDSHAKE');
  t.regex(foreignCert.message, /client certificate refused: certificate signed by unknown authority/);
  // Neither reached the handler: only the good client's two requests were dispatched.
  const stats = server.stats();
  t.deepEqual(stats.requests, { put: 1, get: 1 });
  t.is(stats.tlsFailures, 2);
});

tlsTest('mutual TLS: a client with no certificate at the TLS level (raw socket) is refused before any request', async (t) => {
  const mem = memoryHandler();
  const { server, port } = await start(serverTls(true), {}, mem.handler);
  t.teardown(() => server.close());
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: readTlsFiles({ caFile: c.ca }).ca });
  socket.on('error', () => {});
  const decoder = new FrameDecoder(1 << 20);
  const frames: unknown[] = [];
  socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  // A valid hello and a put, sent at once: neither may be dispatched.
  socket.write(encodeFrame({ id: 0, op: 'hello', args: { version: 1, cluster: CLUSTER } }));
  socket.write(encodeFrame({ id: 1, op: 'put', args: { key: 'x', value: Buffer.from('y') } }));
  t.true(await eventually(() => socket.destroyed, 15_000));
  t.deepEqual(mem.applied, []);
  t.is(frames.length, 1);
  t.like(frames[0], { id: null, ok: false, error: { code: 'BAD_HANDSHAKE' } });
});

tlsTest('a server certificate from an unknown CA is refused with a clear reason', async (t) => {
  const { server, addr } = await start(serverTls());
  const cl = client(addr, loadClientTls({ caFile: c.foreignCa }));
  t.teardown(async () => {
    await cl.close();
    await server.close();
  });
  const err = await failure(t, () => cl.get('k'));
  t.is(err.code, 'UNAVAILABLE');
  t.regex(err.message, new RegExp(`TLS handshake with ${addr} failed: certificate signed by unknown authority`));
});

tlsTest('server name: the host connected to by default, tlsServerName when set; a wrong name is refused', async (t) => {
  const { server, addr, port } = await start(serverTls());
  const byName = client(`localhost:${port}`, clientTls(false));
  const shared = client(addr, clientTls(false, 'shoal-node'));
  const wrong = client(addr, clientTls(false, 'other.example'));
  t.teardown(async () => {
    await Promise.all([byName.close(), shared.close(), wrong.close()]);
    await server.close();
  });
  t.deepEqual(await byName.health(), { ok: true, node: 'n1' });
  t.deepEqual(await shared.health(), { ok: true, node: 'n1' });
  const err = await failure(t, () => wrong.health());
  t.is(err.code, 'UNAVAILABLE');
  t.regex(err.message, /TLS handshake with .* failed: certificate name mismatch: .*other\.example/);
});

tlsTest('a plaintext client on a TLS port fails at once with a hint, not a timeout', async (t) => {
  const { server, addr } = await start(serverTls());
  const cl = client(addr);
  t.teardown(async () => {
    await cl.close();
    await server.close();
  });
  const err = await failure(t, () => cl.health());
  t.is(err.code, 'UNAVAILABLE');
  t.regex(err.message, /does it require TLS\?|speaks TLS/);
  t.true(await eventually(() => server.stats().tlsFailures === 1));
});

tlsTest('a TLS client on a plaintext port fails at once; the server names the mistake', async (t) => {
  const { server, addr } = await start(undefined);
  const cl = client(addr, clientTls(false));
  t.teardown(async () => {
    await cl.close();
    await server.close();
  });
  const err = await failure(t, () => cl.health());
  t.is(err.code, 'UNAVAILABLE');
  t.regex(err.message, /TLS handshake with .* failed: the server does not speak TLS/);
  t.true(await eventually(() => server.stats().handshakeFailures === 1));
  t.is(server.stats().errors.BAD_HANDSHAKE, 1);
});

tlsTest('handshakeTimeoutMs bounds the TLS handshake: silent and half-hello sockets are closed', async (t) => {
  const { server, port } = await start(serverTls(), { handshakeTimeoutMs: 300 });
  t.teardown(() => server.close());
  const silent = netConnect({ host: '127.0.0.1', port });
  const partial = netConnect({ host: '127.0.0.1', port });
  for (const s of [silent, partial]) s.on('error', () => {});
  // The first bytes of a ClientHello record, then nothing.
  partial.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00]));
  t.true(await eventually(() => server.stats().tlsHandshaking === 2, 10_000));
  t.true(await eventually(() => silent.destroyed || silent.readableEnded, 15_000), 'the silent socket was closed');
  t.true(await eventually(() => partial.destroyed || partial.readableEnded, 15_000), 'the half-hello socket was closed');
  t.true(await eventually(() => server.stats().handshakeTimeouts === 2));
  t.is(server.stats().tlsHandshaking, 0);
  silent.destroy();
  partial.destroy();
});

tlsTest('handshakeTimeoutMs also bounds the hello after a completed TLS handshake', async (t) => {
  const { server, port } = await start(serverTls(), { handshakeTimeoutMs: 300 });
  t.teardown(() => server.close());
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: readTlsFiles({ caFile: c.ca }).ca });
  socket.on('error', () => {});
  socket.resume();
  t.true(await eventually(() => socket.destroyed, 15_000));
  t.is(server.stats().handshakeTimeouts, 1);
  socket.destroy();
});

tlsTest('connections in their TLS handshake count against connectionsMax', async (t) => {
  const { server, addr, port } = await start(serverTls(), { connectionsMax: 1 });
  const stalled = netConnect({ host: '127.0.0.1', port });
  stalled.on('error', () => {});
  const pool = new RpcPool({ clusterName: CLUSTER, connectTimeoutMs: 20_000, tls: clientTls(false) });
  t.teardown(async () => {
    stalled.destroy();
    await pool.close();
    await server.close();
  });
  t.true(await eventually(() => server.stats().tlsHandshaking === 1, 10_000));
  const err = await failure(t, () => pool.call(addr, 'health', {}));
  t.is(err.code, 'UNAVAILABLE');
  t.is(server.stats().connectionsRejected, 1);
});

tlsTest('node-to-node pools present their certificate and say who they are', async (t) => {
  const mem = memoryHandler();
  const { server, addr } = await start(serverTls(true), {}, mem.handler);
  const pool = new RpcPool({ clusterName: CLUSTER, peer: 'n2', tls: loadClientTls({ caFile: c.ca, certFile: c.node.cert, keyFile: c.node.key }) });
  t.teardown(async () => {
    await pool.close();
    await server.close();
  });
  t.deepEqual(await pool.call(addr, 'health', {}), { ok: true, node: 'n1' });
  t.is(mem.contexts[0].peer, 'n2');
});

tlsTest('PEM files: CONFIG errors name the file (missing, not PEM, key of another certificate, half a pair)', (t) => {
  const notPem = join(c.dir, 'not.pem');
  writeFileSync(notPem, 'hello\n');
  const missing = join(c.dir, 'missing.pem');
  const cases: Array<[() => unknown, RegExp]> = [
    [() => loadClientTls({ caFile: missing }), new RegExp(`cannot read the TLS CA file ${missing}: no such file`)],
    [() => loadClientTls({ caFile: notPem }), new RegExp(`TLS CA file ${notPem} holds no PEM certificate`)],
    [() => loadServerTls({ caFile: c.ca, certFile: c.node.cert, keyFile: c.node.cert }), new RegExp(`TLS key file ${c.node.cert} holds no PEM private key`)],
    [() => loadServerTls({ caFile: c.ca, certFile: c.node.cert, keyFile: c.client.key }), new RegExp(`TLS certificate ${c.node.cert} with key ${c.client.key}: the key does not match`)],
    [() => loadClientTls({ caFile: c.ca, certFile: c.client.cert }), /give both or neither/],
  ];
  for (const [run, message] of cases) {
    const err = t.throws(run);
    t.true(err instanceof ShoalError && err.code === 'CONFIG', String(err));
    t.regex(err.message, message);
  }
});

test('tlsFailureReason: node error codes become operator words', (t) => {
  const reason = (code: string) => tlsFailureReason(Object.assign(new Error(`raw ${code}`), { code }), 'client');
  t.regex(reason('SELF_SIGNED_CERT_IN_CHAIN'), /^certificate signed by unknown authority/);
  t.regex(reason('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), /^certificate signed by unknown authority/);
  t.is(reason('ERR_SSL_WRONG_VERSION_NUMBER'), 'the server does not speak TLS (plaintext on this port?)');
  t.is(reason('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), 'the server requires a client certificate');
  t.is(reason('CERT_HAS_EXPIRED'), 'certificate has expired');
  t.is(reason('SOMETHING_NEW'), 'raw SOMETHING_NEW');
});
