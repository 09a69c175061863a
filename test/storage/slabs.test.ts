/**
 * Recovered values are views into the buffers recovery read (WAL segments, snapshot chunks), with
 * slabs holding few live values copied out (src/storage/recovery.ts, compactSlabs).
 */
import test from 'ava';
import fc from 'fast-check';
import { compactSlabs } from '../../src/storage/recovery.js';
import { openStore } from '../../src/storage/store.js';
import type { Entry } from '../../src/storage/types.js';
import { tempDir, v } from './helpers.js';

const OPTS = { fsync: 'none' as const, snapshotWalBytes: 0, snapshotIntervalMs: 0 };

/** A value whose bytes say which key and version it belongs to. */
function value(key: string, ts: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  const tag = Buffer.from(`${key}@${ts};`);
  for (let i = 0; i < bytes; i++) b[i] = tag[i % tag.length];
  return b;
}

test('values recovered from the WAL share its slab and survive overwrite, delete, snapshot and reopen of their neighbours', async (t) => {
  const dir = tempDir(t);
  let store = await openStore(dir, OPTS);
  for (let i = 0; i < 50; i++) await store.put(`k${i}`, value(`k${i}`, 1, 200), { version: v(1) });
  await store.close();

  store = await openStore(dir, OPTS);
  const a = store.get('k1')?.value as Buffer;
  const b = store.get('k2')?.value as Buffer;
  t.is(a.buffer, b.buffer, 'two recovered values are views into one slab');
  t.true(a.buffer.byteLength > 50 * 200, 'the slab is the segment read at open');
  // Overwrite and delete neighbours sharing the slab; the remaining views keep their bytes.
  await store.put('k1', value('k1', 2, 300), { version: v(2) });
  await store.delete('k3', { version: v(2) });
  t.deepEqual(store.get('k2')?.value, value('k2', 1, 200));
  t.deepEqual(store.get('k1')?.value, value('k1', 2, 300));
  t.deepEqual(b, value('k2', 1, 200), 'the view handed out before is unchanged');
  await store.snapshot();
  await store.put('k4', value('k4', 3, 10), { version: v(3) });
  await store.close();

  store = await openStore(dir, OPTS);
  t.teardown(() => store.close());
  t.deepEqual(store.get('k1')?.value, value('k1', 2, 300));
  t.is(store.get('k3'), undefined);
  t.deepEqual(store.get('k4')?.value, value('k4', 3, 10));
  for (let i = 5; i < 50; i++) t.deepEqual(store.get(`k${i}`)?.value, value(`k${i}`, 1, 200));
});

test('a WAL slab holding mostly overwritten versions has its live values copied out at open', async (t) => {
  const dir = tempDir(t);
  let store = await openStore(dir, OPTS);
  for (let ts = 1; ts <= 100; ts++) await store.put('hot', value('hot', ts, 1000), { version: v(ts) });
  await store.close();
  store = await openStore(dir, OPTS);
  t.teardown(() => store.close());
  const hot = store.get('hot')?.value as Buffer;
  t.deepEqual(hot, value('hot', 100, 1000));
  t.true(hot.buffer.byteLength < 50 * 1000, `the 100-version segment is not kept alive by one value (buffer of ${hot.buffer.byteLength} bytes)`);
});

test('a snapshot larger than one read chunk (16 MiB) loads every value intact across the chunk boundaries', async (t) => {
  const dir = tempDir(t);
  let store = await openStore(dir, OPTS);
  const keys = Array.from({ length: 190 }, (_, i) => `big${i}`);
  for (const [i, k] of keys.entries()) await store.put(k, value(k, i + 1, 90_001 + i), { version: v(i + 1) });
  await store.snapshot();
  await store.close();
  store = await openStore(dir, OPTS);
  t.teardown(() => store.close());
  const slabs = new Set(keys.map((k) => store.get(k)?.value?.buffer));
  t.true(slabs.size >= 2, `values come from ${slabs.size} chunks`);
  for (const [i, k] of keys.entries()) {
    const got = store.get(k)?.value;
    if (!got?.equals(value(k, i + 1, 90_001 + i))) t.fail(`value of ${k} differs after the snapshot load`);
  }
  t.is(store.stats().keys, keys.length);
});

test('property: compactSlabs copies out exactly the values of slabs less than half live, and never changes a value', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 0, max: 64 }), { maxLength: 12 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 5 }),
        (layout, padding) => {
          // layout[s] = the value lengths laid out in slab s, followed by padding[s] unused bytes.
          const slabs: Buffer[] = [];
          const entries = new Map<string, Entry>();
          const expected = new Map<string, Buffer>();
          const sharedBefore = new Map<string, Buffer>();
          layout.forEach((lengths, s) => {
            const total = lengths.reduce((a, b) => a + b, 0) + padding[s % padding.length] + 1;
            const slab = Buffer.allocUnsafeSlow(total);
            for (let i = 0; i < total; i++) slab[i] = (i * 7 + s) & 0xff;
            slabs.push(slab);
            let off = 0;
            lengths.forEach((n, i) => {
              const key = `s${s}v${i}`;
              const view = slab.subarray(off, off + n);
              off += n;
              entries.set(key, { ts: 1, node: 'n', value: view });
              expected.set(key, Buffer.from(view));
              sharedBefore.set(key, slab);
            });
          });
          entries.set('tomb', { ts: 1, node: 'n', value: null });
          compactSlabs(entries, slabs);
          for (const [key, want] of expected) {
            const got = entries.get(key)?.value as Buffer;
            if (!got.equals(want)) return false;
            const slab = sharedBefore.get(key) as Buffer;
            const s = Number(key.slice(1, key.indexOf('v')));
            const live = layout[s].reduce((a, b) => a + b, 0);
            const kept = got.buffer === slab.buffer;
            if (kept !== live >= slab.length * 0.5) return false;
          }
          return entries.get('tomb')?.value === null;
        },
      ),
    ),
  );
});
