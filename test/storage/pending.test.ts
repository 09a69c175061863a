/** PendingLog (src/storage/pending.ts): the unacknowledged mutations a WAL failure undoes. */
import test from 'ava';
import fc from 'fast-check';
import { PendingLog } from '../../src/storage/pending.js';
import type { Entry } from '../../src/storage/types.js';

const entry = (ts: number): Entry => ({ ts, node: 'n', value: Buffer.from(String(ts)) });

test('undoAfter undoes exactly the mutations above the acknowledged seq, newest first', (t) => {
  const log = new PendingLog();
  for (let seq = 5; seq <= 9; seq++) log.track(seq, `k${seq}`, seq === 7 ? entry(1) : undefined, undefined, entry(seq));
  log.acked(6);
  t.is(log.size, 3);
  const undone: string[] = [];
  log.undoAfter(7, (key, prev) => undone.push(`${key}:${prev?.ts ?? '-'}`));
  t.deepEqual(undone, ['k9:-', 'k8:-']);
  t.is(log.size, 0);
});

test('a gap in the sequence numbers is a bug that stops loudly', (t) => {
  const log = new PendingLog();
  log.track(1, 'a', undefined, undefined, entry(1));
  t.throws(() => log.track(3, 'b', undefined, undefined, entry(2)), { message: /not the next/ });
});

test('property: after any interleaving of tracks and acks, undoAfter visits the unacknowledged mutations above the cut, newest first', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.oneof(fc.record({ op: fc.constant('track' as const), n: fc.integer({ min: 1, max: 3000 }) }), fc.record({ op: fc.constant('ack' as const), back: fc.integer({ min: 0, max: 3000 }) })), { maxLength: 30 }),
        fc.integer({ min: 0, max: 3000 }),
        (first, ops, cutBack) => {
          const log = new PendingLog();
          let next = first;
          let acked = first - 1;
          for (const o of ops) {
            if (o.op === 'track') {
              for (let i = 0; i < o.n; i++, next++) log.track(next, `k${next}`, undefined, undefined, entry(next));
            } else {
              acked = Math.max(acked, next - 1 - o.back);
              log.acked(acked);
            }
          }
          const cut = Math.max(acked, next - 1 - cutBack);
          const seen: number[] = [];
          log.undoAfter(cut, (key) => seen.push(Number(key.slice(1))));
          const want: number[] = [];
          for (let s = next - 1; s > cut; s--) want.push(s);
          return JSON.stringify(seen) === JSON.stringify(want) && log.size === 0;
        },
      ),
    ),
  );
});
