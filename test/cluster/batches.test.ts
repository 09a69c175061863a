/**
 * Every node-to-node batch fits in a frame whatever the value sizes: anti-entropy (pull, push, version
 * listings), streaming, leave hand-off and clean-up, over an in-process network that enforces the frame
 * limit like the RPC framing does. Values range from 1 KiB to valueBytesMax.
 */
import test from 'ava';
import fc from 'fast-check';
import { BatchAccumulator, cutBatches } from '../../src/cluster/batch.js';
import type { ClusterConfig } from '../../src/cluster/config.js';
import { startCluster, type TestCluster } from './helpers/harness.js';

const FRAME_BYTES_MAX = 256 * 1024;
const VALUE_BYTES_MAX = FRAME_BYTES_MAX - 1024 - 1024; // the config rule: frame ≥ value + key + 1024
const SIZES = [1024, 4 * 1024, 16 * 1024, 60 * 1024, VALUE_BYTES_MAX];
const BIG: Partial<ClusterConfig> = {
  frameBytesMax: FRAME_BYTES_MAX,
  hintsEnabled: false,
  readRepairEnabled: false,
  streamBytesPerSecMax: 1024 ** 3,
  antiEntropyKeysPerSecMax: 1_000_000,
};

function valueFor(key: string, i: number): Buffer {
  const v = Buffer.alloc(SIZES[i % SIZES.length], i % 251);
  v.write(key);
  return v;
}

async function bigCluster(count: number, config: Partial<ClusterConfig> = {}): Promise<TestCluster> {
  return startCluster(count, { ...BIG, ...config }, { valueBytesMax: VALUE_BYTES_MAX });
}

async function write(c: TestCluster, via: string, keys: string[], consistency: string): Promise<void> {
  for (let i = 0; i < keys.length; i += 20) {
    await Promise.all(keys.slice(i, i + 20).map((key, j) => c.call(via, 'put', { key, value: valueFor(key, i + j), consistency })));
  }
}

function missingOn(c: TestCluster, id: string, keys: string[]): string[] {
  const node = c.get(id);
  return keys.filter((key) => node.node.view.owners(key).includes(id) && !node.store.getEntry(key)?.value?.equals(valueFor(key, keys.indexOf(key))));
}

test('cutBatches: batches keep order, stay within items and bytes, and an oversized item travels alone', (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 5_000 }), { maxLength: 300 }), fc.integer({ min: 1, max: 4_000 }), fc.integer({ min: 1, max: 50 }), (sizes, bytesMax, itemsMax) => {
      const batches = cutBatches(sizes, (s) => s, { bytesMax, itemsMax });
      t.deepEqual(batches.flat(), sizes);
      for (const b of batches) {
        t.true(b.length >= 1 && b.length <= itemsMax);
        const bytes = b.reduce((x, y) => x + y, 0);
        t.true(b.length === 1 || bytes <= bytesMax, `batch of ${bytes} bytes over ${bytesMax}`);
      }
    }),
    { numRuns: 200 },
  );
});

test('BatchAccumulator hands back a destination\'s batch before it would overflow', (t) => {
  const acc = new BatchAccumulator<number>({ bytesMax: 10, itemsMax: 3 });
  t.is(acc.add('a', 1, 6), null);
  t.deepEqual(acc.add('a', 2, 6), [1]);
  t.is(acc.add('b', 3, 100), null);
  t.deepEqual(acc.add('b', 4, 1), [3]);
  t.is(acc.add('b', 5, 1), null);
  t.is(acc.add('b', 6, 1), null);
  t.deepEqual(acc.add('b', 7, 1), [4, 5, 6]);
  t.deepEqual(acc.drain(), [['a', [2]], ['b', [7]]]);
});

test('anti-entropy converges a replica that missed writes of values up to valueBytesMax (pull and push)', async (t) => {
  const c = await bigCluster(3);
  const pulledKeys = Array.from({ length: 60 }, (_, i) => `pull-${i}`);
  const pushedKeys = Array.from({ length: 60 }, (_, i) => `push-${i}`);
  c.kill('n3');
  await write(c, 'n1', pulledKeys, 'quorum');
  c.revive('n3');
  c.kill('n2');
  await write(c, 'n1', pushedKeys, 'quorum');
  c.revive('n2');
  await c.settle();
  t.true(missingOn(c, 'n3', pulledKeys).length > 50, 'n3 missed the first writes');
  t.true(missingOn(c, 'n2', pushedKeys).length > 50, 'n2 missed the second writes');

  const pulled = await c.get('n3').node.antiEntropy.runOnce('n1'); // n3 pulls what n1 has
  const pushed = await c.get('n1').node.antiEntropy.runOnce('n2'); // n1 pushes what n2 lacks
  t.is(pulled.skipped, undefined, `pull round: ${pulled.skipped}`);
  t.is(pushed.skipped, undefined, `push round: ${pushed.skipped}`);
  t.deepEqual(missingOn(c, 'n3', pulledKeys), []);
  t.deepEqual(missingOn(c, 'n2', pushedKeys), []);
  t.true(c.net.largestFrameBytes <= FRAME_BYTES_MAX);
  t.true(c.net.largestFrameBytes > FRAME_BYTES_MAX / 2, `batches use the frame (${c.net.largestFrameBytes} bytes)`);
  for (const id of c.ids()) t.is((c.get(id).node.antiEntropy.stats() as { roundsFailed: number }).roundsFailed, 0);
  await c.close();
});

test('anti-entropy splits version listings larger than a frame across calls', async (t) => {
  // Long keys, small values, few buckets: one listing of the differing buckets is ~10 frames.
  const frame = 64 * 1024;
  const c = await startCluster(3, { ...BIG, frameBytesMax: frame, antiEntropyBuckets: 16 }, { valueBytesMax: 16 * 1024 });
  const keys = Array.from({ length: 3_000 }, (_, i) => `${'k'.repeat(180)}-${i}`);
  c.kill('n3');
  for (let i = 0; i < keys.length; i += 100) {
    await Promise.all(keys.slice(i, i + 100).map((key) => c.call('n1', 'put', { key, value: 'v', consistency: 'quorum' })));
  }
  c.revive('n3');
  const n3 = c.get('n3');
  const before = keys.filter((k) => n3.node.view.owners(k).includes('n3') && !n3.store.getEntry(k)).length;
  t.true(before > 2_000);
  c.net.logCalls = true;
  const round = await n3.node.antiEntropy.runOnce('n1');
  t.is(round.skipped, undefined, `round: ${round.skipped}`);
  t.is(keys.filter((k) => n3.node.view.owners(k).includes('n3') && !n3.store.getEntry(k)).length, 0);
  t.true(c.net.callLog.filter((l) => l === 'n3→n1:internal.versions').length > 1, 'the listing took several calls');
  t.true(c.net.largestFrameBytes <= frame);
  await c.close();
});

test('a joining node streams values up to valueBytesMax; clean-up then hands off and drops in batches that fit', async (t) => {
  const c = await bigCluster(4);
  const keys = Array.from({ length: 80 }, (_, i) => `s-${i}`);
  await write(c, 'n1', keys, 'all');
  const joiner = await c.add('n5', { config: BIG });
  await c.settle();
  t.deepEqual(missingOn(c, 'n5', keys), [], 'every newly owned key streamed in');
  t.true((joiner.node.stats().streaming as { roundsFailed: number }).roundsFailed === 0);
  const extra = (): number => keys.reduce((sum, key) => sum + Object.keys(c.holders(key)).length - 3, 0);
  t.true(extra() > 0);
  for (const id of c.ids()) await c.get(id).node.cleanup.runOnce();
  t.is(extra(), 0, 'every key lives on exactly its owners');
  t.true(c.net.largestFrameBytes <= FRAME_BYTES_MAX);
  await c.close();
});

test('an announced leave hands off values up to valueBytesMax in batches that fit', async (t) => {
  const c = await bigCluster(4, { ringSettleMs: 60_000 });
  const keys = Array.from({ length: 80 }, (_, i) => `l-${i}`);
  await write(c, 'n1', keys, 'all');
  await c.call('n3', 'leave', {});
  const streaming = c.get('n3').node.stats().streaming as { leavePushedKeys: number; leaveFailedKeys: number };
  t.is(streaming.leaveFailedKeys, 0);
  t.true(streaming.leavePushedKeys > 20);
  const view = c.get('n1').node.view;
  for (const [i, key] of keys.entries()) {
    for (const id of view.owners(key)) t.true(c.get(id).store.getEntry(key)?.value?.equals(valueFor(key, i)), `${key} on ${id}`);
  }
  await c.close();
});

test('the test network refuses a frame over its limit, as the rpc framing does', async (t) => {
  const c = await bigCluster(1);
  const err = await t.throwsAsync(c.call('n1', 'put', { key: 'k', value: Buffer.alloc(FRAME_BYTES_MAX) }));
  t.regex(err?.message ?? '', /exceeds the limit/);
  await c.close();
});
