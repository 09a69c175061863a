/**
 * Hinted handoff replay. Hints (kept by HintStore on the coordinator or a stand-in) are replayed to
 * their target once membership sees it alive, at a bounded rate, each hint removed only after the
 * target acknowledged it. Hints for a target that no longer owns anything (left, removed, dead past
 * grace) are delivered to the key's current owners instead, so they are never simply dropped.
 */
import { type Clock, type ClockTimer, systemClock } from '../clock.js';
import { ShoalError, toShoalError } from '../errors.js';
import type { BackgroundTasks } from '../background.js';
import type { Logger } from '../log.js';
import type { Entry } from '../storage/types.js';
import { entryToWire } from './args.js';
import type { ClusterMetrics, HintStoreLike, Transport } from './ports.js';
import type { ClusterView } from './view.js';

export interface HandoffOptions {
  hints: HintStoreLike;
  view: ClusterView;
  transport: Transport;
  intervalMs: number;
  perSecMax: number;
  timeoutMs: number;
  logger: Logger;
  metrics?: ClusterMetrics;
  /** Replays started by the timer or by membership events run here (caught, logged, awaited on close). */
  tasks: BackgroundTasks;
  /** The replay timer and the retry backoff (monotonic time); default systemClock. */
  clock?: Clock;
}

/** Longest wait between two replays to a target whose every send failed (e.g. a read-only replica). */
export const HANDOFF_BACKOFF_MS_MAX = 60_000;

export class Handoff {
  private readonly o: HandoffOptions;
  private readonly replaying = new Map<string, Promise<void>>();
  private timer: ClockTimer | null = null;
  private readonly counters = { replayed: 0, failed: 0, rerouted: 0 };
  /**
   * Targets that are up but refused every hint of their last replay (a read-only disk, say): the
   * timer skips them until `untilMs`, doubling the wait each time up to HANDOFF_BACKOFF_MS_MAX, so a
   * sick replica is not hammered, nor the hint files rewritten, every interval.
   */
  private readonly backoff = new Map<string, { untilMs: number; delayMs: number }>();
  private readonly clock: Clock;
  private stopped = false;

  constructor(options: HandoffOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
  }

  start(): void {
    if (this.o.intervalMs <= 0 || this.timer) return;
    this.timer = this.clock.setInterval(() => this.runInBackground({ respectBackoff: true }), this.o.intervalMs);
    this.timer.unref();
  }

  /** Starts a pass without waiting for it (timer, membership events). */
  runInBackground(options: { respectBackoff?: boolean } = {}): void {
    this.o.tasks.run('hint-replay', () => this.runOnce(options));
  }

  /** When the timer will next try `target`, on the clock's monotonic time (null: at its next tick). */
  retryAtMs(target: string): number | null {
    return this.backoff.get(target)?.untilMs ?? null;
  }

  /** Stops the timer; sends of a replay still running fail from now on, so it keeps the rest. */
  stop(): void {
    this.clock.clearInterval(this.timer);
    this.timer = null;
    this.stopped = true;
  }

  /** One pass over all hint targets; resolves when the replays it started have finished. */
  async runOnce(options: { ownersOf?: (key: string) => string[]; respectBackoff?: boolean } = {}): Promise<{ sent: number; failed: number }> {
    const total = { sent: 0, failed: 0 };
    const runs: Array<Promise<void>> = [];
    for (const target of this.o.hints.targets()) {
      const running = this.replaying.get(target);
      if (running) {
        runs.push(running);
        continue;
      }
      if (this.o.hints.pendingFor(target) === 0) {
        this.backoff.delete(target);
        continue;
      }
      if (options.respectBackoff && (this.backoff.get(target)?.untilMs ?? -Infinity) > this.clock.monotonicMs()) continue;
      const send = this.senderFor(target, options.ownersOf);
      if (!send) continue;
      const run = this.o.hints
          .replay(target, send, { maxPerSec: this.o.perSecMax })
          .then(
            (r) => {
              total.sent += r.sent;
              total.failed += r.failed;
              this.counters.replayed += r.sent;
              this.counters.failed += r.failed;
              this.o.metrics?.inc('cluster_hints_replayed_total', {}, r.sent);
              this.noteOutcome(target, r);
              if (r.sent > 0) this.o.logger.info('hints replayed', { target, sent: r.sent, failed: r.failed });
            },
            (err: unknown) => this.o.logger.warn('hint replay failed', { target, error: toShoalError(err).message }),
          )
          .finally(() => this.replaying.delete(target));
      this.replaying.set(target, run);
      runs.push(run);
    }
    await Promise.all(runs);
    return total;
  }

  private noteOutcome(target: string, r: { sent: number; failed: number }): void {
    if (r.failed === 0 || r.sent > 0) {
      this.backoff.delete(target);
      return;
    }
    const prev = this.backoff.get(target)?.delayMs ?? this.o.intervalMs;
    const delayMs = Math.min(Math.max(prev * 2, 1), HANDOFF_BACKOFF_MS_MAX);
    this.backoff.set(target, { untilMs: this.clock.monotonicMs() + delayMs, delayMs });
  }

  stats(): { replaying: number; replayed: number; failed: number; rerouted: number } {
    return { replaying: this.replaying.size, ...this.counters };
  }

  /**
   * How hints for `target` get delivered: to the target when alive; to the key's owners (`ownersOf`,
   * default the current ring) when the target is gone for good or a leave forces delivery; else not yet.
   */
  private senderFor(target: string, ownersOf?: (key: string) => string[]): ((key: string, entry: Entry) => Promise<void>) | null {
    const { view, transport, timeoutMs } = this.o;
    if (view.isAlive(target) && target !== view.selfId) {
      return async (key, entry) => {
        if (this.stopped) throw new ShoalError('CLOSED', 'hint replay stopped');
        await transport.call(target, 'internal.apply', { key, entry: entryToWire(entry) }, { timeoutMs });
      };
    }
    const stillOwner = view.ring().members().includes(target);
    if (stillOwner && target !== view.selfId && !ownersOf) return null; // down, but within grace: wait for it
    const owners = ownersOf ?? ((key: string) => view.owners(key));
    return async (key, entry) => {
      if (this.stopped) throw new ShoalError('CLOSED', 'hint replay stopped');
      const up = owners(key).filter((id) => view.isUp(id) && id !== target);
      const results = await Promise.allSettled(
        up.map((id) => transport.call(id, 'internal.apply', { key, entry: entryToWire(entry) }, { timeoutMs })),
      );
      if (!results.some((r) => r.status === 'fulfilled')) {
        throw new ShoalError('UNAVAILABLE', `no owner of "${key}" took the rerouted hint`);
      }
      this.counters.rerouted += 1;
    };
  }
}
