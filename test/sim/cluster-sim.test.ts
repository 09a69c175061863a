/**
 * The whole-cluster simulator in `npm test`: a few hundred seeds of the real agent code under a seeded
 * storm of faults and operator actions, each judged by the checker (src/sim/checker.ts), and the proof
 * that a seed replays byte for byte. The long exploration is `npm run sim:cluster` (docs/SIMULATION.md).
 * A failure prints the command that replays the seed and the last events of every node.
 */
import test from 'ava';
import { describeFault } from '../../src/sim/faults.js';
import { runSeed, type SeedResult } from '../../src/sim/world.js';

/** Seeds per test (one ava test each, so the inactivity timeout sees progress). */
const SEEDS_PER_TEST = 10;
const FIRST_SEED = Number(process.env.SHOAL_SIM_FIRST_SEED ?? 1);
const SEEDS = Number(process.env.SHOAL_SIM_SEEDS ?? 300);
/** A shorter storm than the CLI's default 60 s: more seeds in the same time. */
const DURATION_MS = 20_000;

function options(seed: number) {
  const nodes = 3 + (seed % 4);
  return { seed, nodes, nodesMax: Math.min(9, nodes + 2), durationMs: DURATION_MS };
}

function report(r: SeedResult): string {
  const lines = [
    `seed ${r.seed} failed; replay: npm run sim:cluster -- --seed ${r.seed} --duration ${DURATION_MS / 1000}`,
    ...r.violations.slice(0, 10).map((v) => `  ${v.check}: ${v.detail}`),
    '  faults:',
    ...r.kept.map((i) => `    [${i}] ${describeFault(r.plan[i])}`),
    '  last events per node:',
    ...Object.entries(r.lastLines).flatMap(([id, lines]) => [`   ${id}:`, ...lines.slice(-8).map((l) => `      ${l}`)]),
  ];
  return lines.join('\n');
}

test.serial('a seed replays byte for byte: the same trace twice, another seed another trace', async (t) => {
  const a = await runSeed(options(7));
  const b = await runSeed(options(7));
  const c = await runSeed(options(8));
  t.true(a.traceLines > 100, `a trace of ${a.traceLines} lines`);
  t.is(a.traceHash, b.traceHash);
  t.is(a.events, b.events);
  t.deepEqual(a.traceTail, b.traceTail);
  t.not(a.traceHash, c.traceHash);
});

for (let from = FIRST_SEED; from < FIRST_SEED + SEEDS; from += SEEDS_PER_TEST) {
  const to = Math.min(FIRST_SEED + SEEDS, from + SEEDS_PER_TEST) - 1;
  test.serial(`seeds ${from}–${to}: no acknowledged write lost, no resurrection, replicas equal, one cluster`, async (t) => {
    let simulatedMs = 0;
    let wallMs = 0;
    let acked = 0;
    let faults = 0;
    for (let seed = from; seed <= to; seed++) {
      const r = await runSeed(options(seed));
      simulatedMs += r.simulatedMs;
      wallMs += r.wallMs;
      acked += r.stats.acked;
      faults += r.stats.faultsRun;
      t.true(r.ok, report(r));
    }
    // The storm did something: writes were acknowledged and faults happened.
    t.true(acked > 100 * (to - from + 1), `${acked} acknowledged writes`);
    t.true(faults >= to - from, `${faults} faults`);
    t.log(`${to - from + 1} seeds: ${(simulatedMs / 1000).toFixed(0)} simulated s in ${(wallMs / 1000).toFixed(1)} s (${(simulatedMs / wallMs).toFixed(0)}×), ${acked} writes acknowledged, ${faults} faults`);
  });
}
