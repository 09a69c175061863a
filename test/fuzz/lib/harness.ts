/**
 * Runs fuzz targets: a bounded number of seeded cases (and a time budget), counting what the system
 * under test accepted, rejected with an expected error, threw unexpectedly, or broke (an invariant
 * violation: a crash). Heap use is measured after a forced GC before and after the cases.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Rng } from './rng.js';

/** What one case did: the input was decoded / served, or refused with an expected, clear error. */
export type CaseOutcome = 'accepted' | 'rejected';

/** Thrown by a target when an invariant breaks (stored data changed, server stopped answering...). */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

/** Thrown by a target when the system under test threw something outside its documented errors. */
export class UnexpectedError extends Error {
  override name = 'UnexpectedError';
}

/** Thrown by a target's setup when what it fuzzes is not there (yet); the run reports it skipped. */
export class SkipTarget extends Error {
  override name = 'SkipTarget';
}

export interface TargetRun {
  runCase(rng: Rng, index: number): CaseOutcome | Promise<CaseOutcome>;
  /** Periodic health check (server still answers, data unchanged); throws InvariantError. */
  check?(): Promise<void>;
  /** Findings worth reporting that are not failures (e.g. a contained error of the wrong class). */
  notes?(): string[];
  close(): Promise<void>;
}

export interface FuzzTarget {
  name: string;
  /** What a case feeds to what. */
  feeds: string;
  /** Cases run at once (for network targets); default 1. */
  parallel?: number;
  /** Run `check` every this many cases (and at the end); default 1000. */
  checkEvery?: number;
  setup(runSeed: number): Promise<TargetRun>;
}

export interface Failure {
  kind: 'crash' | 'unexpected';
  caseIndex: number;
  seed: number;
  message: string;
}

export interface TargetResult {
  target: string;
  feeds: string;
  runSeed: number;
  cases: number;
  accepted: number;
  rejected: number;
  unexpected: number;
  crashes: number;
  heapBeforeBytes: number;
  heapAfterBytes: number;
  heapGrowthBytes: number;
  ms: number;
  /** True when the time budget ended the run before `casesWanted`. */
  timedOut: boolean;
  /** Why the target did not run, or null. */
  skipped: string | null;
  notes: string[];
  failures: Failure[];
}

export interface RunOptions {
  cases: number;
  runSeed: number;
  /** Stop after this long even if fewer cases ran. */
  timeBudgetMs: number;
  /** Heap growth over this is a crash (unbounded memory). Default 64 MiB. */
  heapGrowthBytesMax?: number;
  /** Failures kept in the result; default 5. */
  failuresKept?: number;
  /** Cases run before the heap baseline is taken; default 200. */
  warmupCases?: number;
  /** Count uncaught exceptions and unhandled rejections as crashes (the CLI; under ava, ava does). */
  catchStrays?: boolean;
  /** Index of the first case (to replay one case: its index and `cases: 1`); default 0. */
  firstCase?: number;
}

let gcFn: (() => void) | null = null;
/** A forced GC (exposes `gc` at run time, no command-line flag needed). */
export function forceGc(): void {
  if (gcFn === null) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

function heapUsed(): number {
  forceGc();
  return process.memoryUsage().heapUsed;
}

/** Errors the process reports outside any case (uncaught exceptions, unhandled rejections). */
const stray: Error[] = [];
let listening = false;
function listenForStrays(): void {
  if (listening) return;
  listening = true;
  process.on('uncaughtException', (err) => stray.push(err));
  process.on('unhandledRejection', (reason) => stray.push(reason instanceof Error ? reason : new Error(String(reason))));
}

export async function runTarget(target: FuzzTarget, options: RunOptions): Promise<TargetResult> {
  if (options.catchStrays === true) listenForStrays();
  stray.length = 0;
  const kept = options.failuresKept ?? 5;
  const result: TargetResult = {
    target: target.name, feeds: target.feeds, runSeed: options.runSeed, cases: 0, accepted: 0, rejected: 0,
    unexpected: 0, crashes: 0, heapBeforeBytes: 0, heapAfterBytes: 0, heapGrowthBytes: 0, ms: 0, timedOut: false, skipped: null, notes: [], failures: [],
  };
  const fail = (kind: Failure['kind'], caseIndex: number, seed: number, err: unknown): void => {
    if (kind === 'crash') result.crashes += 1;
    else result.unexpected += 1;
    if (result.failures.length < kept) {
      const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      result.failures.push({ kind, caseIndex, seed, message: message.slice(0, 500) });
    }
  };
  let run: TargetRun;
  try {
    run = await target.setup(options.runSeed);
  } catch (err) {
    if (!(err instanceof SkipTarget)) throw err;
    result.skipped = err.message;
    return result;
  }
  const started = performance.now();
  const parallel = target.parallel ?? 1;
  const checkEvery = target.checkEvery ?? 1000;
  const runOne = async (index: number): Promise<void> => {
    const rng = Rng.forCase(options.runSeed, index);
    try {
      const outcome = await run.runCase(rng, index);
      result[outcome] += 1;
    } catch (err) {
      fail(err instanceof UnexpectedError ? 'unexpected' : 'crash', index, rng.seed, err);
    }
  };
  const check = async (index: number): Promise<void> => {
    try {
      await run.check?.();
    } catch (err) {
      fail('crash', index, 0, err);
    }
    while (stray.length > 0) fail('crash', index, 0, stray.shift());
  };
  try {
    // Warm up (JIT, caches, pools) so that the heap baseline is not the empty process.
    for (let i = 0; i < Math.min(options.warmupCases ?? 200, options.cases); i++) await runOne(-1 - i);
    result.accepted = result.rejected = 0;
    result.heapBeforeBytes = heapUsed();
    const first = options.firstCase ?? 0;
    let index = first;
    let nextCheck = first + checkEvery;
    while (index < first + options.cases) {
      if (performance.now() - started > options.timeBudgetMs) {
        result.timedOut = true;
        break;
      }
      const batch: Promise<void>[] = [];
      for (let j = 0; j < parallel && index < first + options.cases; j++) batch.push(runOne(index++));
      await Promise.all(batch);
      if (index >= nextCheck) {
        await check(index);
        nextCheck += checkEvery;
      }
    }
    result.cases = index - first;
    await check(index);
    result.heapAfterBytes = heapUsed();
    result.heapGrowthBytes = result.heapAfterBytes - result.heapBeforeBytes;
    const heapMax = options.heapGrowthBytesMax ?? 64 * 1024 * 1024;
    if (result.heapGrowthBytes > heapMax) {
      fail('crash', index, 0, new InvariantError(`heap grew by ${result.heapGrowthBytes} bytes (limit ${heapMax})`));
    }
    result.notes = run.notes?.() ?? [];
  } finally {
    await run.close();
    result.ms = Math.round(performance.now() - started);
  }
  return result;
}

/** One line per failure, with what it takes to replay it. */
export function describeFailures(result: TargetResult): string[] {
  return result.failures.map(
    (f) => `${result.target} ${f.kind} at case ${f.caseIndex} (case seed ${f.seed}, run seed ${result.runSeed}; replay: npm run fuzz -- --target ${result.target} --seed ${result.runSeed} --from ${f.caseIndex} --cases 1): ${f.message}`,
  );
}
