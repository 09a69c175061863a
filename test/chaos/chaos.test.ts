/**
 * The short CI version of the chaos run: two seeds of about 45 s each against a real 5-node cluster
 * of `shoal agent` processes (the checker's own tests are in checker.test.ts and run always). It
 * builds dist/ when it is missing or stale. It skips, saying why, only while the cluster layer or the
 * agent does not exist yet in this checkout; once they do, any violation fails the test.
 */
import test from 'ava';
import { clusterImplemented } from './lib/cluster.js';
import { runChaos } from './lib/runner.js';

const SEEDS = [1, 2];
const DURATION_MS = 45_000;
/**
 * Availability during single-node kills must reach 99 % in `npm run chaos`; CI asks 95 %. It is a
 * timing figure (an operation in flight when the node dies, a client that has not yet moved on), and
 * CI shares two cores with other jobs. The safety checks are exactly as strict as in `npm run chaos`.
 */
const CI_AVAILABILITY_MIN = 0.95;
/**
 * Likewise the convergence goals (membership ≤ 10 s, replicas ≤ 60 s) are checked by `npm run chaos`;
 * here the cluster must converge within the budget (75 s), and the times are printed.
 */
const CI_CONVERGE_MS_MAX = 75_000;

const ready = clusterImplemented();
const run = ready.ok ? test.serial : test.serial.skip;
if (!ready.ok) console.log(`chaos.test: the cluster run is skipped: ${ready.reason}`);

for (const seed of SEEDS) {
  run(`chaos seed ${seed}: nothing acknowledged is lost, replicas converge`, async (t) => {
    // About 70 s on a quiet machine; the deadline stops a run (cleanly) long before ava's timeout.
    t.timeout(330_000);
    const command = `npm run chaos -- --seed ${seed} --duration ${DURATION_MS / 1000}s --nodes 5`;
    const { result, summary } = await runChaos({
      seed, durationMs: DURATION_MS, nodes: 5, command, availabilityMin: CI_AVAILABILITY_MIN, deadlineMs: 300_000,
      membershipConvergeMsMax: CI_CONVERGE_MS_MAX, replicasConvergeMsMax: CI_CONVERGE_MS_MAX,
      // The all-nodes kill restarts every agent at once, the slowest step on a busy machine: one seed.
      killAll: seed === SEEDS[0],
      log: (line) => t.log(line),
    });
    t.log(summary);
    t.deepEqual(result.violations, [], `violations with seed ${seed}; replay: ${command}`);
    t.true(result.valid);
    t.true(result.ops.ok > 100, 'the workload made progress');
  });
}
