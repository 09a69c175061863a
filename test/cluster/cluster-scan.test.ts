import test from 'ava';
import fc from 'fast-check';
import { decodeScanCursor, encodeScanCursor, parseScanNodeArgs, scanCluster, scanNode, scanNodeResultToWire } from '../../src/cluster/cluster-scan.js';
import type { Transport } from '../../src/cluster/ports.js';
import { ShoalError } from '../../src/errors.js';
import type { Entry, Store } from '../../src/storage/types.js';

/** Just enough of a store for scanNode. */
function fakeStore(map: Map<string, Entry>): Store {
  return { entries: () => map.entries(), getEntry: (k: string) => map.get(k) } as unknown as Store;
}

function cluster(stores: Map<string, Map<string, Entry>>, down: Set<string> = new Set(), bytesMax?: number) {
  const ids = [...stores.keys()];
  const transport: Transport = {
    call: async (id, op, args) => {
      if (down.has(id)) throw new ShoalError('UNAVAILABLE', `${id} is down`);
      if (op !== 'internal.scan') throw new Error(op);
      const parsed = parseScanNodeArgs(args);
      return scanNodeResultToWire(await scanNode(fakeStore(stores.get(id) ?? new Map()), { ...parsed, bytesMax: bytesMax ?? parsed.bytesMax, owns: () => true }));
    },
  } as Transport;
  return {
    view: { ring: () => ({ members: () => ids }), isUp: () => true, selfId: ids[0] } as never,
    transport,
    timeoutMs: 1000,
    now: () => 1_000_000,
  };
}

const entryArb = fc.record({
  ts: fc.integer({ min: 1, max: 50 }),
  node: fc.constantFrom('a', 'b', 'c'),
  value: fc.option(fc.constantFrom('x', 'yy', 'zzz'), { nil: null }),
  expired: fc.boolean(),
});

test('paging through scanCluster lists every live key once, in order, newest version winning, whatever the page size and byte budget', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.string({ minLength: 1, maxLength: 3 }), entryArb), { maxLength: 60 }),
      fc.integer({ min: 1, max: 7 }),
      fc.constantFrom('', 'a', 'b'),
      fc.constantFrom(undefined, 40, 80),
      async (writes, limit, prefix, bytesMax) => {
        const stores = new Map([['a', new Map<string, Entry>()], ['b', new Map<string, Entry>()], ['c', new Map<string, Entry>()]]);
        for (const [node, key, e] of writes) {
          const entry: Entry = { ts: e.ts, node: e.node, value: e.value === null ? null : Buffer.from(e.value) };
          if (e.expired) entry.expiresAtMs = 999_000; // before now
          const have = stores.get(node)?.get(key);
          if (!have || have.ts < entry.ts || (have.ts === entry.ts && have.node < entry.node)) stores.get(node)?.set(key, entry);
        }
        const newest = new Map<string, Entry>();
        for (const store of stores.values()) {
          for (const [k, e] of store) {
            const seen = newest.get(k);
            if (!seen || seen.ts < e.ts || (seen.ts === e.ts && seen.node < e.node)) newest.set(k, e);
          }
        }
        const expected = [...newest].filter(([k, e]) => k.startsWith(prefix) && e.value !== null && e.expiresAtMs === undefined).map(([k, e]) => [k, e.value?.toString()]).sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1));
        const ctx = cluster(stores, new Set(), bytesMax);
        const got: Array<[string, string | undefined]> = [];
        let cursor: string | null = '';
        for (let pages = 0; cursor !== null; pages++) {
          if (pages > 200) throw new Error('the scan does not end');
          const page = await scanCluster(ctx, { cursor, limit, prefix });
          for (const e of page.entries) got.push([e.key, e.value?.toString()]);
          cursor = page.cursor;
        }
        t.deepEqual(got, expected);
      },
    ),
    { numRuns: 150 },
  );
});

test('a page is cut at its byte budget and the scan still lists everything; keys-only sends no values', async (t) => {
  const store = new Map<string, Entry>();
  for (let i = 0; i < 30; i++) store.set(`k${String(i).padStart(2, '0')}`, { ts: 1, node: 'a', value: Buffer.alloc(100, 1) });
  const page = await scanNode(fakeStore(store), { after: '', prefix: '', limit: 30, keysOnly: false, bytesMax: 500, owns: () => true });
  t.true(page.entries.length >= 1 && page.entries.length < 30);
  t.true(page.more);
  const keysOnly = await scanNode(fakeStore(store), { after: '', prefix: '', limit: 30, keysOnly: true, bytesMax: 500_000, owns: () => true });
  t.is(keysOnly.entries.length, 30);
  t.false(keysOnly.more);
  t.true(keysOnly.entries.every(([, e]) => e.value?.length === 0));
  const ctx = cluster(new Map([['a', store], ['b', new Map(store)]]), new Set(), 700);
  const keys: string[] = [];
  let cursor: string | null = '';
  while (cursor !== null) {
    const p = await scanCluster(ctx, { cursor, limit: 25 });
    keys.push(...p.entries.map((e) => e.key));
    cursor = p.cursor;
  }
  t.deepEqual(keys, [...store.keys()]);
});

test('an owner that does not answer is reported; none answering is UNAVAILABLE; a bad cursor is BAD_REQUEST', async (t) => {
  const a = new Map<string, Entry>([['x', { ts: 1, node: 'a', value: Buffer.from('1') }]]);
  const page = await scanCluster(cluster(new Map([['a', a], ['b', new Map(a)]]), new Set(['b'])), {});
  t.deepEqual(page.unreachable, ['b']);
  t.deepEqual(page.entries.map((e) => e.key), ['x']);
  t.is(page.cursor, null);
  await t.throwsAsync(scanCluster(cluster(new Map([['a', a]]), new Set(['a'])), {}), { instanceOf: ShoalError, message: /no owner answered/ });
  await t.throwsAsync(scanCluster(cluster(new Map([['a', a]])), { cursor: 'not a cursor!' }), { message: /invalid cursor/ });
  await t.throwsAsync(scanCluster(cluster(new Map([['a', a]])), { limit: 5000 }), { message: /limit/ });
  t.is(decodeScanCursor(encodeScanCursor('ключ/λ')), 'ключ/λ');
});
