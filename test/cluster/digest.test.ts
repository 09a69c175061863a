import test from 'ava';
import fc from 'fast-check';
import { buildDigest, buildDigestAsync, bucketOf, diffDigests, digestFromWire, listBuckets, listBucketsAsync } from '../../src/cluster/digest.js';
import { Ring, hashKey } from '../../src/ring/ring.js';
import { rangeContains, type TokenRange } from '../../src/ring/ranges.js';
import { TOKEN_MAX } from '../../src/ring/hash.js';
import { pack, unpack } from '../../src/codec.js';
import type { Entry } from '../../src/storage/types.js';

const WHOLE: TokenRange = { start: 0n, end: 0n };

const entryArb: fc.Arbitrary<Entry> = fc.record(
  {
    ts: fc.integer({ min: 1, max: 2 ** 50 }),
    node: fc.constantFrom('n1', 'n2', 'n3'),
    value: fc.option(fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)), { nil: null }),
    expiresAtMs: fc.integer({ min: 1, max: 2 ** 45 }),
  },
  { requiredKeys: ['ts', 'node', 'value'] },
);
const storeArb = fc.dictionary(fc.string({ maxLength: 10 }), entryArb, { maxKeys: 60 });

function shuffled<T>(items: T[]): T[] {
  return items.map((v, i) => [((i * 7919) % 101) + Math.sin(i), v] as const).sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

test('equal replicas give equal digests, whatever the iteration order', (t) => {
  fc.assert(
    fc.property(storeArb, fc.integer({ min: 1, max: 64 }), (store, buckets) => {
      const items = Object.entries(store);
      const a = buildDigest(items, WHOLE, buckets);
      const b = buildDigest(shuffled(items), WHOLE, buckets);
      t.is(a.root, b.root);
      t.deepEqual(diffDigests(a, b), []);
      t.is(a.count, items.length);
    }),
  );
});

test('a changed, missing, tombstoned or re-expiring key shows up in exactly its bucket', (t) => {
  const change = fc.constantFrom('ts', 'node', 'tombstone', 'expiry', 'missing');
  fc.assert(
    fc.property(storeArb, fc.nat(), change, fc.integer({ min: 1, max: 64 }), (store, pick, how, buckets) => {
      const items = Object.entries(store);
      fc.pre(items.length > 0);
      const [key, entry] = items[pick % items.length];
      const other = items.filter(([k]) => k !== key);
      if (how !== 'missing') {
        const changed: Entry = { ...entry };
        if (how === 'ts') changed.ts += 1;
        if (how === 'node') changed.node = entry.node === 'n1' ? 'n2' : 'n1';
        if (how === 'tombstone') changed.value = entry.value === null ? Buffer.from('v') : null;
        if (how === 'expiry') changed.expiresAtMs = (entry.expiresAtMs ?? 0) + 1;
        other.push([key, changed]);
      }
      const diff = diffDigests(buildDigest(items, WHOLE, buckets), buildDigest(other, WHOLE, buckets));
      t.deepEqual(diff, [bucketOf(key, buckets)]);
      // Listing the differing bucket on both sides yields the key.
      const listed = listBuckets(items, WHOLE, buckets, diff).entries.map(([k]) => k);
      t.true(listed.includes(key));
      for (const k of listed) t.is(bucketOf(k, buckets), diff[0]);
    }),
  );
});

test('only keys inside the ranges count', (t) => {
  const ring = Ring.build(['a', 'b', 'c', 'd'].map((id) => ({ id })), { vnodes: 8 });
  const ranges = ring.rangesFor('a', 2);
  const items: Array<[string, Entry]> = Array.from({ length: 500 }, (_, i) => [`k${i}`, { ts: i + 1, node: 'n1', value: Buffer.from('x') }]);
  const inside = items.filter(([k]) => ranges.some((r) => rangeContains(r, hashKey(k))));
  t.true(inside.length > 0 && inside.length < items.length);
  const d = buildDigest(items, ranges, 32);
  t.is(d.count, inside.length);
  t.is(d.root, buildDigest(inside, ranges, 32).root);
  // A change outside the ranges is invisible.
  const outsideKey = items.find(([k]) => !inside.some(([i]) => i === k))![0];
  const changed = items.map(([k, e]): [string, Entry] => (k === outsideKey ? [k, { ...e, ts: e.ts + 1 }] : [k, e]));
  t.deepEqual(diffDigests(d, buildDigest(changed, ranges, 32)), []);
  // A single range, including a wrapping one, works too.
  const wrap = { start: TOKEN_MAX - (1n << 62n), end: 1n << 62n };
  t.is(buildDigest(items, wrap, 8).count, items.filter(([k]) => rangeContains(wrap, hashKey(k))).length);
});

test('expired entries can be left out; listings are bounded', (t) => {
  const items: Array<[string, Entry]> = [
    ['old', { ts: 1, node: 'n1', value: Buffer.from('x'), expiresAtMs: 1000 }],
    ['new', { ts: 2, node: 'n1', value: Buffer.from('y'), expiresAtMs: 5000 }],
    ['forever', { ts: 3, node: 'n1', value: Buffer.from('z') }],
  ];
  t.is(buildDigest(items, WHOLE, { buckets: 4, expiredBeforeMs: 2000 }).count, 2);
  const all = [0, 1, 2, 3];
  t.deepEqual(listBuckets(items, WHOLE, 4, all, { entriesMax: 2 }), { entries: items.slice(0, 2), truncated: true });
  t.is(listBuckets(items, WHOLE, 4, all).entries.length, 3);
  t.throws(() => listBuckets(items, WHOLE, 4, [4]));
});

test('digests survive the msgpack codec and bad ones are refused', (t) => {
  const d = buildDigest([['k', { ts: 1, node: 'n1', value: null }]], WHOLE, 16);
  const back = digestFromWire(unpack(pack(d)));
  t.deepEqual(diffDigests(d, back), []);
  t.is(back.root, d.root);
  t.throws(() => digestFromWire({ ...d, hashes: Buffer.alloc(3) }));
  t.throws(() => digestFromWire({ ...d, buckets: 0 }));
  t.throws(() => diffDigests(d, buildDigest([], WHOLE, 8)));
});

test('the async builders give the same digest and listing as the sync ones', async (t) => {
  await fc.assert(
    fc.asyncProperty(storeArb, fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 7 }), async (store, buckets, every) => {
      const items = Object.entries(store);
      const ranges = Ring.build([{ id: 'a' }, { id: 'b' }, { id: 'c' }], { vnodes: 4 }).rangesFor('a', 2);
      const sync = buildDigest(items, ranges, buckets);
      const async = await buildDigestAsync(items, ranges, { buckets, yieldEveryEntries: every });
      t.is(async.root, sync.root);
      t.is(async.count, sync.count);
      const ids = [0, buckets - 1];
      t.deepEqual(await listBucketsAsync(items, ranges, buckets, ids, { entriesMax: 5, yieldEveryEntries: every }), listBuckets(items, ranges, buckets, ids, { entriesMax: 5 }));
    }),
    { numRuns: 40 },
  );
});
