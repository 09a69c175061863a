/**
 * The replica side of node-to-node operations on data: apply an entry (last-writer-wins in the
 * store), read an entry, apply or read a batch, and keep a hint for an owner that is down (as a
 * stand-in). Range digests and listings live in anti-entropy.ts, range streaming in streaming.ts.
 */
import { ShoalError } from '../errors.js';
import type { Entry, Store } from '../storage/types.js';
import type { Args } from './args.js';
import { entryFrom, entryPairs, entryToWire, optInt, str, strArray } from './args.js';
import { BATCH_ITEMS_MAX, entryWireBytes, keysOnlyMutant, rowWireBytes } from './batch.js';
import type { HintStoreLike, HlcLike } from './ports.js';

/** Most entries one batch call may carry or ask for. */
export const BATCH_KEYS_MAX = BATCH_ITEMS_MAX;

export interface ReplicaOptions {
  store: Store;
  hints: HintStoreLike;
  hlc: HlcLike;
  /** True while this node streams in the range holding `key` (newly owned). */
  isSyncing: (key: string) => boolean;
  /**
   * Told about every applied key (a leaving node tracks writes that arrive during its hand-off), and
   * about local writes whether they won or not (applyLocal).
   */
  onApplied?: (key: string) => void;
  /** Byte budget of one batch reply (batch.ts batchBytesMax of this node's frame limit). */
  batchBytesMax: number;
}

export class Replica {
  private readonly o: ReplicaOptions;

  constructor(options: ReplicaOptions) {
    this.o = options;
  }

  /** Applies one entry with LWW; true if it was newer than what the store held. */
  async applyEntry(key: string, entry: Entry): Promise<boolean> {
    this.o.hlc.observe(entry.ts); // refuses a version too far ahead of our clock (BAD_REQUEST)
    const applied = await this.o.store.apply(key, entry);
    if (applied) this.o.onApplied?.(key);
    return applied;
  }

  /**
   * Applies an entry this node's coordinator stamped (no wire form): the store's promise itself, shared
   * by every write of its WAL batch, so a local write costs no promise of its own here.
   */
  applyLocal(key: string, entry: Entry): Promise<boolean> {
    const applied = this.o.store.apply(key, entry);
    // Told at once, without a second look-up to see whether the entry won: both users take a key that
    // lost LWW or was refused (the key listing checks the store, the hand-off resends with LWW).
    this.o.onApplied?.(key);
    return applied;
  }

  /** The entry this node holds for `key` (raw), or undefined while it syncs the key's range. */
  readLocal(key: string): Entry | null | undefined {
    if (this.o.isSyncing(key)) return undefined;
    return this.o.store.getEntry(key) ?? null;
  }

  async handle(op: string, args: Args): Promise<unknown> {
    switch (op) {
      case 'internal.apply': {
        const key = str(op, args, 'key');
        return { applied: await this.applyEntry(key, entryFrom(op, args.entry)) };
      }
      case 'internal.applyBatch': {
        const pairs = entryPairs(op, args, 'entries', BATCH_KEYS_MAX);
        const results = await Promise.all(pairs.map(([key, entry]) => this.applyEntry(key, entry)));
        return { applied: results.filter(Boolean).length };
      }
      case 'internal.read': {
        const key = str(op, args, 'key');
        const entry = this.o.store.getEntry(key);
        return { entry: entry ? entryToWire(entry) : null, syncing: this.o.isSyncing(key) };
      }
      case 'internal.readBatch': {
        // The reply is cut to fit one frame: `next` says how many of the keys it covers (at least one);
        // the caller asks again for the rest. `versionsOnly` (operators, the chaos harness) leaves the
        // values out: { ts, node, expiresAtMs?, tombstone }.
        const keys = strArray(op, args, 'keys', BATCH_KEYS_MAX);
        const bytesMax = Math.min(optInt(op, args, 'bytesMax', 1) ?? this.o.batchBytesMax, this.o.batchBytesMax);
        const versionsOnly = args.versionsOnly === true;
        const entries: Array<[string, Args]> = [];
        let bytes = 0;
        let next = 0;
        for (; next < keys.length; next++) {
          const key = keys[next];
          const entry = this.o.store.getEntry(key);
          if (!entry) continue;
          const size = versionsOnly ? rowWireBytes(key, entry.node) + 16 : entryWireBytes(key, entry);
          if (entries.length > 0 && bytes + size > bytesMax && !keysOnlyMutant()) break;
          if (versionsOnly) {
            const row: Args = { ts: entry.ts, node: entry.node, tombstone: entry.value === null };
            if (entry.expiresAtMs !== undefined) row.expiresAtMs = entry.expiresAtMs;
            entries.push([key, row]);
          } else entries.push([key, entryToWire(entry)]);
          bytes += size;
        }
        return { entries, next };
      }
      case 'internal.hint': {
        const target = str(op, args, 'target');
        const key = str(op, args, 'key');
        const entry = entryFrom(op, args.entry);
        this.o.hlc.observe(entry.ts);
        await this.o.hints.add(target, key, entry);
        return {};
      }
      default:
        throw new ShoalError('BAD_REQUEST', `unknown internal operation "${op}"`);
    }
  }
}
