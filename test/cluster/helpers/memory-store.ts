/** An in-memory Store with the contract's last-writer-wins semantics, for fast multi-node tests. */
import { ShoalError } from '../../../src/errors.js';
import type { Entry, PutOptions, Store, StoreStats, Version } from '../../../src/storage/types.js';
import { compareVersion } from '../../../src/storage/types.js';

export class MemoryStore implements Store {
  private readonly map = new Map<string, Entry>();
  private closed = false;
  private readonly valueBytesMax: number;
  constructor(
    private readonly now: () => number = Date.now,
    options: { valueBytesMax?: number } = {},
  ) {
    this.valueBytesMax = options.valueBytesMax ?? 1024 * 1024;
  }

  get(key: string): Entry | undefined {
    const e = this.map.get(key);
    if (!e || e.value === null) return undefined;
    if (e.expiresAtMs !== undefined && e.expiresAtMs <= this.now()) return undefined;
    return e;
  }

  getEntry(key: string): Entry | undefined {
    return this.map.get(key);
  }

  async put(key: string, value: Buffer, options: PutOptions): Promise<boolean> {
    const entry: Entry = { value, ...options.version };
    const expiresAtMs = options.expiresAtMs ?? (options.ttlMs === undefined ? undefined : this.now() + options.ttlMs);
    if (expiresAtMs !== undefined) entry.expiresAtMs = expiresAtMs;
    return this.apply(key, entry);
  }

  async delete(key: string, options: { version: Version }): Promise<boolean> {
    return this.apply(key, { value: null, ...options.version });
  }

  async apply(key: string, entry: Entry): Promise<boolean> {
    if (this.closed) throw new ShoalError('CLOSED', 'store closed');
    const old = this.map.get(key);
    if (old && compareVersion(entry, old) <= 0) return false;
    this.map.set(key, { ...entry });
    return true;
  }

  /** Drops a copy outright if it still has `version` (cleanup of ranges no longer owned). */
  async dropCopy(key: string, version: Version): Promise<boolean> {
    const old = this.map.get(key);
    if (!old || compareVersion(old, version) !== 0) return false;
    this.map.delete(key);
    return true;
  }

  entries(): IterableIterator<[string, Entry]> {
    return [...this.map.entries()][Symbol.iterator]();
  }

  limits(): { keyBytesMax: number; valueBytesMax: number } {
    return { keyBytesMax: 1024, valueBytesMax: this.valueBytesMax };
  }

  stats(): StoreStats {
    let keys = 0;
    let tombstones = 0;
    let valueBytes = 0;
    for (const e of this.map.values()) {
      if (e.value === null) tombstones += 1;
      else {
        keys += 1;
        valueBytes += e.value.length;
      }
    }
    return {
      keys, tombstones, valueBytes, walBytes: 0, walSegments: 0, snapshots: 0, lastSnapshotAtMs: null,
      fsyncs: 0, fsyncLatencyMsLast: 0, expired: 0, readOnly: false, readOnlyReason: null,
      snapshotFailures: 0, lastSnapshotError: null,
    };
  }

  async snapshot(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
  }
}
