/**
 * Shrinking a failing seed: the same seed replayed with fewer of its plan's faults, keeping a removal
 * whenever the run still fails the same check. Greedy one-at-a-time removal (then again, until a pass
 * removes nothing), bounded in runs.
 */
import type { Violation } from './checker.js';
import { runSeed, type SeedResult, type WorldOptions } from './world.js';

export interface ShrinkResult {
  kept: number[];
  runs: number;
  last: SeedResult;
}

function sameFailure(a: Violation[], checks: Set<string>): boolean {
  return a.some((v) => checks.has(v.check));
}

export async function shrinkSeed(
  options: Partial<WorldOptions> & { seed: number },
  failing: SeedResult,
  runsMax = 60,
  progress: (text: string) => void = () => undefined,
): Promise<ShrinkResult> {
  const checks = new Set(failing.violations.map((v) => v.check));
  let kept = [...failing.kept];
  let last = failing;
  let runs = 0;
  let changed = true;
  while (changed && runs < runsMax) {
    changed = false;
    for (let i = kept.length - 1; i >= 0 && runs < runsMax; i--) {
      const candidate = kept.filter((_, j) => j !== i);
      runs++;
      const result = await runSeed({ ...options, faults: failing.plan, keep: candidate });
      if (!result.ok && sameFailure(result.violations, checks)) {
        kept = candidate;
        last = result;
        changed = true;
        progress(`  shrink: ${kept.length} faults still fail (run ${runs})`);
      }
    }
  }
  return { kept, runs, last };
}
