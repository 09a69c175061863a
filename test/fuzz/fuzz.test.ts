/**
 * A small fuzz run of every target on each `npm test` (the full run is `npm run fuzz`). Seeded from
 * FUZZ_SEED or at random; a failure names the seed and case so `npm run fuzz` can replay it.
 */
import test from 'ava';
import { describeFailures, runTarget } from './lib/harness.js';
import { TARGETS } from './targets/index.js';

const runSeed = process.env.FUZZ_SEED === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(process.env.FUZZ_SEED);

/** Cases per target: enough to hit every mutation kind many times, few enough for a shared 2-core machine. */
const CASES: Record<string, number> = { 'rpc-server': 400, 'wal-segment': 400, snapshot: 300, config: 300 };
const CASES_DEFAULT = 1000;

for (const target of TARGETS) {
  test(`fuzz ${target.name}: ${target.feeds}`, async (t) => {
    const cases = CASES[target.name] ?? CASES_DEFAULT;
    const result = await runTarget(target, { cases, runSeed, timeBudgetMs: 60_000, warmupCases: 50, heapGrowthBytesMax: 48 * 1024 * 1024 });
    if (result.skipped !== null) {
      t.log(`skipped: ${result.skipped}`);
      t.pass();
      return;
    }
    for (const line of describeFailures(result)) t.log(line);
    for (const note of result.notes) t.log(`note: ${note}`);
    t.is(result.crashes, 0, `crashes (run seed ${runSeed})`);
    t.is(result.unexpected, 0, `unexpected errors (run seed ${runSeed})`);
    t.is(result.cases, cases, 'every case ran within the time budget');
    t.true(result.accepted > 0 && result.rejected > 0, 'inputs both valid and invalid were generated');
  });
}
