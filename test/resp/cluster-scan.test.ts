import test from 'ava';
import fc from 'fast-check';
import { KeyListing, globMatcher, parseToken } from '../../src/cluster/cluster-scan.js';
import { hashKey } from '../../src/ring/ring.js';
import type { Entry, Store } from '../../src/storage/types.js';

/** The part of a Store KeyListing reads, over a Map. */
function mapStore(map: Map<string, Entry>): Store {
  return {
    getEntry: (key: string) => map.get(key),
    entries: () => map.entries(),
  } as unknown as Store;
}

const live = (ts = 1): Entry => ({ value: Buffer.from('v'), ts, node: 'n1' });

/** Every key the listing returns from the start to the end, page by page. */
async function listAll(listing: KeyListing, limit: number, match?: (k: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  let from = 0n;
  for (let pages = 0; pages < 100_000; pages++) {
    const page = await listing.page(from, limit, match);
    for (const [key] of page.keys) out.push(key);
    if (page.through === null) return out;
    from = BigInt(page.through) + 1n;
  }
  throw new Error('the listing did not end');
}

test('pages list every key exactly once, in token order, whatever the page size', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 300 }), fc.integer({ min: 1, max: 50 }), async (keys, limit) => {
      const map = new Map(keys.map((k) => [k, live()]));
      const listing = new KeyListing({ store: mapStore(map), hashKey });
      const got = await listAll(listing, limit);
      t.deepEqual([...got].sort(), [...keys].sort());
      const tokens = got.map(hashKey);
      for (let i = 1; i < tokens.length; i++) t.true(tokens[i - 1] <= tokens[i]);
    }),
    { numRuns: 60 },
  );
});

test('keys applied after the index was built are listed; keys gone from the store are not; tombstones are listed as such', async (t) => {
  const map = new Map<string, Entry>();
  for (let i = 0; i < 100; i++) map.set(`k${i}`, live());
  const listing = new KeyListing({ store: mapStore(map), hashKey });
  const first = await listing.page(0n, 10);
  t.is(first.keys.length, 10);
  t.is(listing.builds, 1);
  for (let i = 100; i < 150; i++) {
    map.set(`k${i}`, live());
    listing.noteApplied(`k${i}`);
  }
  map.delete('k3');
  map.set('k4', { value: null, ts: 2, node: 'n2' });
  listing.noteApplied('k4');
  const all = await listAll(listing, 7);
  t.is(listing.builds, 1, 'the index was kept and merged with the noted keys');
  t.is(all.length, 149);
  t.is(new Set(all).size, 149);
  t.false(all.includes('k3'));
  const k4 = (await listing.page(hashKey('k4'), 1)).keys.find(([k]) => k === 'k4');
  t.deepEqual(k4, ['k4', 2, 'n2', -1, 1]);
});

test('a page stops only between tokens and reports how far it covered; MATCH filters names', async (t) => {
  const map = new Map<string, Entry>();
  for (let i = 0; i < 50; i++) map.set(`user:${i}`, live());
  for (let i = 0; i < 50; i++) map.set(`item:${i}`, live());
  // Two keys on one token (a collision, forced by a fake hash).
  const fakeHash = (k: string) => (k === 'a' || k === 'b' ? 5n : hashKey(k));
  map.set('a', live());
  map.set('b', live());
  const listing = new KeyListing({ store: mapStore(map), hashKey: fakeHash });
  const page = await listing.page(0n, 1);
  t.deepEqual(page.keys.map(([k]) => k), ['a', 'b'], 'both keys of the shared token come together');
  t.is(page.through, '5');
  const users = await listAll(listing, 3, globMatcher('user:*'));
  t.is(users.length, 50);
  t.true(users.every((k) => k.startsWith('user:')));
});

test('glob patterns follow Redis: * ? [set] [^set] [a-z] and escapes', (t) => {
  const m = (p: string, s: string) => globMatcher(p)(s);
  t.true(m('*', 'anything'));
  t.true(m('h?llo', 'hello'));
  t.false(m('h?llo', 'hllo'));
  t.true(m('h*llo', 'heeeello'));
  t.true(m('h[ae]llo', 'hallo'));
  t.false(m('h[ae]llo', 'hillo'));
  t.true(m('h[^e]llo', 'hallo'));
  t.false(m('h[^e]llo', 'hello'));
  t.true(m('h[a-b]llo', 'hbllo'));
  t.true(m('h\\*llo', 'h*llo'));
  t.false(m('h\\*llo', 'hello'));
  t.true(m('user:*:name', 'user:42:name'));
  t.false(m('user:*:name', 'user:42:names'));
});

test('cursors are decimal tokens below 2^64', (t) => {
  t.is(parseToken('0'), 0n);
  t.is(parseToken('18446744073709551615'), (1n << 64n) - 1n);
  t.throws(() => parseToken('18446744073709551616'), { message: /invalid cursor/ });
  t.throws(() => parseToken('-1'), { message: /invalid cursor/ });
  t.throws(() => parseToken('abc'), { message: /invalid cursor/ });
});

test('the index is built in chunks: keys applied while it is built are listed, and a flood of writes forces a rebuild', async (t) => {
  const map = new Map<string, Entry>();
  for (let i = 0; i < 10_000; i++) map.set(`k${i}`, live());
  const listing = new KeyListing({ store: mapStore(map), hashKey });
  const pending = listing.page(0n, 5);
  // The build has yielded after its first chunk; these writes land in the middle of it.
  for (let i = 10_000; i < 10_100; i++) {
    map.set(`k${i}`, live());
    listing.noteApplied(`k${i}`);
  }
  await pending;
  const all = await listAll(listing, 1000);
  t.is(all.length, 10_100);
  t.is(new Set(all).size, 10_100);
  t.is(listing.builds, 1);
  for (let i = 0; i < 70_000; i++) listing.noteApplied(`flood${i}`);
  await listing.page(0n, 5);
  t.is(listing.builds, 2, 'more noted keys than NOTED_KEYS_MAX: rebuilt');
});
