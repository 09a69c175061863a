/**
 * The write-ahead log: segment files, group commit and the fsync policies.
 *
 * Records are encoded into the open batch as they are appended (so each gets its sequence number at
 * once); one drain loop writes batches in order. A batch is everything appended during one event-loop
 * turn, or while the previous batch was being written and synced: it costs one write and, with
 * `always`, one fdatasync, and every append in it shares one promise that settles after that.
 *
 * With `always` the group commit is pipelined: batch k+1 is written while batch k's fdatasync runs
 * (at most one fdatasync in flight, one written batch behind it). A batch is acknowledged only after
 * an fdatasync that started after its write completed, and batches are acknowledged in order.
 *
 * Policies: `always` resolves after fdatasync; `interval` resolves after the write reached the OS
 * and fdatasyncs every fsyncIntervalMs; `none` resolves after the write reached the OS (survives a
 * process crash, not a power loss). A write or fdatasync error is fatal: the batches in flight and
 * queued reject with READ_ONLY, every later append too, and nothing is retried. The bytes of the
 * batch that failed are cut off the segment (ftruncate), so a rejected record does not come back
 * at the next open; `onFailure` tells the store which records were rejected so it can undo them.
 */
import assert from 'node:assert/strict';
import { type Clock, type ClockTimer, yieldTurn } from '../clock.js';
import { ShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import { type DirIo, fsyncDir, writeFully } from './fsio.js';
import { segmentName } from './layout.js';
import { encodeRecord, type KIND_DROP, payloadCapacity, RECORD_HEADER_BYTES } from './record.js';
import type { Entry, FsyncPolicy } from './types.js';
import path from 'node:path';

export interface WalOptions {
  dir: string;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  walSegmentBytesMax: number;
  io: DirIo;
  /** The group-commit turns, the fsync interval timer and the fsync latency measure. */
  clock: Clock;
  logger: Logger;
  /**
   * Called once when the WAL fails and the store must stop accepting writes: every record with a
   * sequence number above `ackedSeq` is rejected (never acknowledged) and must be undone.
   */
  onFailure: (failure: ShoalError, ackedSeq: number) => void;
  /** Called after each acknowledged batch with its last sequence number. */
  onAcked?: (seq: number) => void;
  /** Called with the duration of each fdatasync (the fsync latency histogram). */
  onFsync?: (latencyMs: number) => void;
}

export interface SegmentState {
  name: string;
  /** Sequence number of the segment's first record. */
  firstSeq: number;
  bytes: number;
}

/** Where recovery left the log. */
export interface WalStart {
  /** Existing segments, oldest first. */
  segments: SegmentState[];
  /** The sequence number the next record gets. */
  nextSeq: number;
  /** Keep appending to the last existing segment (else the next batch opens a new one). */
  appendToLast: boolean;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Resolves (and removes) the waiters whose sequence number is covered by `seq`. */
function settle(list: Waiter[], seq: number): void {
  if (list.length === 0 || list[0].seq > seq) return;
  let n = 0;
  while (n < list.length && list[n].seq <= seq) list[n++].resolve();
  list.splice(0, n);
}

/** The batch whose fdatasync is running (fsync `always`): its outcome never rejects (an error is returned). */
interface InFlight {
  batch: Batch;
  /** Where the batch starts in the active segment (the cut if its fdatasync fails). */
  start: number;
  done: Promise<Error | null>;
}

interface Batch {
  buf: Buffer;
  bytes: number;
  records: number;
  firstSeq: number;
  lastSeq: number;
  /** Start a new segment before writing this batch. */
  newSegment: boolean;
  promise: Promise<boolean>;
  resolve: (v: boolean) => void;
  reject: (e: Error) => void;
}

const BATCH_BYTES_INITIAL = 64 * 1024;
/** Spare batch buffers above this size are dropped instead of reused, so a burst does not pin memory. */
const BATCH_BYTES_RECYCLE_MAX = 4 * 1024 * 1024;

export class Wal {
  private readonly opts: WalOptions;
  private readonly segments: SegmentState[];
  private active: SegmentState | null = null;
  private fd = -1;
  private current: Batch;
  private readonly queue: Batch[] = [];
  private spare: Buffer | null = null;
  private nextSeq: number;
  private rotateNext = false;
  private draining = false;
  /** The running drain loop (it never rejects); close() waits for it before closing the file. */
  private drainRunning: Promise<void> = Promise.resolve();
  private scheduled = false;
  /** The active segment has written but not yet fdatasynced bytes. */
  private dirty = false;
  /** The interval timer asked for an fdatasync. */
  private intervalDue = false;
  /** Last sequence number written to the OS, and last one fdatasynced. */
  private writtenSeq: number;
  private syncedSeq: number;
  /** Last sequence number whose batch was acknowledged (its promise resolved). */
  private ackedSeq: number;
  /** Under `always`: the written batch whose fdatasync runs while the next batch is written. */
  private inFlight: InFlight | null = null;
  private flushWaiters: Waiter[] = [];
  private syncWaiters: Waiter[] = [];
  private intervalTimer: ClockTimer | null = null;
  private closed = false;
  /** The READ_ONLY error every write gets once the log has failed. */
  failure: ShoalError | null = null;
  fsyncs = 0;
  fsyncLatencyMsLast = 0;
  /** Record bytes appended since open (a cheap counter for snapshot-by-WAL-bytes). */
  appendedBytes = 0;
  /** Records per written batch, for the benchmark (bounded: only the last 4096). */
  readonly batchSizes: number[] = [];
  readonly batchBytes: number[] = [];

  private constructor(opts: WalOptions, start: WalStart) {
    this.opts = opts;
    this.segments = start.segments.slice();
    this.nextSeq = start.nextSeq;
    this.writtenSeq = start.nextSeq - 1;
    this.syncedSeq = start.nextSeq - 1;
    this.ackedSeq = start.nextSeq - 1;
    this.rotateNext = !start.appendToLast;
    this.current = this.newBatch(BATCH_BYTES_INITIAL);
  }

  static async open(opts: WalOptions, start: WalStart): Promise<Wal> {
    const wal = new Wal(opts, start);
    const last = wal.segments[wal.segments.length - 1];
    if (start.appendToLast && last) {
      wal.fd = await opts.io.open(path.join(opts.dir, last.name), 'r+');
      wal.active = last;
      // The records recovery just replayed may be in the page cache only: written by a process killed
      // before its fdatasync. Make them durable before anything is served or appended, or a power loss
      // after a rotation would tear this segment's tail while later segments are whole, and the next
      // open would refuse the directory as corrupt in the middle. (Found by the simulated disk.)
      await opts.io.fdatasync(wal.fd);
    }
    if (opts.fsync === 'interval') {
      wal.intervalTimer = opts.clock.setInterval(() => {
        if (!wal.dirty) return;
        wal.intervalDue = true;
        wal.schedule();
      }, opts.fsyncIntervalMs);
      wal.intervalTimer.unref();
    }
    return wal;
  }

  private newBatch(bytes: number): Batch {
    let resolve!: (v: boolean) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<boolean>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const spare = this.spare;
    this.spare = null;
    const buf = spare !== null && spare.length >= bytes ? spare : Buffer.allocUnsafe(bytes);
    return { buf, bytes: 0, records: 0, firstSeq: this.nextSeq, lastSeq: this.nextSeq - 1, newSegment: false, promise, resolve, reject };
  }

  /** Bytes in all segments, including what is appended but not yet written. */
  get walBytes(): number {
    let n = this.current.bytes;
    for (const s of this.segments) n += s.bytes;
    for (const b of this.queue) n += b.bytes;
    return n;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Sequence number of the last appended record. */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /**
   * Appends one record to the open batch. The caller has checked the store is writable. Resolves
   * `true` once the record is durable under the policy; rejects READ_ONLY if the log fails first.
   */
  append(key: string, entry: Entry, deletedAtMs: number | undefined, kind?: typeof KIND_DROP): Promise<boolean> {
    if (this.failure) return Promise.reject(this.failure);
    let batch = this.current;
    const need = RECORD_HEADER_BYTES + payloadCapacity(key, entry.node, entry.value === null ? 0 : entry.value.length);
    if (batch.bytes + need > batch.buf.length) this.grow(batch, batch.bytes + need);
    batch = this.current;
    const end = encodeRecord(batch.buf, batch.bytes, this.nextSeq, key, entry, deletedAtMs, kind);
    this.appendedBytes += end - batch.bytes;
    batch.bytes = end;
    batch.lastSeq = this.nextSeq;
    this.nextSeq += 1;
    batch.records += 1;
    this.schedule();
    return batch.promise;
  }

  private grow(batch: Batch, bytes: number): void {
    const buf = Buffer.allocUnsafe(Math.max(bytes, batch.buf.length * 2));
    batch.buf.copy(buf, 0, 0, batch.bytes);
    batch.buf = buf;
  }

  /** Closes the open batch (the caller queues or writes it); the next appends start a new one. */
  private seal(): Batch {
    const batch = this.current;
    if (this.rotateNext) {
      batch.newSegment = true;
      this.rotateNext = false;
    }
    this.current = this.newBatch(BATCH_BYTES_INITIAL);
    return batch;
  }

  /**
   * Ends the active segment: records appended from now on go to a new one. Resolves with the last
   * sequence number of the old segment once everything up to it is written and fdatasynced.
   */
  async rotate(): Promise<number> {
    if (this.current.records > 0) this.queue.push(this.seal());
    this.rotateNext = true;
    const seq = this.nextSeq - 1;
    await this.sync();
    return seq;
  }

  /** Resolves once everything appended so far has been written to the OS. */
  flush(): Promise<void> {
    return this.waitFor(this.flushWaiters);
  }

  /** Resolves once everything appended so far has been written and fdatasynced. */
  sync(): Promise<void> {
    return this.waitFor(this.syncWaiters);
  }

  private waitFor(list: Waiter[]): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const seq = this.nextSeq - 1;
    if ((list === this.flushWaiters ? this.writtenSeq : this.syncedSeq) >= seq) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      list.push({ seq, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.draining || this.scheduled) return;
    this.scheduled = true;
    this.opts.clock.setImmediate(this.drainBound);
  }

  private readonly drainBound = (): void => {
    this.scheduled = false;
    this.drainRunning = this.drain();
  };

  /** The one loop that writes batches and syncs, in order; runs while there is work. */
  private async drain(): Promise<void> {
    if (this.draining || this.failure) return;
    this.draining = true;
    const pipelined = this.opts.fsync === 'always';
    try {
      while (true) {
        let batch = this.queue.shift();
        if (batch === undefined && this.current.records > 0) batch = this.seal();
        if (batch !== undefined) {
          const start = await this.writeBatch(batch);
          if (pipelined) {
            // The batch before this one was being fdatasynced while this one was written: acknowledge
            // it, then start this one's fdatasync and let its writers' successors fill the next batch.
            try {
              await this.finishInFlight();
            } catch (err) {
              batch.reject(this.fail(err as Error));
              throw err;
            }
            this.startSync(batch, start);
          } else {
            this.ack(batch);
          }
        } else if (this.inFlight !== null) {
          await this.finishInFlight();
        }
        settle(this.flushWaiters, this.writtenSeq);
        const waiting = this.syncWaiters.length > 0 && this.syncWaiters[0].seq <= this.writtenSeq;
        const syncDue = this.inFlight === null && this.dirty && (this.intervalDue || waiting);
        if (syncDue) {
          this.intervalDue = false;
          await this.fdatasync();
        }
        settle(this.syncWaiters, this.syncedSeq);
        if (batch === undefined && !syncDue && this.inFlight === null) break;
        if (this.queue.length === 0 && (this.current.records > 0 || this.inFlight !== null)) {
          // Let the writers woken by the last acknowledgement run before sealing the next batch, so
          // they share it (and, with a sync in flight, it is written while that sync runs).
          await yieldTurn(this.opts.clock);
        }
      }
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.draining = false;
    }
    if (!this.failure && (this.current.records > 0 || this.flushWaiters.length > 0 || this.syncWaiters.length > 0)) {
      this.schedule();
    }
  }

  /**
   * Writes one batch at the end of the active segment (opening a new one first if due) and returns
   * the offset it starts at. Does not acknowledge it. On failure the log fails: every record not yet
   * acknowledged is rejected and undone, the unacknowledged bytes are cut off, and this throws.
   */
  private async writeBatch(batch: Batch): Promise<number> {
    /** Where this batch's bytes start in the active segment (-1 until the segment is open). */
    let start = -1;
    try {
      if (batch.newSegment || this.active === null || this.active.bytes >= this.opts.walSegmentBytesMax) {
        // The batch being synced belongs to the old segment: settle it before closing that file.
        await this.finishInFlight();
        await this.openSegment(batch.firstSeq);
      }
      const active = this.active as SegmentState;
      // Batches are written in sequence order, each directly after the last: no gap, no overlap.
      assert.equal(batch.firstSeq, this.writtenSeq + 1, `WAL batch starts at seq ${batch.firstSeq}, the last written was ${this.writtenSeq}`);
      assert.ok(batch.lastSeq - batch.firstSeq + 1 === batch.records, 'a WAL batch holds one record per sequence number');
      start = active.bytes;
      await writeFully(this.opts.io, this.fd, batch.buf, 0, batch.bytes, active.bytes);
      active.bytes += batch.bytes;
      this.writtenSeq = batch.lastSeq;
      this.dirty = true;
    } catch (err) {
      if (this.failure !== null) {
        // finishInFlight failed the log (the batch before this one did not sync) and cut its bytes.
        batch.reject(this.failure);
        throw err;
      }
      // A write error while the batch before this one is being synced: that batch is acknowledged
      // if its fdatasync succeeds (its bytes precede this batch's), else it fails with this one.
      const prior = this.inFlight;
      if (prior !== null) {
        this.inFlight = null;
        const syncErr = await prior.done;
        if (syncErr === null) {
          this.ack(prior.batch);
        } else {
          const failure = this.fail(syncErr);
          await this.cutFailedBatch(prior.start);
          prior.batch.reject(failure);
          batch.reject(failure);
          throw syncErr;
        }
      }
      // Refuse writes and undo the rejected records in memory first, then cut the batch's bytes
      // (some may have reached the file: a short write), and only then tell its writers, so that
      // what they were told holds after a restart too.
      const failure = this.fail(err as Error);
      if (start >= 0) await this.cutFailedBatch(start);
      batch.reject(failure);
      throw err;
    }
    if (this.batchSizes.length >= 4096) {
      this.batchSizes.shift();
      this.batchBytes.shift();
    }
    this.batchSizes.push(batch.records);
    this.batchBytes.push(batch.bytes);
    if (batch.buf.length <= BATCH_BYTES_RECYCLE_MAX) this.spare = batch.buf;
    return start;
  }

  /** Acknowledges a written (and, under `always`, fdatasynced) batch: its writers' promise resolves. */
  private ack(batch: Batch): void {
    assert.ok(batch.lastSeq > this.ackedSeq, 'acknowledged WAL sequence numbers only go up');
    assert.ok(this.opts.fsync !== 'always' || this.syncedSeq >= batch.lastSeq, 'under fsync always a batch is acknowledged only after an fdatasync covers it');
    this.ackedSeq = batch.lastSeq;
    batch.resolve(true);
    this.opts.onAcked?.(batch.lastSeq);
  }

  /**
   * Starts the fdatasync that covers `batch` (written at `start`; every earlier batch is acknowledged
   * or covered too) without waiting for it: the next batch is encoded and written meanwhile.
   */
  private startSync(batch: Batch, start: number): void {
    assert.ok(this.inFlight === null, 'one WAL fdatasync in flight at a time');
    const seq = this.writtenSeq;
    assert.equal(seq, batch.lastSeq, 'the fdatasync in flight covers exactly up to its batch');
    const t0 = this.opts.clock.monotonicMs();
    const done = this.opts.io.fdatasync(this.fd).then(
      () => {
        this.noteSynced(seq, t0);
        return null;
      },
      (err: Error) => err,
    );
    this.inFlight = { batch, start, done };
  }

  /**
   * Waits for the fdatasync in flight (if any) and acknowledges its batch; if it failed, fails the
   * log from that batch on (the store undoes it and everything after it), cuts its bytes and throws.
   */
  private async finishInFlight(): Promise<void> {
    const f = this.inFlight;
    if (f === null) return;
    const err = await f.done;
    this.inFlight = null;
    if (err === null) {
      this.ack(f.batch);
      return;
    }
    const failure = this.fail(err);
    await this.cutFailedBatch(f.start);
    f.batch.reject(failure);
    throw err;
  }

  /** Truncates the active segment back to `length` after a failed batch and fdatasyncs it (best effort, logged). */
  private async cutFailedBatch(length: number): Promise<void> {
    const active = this.active as SegmentState;
    try {
      await this.opts.io.ftruncate(this.fd, length);
      active.bytes = length;
    } catch (err) {
      this.opts.logger.error('wal: could not cut the failed batch off the segment; its records may reappear at the next open', {
        segment: active.name,
        offset: length,
        error: (err as Error).message,
      });
      return;
    }
    try {
      // The cut must be durable as well: the batch's bytes may have reached the disk (written back
      // before its fdatasync failed, or a short write's part), and a power loss before the truncation is
      // on disk would bring the rejected records back at the next open. (Found by the simulated disk.)
      await this.opts.io.fdatasync(this.fd);
    } catch (err) {
      this.opts.logger.error('wal: the cut of the failed batch is not durable; its records may reappear after a power loss', {
        segment: active.name,
        offset: length,
        error: (err as Error).message,
      });
    }
  }

  private async fdatasync(): Promise<void> {
    assert.ok(this.inFlight === null, 'no WAL fdatasync starts while another is in flight');
    const seq = this.writtenSeq;
    const t0 = this.opts.clock.monotonicMs();
    await this.opts.io.fdatasync(this.fd);
    this.noteSynced(seq, t0);
  }

  /** An fdatasync started at `t0` (after everything up to `seq` was written) succeeded. */
  private noteSynced(seq: number, t0: number): void {
    this.fsyncLatencyMsLast = this.opts.clock.monotonicMs() - t0;
    this.fsyncs += 1;
    this.opts.onFsync?.(this.fsyncLatencyMsLast);
    assert.ok(seq >= this.syncedSeq, 'fdatasynced WAL sequence numbers never go back');
    this.syncedSeq = seq;
    this.dirty = this.writtenSeq > seq;
  }

  private async openSegment(firstSeq: number): Promise<void> {
    const io = this.opts.io;
    if (this.fd >= 0) {
      if (this.dirty) await this.fdatasync(); // a closed segment is always fully synced
      await io.close(this.fd);
      this.fd = -1;
    }
    const name = segmentName(firstSeq);
    this.fd = await io.open(path.join(this.opts.dir, name), 'wx');
    if (this.opts.fsync !== 'none') await fsyncDir(io, this.opts.dir);
    this.active = { name, firstSeq, bytes: 0 };
    this.segments.push(this.active);
  }

  /**
   * Marks the log failed (once), lets the store undo the rejected records, rejects everything
   * queued, and returns the READ_ONLY error.
   */
  private fail(err: Error): ShoalError {
    if (this.failure) return this.failure;
    const errno = (err as NodeJS.ErrnoException).code;
    const what = errno === 'ENOSPC' ? 'disk full (ENOSPC)' : errno === undefined ? 'I/O error' : `I/O error (${errno})`;
    const segment = this.active?.name ?? 'segment';
    const reason = `${what} on WAL ${segment}: ${err.message}; writes are refused (not stored) until the store is reopened`;
    this.failure = new ShoalError('READ_ONLY', reason, { cause: err.message, errno: errno ?? null });
    this.opts.logger.error('wal: write or fsync failed, store is now read-only', { segment, errno, error: err.message });
    this.opts.onFailure(this.failure, this.ackedSeq);
    for (const b of this.queue.splice(0)) b.reject(this.failure);
    if (this.current.records > 0) this.current.reject(this.failure);
    for (const w of this.syncWaiters.splice(0)) w.reject(this.failure);
    for (const w of this.flushWaiters.splice(0)) w.reject(this.failure);
    return this.failure;
  }

  /**
   * Deletes segments (never the active one) whose records all have sequence numbers ≤ `seq`.
   */
  async deleteSegmentsThrough(seq: number): Promise<void> {
    while (this.segments.length > 1 && this.segments[0] !== this.active && this.segments[1].firstSeq - 1 <= seq) {
      const seg = this.segments.shift() as SegmentState;
      await this.opts.io.unlink(path.join(this.opts.dir, seg.name));
      this.opts.logger.debug('wal: deleted covered segment', { segment: seg.name });
    }
  }

  /** Writes and syncs everything appended, then closes the active segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.intervalTimer) this.opts.clock.clearInterval(this.intervalTimer);
    try {
      if (!this.failure) {
        await this.flush();
        await this.sync();
      }
    } finally {
      await this.drainRunning; // a failed batch may still be cutting its bytes off the segment
      if (this.fd >= 0) {
        const fd = this.fd;
        this.fd = -1;
        await this.opts.io.close(fd).catch(() => {});
      }
    }
  }
}
