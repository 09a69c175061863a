/**
 * The contract of the local shard (src/storage/). The cluster layer, the agent and the tests code
 * against these types; src/storage/store.ts implements them.
 */

/**
 * A version: a hybrid-logical-clock timestamp plus the id of the node that stamped it. Ordered by
 * `ts`, ties broken by `node` (string comparison). `ts` is an HLC packed into one safe integer:
 * physical milliseconds × 2^12 + logical counter (see src/cluster/hlc.ts), so it is a plain msgpack
 * number and compares with `<`.
 */
export interface Version {
  ts: number;
  node: string;
}

/** One stored entry. A tombstone has `value === null` and records when the delete happened. */
export interface Entry extends Version {
  value: Buffer | null;
  /** Absolute expiry, epoch milliseconds; absent = never expires. */
  expiresAtMs?: number;
}

/** -1 if a is older than b, 0 if equal, 1 if a is newer. */
export function compareVersion(a: Version, b: Version): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  if (a.node === b.node) return 0;
  return a.node < b.node ? -1 : 1;
}

export type FsyncPolicy = 'always' | 'interval' | 'none';

export interface StoreOptions {
  /** Max key size in UTF-8 bytes. */
  keyBytesMax?: number;
  /** Max value size in bytes. */
  valueBytesMax?: number;
  fsync?: FsyncPolicy;
  /** With fsync 'interval': how often to fdatasync. */
  fsyncIntervalMs?: number;
  /** Rotate the active WAL segment when it reaches this size. */
  walSegmentBytesMax?: number;
  /** Take a snapshot automatically after this many WAL bytes since the last one (0 = never). */
  snapshotWalBytes?: number;
  /** Take a snapshot automatically this often (0 = never). */
  snapshotIntervalMs?: number;
  /** How long a tombstone is kept before it is collected. */
  tombstoneGraceMs?: number;
  /** Active expiry: run every this many ms ... */
  expiryIntervalMs?: number;
  /** ... and remove at most this many expired keys per run. */
  expiryBatchMax?: number;
  /** Snapshot serialization: bytes encoded per slice before yielding to the event loop. */
  snapshotChunkBytes?: number;
  /** Snapshot serialization: longest a slice may run before yielding to the event loop. */
  snapshotSliceMs?: number;
  /** Truncate at the first corrupt WAL record instead of refusing to open. */
  repair?: boolean;
  /**
   * Time, timers and randomness (expiry, TTLs, tombstone times, snapshot slices, the WAL's group
   * commit and fsync interval). Default `systemClock`; tests and the simulator inject their own.
   */
  clock?: import('../clock.js').Clock;
  logger?: import('../log.js').Logger;
}

export interface PutOptions {
  version: Version;
  /** Relative TTL, turned into expiresAtMs = now + ttlMs. */
  ttlMs?: number;
  /** Absolute expiry; wins over ttlMs. */
  expiresAtMs?: number;
}

export interface StoreStats {
  keys: number; // live keys (not tombstones, not expired)
  tombstones: number;
  valueBytes: number;
  walBytes: number;
  walSegments: number;
  snapshots: number;
  lastSnapshotAtMs: number | null;
  fsyncs: number;
  fsyncLatencyMsLast: number;
  expired: number; // keys removed by expiry since open
  readOnly: boolean;
  readOnlyReason: string | null;
  snapshotFailures: number; // snapshots that failed since open (the store stays writable)
  lastSnapshotError: string | null;
}

/**
 * The store. Every mutation is last-writer-wins on its version: applying an entry older than (or
 * equal to) the stored one is a no-op that resolves `false`; replay is therefore idempotent.
 * Mutations resolve only once durable under the fsync policy.
 */
export interface Store {
  /** Live value or undefined (missing, tombstoned or expired). */
  get(key: string): Entry | undefined;
  /** The raw entry including tombstones and not-yet-collected expired entries (for replication). */
  getEntry(key: string): Entry | undefined;
  put(key: string, value: Buffer, options: PutOptions): Promise<boolean>;
  delete(key: string, options: { version: Version }): Promise<boolean>;
  /** Applies a replicated entry (value or tombstone) with last-writer-wins. */
  apply(key: string, entry: Entry): Promise<boolean>;
  /** All entries including tombstones, in no particular order. Safe against concurrent writes. */
  entries(): IterableIterator<[string, Entry]>;
  stats(): StoreStats;
  /** The key and value size limits the store enforces. */
  limits(): { keyBytesMax: number; valueBytesMax: number };
  snapshot(): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional (cluster clean-up): drop the copy of `key` outright, without a tombstone, if it still has
   * exactly `version`; resolves true if dropped. Used only after the key's owners confirmed they hold it.
   */
  dropCopy?(key: string, version: Version): Promise<boolean>;
}
