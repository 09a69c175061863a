/**
 * Clean-up after a ring change: copies of keys this node no longer owns are first sent to every
 * current owner (apply is last-writer-wins, so this is harmless when they have it), and dropped here
 * only once all N owners acknowledged. Needs the store's optional `dropCopy`; without it, nothing is
 * dropped. Bounded per run and rate-limited. Hand-off batches are cut by keys and by bytes (batch.ts),
 * and the drops of one batch are issued together, so a group-committing store writes them with one
 * fdatasync instead of one per key.
 */
import { type Clock, systemClock } from '../clock.js';
import { toShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Entry, Store } from '../storage/types.js';
import type { Args } from './args.js';
import { entryToWire } from './args.js';
import { BATCH_ITEMS_MAX, cutBatches, entryWireBytes } from './batch.js';
import { Pacer } from './pacer.js';
import type { Transport } from './ports.js';
import { scanStore } from './scan.js';
import type { ClusterView } from './view.js';

/** Keys one clean-up run examines at most; the next run continues. */
export const CLEANUP_KEYS_PER_RUN_MAX = 100_000;

export interface CleanupOptions {
  view: ClusterView;
  store: Store;
  transport: Transport;
  batchKeysMax: number;
  /** Byte budget of one hand-off batch (batch.ts batchBytesMax of the frame limit). */
  batchBytesMax: number;
  bytesPerSecMax: number;
  timeoutMs: number;
  logger: Logger;
  /** The pacer's time and the scan's yields (default systemClock). */
  clock?: Clock;
}

export class Cleanup {
  private readonly o: CleanupOptions;
  private readonly pacer: Pacer;
  private readonly counters = { runs: 0, dropped: 0, kept: 0 };
  private readonly clock: Clock;

  constructor(options: CleanupOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
    this.pacer = new Pacer(options.bytesPerSecMax, { clock: this.clock });
  }

  get supported(): boolean {
    return typeof this.o.store.dropCopy === 'function';
  }

  async runOnce(): Promise<{ dropped: number; kept: number }> {
    const { view, store } = this.o;
    if (!store.dropCopy) return { dropped: 0, kept: 0 };
    const ringAtStart = view.ring().checksum();
    const unowned: Array<[string, Entry, string[]]> = [];
    const visit = (key: string, entry: Entry): boolean => {
      const owners = view.owners(key);
      if (!owners.includes(view.selfId)) unowned.push([key, entry, owners]);
      return unowned.length < CLEANUP_KEYS_PER_RUN_MAX;
    };
    await scanStore(store, visit, this.clock);
    const byOwner = new Map<string, Array<[string, Entry]>>();
    const acks = new Map<string, number>();
    for (const [key, entry, owners] of unowned) {
      if (!owners.every((id) => view.isUp(id))) continue; // cannot confirm all copies now
      for (const id of owners) {
        const list = byOwner.get(id) ?? [];
        list.push([key, entry]);
        byOwner.set(id, list);
      }
    }
    const limits = { bytesMax: this.o.batchBytesMax, itemsMax: Math.min(this.o.batchKeysMax, BATCH_ITEMS_MAX) };
    for (const [owner, list] of byOwner) {
      for (const batch of cutBatches(list, ([k, e]) => entryWireBytes(k, e), limits)) {
        const wire: Array<[string, Args]> = batch.map(([k, e]) => [k, entryToWire(e)]);
        await this.pacer.take(batch.reduce((sum, [k, e]) => sum + entryWireBytes(k, e), 0));
        try {
          await this.o.transport.call(owner, 'internal.applyBatch', { entries: wire }, { timeoutMs: this.o.timeoutMs });
          for (const [k] of batch) acks.set(k, (acks.get(k) ?? 0) + 1);
        } catch (err) {
          this.o.logger.debug('clean-up hand-off failed', { owner, error: toShoalError(err).message });
        }
      }
    }
    let dropped = 0;
    let kept = 0;
    const confirmed: Array<[string, Entry]> = [];
    for (const [key, entry, owners] of unowned) {
      if ((acks.get(key) ?? 0) >= owners.length) confirmed.push([key, entry]);
      else kept += 1;
    }
    const dropCopy = store.dropCopy.bind(store);
    for (let i = 0; i < confirmed.length; i += limits.itemsMax) {
      const batch = confirmed.slice(i, i + limits.itemsMax);
      // A ring change meanwhile may have made this node an owner again: then keep everything.
      if (view.ring().checksum() !== ringAtStart) {
        kept += confirmed.length - i;
        break;
      }
      // Issued together: one group commit (one fdatasync) for the whole batch.
      const results = await Promise.all(batch.map(([key, entry]) => dropCopy(key, entry)));
      for (const ok of results) {
        if (ok) dropped += 1;
        else kept += 1;
      }
    }
    this.counters.runs += 1;
    this.counters.dropped += dropped;
    this.counters.kept += kept;
    if (dropped + kept > 0) this.o.logger.info('clean-up of copies no longer owned', { dropped, kept });
    return { dropped, kept };
  }

  stats(): { supported: boolean; runs: number; dropped: number; kept: number } {
    return { supported: this.supported, ...this.counters };
  }
}
