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
 * copies stayed for good. Now a stray copy that arrives arms a clean-up itself.
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
    const r = await runSeed({ seed, nodes: 5, durationMs: 60_000, settleMaxMs: 120_000, faults: STRAY_AFTER_REJOIN, logLinesPerNode: 5_000 });
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
