/**
 * The local shard: an in-memory map of entries made durable by the WAL and snapshots.
 *
 * Ordering: Node runs one thread, so every operation is atomic with respect to the others. A
 * mutation is applied to the map at once (a read right after `put` sees it) and its promise
 * resolves when its WAL record is durable under the fsync policy. Apply is last-writer-wins on
 * (ts, node): a mutation not newer than the stored entry is a no-op that resolves `false`.
 * If the WAL fails (disk full, I/O error), the store turns read-only: the writes not yet
 * acknowledged reject READ_ONLY and are undone (in the map here, on disk by the WAL), and every later
 * write rejects READ_ONLY too; reads go on.
 */
import assert from 'node:assert/strict';
import type { ClockTimer } from '../clock.js';
import { ShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import { ExpiryQueue } from './expiry.js';
import { type FileIo, type FsIo, withFileIo } from './fsio.js';
import { acquireLock, type DirLock, type LockOptions } from './lock.js';
import type { NamedSeq } from './layout.js';
import { NODE_BYTES_LIMIT, type ResolvedStoreOptions, resolveStoreOptions } from './options.js';
import { PendingLog } from './pending.js';
import { KIND_DROP } from './record.js';
import { recover } from './recovery.js';
import { writeSnapshot } from './snapshot.js';
import {
  compareVersion,
  type Entry,
  type PutOptions,
  type Store,
  type StoreOptions,
  type StoreStats,
  type Version,
} from './types.js';
import { Wal } from './wal.js';
import path from 'node:path';

export { DEFAULT_STORE_OPTIONS } from './options.js';

export interface OpenStoreOptions extends StoreOptions {
  /** Every file access of the store (default node's file system); the simulator gives a SimDisk's. */
  fs?: FsIo;
  /** Tests: replaces the file operations of the write paths over `fs` (fault injection, recording). */
  io?: FileIo;
  /**
   * Who owns the data-dir lock and how to tell whether an owner still runs (default: this process's
   * pid, and kill(pid, 0)). The simulator gives each process incarnation a pid of its own.
   */
  lock?: Pick<LockOptions, 'pid' | 'isAlive'>;
  /** Called with the duration of each WAL fdatasync (the node's fsync latency histogram). */
  onFsync?: (latencyMs: number) => void;
}

/** Snapshots kept on disk: the newest and one fallback in case the newest does not verify. */
const SNAPSHOTS_KEPT = 2;
/** Rebuild the expiry heap when stale items exceed this factor of the map size. */
const EXPIRY_HEAP_SLACK = 2;
const RESOLVED_FALSE: Promise<boolean> = Promise.resolve(false);
export async function openStore(dir: string, options: OpenStoreOptions = {}): Promise<Store> {
  return ShardStore.open(dir, options);
}

function badRequest(message: string): ShoalError {
  return new ShoalError('BAD_REQUEST', message);
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export class ShardStore implements Store {
  private readonly dir: string;
  private readonly opts: ResolvedStoreOptions;
  private readonly io: FsIo;
  private readonly logger: Logger;
  private readonly lock: DirLock;
  private readonly wal: Wal;
  private map: Map<string, Entry>;
  private tombstoneAtMs: Map<string, number>;
  private readonly expiry = new ExpiryQueue();
  private snapshotFiles: NamedSeq[];
  private tombstones = 0;
  private valueBytes = 0;
  private expired = 0;
  private snapshotsTaken = 0;
  private lastSnapshotAtMs: number | null = null;
  private walBytesAtSnapshot = 0;
  private snapshotRunning: Promise<void> | null = null;
  private readonly timers: ClockTimer[] = [];
  private closing = false;
  private closed: Promise<void> | null = null;
  private readOnlyReason: string | null = null;
  /** Mutations not yet acknowledged, so that a WAL failure can undo them. */
  private readonly pending = new PendingLog();
  /** Highest WAL seq a snapshot written by this process may contain, by snapshot file name. */
  private readonly snapshotSeqSeen = new Map<string, number>();
  private snapshotFailures = 0;
  private lastSnapshotError: string | null = null;

  private constructor(
    dir: string,
    opts: ResolvedStoreOptions,
    io: FsIo,
    lock: DirLock,
    wal: Wal,
    recovered: { entries: Map<string, Entry>; tombstoneAtMs: Map<string, number>; snapshots: NamedSeq[] },
  ) {
    this.dir = dir;
    this.opts = opts;
    this.io = io;
    this.logger = opts.logger;
    this.lock = lock;
    this.wal = wal;
    this.map = recovered.entries;
    this.tombstoneAtMs = recovered.tombstoneAtMs;
    this.snapshotFiles = recovered.snapshots;
    this.indexAll();
    this.walBytesAtSnapshot = 0;
  }

  static async open(dir: string, options: OpenStoreOptions = {}): Promise<ShardStore> {
    const opts = resolveStoreOptions(options);
    const io = withFileIo(options.fs, options.io);
    const clock = opts.clock;
    await io.mkdir(dir);
    const lock = await acquireLock(dir, opts.logger, { ...options.lock, fs: options.fs, clock });
    try {
      const t0 = clock.monotonicMs();
      const recovered = await recover(dir, { io, repair: opts.repair, nowMs: clock.now(), logger: opts.logger });
      let store: ShardStore | null = null;
      const wal = await Wal.open(
        {
          dir,
          fsync: opts.fsync,
          fsyncIntervalMs: opts.fsyncIntervalMs,
          walSegmentBytesMax: opts.walSegmentBytesMax,
          io,
          clock,
          logger: opts.logger,
          onFailure: (failure, ackedSeq) => store?.turnReadOnly(failure, ackedSeq),
          onAcked: (seq) => store?.acked(seq),
          onFsync: options.onFsync,
        },
        recovered.wal,
      );
      store = new ShardStore(dir, opts, io, lock, wal, recovered);
      store.startTimers();
      opts.logger.info('store: opened', {
        dir,
        keys: recovered.entries.size,
        snapshotSeq: recovered.snapshotSeq,
        walRecordsReplayed: recovered.replayed,
        recoveryMs: Math.round(clock.monotonicMs() - t0),
      });
      return store;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** Rebuilds counters and the expiry heap from the map, dropping entries already expired. */
  private indexAll(): void {
    this.expiry.clear();
    this.tombstones = 0;
    this.valueBytes = 0;
    const grace = this.opts.tombstoneGraceMs;
    const nowMs = this.opts.clock.now();
    for (const [key, entry] of this.map) {
      if (entry.expiresAtMs !== undefined && entry.expiresAtMs <= nowMs) {
        this.map.delete(key);
      } else if (entry.value === null) {
        this.tombstones += 1;
        this.expiry.push((this.tombstoneAtMs.get(key) ?? 0) + grace, key, entry);
      } else {
        this.valueBytes += entry.value.length;
        if (entry.expiresAtMs !== undefined) this.expiry.push(entry.expiresAtMs, key, entry);
      }
    }
  }

  private startTimers(): void {
    const clock = this.opts.clock;
    const expiryTimer = clock.setInterval(() => this.expireDue(), this.opts.expiryIntervalMs);
    expiryTimer.unref();
    this.timers.push(expiryTimer);
    if (this.opts.snapshotIntervalMs > 0) {
      const snapTimer = clock.setInterval(() => this.backgroundSnapshot('interval'), this.opts.snapshotIntervalMs);
      snapTimer.unref();
      this.timers.push(snapTimer);
    }
  }

  /**
   * The WAL failed: refuse writes from now on and undo, newest first, every mutation whose record
   * was not acknowledged (its writer gets READ_ONLY, so it must not be readable nor come back later).
   */
  private turnReadOnly(failure: ShoalError, ackedSeq: number): void {
    this.readOnlyReason ??= failure.message;
    this.pending.undoAfter(ackedSeq, this.undoBound);
    // A snapshot that serialized a rejected mutation would bring it back at the next open; the
    // previous snapshot and the WAL after it (both kept until a newer snapshot succeeds) suffice.
    const newest = this.snapshotFiles[this.snapshotFiles.length - 1];
    if (newest !== undefined && (this.snapshotSeqSeen.get(newest.name) ?? 0) > ackedSeq) {
      this.snapshotFiles.pop();
      this.logger.warn('store: removing the newest snapshot, it may hold rejected writes', { file: newest.name });
      this.io.unlink(path.join(this.dir, newest.name)).catch((err: Error) =>
        this.logger.error('store: could not remove the snapshot', { file: newest.name, error: err.message }),
      );
    }
  }

  /** Puts back what a rejected mutation of `key` replaced, unless the key changed since (expiry removed it). */
  private readonly undoBound = (key: string, prev: Entry | undefined, prevDeletedAtMs: number | undefined, next: Entry | undefined): void => {
    const current = this.map.get(key);
    if (current !== next) return;
    if (current !== undefined) {
      this.map.delete(key);
      this.forget(key, current);
    }
    if (prev !== undefined) this.install(key, prev, undefined, prevDeletedAtMs);
  };

  /** Every mutation up to `seq` is acknowledged: nothing to undo for them any more. */
  private acked(seq: number): void {
    this.pending.acked(seq);
  }

  private track(key: string, prev: Entry | undefined, next: Entry | undefined): void {
    const prevDeletedAtMs = prev !== undefined && prev.value === null ? this.tombstoneAtMs.get(key) : undefined;
    this.pending.track(this.wal.lastSeq, key, prev, prevDeletedAtMs, next);
  }

  // ---- reads ---------------------------------------------------------------------------------

  /** The key and value size limits this store enforces (the cluster checks them before fanning out). */
  limits(): { keyBytesMax: number; valueBytesMax: number } {
    return { keyBytesMax: this.opts.keyBytesMax, valueBytesMax: this.opts.valueBytesMax };
  }

  get(key: string): Entry | undefined {
    if (this.closing) throw new ShoalError('CLOSED', 'store is closed');
    const e = this.map.get(key);
    if (e === undefined || e.value === null) return undefined;
    if (e.expiresAtMs !== undefined && e.expiresAtMs <= this.opts.clock.now()) return undefined;
    return e;
  }

  getEntry(key: string): Entry | undefined {
    if (this.closing) throw new ShoalError('CLOSED', 'store is closed');
    return this.map.get(key);
  }

  entries(): IterableIterator<[string, Entry]> {
    if (this.closing) throw new ShoalError('CLOSED', 'store is closed');
    return this.map.entries();
  }

  // ---- writes --------------------------------------------------------------------------------

  put(key: string, value: Buffer, options: PutOptions): Promise<boolean> {
    if (options == null) return Promise.reject(badRequest('put needs options with a version'));
    const version = options.version;
    let expiresAtMs = options.expiresAtMs;
    if (expiresAtMs === undefined && options.ttlMs !== undefined) {
      if (!isTime(options.ttlMs) || options.ttlMs <= 0) {
        return Promise.reject(badRequest(`ttlMs must be a positive integer, got ${options.ttlMs}`));
      }
      expiresAtMs = this.opts.clock.now() + options.ttlMs;
    }
    if (!(value instanceof Uint8Array)) return Promise.reject(badRequest('value must be a Buffer'));
    if (version === undefined || version === null) return Promise.reject(badRequest('put needs a version'));
    return this.write(key, version.ts, version.node, value, expiresAtMs);
  }

  delete(key: string, options: { version: Version }): Promise<boolean> {
    const version = options?.version;
    if (version === undefined || version === null) return Promise.reject(badRequest('delete needs a version'));
    return this.write(key, version.ts, version.node, null, undefined);
  }

  apply(key: string, entry: Entry): Promise<boolean> {
    if (entry === null || typeof entry !== 'object') return Promise.reject(badRequest('apply needs an entry'));
    const value = entry.value;
    if (value !== null && !(value instanceof Uint8Array)) {
      return Promise.reject(badRequest('entry.value must be a Buffer or null'));
    }
    return this.write(key, entry.ts, entry.node, value, value === null ? undefined : (entry.expiresAtMs ?? undefined));
  }

  /**
   * Removes `key` without leaving a tombstone if it holds exactly `version` (the cluster's clean-up
   * of a copy this node no longer owns, after its owners confirmed they have it). Logged, so a
   * restart does not bring the copy back. Resolves false when the key holds anything else.
   */
  dropCopy(key: string, version: Version): Promise<boolean> {
    if (version == null) return Promise.reject(badRequest('dropCopy needs a version'));
    const err = this.checkWrite(key, version.ts, version.node, null, undefined);
    if (err !== null) return Promise.reject(err);
    const existing = this.map.get(key);
    if (existing === undefined || compareVersion(existing, version) !== 0) return RESOLVED_FALSE;
    const durable = this.wal.append(key, { ts: version.ts, node: version.node, value: null }, undefined, KIND_DROP);
    this.track(key, existing, undefined);
    this.map.delete(key);
    this.forget(key, existing);
    return durable;
  }

  /** Validates, applies LWW to the map, and appends to the WAL. The one write path. */
  private write(
    key: string,
    ts: number,
    node: string,
    value: Uint8Array | null,
    expiresAtMs: number | undefined,
  ): Promise<boolean> {
    const err = this.checkWrite(key, ts, node, value, expiresAtMs);
    if (err !== null) return Promise.reject(err);
    const existing = this.map.get(key);
    if (existing !== undefined && compareVersion({ ts, node }, existing) <= 0) return RESOLVED_FALSE;
    let entry: Entry;
    let deletedAtMs: number | undefined;
    if (value === null) {
      entry = { ts, node, value: null };
      deletedAtMs = this.opts.clock.now();
    } else {
      const copy = Buffer.allocUnsafe(value.length);
      copy.set(value);
      entry = expiresAtMs === undefined ? { ts, node, value: copy } : { ts, node, value: copy, expiresAtMs };
    }
    const durable = this.wal.append(key, entry, deletedAtMs);
    this.track(key, existing, entry);
    this.install(key, entry, existing, deletedAtMs);
    const snapshotWalBytes = this.opts.snapshotWalBytes;
    if (snapshotWalBytes > 0 && this.wal.appendedBytes - this.walBytesAtSnapshot >= snapshotWalBytes) {
      this.backgroundSnapshot('wal bytes');
    }
    return durable;
  }

  private checkWrite(
    key: string,
    ts: number,
    node: string,
    value: Uint8Array | null,
    expiresAtMs: number | undefined,
  ): ShoalError | null {
    if (this.closing) return new ShoalError('CLOSED', 'store is closed');
    if (this.readOnlyReason !== null) return this.wal.failure ?? new ShoalError('READ_ONLY', this.readOnlyReason);
    if (typeof key !== 'string') return badRequest('key must be a string');
    const keyBytesMax = this.opts.keyBytesMax;
    if (key.length * 3 > keyBytesMax) {
      const keyBytes = Buffer.byteLength(key);
      if (keyBytes > keyBytesMax) {
        return new ShoalError('KEY_TOO_LARGE', `key is ${keyBytes} bytes; the limit is ${keyBytesMax} (keyBytesMax)`, {
          keyBytes,
          keyBytesMax,
        });
      }
    }
    if (value !== null && value.length > this.opts.valueBytesMax) {
      const valueBytesMax = this.opts.valueBytesMax;
      return new ShoalError(
        'VALUE_TOO_LARGE',
        `value is ${value.length} bytes; the limit is ${valueBytesMax} (valueBytesMax)`,
        { valueBytes: value.length, valueBytesMax },
      );
    }
    if (!isTime(ts)) return badRequest(`version.ts must be a non-negative safe integer, got ${ts}`);
    if (typeof node !== 'string' || node.length === 0) return badRequest('version.node must be a non-empty string');
    if (node.length * 3 > NODE_BYTES_LIMIT && Buffer.byteLength(node) > NODE_BYTES_LIMIT) {
      return badRequest(`version.node is longer than ${NODE_BYTES_LIMIT} bytes`);
    }
    if (expiresAtMs !== undefined && !isTime(expiresAtMs)) {
      return badRequest(`expiresAtMs must be a non-negative safe integer, got ${expiresAtMs}`);
    }
    return null;
  }

  private install(key: string, entry: Entry, existing: Entry | undefined, deletedAtMs: number | undefined): void {
    if (existing !== undefined) this.forget(key, existing);
    this.map.set(key, entry);
    if (entry.value === null) {
      const atMs = deletedAtMs as number;
      this.tombstones += 1;
      this.tombstoneAtMs.set(key, atMs);
      this.expiry.push(atMs + this.opts.tombstoneGraceMs, key, entry);
    } else {
      this.valueBytes += entry.value.length;
      if (entry.expiresAtMs !== undefined) this.expiry.push(entry.expiresAtMs, key, entry);
    }
  }

  /** Undoes the counters of an entry leaving the map. */
  private forget(key: string, entry: Entry): void {
    if (entry.value === null) {
      this.tombstones -= 1;
      this.tombstoneAtMs.delete(key);
    } else {
      this.valueBytes -= entry.value.length;
    }
    // The counters follow the map exactly; a negative one means an entry was forgotten twice.
    assert.ok(this.tombstones >= 0 && this.valueBytes >= 0, `store counters went negative (tombstones ${this.tombstones}, valueBytes ${this.valueBytes})`);
  }

  // ---- expiry --------------------------------------------------------------------------------

  /**
   * Removes at most expiryBatchMax due entries (expired values, tombstones past their grace).
   * Removal is not logged: replay drops expired entries itself and re-collects old tombstones.
   * Returns how many entries were removed. Called by the timer; public for tests.
   */
  expireDue(): number {
    if (this.closing) return 0;
    let removed = 0;
    this.expiry.popDue(this.opts.clock.now(), this.opts.expiryBatchMax, (key, ref) => {
      if (this.map.get(key) !== ref) return; // overwritten since: stale heap item
      this.map.delete(key);
      this.forget(key, ref);
      removed += 1;
      if (ref.value !== null) this.expired += 1;
    });
    if (this.expiry.size > EXPIRY_HEAP_SLACK * this.map.size + 1024) this.indexAll();
    return removed;
  }

  // ---- snapshots -----------------------------------------------------------------------------

  private backgroundSnapshot(why: string): void {
    if (this.snapshotRunning !== null || this.closing || this.readOnlyReason !== null) return;
    this.snapshot().catch((err: Error) => {
      if (!this.closing) this.logger.error('store: snapshot failed', { why, error: err.message });
    });
  }

  /**
   * Snapshots are an optimisation (shorter replay, WAL space back): a failed one (disk full while
   * writing it) leaves its temp file removed, the previous snapshot and the WAL untouched, and the
   * store writable; it is counted and its error kept in stats. If the disk is really full, the next
   * WAL write fails and turns the store read-only then.
   */

  snapshot(): Promise<void> {
    if (this.closing) return Promise.reject(new ShoalError('CLOSED', 'store is closed'));
    if (this.readOnlyReason !== null) return Promise.reject(new ShoalError('READ_ONLY', this.readOnlyReason));
    this.snapshotRunning ??= this.runSnapshot()
      .catch((err: unknown) => {
        if (!this.closing) {
          this.snapshotFailures += 1;
          this.lastSnapshotError = err instanceof Error ? err.message : String(err);
        }
        throw err;
      })
      .finally(() => {
        this.snapshotRunning = null;
      });
    return this.snapshotRunning;
  }

  private async runSnapshot(): Promise<void> {
    const t0 = this.opts.clock.monotonicMs();
    this.walBytesAtSnapshot = this.wal.appendedBytes;
    const seq = await this.wal.rotate();
    const nowMs = this.opts.clock.now();
    const written = await writeSnapshot(
      { entries: this.map, tombstoneAtMs: this.tombstoneAtMs },
      {
        dir: this.dir,
        seq,
        nowMs,
        chunkBytes: this.opts.snapshotChunkBytes,
        sliceMs: this.opts.snapshotSliceMs,
        io: this.io,
        clock: this.opts.clock,
        aborted: () => this.closing,
      },
    );
    if (this.readOnlyReason !== null) {
      // The WAL failed meanwhile: the snapshot may hold writes that were rejected and undone.
      await this.io.unlink(path.join(this.dir, written.name));
      throw new ShoalError('READ_ONLY', `snapshot discarded, the store turned read-only while writing it: ${this.readOnlyReason}`);
    }
    this.snapshotSeqSeen.clear();
    this.snapshotSeqSeen.set(written.name, this.wal.lastSeq);
    this.snapshotFiles = this.snapshotFiles.filter((s) => s.seq !== seq);
    this.snapshotFiles.push({ name: written.name, seq });
    while (this.snapshotFiles.length > SNAPSHOTS_KEPT) {
      const old = this.snapshotFiles.shift() as NamedSeq;
      await this.io.unlink(path.join(this.dir, old.name));
    }
    // Keep the WAL the fallback snapshot needs; delete what both kept snapshots cover.
    if (this.snapshotFiles.length >= SNAPSHOTS_KEPT) await this.wal.deleteSegmentsThrough(this.snapshotFiles[0].seq);
    this.snapshotsTaken += 1;
    this.lastSnapshotAtMs = nowMs;
    this.logger.info('store: snapshot written', {
      file: written.name,
      entries: written.count,
      bytes: written.bytes,
      ms: Math.round(this.opts.clock.monotonicMs() - t0),
    });
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  stats(): StoreStats {
    return {
      keys: this.map.size - this.tombstones,
      tombstones: this.tombstones,
      valueBytes: this.valueBytes,
      walBytes: this.wal.walBytes,
      walSegments: this.wal.segmentCount,
      snapshots: this.snapshotsTaken,
      lastSnapshotAtMs: this.lastSnapshotAtMs,
      fsyncs: this.wal.fsyncs,
      fsyncLatencyMsLast: this.wal.fsyncLatencyMsLast,
      expired: this.expired,
      readOnly: this.readOnlyReason !== null,
      readOnlyReason: this.readOnlyReason,
      snapshotFailures: this.snapshotFailures,
      lastSnapshotError: this.lastSnapshotError,
    };
  }

  /** Batch sizes of the last written WAL batches (records, bytes), for the benchmark. */
  walBatches(): { records: number[]; bytes: number[] } {
    return { records: this.wal.batchSizes.slice(), bytes: this.wal.batchBytes.slice() };
  }

  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    for (const t of this.timers) this.opts.clock.clearInterval(t);
    try {
      if (this.snapshotRunning) await this.snapshotRunning.catch(() => {});
      await this.wal.close();
    } finally {
      await this.lock.release();
    }
  }
}
