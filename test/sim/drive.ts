/** Test helper: runs a simulation until a promise of the code under test settles. */
import type { SimScheduler } from '../../src/sim/scheduler.js';

/**
 * Runs `sched` until `promise` settles (at most `budgetMs` of simulated time) and returns its value or
 * throws its error. Throws if it did not settle: a hang in simulated time is a bug, not a timeout.
 */
export async function drive<T>(sched: SimScheduler, promise: Promise<T>, budgetMs = 600_000): Promise<T> {
  let state: { ok: true; value: T } | { ok: false; error: unknown } | null = null;
  promise.then(
    (value) => {
      state = { ok: true, value };
    },
    (error: unknown) => {
      state = { ok: false, error };
    },
  );
  await sched.run({ untilMs: sched.timeMs + budgetMs, stopWhen: () => state !== null });
  const settled = state as { ok: true; value: T } | { ok: false; error: unknown } | null;
  if (settled === null) throw new Error(`did not settle within ${budgetMs} simulated ms (at ${sched.timeMs} ms)`);
  if (!settled.ok) throw settled.error;
  return settled.value;
}

/** Runs `sched` for `ms` of simulated time. */
export async function advance(sched: SimScheduler, ms: number): Promise<void> {
  await sched.run({ untilMs: sched.timeMs + ms });
}
