import test from 'ava';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory, percentile } from './lib/checker.js';
import { HistoryWriter, pairOps, readHistory } from './lib/history.js';
import type { HistoryEvent, Outcome } from './lib/history.js';
import { HistoryBuilder, v } from './lib/synthetic.js';

const END = 100_000;

test('a clean history of every key class is valid', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 'u1', cls: 'unique', value: 'a', at: 10, version: v(1) })
    .write({ key: 's1', value: 's1-1', at: 20, version: v(2) })
    .write({ key: 's1', value: 's1-2', at: 30, version: v(3) })
    .write({ key: 'd1', cls: 'del', value: 'd', at: 40, version: v(4) })
    .write({ key: 'd1', cls: 'del', at: 50, version: v(5) })
    .write({ key: 't1', cls: 'ttl', value: 't', ttlMs: 1000, at: 60, version: v(6) })
    .write({ key: 't2', cls: 'ttl', value: 't2', ttlMs: 10_000_000, at: 60, version: v(7) })
    .read({ key: 's1', at: 35, value: 's1-2', version: v(3), final: false })
    .read({ key: 'u1', at: END, value: 'a', version: v(1) })
    .read({ key: 's1', at: END, value: 's1-2', version: v(3) })
    .read({ key: 's1', at: END, node: 'n2', value: 's1-2', version: v(3) })
    .read({ key: 'd1', at: END, value: null })
    .read({ key: 't1', at: END, value: null })
    .read({ key: 't2', at: END, value: 't2', version: v(7) })
    .build();
  const r = checkHistory(h);
  t.deepEqual(r.violations, []);
  t.true(r.valid);
  t.is(r.ops.total, 8);
  t.is(r.ops.finalReads, 6);
  t.deepEqual(r.keys.byClass, { unique: 1, seq: 1, del: 1, ttl: 2 });
});

test('an acknowledged unique write that is absent at the end is lost', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 'u1', cls: 'unique', value: 'a', at: 10, version: v(1) })
    .read({ key: 'u1', at: END, value: null })
    .build();
  const r = checkHistory(h);
  t.false(r.valid);
  t.is(r.counts.lost, 1);
  t.is(r.violations[0].key, 'u1');
});

test('an older acknowledged value over the last acknowledged write is lost', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 's', value: 'x1', at: 10, version: v(1) })
    .write({ key: 's', value: 'x2', at: 20, version: v(2) })
    .read({ key: 's', at: END, value: 'x1', version: v(1) })
    .build();
  t.is(checkHistory(h).counts.lost, 1);
});

test('without versions on reads, real-time order still catches an older value', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 's', value: 'x1', at: 10 })
    .write({ key: 's', value: 'x2', at: 20 })
    .read({ key: 's', at: END, value: 'x1' })
    .build();
  t.is(checkHistory(h).counts.lost, 1);
});

test('a later write of unknown outcome may be the final value, or not', (t) => {
  const base = () =>
    new HistoryBuilder()
      .write({ key: 's', value: 'x1', at: 10, version: v(1) })
      .write({ key: 's', value: 'x2', at: 20, outcome: 'info' });
  t.true(checkHistory(base().read({ key: 's', at: END, value: 'x2', version: v(2) }).build()).valid);
  t.true(checkHistory(base().read({ key: 's', at: END, value: 'x1', version: v(1) }).build()).valid);
});

test('an earlier indeterminate write may win only with a newer version than the acknowledged one', (t) => {
  const base = () =>
    new HistoryBuilder()
      .write({ key: 's', value: 'x1', at: 10, outcome: 'info' })
      .write({ key: 's', value: 'x2', at: 20, version: v(5) });
  // Delayed at a paused coordinator, stamped later: legitimate last-writer-wins.
  t.true(checkHistory(base().read({ key: 's', at: END, value: 'x1', version: v(9) }).build()).valid);
  // Stamped earlier than the acknowledged write yet visible over it: the acknowledged write is lost.
  t.is(checkHistory(base().read({ key: 's', at: END, value: 'x1', version: v(3) }).build()).counts.lost, 1);
});

test('a value no write produced, or only a failed write, is unexpected', (t) => {
  const never = new HistoryBuilder()
    .write({ key: 's', value: 'x1', at: 10, version: v(1) })
    .read({ key: 's', at: END, value: 'garbage' })
    .build();
  t.is(checkHistory(never).counts.unexpected, 1);
  const failed = new HistoryBuilder()
    .write({ key: 's', value: 'x1', at: 10, version: v(1) })
    .write({ key: 's', value: 'x2', at: 20, outcome: 'fail' })
    .read({ key: 's', at: END, value: 'x2' })
    .build();
  t.is(checkHistory(failed).counts.unexpected, 1);
  const otherKey = new HistoryBuilder()
    .write({ key: 'a', value: 'va', at: 10, version: v(1) })
    .write({ key: 'b', value: 'vb', at: 10, version: v(2) })
    .read({ key: 'a', at: 50, value: 'vb', final: false })
    .read({ key: 'a', at: END, value: 'va', version: v(1) })
    .read({ key: 'b', at: END, value: 'vb', version: v(2) })
    .build();
  t.is(checkHistory(otherKey).counts.unexpected, 1, 'a workload read of another key\'s value is flagged too');
});

test('a value read with a different version than its acknowledgement is unexpected', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 's', value: 'x1', at: 10, version: v(1) })
    .read({ key: 's', at: END, value: 'x1', version: v(1, 'n2') })
    .build();
  t.is(checkHistory(h).counts.unexpected, 1);
});

test('an acknowledged delete that comes back is a resurrection', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 'd', cls: 'del', value: 'x1', at: 10, version: v(1) })
    .write({ key: 'd', cls: 'del', at: 20, version: v(2) })
    .read({ key: 'd', at: END, value: 'x1', version: v(1) })
    .build();
  const r = checkHistory(h);
  t.is(r.counts.resurrected, 1);
  t.is(r.counts.lost, 0);
});

test('a delete followed by a write of unknown outcome may end with that write', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 'd', value: 'x1', at: 10, version: v(1) })
    .write({ key: 'd', at: 20, version: v(2) })
    .write({ key: 'd', value: 'x3', at: 30, outcome: 'info' })
    .read({ key: 'd', at: END, value: 'x3', version: v(3) })
    .build();
  t.true(checkHistory(h).valid);
});

test('an indeterminate delete explains an absent key; without one it is lost', (t) => {
  const withInfoDel = new HistoryBuilder()
    .write({ key: 'd', value: 'x1', at: 10, version: v(1) })
    .write({ key: 'd', at: 20, outcome: 'info' })
    .read({ key: 'd', at: END, value: null })
    .build();
  t.true(checkHistory(withInfoDel).valid);
  const withFailedDel = new HistoryBuilder()
    .write({ key: 'd', value: 'x1', at: 10, version: v(1) })
    .write({ key: 'd', at: 20, outcome: 'fail' })
    .read({ key: 'd', at: END, value: null })
    .build();
  t.is(checkHistory(withFailedDel).counts.lost, 1);
});

test('TTL: certainly expired values must be gone, unexpired ones present, the boundary is either', (t) => {
  const ttl = (readAt: number, value: string | null) =>
    checkHistory(
      new HistoryBuilder()
        .write({ key: 't', cls: 'ttl', value: 'x', ttlMs: 1000, at: 1000, took: 100, version: v(1) })
        .read({ key: 't', at: readAt, took: 10, value, ...(value === null ? {} : { version: v(1) }) })
        .build(),
    );
  t.is(ttl(5000, 'x').counts['expired-present'], 1, 'present long after expiry');
  t.true(ttl(5000, null).valid);
  t.is(ttl(1500, null).counts.lost, 1, 'gone before its TTL could have passed');
  t.true(ttl(1500, 'x').valid);
  t.true(ttl(2050, 'x').valid, 'between invoke+ttl and ack+ttl: may be present');
  t.true(ttl(2050, null).valid, 'between invoke+ttl and ack+ttl: may be gone');
});

test('an indeterminate TTL write stays uncertain until the apply deadline', (t) => {
  const h = (value: string | null, applyDeadlineMs: number) =>
    checkHistory(
      new HistoryBuilder()
        .write({ key: 't', cls: 'ttl', value: 'x', ttlMs: 1000, at: 1000, outcome: 'info' })
        .read({ key: 't', at: 5000, value })
        .build(),
      { applyDeadlineMs },
    );
  t.true(h('x', 4500).valid, 'may have been applied as late as 4500, expiring at 5500');
  t.is(h('x', 3000).counts['expired-present'], 1);
  t.true(h(null, 3000).valid);
});

test('an older value back after a newer TTL write expired is a resurrection', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 's', value: 'old', at: 10, version: v(1) })
    .write({ key: 's', value: 'short', ttlMs: 100, at: 20, version: v(2) })
    .read({ key: 's', at: END, value: 'old', version: v(1) })
    .build();
  t.is(checkHistory(h).counts.resurrected, 1);
});

test('one client\'s sequential acknowledged writes must get increasing versions', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 's', value: 'x1', at: 10, version: v(9, 'n2') })
    .write({ key: 's', value: 'x2', at: 20, node: 'n3', version: v(4, 'n3') })
    .read({ key: 's', at: END, value: 'x1', version: v(9, 'n2') })
    .build();
  const r = checkHistory(h);
  t.is(r.counts.reordered, 1);
});

test('final reads that fail or are missing leave keys unverified', (t) => {
  const failed = new HistoryBuilder()
    .write({ key: 'u', cls: 'unique', value: 'x', at: 10, version: v(1) })
    .read({ key: 'u', at: END, value: null, outcome: 'info' })
    .build();
  t.is(checkHistory(failed).counts.unverified, 1);
  const missing = new HistoryBuilder().write({ key: 'u', cls: 'unique', value: 'x', at: 10, version: v(1) }).build();
  t.is(checkHistory(missing).counts.unverified, 1);
});

test('final reads through different nodes must agree', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 's', value: 'x1', at: 10, version: v(1) })
    .write({ key: 's', value: 'x2', at: 20, outcome: 'info' })
    .read({ key: 's', at: END, node: 'n1', value: 'x1', version: v(1) })
    .read({ key: 's', at: END, node: 'n2', value: 'x2', version: v(2) })
    .build();
  t.is(checkHistory(h).counts['replica-divergence'], 1);
});

test('a TTL key that expires between two final reads is not divergence; one that is missing early is', (t) => {
  const expired = new HistoryBuilder()
    .write({ key: 't', cls: 'ttl', value: 'tv', ttlMs: 1000, at: 10, version: v(1) })
    .read({ key: 't', at: 1000, node: 'n1', value: 'tv', version: v(1) })
    .read({ key: 't', at: 1100, node: 'n2', value: null })
    .build();
  const r = checkHistory(expired);
  t.deepEqual(r.violations, []);
  const early = new HistoryBuilder()
    .write({ key: 't', cls: 'ttl', value: 'tv', ttlMs: 100_000, at: 10, version: v(1) })
    .read({ key: 't', at: 1000, node: 'n1', value: 'tv', version: v(1) })
    .read({ key: 't', at: 1100, node: 'n2', value: null, consistency: 'one' })
    .build();
  t.is(checkHistory(early).counts['replica-divergence'], 1);
});

test('a stale final read at consistency one is divergence, not a lost write', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 's', value: 'x1', at: 10, version: v(1) })
    .write({ key: 's', value: 'x2', at: 20, version: v(2) })
    .read({ key: 's', at: END, node: 'n1', value: 'x1', version: v(1), consistency: 'one' })
    .read({ key: 's', at: END, node: 'n2', value: 'x2', version: v(2), consistency: 'all' })
    .build();
  const r = checkHistory(h);
  t.is(r.counts.lost, 0);
  t.is(r.counts['replica-divergence'], 1);
  const absent = new HistoryBuilder()
    .write({ key: 's', value: 'x1', at: 10, version: v(1) })
    .read({ key: 's', at: END, node: 'n1', value: null, consistency: 'one' })
    .read({ key: 's', at: END, node: 'n2', value: null, consistency: 'all' })
    .build();
  t.is(checkHistory(absent).counts.lost, 1, 'the authoritative read still decides');
});

test('workload reads of older values are counted as stale, not flagged', (t) => {
  const h = new HistoryBuilder()
    .write({ key: 's', value: 'x1', at: 10, version: v(1) })
    .write({ key: 's', value: 'x2', at: 20, version: v(2) })
    .read({ key: 's', at: 40, value: 'x1', version: v(1), final: false })
    .read({ key: 's', at: 22, value: 'x1', version: v(1), final: false })
    .read({ key: 's', at: END, value: 'x2', version: v(2) })
    .build();
  const r = checkHistory(h);
  t.true(r.valid);
  t.is(r.staleReads, 1, 'the read overlapping the write is not stale');
});

test('availability is computed per fault type and checked against the goal for single kills', (t) => {
  const b = new HistoryBuilder().fault('kill-one', 1000, 2000).fault('pause-one', 3000, 4000);
  for (let i = 0; i < 100; i++) {
    const at = 1000 + i * 10;
    b.write({ key: `u${i}`, cls: 'unique', value: `v${i}`, at, outcome: i < 3 ? 'info' : 'ok', version: v(i) });
    b.read({ key: `u${i}`, at: END, value: i < 3 ? null : `v${i}`, version: v(i) });
  }
  for (let i = 0; i < 10; i++) b.write({ key: `p${i}`, cls: 'unique', value: `p${i}`, at: 3000 + i, outcome: 'info' });
  b.write({ key: 'q', cls: 'unique', value: 'q', at: 5000, version: v(500) }).read({ key: 'q', at: END, value: 'q', version: v(500) });
  const r = checkHistory(b.build());
  const row = (f: string) => r.availability.find((a) => a.fault === f);
  t.deepEqual(row('kill-one'), { fault: 'kill-one', ops: 100, ok: 97, share: 0.97 });
  t.deepEqual(row('pause-one'), { fault: 'pause-one', ops: 10, ok: 0, share: 0 });
  t.deepEqual(row('none'), { fault: 'none', ops: 1, ok: 1, share: 1 });
  t.is(r.counts.availability, 1, 'kill-one below 99%');
  t.true(checkHistory(b.build(), { availabilityMin: 0.95 }).valid);
});

test('an operation in flight when a fault starts counts for that fault', (t) => {
  const h = new HistoryBuilder()
    .fault('wal-truncate', 1000, 2000, ['n2'])
    .write({ key: 'a', cls: 'unique', value: 'a', at: 900, took: 300, outcome: 'info' })
    .write({ key: 'b', cls: 'unique', value: 'b', at: 500, took: 100, version: v(1) })
    .read({ key: 'b', at: END, value: 'b', version: v(1) })
    .build();
  const r = checkHistory(h, { availabilityOpsMin: 1 });
  t.deepEqual(r.availability.map((a) => [a.fault, a.ops, a.ok]), [['none', 1, 1], ['wal-truncate', 1, 0]]);
  t.is(r.counts.availability, 1, 'a single-node kill with a torn WAL has the same goal');
});

test('latency percentiles use nearest rank over acknowledged operations', (t) => {
  t.is(percentile([], 99), 0);
  t.is(percentile([5], 99), 5);
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  t.is(percentile(values, 99), 99);
  t.is(percentile(values, 50), 50);
  const b = new HistoryBuilder();
  for (let i = 0; i < 100; i++) b.write({ key: `u${i}`, cls: 'unique', value: `v${i}`, at: i * 100, took: i + 1, version: v(i) }).read({ key: `u${i}`, at: END, value: `v${i}`, version: v(i) });
  b.write({ key: 'slow', cls: 'unique', value: 's', at: 50_000, took: 5000, outcome: 'info' });
  const r = checkHistory(b.build());
  t.is(r.latency.all.p99Ms, 99);
  t.is(r.latency.all.maxMs, 100, 'the timed-out op is not in the latency figures');
  t.is(r.latency.byOp.put.count, 100);
});

test('convergence beyond the goals or not at all is a violation', (t) => {
  const h = new HistoryBuilder().build();
  t.true(checkHistory(h, { convergence: { converged: true, membershipMs: 2000, hintsMs: 100, replicasMs: 5000 } }).valid);
  t.is(checkHistory(h, { convergence: { converged: true, membershipMs: 12_000, hintsMs: 0, replicasMs: 5000 } }).counts.unconverged, 1);
  t.is(checkHistory(h, { convergence: { converged: true, membershipMs: 100, hintsMs: 0, replicasMs: 61_000 } }).counts.unconverged, 1);
  t.is(checkHistory(h, { convergence: { converged: false, membershipMs: null, hintsMs: null, replicasMs: null } }).counts.unconverged, 1);
});

test('replica copies must match on the preference list and be gone elsewhere', (t) => {
  const h = new HistoryBuilder().build();
  const e = (ts: number, tombstone = false) => ({ ts, node: 'n1', tombstone });
  const owners = { k: ['n1', 'n2', 'n3'] };
  const same = checkHistory(h, { replicas: { owners, copies: [{ key: 'k', node: 'n1', entry: e(1) }, { key: 'k', node: 'n2', entry: e(1) }, { key: 'k', node: 'n3', entry: e(1) }, { key: 'k', node: 'n4', entry: null }] } });
  t.true(same.valid);
  const differ = checkHistory(h, { replicas: { owners, copies: [{ key: 'k', node: 'n1', entry: e(1) }, { key: 'k', node: 'n2', entry: e(2, true) }, { key: 'k', node: 'n3', entry: e(1) }] } });
  t.is(differ.counts['replica-divergence'], 1);
  const stray = checkHistory(h, { replicas: { owners, copies: [{ key: 'k', node: 'n1', entry: e(1) }, { key: 'k', node: 'n2', entry: e(1) }, { key: 'k', node: 'n3', entry: e(1) }, { key: 'k', node: 'n5', entry: e(1) }] } });
  t.is(stray.counts.misplaced, 1);
  const unchecked = checkHistory(h, { replicas: { owners, placementChecked: false, copies: [{ key: 'k', node: 'n1', entry: e(1) }, { key: 'k', node: 'n2', entry: e(1) }, { key: 'k', node: 'n3', entry: e(1) }, { key: 'k', node: 'n5', entry: e(1) }] } });
  t.true(unchecked.valid, 'without clean-up support strays are counted only');
  t.is(unchecked.misplacedKeys, 1);
});

test('a node that exits unexpectedly is a violation', (t) => {
  const events: HistoryEvent[] = [{ kind: 'mark', atMs: 5, name: 'crash', detail: { node: 'n2', code: 1 } }];
  t.is(checkHistory(events).counts.crashed, 1);
  t.true(checkHistory([{ kind: 'mark', atMs: 5, name: 'heal' }]).valid);
});

test('an op without a completion is indeterminate; a stray completion is a harness bug', (t) => {
  const events: HistoryEvent[] = [
    { kind: 'op', type: 'invoke', id: 1, atMs: 10, client: 'c', node: 'n1', op: 'put', key: 'k', cls: 'seq', phase: 'workload', value: 'x' },
    { kind: 'mark', atMs: 99, name: 'end' },
  ];
  const [op] = pairOps(events);
  t.is(op.outcome, 'info');
  t.is(op.completeMs, 99);
  t.throws(() => pairOps([{ kind: 'op', type: 'ok', id: 7, atMs: 1, client: 'c', node: 'n1', op: 'get', key: 'k', cls: 'seq', phase: 'workload' }]));
});

test('the history file round-trips through JSON lines to the same verdict', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-chaos-'));
  try {
    const file = join(dir, 'history.jsonl');
    const events = new HistoryBuilder()
      .write({ key: 's', value: 'x1', at: 10, version: v(1) })
      .write({ key: 's', value: 'x2', at: 20, version: v(2) })
      .read({ key: 's', at: END, value: 'x1', version: v(1) })
      .fault('partition-split', 5, 15, ['n1', 'n2'])
      .build();
    const writer = new HistoryWriter({ file, flushLines: 3 });
    for (const e of events) writer.append(e);
    writer.close();
    const back = readHistory(file);
    t.deepEqual(back, events);
    t.deepEqual(checkHistory(back), checkHistory(events));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A model of one register under last-writer-wins: writes with outcomes; an acknowledged write is
 * applied, a failed one never, an indeterminate one maybe, and maybe late (a higher version). The
 * final state is the applied write with the highest version. The checker must accept every such
 * history, and must flag it when the final read is replaced by an older acknowledged value.
 */
const writeArb = fc.record({
  del: fc.boolean(),
  outcome: fc.constantFrom<Outcome>('ok', 'ok', 'ok', 'fail', 'info'),
  applied: fc.boolean(),
  late: fc.boolean(),
});

function modelHistory(writes: Array<{ del: boolean; outcome: Outcome; applied: boolean; late: boolean }>) {
  const b = new HistoryBuilder();
  let winner: { value: string | null; ts: number } = { value: null, ts: -1 };
  const okPuts: Array<{ value: string; ts: number }> = [];
  let newestOkTs = -1;
  writes.forEach((w, i) => {
    const ts = w.outcome === 'info' && w.late ? 1000 + i : i;
    const value = w.del ? undefined : `x${i}`;
    const applied = w.outcome === 'ok' || (w.outcome === 'info' && w.applied);
    b.write({ key: 'k', at: 10 + i * 10, outcome: w.outcome, ...(value === undefined ? {} : { value }), ...(w.outcome === 'ok' ? { version: v(ts) } : {}) });
    if (applied && ts > winner.ts) winner = { value: value ?? null, ts };
    if (w.outcome === 'ok' && value !== undefined) okPuts.push({ value, ts });
    if (w.outcome === 'ok') newestOkTs = Math.max(newestOkTs, ts);
  });
  return { b, winner, okPuts, newestOkTs };
}

test('property: every history a correct last-writer-wins register can produce is accepted', (t) => {
  fc.assert(
    fc.property(fc.array(writeArb, { minLength: 1, maxLength: 12 }), (writes) => {
      const { b, winner } = modelHistory(writes);
      b.read({ key: 'k', at: END, value: winner.value, ...(winner.value === null ? {} : { version: v(winner.ts) }) });
      const r = checkHistory(b.build());
      t.deepEqual(r.violations, []);
    }),
  );
});

test('property: an acknowledged value older than the newest acknowledged write is always flagged', (t) => {
  fc.assert(
    fc.property(fc.array(writeArb, { minLength: 2, maxLength: 12 }), (writes) => {
      const { b, okPuts, newestOkTs } = modelHistory(writes);
      // Older than the newest acknowledged write (an indeterminate write may or may not have won).
      const older = okPuts.filter((p) => p.ts < newestOkTs);
      fc.pre(older.length > 0);
      const stale = older[0];
      b.read({ key: 'k', at: END, value: stale.value, version: v(stale.ts) });
      const r = checkHistory(b.build());
      t.false(r.valid);
      t.true(r.counts.lost + r.counts.resurrected >= 1);
    }),
  );
});

test('property: a value never written is always unexpected', (t) => {
  fc.assert(
    fc.property(fc.array(writeArb, { maxLength: 8 }), fc.string({ minLength: 1, maxLength: 8 }), (writes, junk) => {
      const { b } = modelHistory(writes);
      b.read({ key: 'k', at: END, value: `junk:${junk}` });
      t.true(checkHistory(b.build()).counts.unexpected >= 1);
    }),
  );
});
