import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory, replicaFindings } from './lib/checker.js';
import { findStat } from './lib/convergence.js';
import { truncateWalTail, walSegments } from './lib/nemesis.js';
import { summaryText, throughputBuckets, timelineSvg } from './lib/report.js';
import { pairOps } from './lib/history.js';
import { prng } from './lib/schedule.js';
import { mayTryNextNode, outcomeOf } from './lib/workload.js';
import { ShoalError } from '../../src/errors.js';
import { HistoryBuilder, v } from './lib/synthetic.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-chaos-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('WAL truncation cuts the tail of the newest non-empty segment only', (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'store'));
  writeFileSync(join(dir, 'store', 'wal-0000000000000001.log'), Buffer.alloc(1000, 1));
  writeFileSync(join(dir, 'store', 'wal-0000000000000050.log'), Buffer.alloc(300, 2));
  writeFileSync(join(dir, 'store', 'wal-0000000000000090.log'), Buffer.alloc(0));
  writeFileSync(join(dir, 'store', 'snap-0000000000000001.snap'), Buffer.alloc(10));
  t.deepEqual(walSegments(dir).map((p) => p.split('/').pop()), ['wal-0000000000000001.log', 'wal-0000000000000050.log', 'wal-0000000000000090.log']);
  const detail = truncateWalTail(dir, prng(3), 64);
  const size = statSync(join(dir, 'store', 'wal-0000000000000050.log')).size;
  t.true(size < 300 && size >= 300 - 64, detail);
  t.is(statSync(join(dir, 'store', 'wal-0000000000000001.log')).size, 1000);
  t.regex(truncateWalTail(join(dir, 'nothing'), prng(1)), /no WAL segment/);
});

test('stats lookup finds nested fields by section and name', (t) => {
  const stats = { node: 'n1', membership: { members: 5, checksum: 'abc' }, ring: { checksum: 'r1' }, cluster: { pendingHints: 3 } };
  t.is(findStat(stats, 'member', 'checksum'), 'abc');
  t.is(findStat(stats, 'ring', 'checksum'), 'r1');
  t.is(findStat(stats, '', 'pendingHints'), 3);
  t.is(findStat(stats, 'storage', 'checksum'), undefined);
});

test('replica problems: owners that differ, live copies on non-owners', (t) => {
  const e = (ts: number, tombstone = false) => ({ ts, node: 'n1', tombstone });
  const owners = { a: ['n1', 'n2'], b: ['n2', 'n3'] };
  const findings = replicaFindings({ owners, copies: [
    { key: 'a', node: 'n1', entry: e(1) }, { key: 'a', node: 'n2', entry: e(1) }, { key: 'a', node: 'n3', entry: e(1, true) },
    { key: 'b', node: 'n2', entry: e(2) }, { key: 'b', node: 'n3', entry: null }, { key: 'b', node: 'n1', entry: e(2) },
  ] });
  t.deepEqual(findings.divergent.map((f) => f.key), ['b']);
  t.deepEqual(findings.misplaced.map((f) => f.key), ['b'], 'a tombstone on a non-owner is not a live copy');
});

test('only validation errors make a write a definite failure', (t) => {
  t.is(outcomeOf('put', new ShoalError('BAD_REQUEST', 'x')), 'fail');
  t.is(outcomeOf('put', new ShoalError('TIMEOUT', 'x')), 'info');
  t.is(outcomeOf('del', new ShoalError('UNAVAILABLE', 'x')), 'info');
  t.is(outcomeOf('put', new Error('socket hang up')), 'info');
  t.is(outcomeOf('get', new ShoalError('TIMEOUT', 'x')), 'fail');
  const refused = new ShoalError('UNAVAILABLE', 'no node reachable (tried a:1): a:1: cannot connect: connect ECONNREFUSED');
  const lost = new ShoalError('UNAVAILABLE', 'no node reachable (tried a:1): a:1: connection lost: read ECONNRESET');
  t.true(mayTryNextNode('put', refused));
  t.true(mayTryNextNode('del', new ShoalError('UNAVAILABLE', 'no node reachable (tried a:1): a:1: connection closed')));
  t.false(mayTryNextNode('put', lost), 'a write that may have been delivered is not sent again');
  t.true(mayTryNextNode('put', new ShoalError('UNAVAILABLE', 'no node reachable (tried a:1): node n1 is starting, not serving yet; try another node')));
  t.true(mayTryNextNode('del', new ShoalError('UNAVAILABLE', 'no node reachable (tried a:1): the node is shutting down')));
  t.true(mayTryNextNode('get', lost), 'a read may always go elsewhere');
  t.false(mayTryNextNode('get', new ShoalError('UNAVAILABLE', 'only 1 of 3 replicas answered')));
});

test('the report shows the verdict, the table, the replay command and a timeline with the faults', (t) => {
  const events = new HistoryBuilder()
    .fault('kill-one', 1000, 6000, ['n2'])
    .write({ key: 'u1', cls: 'unique', value: 'a', at: 0, version: v(1) })
    .write({ key: 'u2', cls: 'unique', value: 'b', at: 1500, outcome: 'info' })
    .write({ key: 'u3', cls: 'unique', value: 'c', at: 2500, version: v(3) })
    .read({ key: 'u1', at: 9000, value: null })
    .read({ key: 'u3', at: 9000, value: 'c', version: v(3) })
    .build();
  const result = checkHistory(events);
  const info = { seed: 42, durationMs: 60_000, nodes: 5, command: 'npm run chaos -- --seed 42', runDir: '/tmp/x', skipped: ['partitions: no nft'], notes: [] };
  const text = summaryText(result, info);
  t.regex(text, /FAIL/);
  t.regex(text, /lost acknowledged writes\s+1/);
  t.regex(text, /replay: npm run chaos -- --seed 42/);
  t.regex(text, /kill-one\s+2\s+1\s+50\.00%/);
  t.regex(text, /skipped: partitions/);
  const svg = timelineSvg(events, result, 'seed 42');
  t.regex(svg, /^<svg/);
  t.regex(svg, /kill-one n2/);
  t.is((svg.match(/<polyline/g) ?? []).length, 2);
  for (const m of svg.matchAll(/<rect x="([\d.]+)" y="40" width="([\d.]+)"/g)) {
    t.true(Number(m[1]) + Number(m[2]) <= 1000, 'fault windows stay inside the picture');
  }
  const buckets = throughputBuckets(pairOps(events), 0);
  t.deepEqual(buckets, [{ ok: 1, errors: 0 }, { ok: 0, errors: 1 }, { ok: 1, errors: 0 }]);
  t.notRegex(summaryText(checkHistory(new HistoryBuilder().build()), info), /replay:/);
});
