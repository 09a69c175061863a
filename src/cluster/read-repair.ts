/**
 * Read repair: once every replica queried by a read has answered, any that returned an older version
 * or nothing gets the newest entry written back. Asynchronous (the client already has its answer) and
 * bounded: past readRepairInFlightMax repairs are dropped and counted; anti-entropy catches those.
 */
import assert from 'node:assert/strict';
import { type Clock, sleep, systemClock } from '../clock.js';
import { toShoalError } from '../errors.js';
import type { BackgroundTasks } from '../background.js';
import type { Logger } from '../log.js';
import { mutant } from '../mutations.js';
import { compareVersion, type Entry } from '../storage/types.js';
import { entryToWire } from './args.js';
import type { ReadReply } from './coordinator.js';
import { newest } from './coordinator.js';
import type { ClusterMetrics, Transport } from './ports.js';

export interface ReadRepairOptions {
  transport: Transport;
  inFlightMax: number;
  timeoutMs: number;
  logger: Logger;
  metrics?: ClusterMetrics;
  tasks: BackgroundTasks;
  /** idle()'s bound and polling (default systemClock). */
  clock?: Clock;
}

/** Polling interval of idle(). */
const IDLE_POLL_MS = 5;

/**
 * Mutation 'read-repair-older' (src/mutations.ts): the oldest entry read, stamped just above the newest
 * so that last-writer-wins lets it replace the newer one everywhere (a plain older version would be
 * refused by every replica, which hides the bug).
 */
function olderOverNewer(replies: ReadReply[]): Entry | null {
  const best = newest(replies);
  let oldest: Entry | null = null;
  for (const r of replies) if (r.entry && (oldest === null || compareVersion(r.entry, oldest) < 0)) oldest = r.entry;
  if (best === null || oldest === null || compareVersion(oldest, best) === 0) return best;
  return { ...oldest, ts: best.ts + 1 };
}

export class ReadRepair {
  private readonly o: ReadRepairOptions;
  private inFlight = 0;
  private readonly counters = { repaired: 0, dropped: 0, failed: 0 };

  constructor(options: ReadRepairOptions) {
    this.o = options;
  }

  /** Compares the replies of one read and repairs the stale ones. Returns the repairs started. */
  check(key: string, replies: ReadReply[]): number {
    const best = mutant('read-repair-older') ? olderOverNewer(replies) : newest(replies);
    if (best === null) return 0;
    let started = 0;
    for (const reply of replies) {
      if (reply.entry !== null && compareVersion(reply.entry, best) >= 0) continue;
      if (this.inFlight >= this.o.inFlightMax) {
        this.counters.dropped += 1;
        continue;
      }
      this.inFlight += 1;
      started += 1;
      const repair = async (): Promise<void> => {
        try {
          await this.o.transport.call(reply.node, 'internal.apply', { key, entry: entryToWire(best) }, { timeoutMs: this.o.timeoutMs });
          this.counters.repaired += 1;
          this.o.metrics?.inc('cluster_read_repairs_total');
        } catch (err) {
          // A replica that is down or full is expected here: counted, not a task failure.
          this.counters.failed += 1;
          this.o.logger.debug('read repair failed', { key, node: reply.node, error: toShoalError(err).message });
        } finally {
          this.inFlight -= 1;
          assert.ok(this.inFlight >= 0, 'read repairs in flight never go negative');
        }
      };
      this.o.tasks.run('read-repair', repair);
    }
    return started;
  }

  /** Resolves once no repair is in flight (tests, shutdown); bounded by `waitMs`. */
  async idle(waitMs = 5_000): Promise<void> {
    const clock = this.o.clock ?? systemClock;
    const deadline = clock.monotonicMs() + waitMs;
    while (this.inFlight > 0 && clock.monotonicMs() < deadline) await sleep(clock, IDLE_POLL_MS);
  }

  stats(): { inFlight: number; repaired: number; dropped: number; failed: number } {
    return { inFlight: this.inFlight, ...this.counters };
  }
}
