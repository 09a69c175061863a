/**
 * Background work that cannot crash a node. Every task a node starts without a caller waiting for it
 * (hint replay, clean-up, anti-entropy rounds, streaming rounds, replica calls that finish after the
 * client's answer) runs through `BackgroundTasks.run(name, work)`, which:
 * - names the task, catches its failure, logs it (warn, with the task name and error code) and counts
 *   it, per task, in `cluster_background_failures_total{task}` and in stats();
 * - tracks the promise while it is in flight, so `close()` waits for it (bounded) instead of letting
 *   it write into a store that is closing;
 * - refuses new work once closed (the work is not started; that is not a failure).
 *
 * A rejection that escapes nevertheless (a bug) reaches the agent's last-resort handler
 * (cli/agent-command.ts), which logs it and stops the node cleanly.
 */
import assert from 'node:assert/strict';
import { type Clock, type ClockTimer, systemClock } from './clock.js';
import { toShoalError } from './errors.js';
import type { Logger } from './log.js';

export interface BackgroundMetrics {
  inc(name: string, labels?: Record<string, string>, value?: number): void;
}

export interface BackgroundTasksOptions {
  logger: Logger;
  metrics?: BackgroundMetrics;
  /** Time for idle()'s bound (default systemClock; the simulator gives each node its own). */
  clock?: Clock;
}

/** Distinct task names tracked (names are code constants; this bounds a mistake). */
const TASK_NAMES_MAX = 64;

export class BackgroundTasks {
  private readonly o: BackgroundTasksOptions;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly failures = new Map<string, number>();
  private readonly started = new Map<string, number>();
  private closed = false;
  private readonly clock: Clock;

  constructor(options: BackgroundTasksOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
  }

  /** Starts `work` in the background under `name` (not started once closed). Nobody waits for it. */
  run(name: string, work: () => Promise<unknown>): void {
    this.settled(name, work).catch(() => undefined); // settled() never rejects; this satisfies the lint
  }

  /**
   * Like run(), and returns a promise that never rejects: true once the work settled (whether it
   * succeeded or failed, which is logged and counted), false if not started because closed.
   */
  settled(name: string, work: () => Promise<unknown>): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.count(this.started, name);
    if (!this.failures.has(name)) {
      this.failures.set(name, 0);
      this.o.metrics?.inc('cluster_background_failures_total', { task: name }, 0);
    }
    let task: Promise<void>;
    try {
      task = work().then(
        () => undefined,
        (err: unknown) => this.fail(name, err),
      );
    } catch (err) {
      task = Promise.resolve(this.fail(name, err)); // work threw before returning a promise
    }
    const tracked = task.then(() => {
      this.inFlight.delete(tracked);
    });
    this.inFlight.add(tracked);
    return tracked.then(() => true);
  }

  /** Waits for the tasks in flight (including ones they start meanwhile), at most `waitMs`. */
  async idle(waitMs = 30_000): Promise<void> {
    const { clock } = this;
    const deadline = clock.monotonicMs() + waitMs;
    while (this.inFlight.size > 0 && clock.monotonicMs() < deadline) {
      let timer: ClockTimer | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = clock.setTimeout(resolve, Math.max(1, deadline - clock.monotonicMs()));
      });
      await Promise.race([Promise.all([...this.inFlight]), timeout]);
      clock.clearTimeout(timer);
    }
  }

  /** Refuses new tasks, then waits (at most `waitMs`) for those in flight. */
  async close(waitMs = 30_000): Promise<void> {
    this.closed = true;
    await this.idle(waitMs);
    if (this.inFlight.size > 0) this.o.logger.warn('background tasks still running at close', { tasks: this.inFlight.size });
  }

  get size(): number {
    return this.inFlight.size;
  }

  stats(): { inFlight: number; started: Record<string, number>; failed: Record<string, number> } {
    return { inFlight: this.inFlight.size, started: Object.fromEntries(this.started), failed: Object.fromEntries(this.failures) };
  }

  private fail(name: string, err: unknown): void {
    const e = toShoalError(err);
    this.count(this.failures, name);
    this.o.metrics?.inc('cluster_background_failures_total', { task: name });
    this.o.logger.warn('background task failed', { task: name, code: e.code, error: e.message });
  }

  private count(map: Map<string, number>, name: string): void {
    assert.ok(map.has(name) || map.size < TASK_NAMES_MAX, `more than ${TASK_NAMES_MAX} background task names`);
    map.set(name, (map.get(name) ?? 0) + 1);
  }
}
