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

const ready = clusterImplemented();
const run = ready.ok ? test.serial : test.serial.skip;
if (!ready.ok) console.log(`chaos.test: the cluster run is skipped: ${ready.reason}`);

for (const seed of SEEDS) {
  run(`chaos seed ${seed}: nothing acknowledged is lost, replicas converge`, async (t) => {
    t.timeout(180_000);
    const command = `npm run chaos -- --seed ${seed} --duration ${DURATION_MS / 1000}s --nodes 5`;
    const { result, summary } = await runChaos({
      seed, durationMs: DURATION_MS, nodes: 5, command,
      log: (line) => t.log(line),
    });
    t.log(summary);
    t.deepEqual(result.violations, [], `violations with seed ${seed}; replay: ${command}`);
    t.true(result.valid);
    t.true(result.ops.ok > 100, 'the workload made progress');
  });
}
