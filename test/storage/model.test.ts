import test from 'ava';
import fc from 'fast-check';
import { openStore } from '../../src/storage/store.js';
import type { Entry, Store } from '../../src/storage/types.js';
import { compareVersion } from '../../src/storage/types.js';
import { tempDir } from './helpers.js';

const KEYS = ['a', 'b', 'c', 'd', 'ключ', ''];
type Op =
  | { op: 'put'; key: string; ts: number; node: string; value: number[] }
  | { op: 'del'; key: string; ts: number; node: string }
  | { op: 'reopen' }
  | { op: 'snapshot' };

const arbVersion = { ts: fc.integer({ min: 0, max: 30 }), node: fc.constantFrom('n1', 'n2', 'n3') };
const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('put' as const), key: fc.constantFrom(...KEYS), ...arbVersion, value: fc.array(fc.nat(255), { maxLength: 40 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('del' as const), key: fc.constantFrom(...KEYS), ...arbVersion }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'snapshot' as const }) },
);

test('random operations with snapshots and close/reopen behave like a last-writer-wins map', async (t) => {
  const base = tempDir(t);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(arbOp, { minLength: 1, maxLength: 40 }), fc.boolean(), async (ops, small) => {
      const dir = `${base}/run${run++}`;
      // Small segments make rotation and segment deletion part of the sequence.
      const options = { fsync: 'none' as const, walSegmentBytesMax: small ? 256 : 1 << 20 };
      let store: Store = await openStore(dir, options);
      const model = new Map<string, Entry>();
      try {
        for (const o of ops) {
          if (o.op === 'reopen') {
            await store.close();
            store = await openStore(dir, options);
          } else if (o.op === 'snapshot') {
            await store.snapshot();
          } else {
            const entry: Entry = { ts: o.ts, node: o.node, value: o.op === 'put' ? Buffer.from(o.value) : null };
            const old = model.get(o.key);
            const newer = old === undefined || compareVersion(entry, old) > 0;
            if (newer) model.set(o.key, entry);
            const applied =
              o.op === 'put'
                ? await store.put(o.key, Buffer.from(o.value), { version: { ts: o.ts, node: o.node } })
                : await store.delete(o.key, { version: { ts: o.ts, node: o.node } });
            if (applied !== newer) return false;
          }
          for (const key of KEYS) {
            const want = model.get(key);
            const got = store.getEntry(key);
            if (want === undefined ? got !== undefined : got === undefined || compareVersion(got, want) !== 0) return false;
            if (want?.value?.equals(got?.value ?? Buffer.alloc(0)) === false) return false;
            if ((want?.value == null) !== (store.get(key) === undefined)) return false;
          }
        }
        return true;
      } finally {
        await store.close();
      }
    }),
    { numRuns: 60 },
  );
  t.pass();
});
