/**
 * The RESP server over an in-memory backend: pipelines deeper than the in-flight limit, per-key order,
 * per-reply protocol after HELLO, the password handshake bound, draining and leaving, Shoal errors as
 * Redis errors, TLS and mutual TLS.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Redis } from 'ioredis';
import { ShoalError } from '../../src/errors.js';
import type { Entry } from '../../src/storage/types.js';
import type { RespData, RespNodeInfo } from '../../src/resp/backend.js';
import { RespServer, type RespServerOptions } from '../../src/resp/server.js';
import { NO_OPENSSL, makeTestCerts } from '../security/tls-certs.js';

/** A map behind the RespData interface, with a delay and a failure switch, counting calls in flight. */
class MemoryData implements RespData {
  readonly id = 'm1';
  readonly dataLimits = { keyBytesMax: 1024, valueBytesMax: 1024 * 1024, ttlMsMax: 100 * 365 * 86_400_000 };
  isLeaving = false;
  delayMs = 0;
  /** Reads answer at once through readLiveNow, as a node's local GET does (writes keep their delay). */
  syncReads = false;
  /** Reads answered by readLiveNow. */
  nowReads = 0;
  fail: ShoalError | null = null;
  running = 0;
  runningMax = 0;
  private ts = 0;
  readonly map = new Map<string, Entry>();

  private async step<T>(work: () => T): Promise<T> {
    this.running += 1;
    this.runningMax = Math.max(this.runningMax, this.running);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs * Math.random()));
      if (this.fail) throw this.fail;
      return work();
    } finally {
      this.running -= 1;
    }
  }

  readLive(key: string): Promise<Entry | null> {
    return this.step(() => this.live(key));
  }

  readLiveNow(key: string): Entry | null | undefined {
    if (!this.syncReads || this.fail) return undefined;
    this.nowReads += 1;
    return this.live(key);
  }

  private live(key: string): Entry | null {
    const e = this.map.get(key);
    return e === undefined || e.value === null || (e.expiresAtMs !== undefined && e.expiresAtMs <= Date.now()) ? null : e;
  }

  writeValue(key: string, value: Buffer, expiresAtMs: number | undefined): Promise<unknown> {
    return this.step(() => {
      const e: Entry = { value, ts: ++this.ts, node: 'm1' };
      if (expiresAtMs !== undefined) e.expiresAtMs = expiresAtMs;
      this.map.set(key, e);
    });
  }

  deleteKey(key: string): Promise<unknown> {
    return this.step(() => this.map.delete(key));
  }

  scanPage(): Promise<{ cursor: bigint; keys: string[] }> {
    return this.step(() => ({ cursor: 0n, keys: [...this.map.keys()] }));
  }

  nowMs(): number {
    return Date.now();
  }
}

const INFO: RespNodeInfo = {
  clusterName: 'test',
  uptimeMs: 1000,
  respPort: 0,
  rpc: '127.0.0.1:1',
  fsync: 'always',
  replication: { n: 1, w: 1, r: 1 },
  localKeys: 0,
  members: [],
  ring: { checksum: 'x', owners: 1 },
};

async function serve(t: { teardown: (fn: () => unknown) => void }, options: Partial<RespServerOptions> = {}): Promise<{ server: RespServer; data: MemoryData; port: number }> {
  const data = (options.data as MemoryData | undefined) ?? new MemoryData();
  const server = new RespServer({ host: '127.0.0.1', port: 0, data, info: () => INFO, ...options });
  const { port } = await server.listen();
  t.teardown(() => server.close({ drainMs: 0 }));
  return { server, data, port };
}

/** Writes `bytes` and resolves with everything read once `until` matches (or the socket closes). */
function exchange(socket: Socket, bytes: string | Buffer, until: (text: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (c: Buffer) => {
      text += c.toString('latin1');
      if (until(text)) done();
    };
    const done = () => {
      socket.off('data', onData);
      resolve(text);
    };
    socket.on('data', onData);
    socket.once('close', done);
    socket.write(bytes);
  });
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.on('error', reject);
  });
}

test('a pipeline far deeper than the in-flight limit is answered in order, with at most the limit running', async (t) => {
  const { data, port } = await serve(t, { limits: { inFlightPerConnectionMax: 4 } });
  data.delayMs = 3;
  const s = await open(port);
  t.teardown(() => s.destroy());
  let req = '';
  let expected = '';
  for (let i = 0; i < 300; i++) {
    req += `SET k${i % 5} v${i}\r\nGET k${i % 5}\r\n`;
    expected += `+OK\r\n$${`v${i}`.length}\r\nv${i}\r\n`;
  }
  const got = await exchange(s, req, (x) => x.length >= expected.length);
  t.is(got, expected);
  t.true(data.runningMax <= 4, `at most 4 at once, saw ${data.runningMax}`);
  t.true(data.runningMax >= 2, 'commands on different keys ran concurrently');
});

test('reads answered at once still wait for earlier writes of the connection on their key, and reply in request order', async (t) => {
  const { data, port } = await serve(t);
  data.delayMs = 3;
  data.syncReads = true;
  data.map.set('other', { value: Buffer.from('o'), ts: 0, node: 'm1' });
  const s = await open(port);
  t.teardown(() => s.destroy());
  let req = '';
  let expected = '';
  for (let i = 0; i < 200; i++) {
    // SET k (slow) then GET k (could answer at once, must not) then GET other (answers at once, queued behind).
    req += `*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${String(i).length}\r\n${i}\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nGET other\r\n`;
    expected += `+OK\r\n$${String(i).length}\r\n${i}\r\n$1\r\no\r\n`;
  }
  const got = await exchange(s, req, (x) => x.length >= expected.length);
  t.is(got, expected);
  t.true(data.nowReads >= 400, `the reads took the at-once path (${data.nowReads})`);
});

test('back-pressure: a client pipelining far past the bounds without reading gets every reply in order, and the connection holds a bounded amount', async (t) => {
  const inFlightMax = 16;
  const highBytes = 64 * 1024;
  const { server, data, port } = await serve(t, { limits: { inFlightPerConnectionMax: inFlightMax, writeBufferBytesHigh: highBytes } });
  data.syncReads = true;
  const value = Buffer.alloc(16 * 1024, 'v');
  data.map.set('big', { value, ts: 0, node: 'm1' });
  const s = await open(port);
  t.teardown(() => s.destroy());
  s.pause(); // the client reads nothing for now
  const rounds = 2000; // ~32 MB of replies: far more than the kernel's socket buffers hold
  let req = '';
  for (let i = 0; i < rounds; i++) req += `GET big\r\nECHO ${i}\r\n`;
  s.write(req);
  const replyBytes = value.length + 16;
  let samples = 0;
  let outputMax = 0;
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 10));
    for (const c of server.connectionStats()) {
      samples += 1;
      outputMax = Math.max(outputMax, c.outputBytes);
      t.true(c.pendingReplies <= inFlightMax, `pending replies ${c.pendingReplies}`);
      t.true(c.outputBytes <= highBytes + (inFlightMax + 1) * replyBytes, `output held ${c.outputBytes} bytes`);
    }
  }
  t.true(samples > 0);
  t.true(server.stats().backpressurePauses >= 1, 'the server stopped reading the client');
  t.true(server.stats().commandsTotal < 2 * rounds, `not every command was run while the client did not read (${server.stats().commandsTotal})`);
  // Now read everything: every reply, in order.
  const expected = Buffer.concat(Array.from({ length: rounds }, (_, i) => Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from(`\r\n$${String(i).length}\r\n${i}\r\n`)])));
  const got = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= expected.length) resolve(Buffer.concat(chunks));
    });
    s.resume();
  });
  t.is(got.length, expected.length);
  t.true(got.equals(expected), 'replies in request order');
  t.log(`output held at most ${outputMax} bytes (bound ${highBytes} + replies in flight)`);
});

test('HELLO in a pipeline: replies before it keep the old protocol, replies after it use the new one', async (t) => {
  const { data, port } = await serve(t);
  data.delayMs = 20;
  const s = await open(port);
  t.teardown(() => s.destroy());
  const got = await exchange(s, 'GET missing\r\nHELLO 3\r\nGET missing\r\nPING\r\n', (x) => x.endsWith('+PONG\r\n'));
  t.true(got.startsWith('$-1\r\n%7\r\n'), got);
  t.true(got.endsWith('_\r\n+PONG\r\n'), got);
});

test('Shoal errors become Redis errors clients know; a leaving or draining node answers TRYAGAIN', async (t) => {
  const { server, data, port } = await serve(t);
  const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => {});
  t.teardown(() => c.disconnect());
  data.fail = new ShoalError('UNAVAILABLE', 'only 1 of 2 replicas answered the write');
  await t.throwsAsync(c.set('k', 'v'), { message: 'CLUSTERDOWN only 1 of 2 replicas answered the write' });
  data.fail = new ShoalError('READ_ONLY', 'the store is read-only: disk full');
  await t.throwsAsync(c.set('k', 'v'), { message: /^READONLY the store is read-only/ });
  data.fail = new ShoalError('TIMEOUT', 'write of "k" timed out');
  await t.throwsAsync(c.set('k', 'v'), { message: /^TIMEOUT / });
  data.fail = new ShoalError('CLOSED', 'node is shutting down');
  await t.throwsAsync(c.get('k'), { message: /^TRYAGAIN node is shutting down; send it to another node/ });
  data.fail = null;
  data.isLeaving = true;
  await t.throwsAsync(c.get('k'), { message: /^TRYAGAIN this node is leaving the cluster/ });
  t.is(await c.ping(), 'PONG', 'connection commands still answer');
  data.isLeaving = false;
  t.is(await c.set('k', 'v'), 'OK');
  const closing = server.close({ drainMs: 200 });
  await t.throwsAsync(c.get('k'));
  await closing;
});

test('with a password: NOAUTH before AUTH, WRONGPASS, HELLO AUTH, and a connection that never authenticates is closed', async (t) => {
  const { port } = await serve(t, { settings: { password: 'pw' }, limits: { handshakeTimeoutMs: 300 } });
  const s = await open(port);
  t.teardown(() => s.destroy());
  t.is(await exchange(s, 'GET k\r\n', (x) => x.includes('\r\n')), '-NOAUTH Authentication required.\r\n');
  t.is(await exchange(s, 'AUTH nope\r\n', (x) => x.includes('\r\n')), '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
  t.is(await exchange(s, 'AUTH pw\r\nPING\r\n', (x) => x.endsWith('PONG\r\n')), '+OK\r\n+PONG\r\n');
  const h = await open(port);
  t.teardown(() => h.destroy());
  const hello = await exchange(h, 'HELLO 3 AUTH default pw SETNAME app\r\nCLIENT GETNAME\r\n', (x) => x.endsWith('app\r\n'));
  t.regex(hello, /^%7\r\n/);
  const idle = await open(port);
  const closedAfterMs = await new Promise<number>((resolve) => {
    const start = Date.now();
    idle.on('close', () => resolve(Date.now() - start));
  });
  t.true(closedAfterMs >= 250 && closedAfterMs < 5000, `closed after ${closedAfterMs} ms`);
  // An authenticated connection outlives the bound.
  await new Promise((r) => setTimeout(r, 400));
  t.is(await exchange(s, 'PING\r\n', (x) => x.includes('\r\n')), '+PONG\r\n');
});

test('the connection limit answers the Redis error, counted apart from other listeners', async (t) => {
  const { server, port } = await serve(t, { limits: { connectionsMax: 2 } });
  const a = await open(port);
  const b = await open(port);
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  await exchange(a, 'PING\r\n', (x) => x.includes('\r\n'));
  await exchange(b, 'PING\r\n', (x) => x.includes('\r\n'));
  const c = await open(port);
  const got = await exchange(c, 'PING\r\n', () => false);
  t.is(got, '-ERR max number of clients reached\r\n');
  t.is(server.stats().connectionsRejected, 1);
});

const certs = makeTestCerts();
if (certs === null) console.log(NO_OPENSSL);
const withTls = certs === null ? test.skip : test;

withTls('TLS and mutual TLS as on the RPC port: a client with a certificate works, one without is refused, plaintext is closed', async (t) => {
  if (certs === null) return;
  t.teardown(() => certs.remove());
  const tls = { ca: readFileSync(certs.ca), cert: readFileSync(certs.node.cert), key: readFileSync(certs.node.key), clientAuth: true };
  const { port } = await serve(t, { tls });
  const good = new Redis({
    host: '127.0.0.1',
    port,
    tls: { ca: readFileSync(certs.ca), cert: readFileSync(certs.client.cert), key: readFileSync(certs.client.key) },
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  good.on('error', () => {});
  t.teardown(() => good.disconnect());
  t.is(await good.set('k', Buffer.from([0, 1, 2])), 'OK');
  t.deepEqual(await good.getBuffer('k'), Buffer.from([0, 1, 2]));
  const refused = await new Promise<string>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(certs.ca) }, () => s.write('PING\r\n'));
    s.on('data', (d: Buffer) => resolve(`data ${d.toString()}`));
    s.on('error', (e) => resolve(`error ${e.message}`));
    s.on('close', () => resolve('closed'));
  });
  t.regex(refused, /^(error|closed)/);
  const plain = await open(port);
  const got = await exchange(plain, 'PING\r\n', () => false);
  t.false(got.includes('PONG'));
});

test('FLUSHALL deletes every key only when resp.flushAllEnabled is set', async (t) => {
  const off = await serve(t);
  const on = await serve(t, { settings: { flushAllEnabled: true } });
  for (const { data, port } of [off, on]) {
    data.map.set('a', { value: Buffer.from('1'), ts: 1, node: 'm1' });
    data.map.set('b', { value: Buffer.from('2'), ts: 1, node: 'm1' });
    const s = await open(port);
    t.teardown(() => s.destroy());
    const reply = await exchange(s, 'FLUSHALL\r\nDBSIZE\r\n', (x) => /:\d+\r\n$/.test(x));
    if (data === off.data) t.is(reply, '-ERR FLUSHALL is disabled on this node (set resp.flushAllEnabled to true to allow it)\r\n:2\r\n');
    else t.is(reply, '+OK\r\n:0\r\n');
  }
});
