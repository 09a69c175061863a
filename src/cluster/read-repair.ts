/**
 * Read repair: once every replica queried by a read has answered, any that returned an older version
 * or nothing gets the newest entry written back. Asynchronous (the client already has its answer) and
 * bounded: past readRepairInFlightMax repairs are dropped and counted; anti-entropy catches those.
 */
import assert from 'node:assert/strict';
import { toShoalError } from '../errors.js';
import type { BackgroundTasks } from '../background.js';
import type { Logger } from '../log.js';
import { compareVersion } from '../storage/types.js';
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
    const best = newest(replies);
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
    const deadline = Date.now() + waitMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  stats(): { inFlight: number; repaired: number; dropped: number; failed: number } {
    return { inFlight: this.inFlight, ...this.counters };
  }
}
