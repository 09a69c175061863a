/**
 * Bugs the whole-cluster simulator found, pinned as hand-written fault plans run by the real agent
 * code on simulated time (src/sim/world.ts). A seed's own plan stops reproducing its bug as soon as
 * the code or the world changes its trace, so each bug is kept here as the few faults that cause it.
 *
 * Operator removal while a member is cut off (seed 79): `shoal remove` of a dead member through n1
 * told only the members its internal.remove RPC reached; n4, partitioned away at the time, kept the
 * dead member in its ring for deadOwnerGraceMs (10 min), so after the heal the cluster had two rings.
 * Now the removal is also a force-leave gossiped by membership, which reaches n4 once the cut heals.
 *
 * Stray copies on a node whose ring never changes again (seed 6, pinned from seed 14's plan cut down
 * to two faults): n5 crashes; while it is down the seed n1 crashes too; n5 comes back before n1 and
 * rejoins with a ring of the four members it learns of (n1 is not among them), so writes it
 * coordinates land on nodes that do not own them. Those nodes' rings do not change when n1 returns
 * (n1 was dead within deadOwnerGraceMs all along), and clean-up ran only after ring changes, so the
 * copies stayed for good. Now a stray copy that arrives arms a clean-up itself. Since push-pull teaches
 * dead members to a node that never knew them (below), n5 rejoins with n1 in its ring and this plan
 * makes no stray copy any more: the test re-creates the strays with the 'dead-not-synced' mutation
 * (the old membership behaviour) to keep the clean-up covered, and checks that without it none arrive.
 *
 * A node that joins while members are down counts only the live ones (seed 100): n1 crashes and n2
 * loses power; n4 joins through n3 and, since push-pull did not teach dead members to a node that never
 * knew them, its view held n3 and n4 only: N = 2, so writes at `all` were acknowledged with 2 copies.
 * Now dead members travel with the age of their death (`d`) and n4 counts n1 and n2 (dead) too: N = 3.
 */
import test from 'ava';
import type { Fault } from '../../src/sim/faults.js';
import { runSeed } from '../../src/sim/world.js';

const REMOVE_WHILE_CUT: Fault[] = [
  // n5 crashes; 15 s later (dead everywhere by then) the operator removes it through the first running node, n1.
  { atMs: 5_000, kind: 'remove', node: 4 },
  // n4 is cut off from everyone from before the removal until well after it.
  { atMs: 6_000, kind: 'partition', side: [3], oneWay: false, durationMs: 40_000 },
];

for (const seed of [1, 2]) {
  test.serial(`seed ${seed}: a member cut off when a dead member is removed drops it from its ring after the heal (one ring)`, async (t) => {
    const r = await runSeed({
      seed,
      nodes: 5,
      durationMs: 60_000,
      // Far below deadOwnerGraceMs (10 min): a ring that keeps the removed member does not converge.
      settleMaxMs: 120_000,
      faults: REMOVE_WHILE_CUT,
      logLinesPerNode: 5_000,
    });
    if (!r.ok) t.log(`last events:\n${r.traceTail.join('\n')}`);
    t.deepEqual(r.violations, []);
    t.true(r.ok);
    t.deepEqual({ run: r.stats.faultsRun, skipped: r.stats.faultsSkipped }, { run: 2, skipped: 0 }, 'the removal and the partition both happened');
    t.true(r.stats.acked > 100, 'the workload ran');
    // The scenario is the one the plan means: n1..n3 removed n5 (n1 at the operator's request, n2 and
    // n3 on its RPC); n4 never got the RPC and learned of the removal from membership.
    const said = (id: string, text: string): boolean => (r.lastLines[id] ?? []).some((l) => l.includes(text));
    for (const id of ['n1', 'n2', 'n3']) t.true(said(id, 'member removed by operator member=n5'), `${id} removed n5`);
    t.false(said('n4', 'member removed by operator'), 'the operator removal never reached n4 by RPC');
    t.true(said('n4', '[membership] member left member=n5'), 'n4 heard from membership that n5 left');
    t.true(r.settledAfterMs !== null && r.settledAfterMs <= 30_000, `one ring ${r.settledAfterMs} ms after the heal`);
  });
}

const STRAY_AFTER_REJOIN: Fault[] = [
  { atMs: 36_135, kind: 'kill', node: 4, downMs: 19_464 },
  { atMs: 46_206, kind: 'kill', node: 0, downMs: 14_963 },
];

for (const seed of [1, 14]) {
  test.serial(`seed ${seed}: copies a rejoined node wrote to non-owners are cleaned up though their rings never change again`, async (t) => {
    // Both mutations: the rejoining node neither learns the dead seed from its peers nor holds it dead
    // from its own data dir (holdKnownDown), so it writes copies to non-owners, as before either fix.
    const r = await runSeed({ seed, nodes: 5, durationMs: 60_000, settleMaxMs: 120_000, faults: STRAY_AFTER_REJOIN, logLinesPerNode: 5_000, mutations: ['dead-not-synced', 'seed-forgets-known'] });
    if (!r.ok) t.log(`last events:\n${r.traceTail.join('\n')}`);
    t.deepEqual(r.violations, []);
    t.true(r.ok);
    t.deepEqual({ run: r.stats.faultsRun, skipped: r.stats.faultsSkipped }, { run: 2, skipped: 0 }, 'both crashes happened');
    // The scenario is the one the plan means: some node received a copy of a key it does not own.
    const strays = Object.values(r.lastLines).flat().filter((l) => l.includes('a copy of a key this node does not own arrived'));
    t.true(strays.length > 0, 'stray copies arrived');
    // cleanupDelayMs (30 s) after the last stray arrived, with the checker's 5 s period.
    t.true(r.settledAfterMs !== null && r.settledAfterMs <= 60_000, `clean after ${r.settledAfterMs} ms`);
  });
}

for (const seed of [1, 14]) {
  test.serial(`seed ${seed}: a node rejoining while the seed is down learns the seed dead and writes to no non-owner`, async (t) => {
    const r = await runSeed({ seed, nodes: 5, durationMs: 60_000, settleMaxMs: 120_000, faults: STRAY_AFTER_REJOIN, logLinesPerNode: 5_000 });
    if (!r.ok) t.log(`last events:\n${r.traceTail.join('\n')}`);
    t.deepEqual(r.violations, []);
    t.deepEqual({ run: r.stats.faultsRun, skipped: r.stats.faultsSkipped }, { run: 2, skipped: 0 }, 'both crashes happened');
    const strays = Object.values(r.lastLines).flat().filter((l) => l.includes('a copy of a key this node does not own arrived'));
    t.deepEqual(strays, [], 'no stray copies');
    // n5 holds n1 dead when it rejoins: from its own data dir (holdKnownDown), or learned from a peer.
    const n5 = r.lastLines.n5 ?? [];
    t.true(n5.some((l) => l.includes('member learned dead from a peer member=n1') || l.includes('holding the known members down until they answer')),
      'n5 held n1 dead when it rejoined');
  });
}

const JOIN_WHILE_TWO_DOWN: Fault[] = [
  // n2's power fails inside its next disk activity (armed first, so that n1 can still be killed).
  { atMs: 5_000, kind: 'power-io', node: 1, under: '', ops: 20, downMs: 30_000 },
  { atMs: 5_000, kind: 'kill', node: 0, downMs: 30_000 },
  // Dead everywhere by then; n4 joins and coordinates writes, some at `all`.
  { atMs: 20_000, kind: 'join' },
];

for (const seed of [1, 2]) {
  test.serial(`seed ${seed}: a node that joins while two of three members are down counts them: N = 3, 'all' means 3 copies`, async (t) => {
    const run = (mutations: ['dead-not-synced'] | []) =>
      runSeed({ seed, nodes: 3, durationMs: 45_000, settleMaxMs: 120_000, faults: JOIN_WHILE_TWO_DOWN, logLinesPerNode: 5_000, mutations });
    const r = await run([]);
    if (!r.ok) t.log(`last events:\n${r.traceTail.join('\n')}`);
    t.deepEqual(r.violations, []);
    t.true(r.ok);
    t.deepEqual({ run: r.stats.faultsRun, skipped: r.stats.faultsSkipped }, { run: 3, skipped: 0 }, 'both crashes and the join happened');
    const said = (id: string, text: string): boolean => (r.lastLines[id] ?? []).some((l) => l.includes(text));
    t.true(said('n4', 'member learned dead from a peer member=n1'), 'n4 learned n1 dead');
    t.true(said('n4', 'member learned dead from a peer member=n2'), 'n4 learned n2 dead');
    // The plan does reproduce the bug with the old membership behaviour.
    const old = await run(['dead-not-synced']);
    t.true(old.violations.some((v) => v.check === 'ack-copies' && v.detail.includes('N=2')), 'the old behaviour acknowledges all with 2 copies');
  });
}

/**
 * Found by the simulator (seeds 141, 426, 444, 669, 683, 992 of 1000): n2 and n4 are cut off from the
 * rest; n4 is wiped and restarts knowing nobody, n2 is killed and restarts knowing everyone. n2 joins
 * through n4, the only node it reaches, and before the fix each counted a cluster of two: N = 2, so a
 * write at `all` was acknowledged with 2 copies. Now n2 holds the members its data dir knows as dead
 * from the start (holdKnownDown) and n4 learns them from n2's sync: both count 5, N = 3.
 */
const WIPED_MEETS_RESTARTED: Fault[] = [
  { atMs: 5_000, kind: 'partition', side: [1, 3], oneWay: false, durationMs: 40_000 },
  { atMs: 6_000, kind: 'wipe', node: 3, downMs: 4_000 },
  { atMs: 6_500, kind: 'kill', node: 1, downMs: 5_000 },
];

for (const seed of [1, 2]) {
  test.serial(`seed ${seed}: a wiped node that meets only a restarted one inside a partition counts the members the restarted one knows`, async (t) => {
    const run = (mutations: ['known-not-held'] | []) =>
      runSeed({ seed, nodes: 5, durationMs: 45_000, settleMaxMs: 120_000, faults: WIPED_MEETS_RESTARTED, logLinesPerNode: 5_000, mutations });
    const r = await run([]);
    if (!r.ok) t.log(`last events:\n${r.traceTail.join('\n')}`);
    t.deepEqual(r.violations, []);
    t.deepEqual({ run: r.stats.faultsRun, skipped: r.stats.faultsSkipped }, { run: 3, skipped: 0 }, 'the partition, the wipe and the kill happened');
    t.true((r.lastLines.n2 ?? []).some((l) => l.includes('holding the known members down until they answer members=4')), 'n2 held the 4 others down at its restart');
    const without = await run(['known-not-held']);
    t.true(without.violations.some((v) => v.check === 'ack-copies'), 'without the fix a write at all is acknowledged with 2 copies');
  });
}
