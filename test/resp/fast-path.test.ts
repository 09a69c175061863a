/**
 * The connection's fast paths (src/resp/server.ts): GET and plain SET handed over by the parser as
 * offsets, a local GET answered straight into the output, local SETs of one WAL batch answered by one
 * callback. Over an in-memory backend whose writes share a batch promise the test releases (or fails)
 * by hand: replies stay in request order when fast and slow commands mix, errors inside a pipeline
 * answer in place, a failed batch sends each of its writes to writeValueAfter, a pipeline split at
 * any byte answers the same, and a deep pipeline of SETs is held to the in-flight bound.
 */
import test from 'ava';
import { connect, type Socket } from 'node:net';
import { ShoalError } from '../../src/errors.js';
import type { Entry } from '../../src/storage/types.js';
import type { LocalWrite, RespData, RespNodeInfo } from '../../src/resp/backend.js';
import { RespParser, type RespSink } from '../../src/resp/parser.js';
import { RespServer, type RespServerOptions } from '../../src/resp/server.js';

interface Batch {
  promise: Promise<boolean>;
  resolve: (v: boolean) => void;
  reject: (e: Error) => void;
}

interface MemoryWrite extends LocalWrite {
  readonly key: string;
}

/**
 * A map behind RespData with the local paths: readLiveNow answers at once, writeValueNow applies at
 * once and returns the open batch's promise (one per batch, like the store's WAL). Batches settle on
 * the next turn unless `hold` is set; then release() settles them.
 */
class BatchData implements RespData {
  readonly id = 'm1';
  readonly dataLimits = { keyBytesMax: 64, valueBytesMax: 1024 * 1024, ttlMsMax: 100 * 365 * 86_400_000 };
  isLeaving = false;
  hold = false;
  /** Slow reads (readLive, for keys starting "slow:") take this long. */
  slowMs = 5;
  /** writeValueAfter fails for these keys (the fallback round refused them). */
  readonly afterFails = new Set<string>();
  readonly afterCalls: string[] = [];
  nowWrites = 0;
  nowReads = 0;
  slowWrites = 0;
  private open: Batch | null = null;
  private readonly held: Batch[] = [];
  private ts = 0;
  readonly map = new Map<string, Entry>();

  private live(key: string): Entry | null {
    const e = this.map.get(key);
    return e === undefined || e.value === null ? null : e;
  }

  readLiveNow(key: string): Entry | null | undefined {
    if (key.startsWith('slow:')) return undefined;
    this.nowReads += 1;
    return this.live(key);
  }

  async readLive(key: string): Promise<Entry | null> {
    await new Promise((r) => setTimeout(r, this.slowMs));
    return this.live(key);
  }

  writeValueNow(key: string, value: Buffer, expiresAtMs: number | undefined): MemoryWrite | null {
    if (key.startsWith('slow:')) return null;
    this.nowWrites += 1;
    // The value is a view of the receive buffer: copied, as the store does.
    this.map.set(key, { value: Buffer.from(value), ts: ++this.ts, node: 'm1', ...(expiresAtMs === undefined ? {} : { expiresAtMs }) });
    if (this.open === null) {
      let resolve!: (v: boolean) => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<boolean>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      const batch: Batch = { promise, resolve, reject };
      this.open = batch;
      setImmediate(() => {
        if (this.open === batch) this.open = null;
        if (this.hold) this.held.push(batch);
        else batch.resolve(true);
      });
    }
    return { durable: this.open.promise, key };
  }

  async writeValueAfter(key: string, write: LocalWrite, err: unknown): Promise<unknown> {
    this.afterCalls.push(`${key}:${(err as Error).message}`);
    if ((write as MemoryWrite).key !== key) throw new Error('writeValueAfter got another write');
    if (this.afterFails.has(key)) throw new ShoalError('UNAVAILABLE', `no replica took ${key}`);
    return null;
  }

  async writeValue(key: string, value: Buffer): Promise<unknown> {
    this.slowWrites += 1;
    await new Promise((r) => setTimeout(r, this.slowMs));
    this.map.set(key, { value: Buffer.from(value), ts: ++this.ts, node: 'm1' });
    return null;
  }

  async deleteKey(key: string): Promise<unknown> {
    await new Promise((r) => setTimeout(r, this.slowMs));
    return this.map.delete(key);
  }

  async scanPage(): Promise<{ cursor: bigint; keys: string[] }> {
    return { cursor: 0n, keys: [...this.map.keys()] };
  }

  nowMs(): number {
    return Date.now();
  }

  /** Settles every batch closed so far: resolved, or rejected with `failure`. */
  release(failure?: Error): number {
    const batches = this.held.splice(0);
    for (const b of batches) {
      if (failure) b.reject(failure);
      else b.resolve(true);
    }
    return batches.length;
  }
}

const INFO: RespNodeInfo = {
  clusterName: 'test',
  uptimeMs: 1000,
  respPort: 0,
  rpc: '127.0.0.1:1',
  fsync: 'interval',
  replication: { n: 1, w: 1, r: 1 },
  localKeys: 0,
  members: [],
  ring: { checksum: 'x', owners: 1 },
};

async function serve(t: { teardown: (fn: () => unknown) => void }, options: Partial<RespServerOptions> = {}): Promise<{ server: RespServer; data: BatchData; port: number }> {
  const data = new BatchData();
  const server = new RespServer({ host: '127.0.0.1', port: 0, data, info: () => INFO, ...options });
  const { port } = await server.listen();
  t.teardown(() => server.close({ drainMs: 0 }));
  return { server, data, port };
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.setNoDelay(true);
    s.on('error', reject);
  });
}

/** Collects what the socket reads; `until(n)` resolves once n bytes (or the close) arrived. */
function reader(s: Socket): { text: () => string; until: (length: number) => Promise<string> } {
  let text = '';
  const waiters: Array<() => void> = [];
  s.on('data', (c: Buffer) => {
    text += c.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  s.on('close', () => {
    for (const w of waiters.splice(0)) w();
  });
  return {
    text: () => text,
    until: async (length) => {
      while (text.length < length && !s.destroyed) await new Promise<void>((r) => waiters.push(r));
      return text;
    },
  };
}

const mb = (...args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
const bulk = (v: string): string => `$${Buffer.byteLength(v)}\r\n${v}\r\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('fast and slow commands mixed in one pipeline: replies in request order, each after the earlier commands on its key', async (t) => {
  const { data, port } = await serve(t);
  data.map.set('slow:r', { value: Buffer.from('R'), ts: 0, node: 'm1' });
  const s = await open(port);
  t.teardown(() => s.destroy());
  const r = reader(s);
  let req = '';
  let expected = '';
  for (let i = 0; i < 50; i++) {
    // fast SET, fast GET of another key, slow GET, GET of the key just set (waits for its SET), a slow
    // SET (writeValueNow declines), the fast GET of its key (waits for it), an inline PING, lower-case set/get.
    req += mb('SET', `k${i}`, `v${i}`) + mb('GET', 'k-none') + mb('GET', 'slow:r') + mb('GET', `k${i}`);
    req += mb('SET', 'slow:w', `w${i}`) + mb('get', 'slow:w') + 'PING\r\n' + mb('set', `lower${i}`, 'x') + mb('get', `lower${i}`);
    // The same key again and again: a SET waits for the one before it when that is still in flight.
    req += mb('SET', 'same', `s${i}`) + mb('GET', 'same');
    expected += `+OK\r\n$-1\r\n${bulk('R')}${bulk(`v${i}`)}+OK\r\n${bulk(`w${i}`)}+PONG\r\n+OK\r\n${bulk('x')}+OK\r\n${bulk(`s${i}`)}`;
  }
  s.write(req);
  t.is(await r.until(expected.length), expected);
  t.true(data.nowWrites >= 100, `the SETs took writeValueNow (${data.nowWrites})`);
  t.true(data.nowReads >= 50, `GETs were answered at once (${data.nowReads})`);
  t.true(data.slowWrites >= 50, 'the declined SETs went the ordinary way');
});

test.serial('SETs of a batch are answered only once the batch is durable, all together; commands after them on other keys answer meanwhile only in order', async (t) => {
  const { data, port } = await serve(t);
  data.hold = true;
  const s = await open(port);
  t.teardown(() => s.destroy());
  const r = reader(s);
  s.write(mb('GET', 'a') + mb('SET', 'a', '1') + mb('SET', 'b', '2') + 'PING\r\n' + mb('GET', 'a') + mb('GET', 'c'));
  await r.until(5);
  await sleep(50);
  t.is(r.text(), '$-1\r\n', 'only the reply before the first SET');
  t.is(data.release(), 1, 'both SETs were in one batch');
  const expected = `$-1\r\n+OK\r\n+OK\r\n+PONG\r\n${bulk('1')}$-1\r\n`;
  t.is(await r.until(expected.length), expected);
});

test.serial('a failed batch: each of its SETs goes to writeValueAfter; one refused there answers its error in place, the others OK', async (t) => {
  const { data, port } = await serve(t);
  data.hold = true;
  data.afterFails.add('b');
  const s = await open(port);
  t.teardown(() => s.destroy());
  const r = reader(s);
  s.write(mb('SET', 'a', '1') + mb('SET', 'b', '2') + mb('GET', 'b') + mb('SET', 'c', '3'));
  await sleep(50);
  t.is(r.text(), '');
  t.is(data.release(new ShoalError('READ_ONLY', 'disk full')), 1);
  const expected = `+OK\r\n-CLUSTERDOWN no replica took b\r\n${bulk('2')}+OK\r\n`;
  t.is(await r.until(expected.length), expected);
  t.deepEqual(data.afterCalls, ['a:disk full', 'b:disk full', 'c:disk full']);
});

test.serial('errors inside a pipeline answer in place, among fast replies', async (t) => {
  const { data, port } = await serve(t);
  const s = await open(port);
  t.teardown(() => s.destroy());
  const r = reader(s);
  const long = 'k'.repeat(65);
  const req =
    mb('SET', 'a', '1') +
    mb('GET') +
    mb('NOPE', 'x') +
    mb('GET', 'a') +
    mb('SET', 'a') +
    mb('GET', long) +
    mb('SET', '', 'v') +
    mb('GET', 'caf\u00e9') +
    mb('SET', 'a', '2', 'BOGUS') +
    mb('INCR', 'a') +
    mb('GET', 'a');
  s.write(req);
  const got = await r.until(1);
  await sleep(100);
  const lines = r.text().split('\r\n');
  t.is(lines[0], '+OK');
  t.regex(lines[1], /^-ERR wrong number of arguments for 'get' command/);
  t.regex(lines[2], /^-ERR unknown command 'NOPE'/);
  t.deepEqual(lines.slice(3, 5), ['$1', '1']);
  t.regex(lines[5], /^-ERR wrong number of arguments for 'set' command/);
  t.regex(lines[6], /^-ERR key is 65 bytes, over the limit of 64/);
  t.regex(lines[7], /^-ERR empty keys are not supported/);
  t.is(lines[8], '$-1', 'a UTF-8 key goes the ordinary way and is found missing');
  t.regex(lines[9], /^-ERR syntax error/);
  t.regex(lines[10], /^-ERR/);
  t.deepEqual(lines.slice(11, 13), ['$1', '1']);
  t.true(got.length > 0);
  t.true(data.nowWrites >= 1);
});

test.serial('a pipeline split into two TCP chunks at every byte answers exactly as when sent whole', async (t) => {
  const { port } = await serve(t);
  const pipeline = mb('SET', 'sk', 'hello') + mb('GET', 'sk') + 'ECHO inline\r\n' + mb('get', 'none') + mb('SET', 'slow:w', 'w') + mb('GET', 'slow:w') + mb('MGET', 'sk', 'none');
  const expected = `+OK\r\n${bulk('hello')}${bulk('inline')}$-1\r\n+OK\r\n${bulk('w')}*2\r\n${bulk('hello')}$-1\r\n`;
  const wire = Buffer.from(pipeline, 'latin1');
  for (let cut = 1; cut < wire.length; cut++) {
    const s = await open(port);
    const r = reader(s);
    s.write(wire.subarray(0, cut));
    await sleep(2); // the first part arrives on its own
    s.write(wire.subarray(cut));
    const got = await r.until(expected.length);
    s.destroy();
    if (got !== expected) {
      t.fail(`split at byte ${cut}: ${JSON.stringify(got)}`);
      return;
    }
  }
  t.pass();
});

test.serial('the parser hands GET and SET to the sink as offsets, the same at every split, and the rest as arguments', (t) => {
  const wire = Buffer.from(mb('SET', 'k1', 'v1') + mb('get', 'k1') + mb('SET', 'k2', 'v2', 'EX', '5') + 'GET inline\r\n' + mb('GETX', 'k') + mb('SeT', 'k3', ''), 'latin1');
  const run = (chunks: Buffer[]): string[] => {
    const calls: string[] = [];
    const sink: RespSink = {
      command: (args) => calls.push(`cmd ${args.map((a) => a.toString('latin1')).join(' ')}`),
      get: (buf, ks, ke) => calls.push(`get ${buf.toString('latin1', ks, ke)}`),
      set: (buf, ks, ke, vs, ve) => calls.push(`set ${buf.toString('latin1', ks, ke)}=${buf.toString('latin1', vs, ve)}`),
    };
    const p = new RespParser({ requestBytesMax: 1024, argsMax: 100 });
    for (const c of chunks) p.feed(c, sink);
    t.is(p.bufferedBytes, 0);
    return calls;
  };
  const whole = run([wire]);
  t.deepEqual(whole, ['set k1=v1', 'get k1', 'cmd SET k2 v2 EX 5', 'cmd GET inline', 'cmd GETX k', 'set k3=']);
  for (let cut = 1; cut < wire.length; cut++) t.deepEqual(run([wire.subarray(0, cut), wire.subarray(cut)]), whole, `split at ${cut}`);
  t.deepEqual(run([...wire].map((b) => Buffer.from([b]))), whole, 'one byte at a time');
});

test.serial('back-pressure: a deep pipeline of SETs whose batches are held runs at most the in-flight bound, then finishes in order', async (t) => {
  const inFlightMax = 32;
  const { server, data, port } = await serve(t, { limits: { inFlightPerConnectionMax: inFlightMax } });
  data.hold = true;
  const s = await open(port);
  t.teardown(() => s.destroy());
  const r = reader(s);
  const count = 5000;
  let req = '';
  for (let i = 0; i < count; i++) req += mb('SET', `k${i}`, 'x'.repeat(100));
  s.write(req);
  await sleep(100);
  const dispatched = server.stats().commandsTotal;
  t.true(dispatched <= inFlightMax, `at most the bound ran while the batches were held (${dispatched})`);
  for (const c of server.connectionStats()) t.true(c.pendingReplies <= inFlightMax, `pending ${c.pendingReplies}`);
  // Release batch after batch until every reply is in.
  const expected = '+OK\r\n'.repeat(count);
  const deadline = Date.now() + 30_000;
  while (r.text().length < expected.length && Date.now() < deadline) {
    data.release();
    await sleep(1);
    for (const c of server.connectionStats()) t.true(c.pendingReplies <= inFlightMax, `pending ${c.pendingReplies}`);
  }
  t.is(r.text(), expected);
  t.is(data.nowWrites, count);
  t.is(server.stats().commands.set, count, 'the fast SETs are counted');
});
