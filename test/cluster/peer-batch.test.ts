/**
 * internal.batch (src/cluster/batch.ts): the per-key calls made to one peer in one turn travel in one
 * frame with per-item results; the frame is bounded in bytes and items; the receiver applies the items
 * under one group commit; an older peer gets plain calls; reads past the response bound are re-asked.
 * The end-to-end cases go over a real RpcServer and RpcPool to a real store with fsync always.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShoalError } from '../../src/errors.js';
import { BATCH_OP, PeerBatcher, runBatch } from '../../src/cluster/peer-batch.js';
import { Replica } from '../../src/cluster/replica.js';
import { entryToWire } from '../../src/cluster/args.js';
import { RpcPool } from '../../src/rpc/client.js';
import { RpcServer } from '../../src/rpc/server.js';
import { openStore } from '../../src/storage/store.js';
import type { Entry } from '../../src/storage/types.js';

type Sent = { addr: string; op: string; args: Record<string, unknown> };

/** A send that records each frame and answers like a replica over a Map. */
function fakePeer(options: { knowsBatch?: boolean } = {}) {
  const sent: Sent[] = [];
  const data = new Map<string, Buffer>();
  const one = (op: string, args: Record<string, unknown>): Promise<unknown> => {
    const key = args.key as string;
    if (key.startsWith('bad')) return Promise.reject(new ShoalError('BAD_REQUEST', `refused ${key}`));
    if (op === 'internal.apply') {
      data.set(key, (args.entry as { value: Buffer }).value);
      return Promise.resolve({ applied: true });
    }
    return Promise.resolve({ entry: data.has(key) ? { value: data.get(key), ts: 1, node: 'x' } : null, syncing: false });
  };
  const send = async (addr: string, op: string, args: Record<string, unknown>): Promise<unknown> => {
    sent.push({ addr, op, args });
    if (op !== BATCH_OP) return one(op, args);
    if (options.knowsBatch === false) throw new ShoalError('BAD_REQUEST', `unknown internal operation "${BATCH_OP}"`);
    return runBatch(args, one, 1 << 20);
  };
  return { sent, data, send };
}

const entry = (value: string): Record<string, unknown> => ({ value: Buffer.from(value), ts: 1, node: 'c' });

test('calls to one peer within one turn go in one frame, in order, with per-item results and errors', async (t) => {
  const peer = fakePeer();
  const batcher = new PeerBatcher(peer.send, 1 << 20);
  const calls = [
    batcher.call('a:1', 'internal.apply', { key: 'k1', entry: entry('v1') }, 1000),
    batcher.call('a:1', 'internal.apply', { key: 'bad2', entry: entry('v2') }, 1000),
    batcher.call('b:1', 'internal.apply', { key: 'k3', entry: entry('v3') }, 1000),
    batcher.call('a:1', 'internal.read', { key: 'k1' }, 1000),
  ];
  const settled = await Promise.allSettled(calls);
  t.deepEqual(peer.sent.map((s) => [s.addr, s.op]), [['a:1', BATCH_OP], ['b:1', 'internal.apply']]);
  t.deepEqual((peer.sent[0].args.items as Array<[string, unknown]>).map(([op]) => op), ['internal.apply', 'internal.apply', 'internal.read']);
  t.deepEqual(settled[0], { status: 'fulfilled', value: { applied: true } });
  t.is(settled[1].status, 'rejected');
  const err = (settled[1] as PromiseRejectedResult).reason as ShoalError;
  t.true(err instanceof ShoalError);
  t.is(err.code, 'BAD_REQUEST'); // the coordinator fails a client fault at once: the code must survive
  t.deepEqual(settled[2], { status: 'fulfilled', value: { applied: true } });
  // The read was started after the write of the same frame: it sees it.
  t.is(((settled[3] as PromiseFulfilledResult<{ entry: { value: Buffer } }>).value.entry.value).toString(), 'v1');
  t.deepEqual(batcher.counters, { batches: 1, batchedItems: 3, single: 1 });
});

test('a batch is bounded in bytes and in items: more goes in further frames, each within the bounds', async (t) => {
  const peer = fakePeer();
  const bytesMax = 4096;
  const batcher = new PeerBatcher(peer.send, bytesMax, 8);
  const value = 'x'.repeat(1000);
  await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.call('a:1', 'internal.apply', { key: `k${i}`, entry: entry(value) }, 1000)));
  const sizes = peer.sent.map((s) => (s.op === BATCH_OP ? (s.args.items as unknown[]).length : 1));
  t.is(sizes.reduce((a, b) => a + b, 0), 10);
  t.true(peer.sent.length >= 3, `10 items of ~1.1 kB in frames of at most 4 kB: ${sizes.join(',')}`);
  for (const s of peer.sent) {
    if (s.op !== BATCH_OP) continue;
    const bytes = (s.args.items as Array<[string, { entry: { value: Buffer } }]>).reduce((sum, [, a]) => sum + a.entry.value.length, 0);
    t.true(bytes <= bytesMax);
  }
  t.is(peer.data.size, 10);

  const small = fakePeer();
  const byItems = new PeerBatcher(small.send, 1 << 20, 8);
  await Promise.all(Array.from({ length: 20 }, (_, i) => byItems.call('a:1', 'internal.read', { key: `k${i}` }, 1000)));
  t.deepEqual(small.sent.map((s) => (s.args.items as unknown[]).length), [8, 8, 4]);
});

test('an item larger than the byte bound, or an op that is not per-key, goes alone as the plain op', async (t) => {
  const peer = fakePeer();
  const batcher = new PeerBatcher(peer.send, 1024);
  await Promise.all([
    batcher.call('a:1', 'internal.apply', { key: 'big', entry: entry('y'.repeat(2000)) }, 1000),
    batcher.call('a:1', 'internal.remove', { key: 'r1' }, 1000).catch(() => null),
  ]);
  t.deepEqual(peer.sent.map((s) => s.op).sort(), ['internal.apply', 'internal.remove']);
});

test('a peer that does not know internal.batch gets the items as plain calls, then plain calls only', async (t) => {
  const peer = fakePeer({ knowsBatch: false });
  const batcher = new PeerBatcher(peer.send, 1 << 20);
  const first = await Promise.all([
    batcher.call('a:1', 'internal.apply', { key: 'k1', entry: entry('v1') }, 1000),
    batcher.call('a:1', 'internal.apply', { key: 'k2', entry: entry('v2') }, 1000),
  ]);
  t.deepEqual(first, [{ applied: true }, { applied: true }]);
  t.deepEqual(peer.sent.map((s) => s.op), [BATCH_OP, 'internal.apply', 'internal.apply']);
  await Promise.all([
    batcher.call('a:1', 'internal.read', { key: 'k1' }, 1000),
    batcher.call('a:1', 'internal.read', { key: 'k2' }, 1000),
  ]);
  t.deepEqual(peer.sent.slice(3).map((s) => s.op), ['internal.read', 'internal.read']);
});

test('a failed batch frame fails each of its items with the transport error', async (t) => {
  const batcher = new PeerBatcher(() => Promise.reject(new ShoalError('UNAVAILABLE', 'gone', { transport: true })), 1 << 20);
  const settled = await Promise.allSettled([
    batcher.call('a:1', 'internal.read', { key: 'k1' }, 1000),
    batcher.call('a:1', 'internal.read', { key: 'k2' }, 1000),
  ]);
  for (const s of settled) {
    t.is(s.status, 'rejected');
    t.is(((s as PromiseRejectedResult).reason as ShoalError).code, 'UNAVAILABLE');
  }
});

test('runBatch: reads past the response bound are answered FRAME_TOO_LARGE and the batcher asks them alone', async (t) => {
  const values = new Map([['a', Buffer.alloc(3000, 1)], ['b', Buffer.alloc(3000, 2)], ['c', Buffer.alloc(3000, 3)]]);
  const read = (_op: string, args: Record<string, unknown>) =>
    Promise.resolve({ entry: { value: values.get(args.key as string), ts: 1, node: 'x' }, syncing: false });
  const reply = (await runBatch({ items: [['internal.read', { key: 'a' }], ['internal.read', { key: 'b' }], ['internal.read', { key: 'c' }]] }, read, 4000)) as {
    results: Array<{ r?: unknown; e?: { code: string } }>;
  };
  t.truthy(reply.results[0].r);
  t.is(reply.results[1].e?.code, 'FRAME_TOO_LARGE');
  t.is(reply.results[2].e?.code, 'FRAME_TOO_LARGE');

  const sent: string[] = [];
  const batcher = new PeerBatcher(async (_addr, op, args) => {
    sent.push(op);
    return op === BATCH_OP ? runBatch(args, read, 4000) : read(op, args);
  }, 1 << 20);
  const got = (await Promise.all(['a', 'b', 'c'].map((key) => batcher.call('p:1', 'internal.read', { key }, 1000)))) as Array<{ entry: { value: Buffer } }>;
  t.deepEqual(got.map((g) => g.entry.value[0]), [1, 2, 3]);
  t.deepEqual(sent, [BATCH_OP, 'internal.read', 'internal.read']);
});

test('runBatch refuses what is not a batch of per-key ops, item by item', async (t) => {
  await t.throwsAsync(runBatch({ items: 'no' }, () => Promise.resolve(null), 1000), { instanceOf: ShoalError, message: /items/ });
  const reply = (await runBatch({ items: [['internal.batch', {}], ['internal.read'], ['internal.read', { key: 'k' }]] }, () => Promise.resolve({ entry: null }), 1000)) as {
    results: Array<{ r?: unknown; e?: { code: string } }>;
  };
  t.is(reply.results[0].e?.code, 'BAD_REQUEST');
  t.is(reply.results[1].e?.code, 'BAD_REQUEST');
  t.deepEqual(reply.results[2], { r: { entry: null } });
});

test('over a real pool and server: one frame per turn, and a replica applies the frame under one fdatasync', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-batch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = await openStore(dir, { fsync: 'always' });
  t.teardown(() => store.close());
  const replica = new Replica({
    store,
    hints: { add: () => Promise.resolve(), pendingFor: () => 0, targets: () => [], replay: () => Promise.resolve({ sent: 0, failed: 0 }), stats: () => ({}), close: () => Promise.resolve() },
    hlc: { now: () => ({ ts: 1, node: 'r' }), observe: () => {} },
    isSyncing: () => false,
    batchBytesMax: 1 << 20,
  });
  const ops: string[] = [];
  const handle = (op: string, args: Record<string, unknown>): Promise<unknown> => replica.handle(op, args);
  const server = new RpcServer({
    host: '127.0.0.1',
    port: 0,
    nodeId: 'r',
    clusterName: 'test',
    handler: (op, args) => {
      ops.push(op);
      return op === BATCH_OP ? runBatch(args, handle, 1 << 20) : handle(op, args);
    },
  });
  const { port } = await server.listen();
  t.teardown(() => server.close({ drainMs: 0 }));
  const pool = new RpcPool({ clusterName: 'test', connectionsPerAddr: 1 });
  t.teardown(() => pool.close());
  const addr = `127.0.0.1:${port}`;
  await pool.connect(addr);
  const batcher = new PeerBatcher((a, op, args, timeoutMs) => pool.call(a, op, args, { timeoutMs }), 1 << 20);
  const fsyncsBefore = store.stats().fsyncs;
  const keys = Array.from({ length: 50 }, (_, i) => `key-${i}`);
  const results = await Promise.all(
    keys.map((key, i) => batcher.call(addr, 'internal.apply', { key, entry: entryToWire({ value: Buffer.from(`v${i}`), ts: 100 + i, node: 'c' } as Entry) }, 5000)),
  );
  t.deepEqual(results, keys.map(() => ({ applied: true })));
  t.deepEqual(ops, [BATCH_OP]);
  t.is(store.stats().fsyncs - fsyncsBefore, 1, 'fifty writes of one frame share one fdatasync');
  const reads = (await Promise.all(keys.map((key) => batcher.call(addr, 'internal.read', { key }, 5000)))) as Array<{ entry: { value: Uint8Array } }>;
  t.deepEqual(reads.map((r) => Buffer.from(r.entry.value).toString()), keys.map((_, i) => `v${i}`));
  t.deepEqual(ops, [BATCH_OP, BATCH_OP]);
});
