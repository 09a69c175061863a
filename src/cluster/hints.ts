/**
 * Durable, bounded hinted-handoff store. A coordinator (or a stand-in) that could not reach a replica
 * keeps the write here as a hint for that replica and replays it when the replica is back.
 *
 * Layout: per target, append-only segment files `<hex(targetId)>.<seq>.hint` in `dir`, each an 8-byte
 * header ("SHNT", u32 version) and records `u32 length | u32 crc32c(payload) | payload`, the payload
 * msgpack `{ k: key, t: ts, n: node, v: value | null, x?: expiresAtMs, a: addedAtMs }`.
 *
 * - add() reserves room against hintsMax / hintBytesMax (UNAVAILABLE when full: the write then simply
 *   has one replica fewer, which the coordinator reports), queues the record and resolves once it is
 *   durable. All adds of one event-loop turn for a target share one write and one fdatasync (group
 *   commit). A write or fsync error is fatal for the store: every later add fails with UNAVAILABLE.
 * - replay() first seals the target's segments (later adds go to a new segment), then reads them back,
 *   sends each hint at a bounded rate and drops it only once send() resolved. At the first failed send
 *   it stops sending (the target is probably gone again); what was not delivered is written to a new
 *   compacted segment (temp file, fsync, rename, fsync dir) before the sealed segments are deleted.
 *   A crash at any point re-sends some hints at worst, which is harmless: replicas apply last-writer-wins.
 * - Hints older than hintTtlMs are dropped unsent at replay (like Cassandra's max_hint_window: after
 *   that long anti-entropy is the better repair). The tombstone grace period must exceed it.
 * - open() scans every segment to rebuild the counters. A record that fails its checksum ends its
 *   segment: the rest of that segment is counted in stats().corruptRecords and skipped with a warning
 *   (hints are an optimisation; anti-entropy repairs what they miss), never a refusal to start.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { type Clock, sleep, systemClock } from '../clock.js';
import { pack, unpack } from '../codec.js';
import { ShoalError, toShoalError } from '../errors.js';
import { nullLogger, type Logger } from '../log.js';
import { mutant } from '../mutations.js';
import { type FileIo, type FsIo, fsyncDir, withFileIo, writeFully } from '../storage/fsio.js';
import type { Entry } from '../storage/types.js';

export interface HintStoreOptions {
  /** Most hints kept, all targets together. */
  hintsMax?: number;
  /** Most record bytes kept, all targets together. */
  hintBytesMax?: number;
  /** fdatasync each add batch before resolving (false: rely on the OS; faster, loses hints on a crash). */
  fsync?: boolean;
  /** Hints older than this are dropped at replay instead of sent. */
  hintTtlMs?: number;
  /** Replay rate when replay() is not given maxPerSec. */
  replayPerSecMax?: number;
  /** Sends in flight at once during a replay. */
  replayConcurrency?: number;
  /** Time, timers and the group-commit turn (default systemClock; the simulator gives its own). */
  clock?: Clock;
  /** Tests: overrides clock.now (hint ages, the replay rate). */
  now?: () => number;
  /** Tests: overrides sleeping on the clock's timers (the replay rate limiter). */
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
  /** Every file access of the hint store (default node's file system); the simulator gives a SimDisk's. */
  fs?: FsIo;
  /** Tests: replaces the file operations of the write paths over `fs` (record or fail each step). */
  io?: FileIo;
}

export const HINT_DEFAULTS = {
  hintsMax: 100_000, // ~1.5 min of 1000 writes/s for one dead replica; beyond that anti-entropy is cheaper
  hintBytesMax: 256 * 1024 * 1024, // disk, not memory: hints are read back from the files at replay
  fsync: true, // a hint counts towards W only if it survives a crash of the stand-in
  hintTtlMs: 3 * 3_600_000, // Cassandra's max_hint_window default; tombstone grace must be longer
  replayPerSecMax: 1000, // keeps a returning node's disk and the network free for live traffic
  replayConcurrency: 4, // enough to hide one round trip of latency per send
} as const;

export const HINT_LIMITS = {
  /** A record larger than this is treated as corruption when read back. */
  recordBytesMax: 64 * 1024 * 1024,
  /** Target ids (member ids) are bounded like keys. */
  targetIdBytesMax: 256,
  /** Read-back chunk size. */
  readChunkBytes: 1024 * 1024,
} as const;

export interface ReplayResult {
  sent: number;
  failed: number;
  /** Dropped unsent because older than hintTtlMs. */
  expired: number;
  /** Hints still pending for the target afterwards. */
  remaining: number;
}

export interface HintStats {
  hints: number;
  hintBytes: number;
  targets: number;
  hintsMax: number;
  hintBytesMax: number;
  added: number;
  /** Group-commit batches written (one write + one fdatasync each). */
  batches: number;
  replayed: number;
  replayFailed: number;
  expired: number;
  rejectedFull: number;
  corruptRecords: number;
  segments: number;
  failed: string | null;
}

const MAGIC = Buffer.from('SHNT');
const FORMAT_VERSION = 1;
const HEADER_BYTES = 8;
const RECORD_HEADER_BYTES = 8;
const SEGMENT_RE = /^([0-9a-f]+)\.(\d{8})\.hint$/;

interface Pending {
  record: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Target {
  id: string;
  hex: string;
  /** Segments on disk (sealed, compacted and the active one) → the hints and bytes each holds. */
  segments: Map<number, { count: number; bytes: number }>;
  active: Active | null;
  /** Reserved by add(), including queued records not yet written. */
  count: number;
  bytes: number;
  queue: Pending[];
  /** Serialises writes, seals and compactions of this target. */
  chain: Promise<void>;
  replaying: Promise<ReplayResult> | null;
}

/** The segment adds go to: its descriptor and the offset the next batch is written at. */
interface Active {
  seq: number;
  fd: number;
  size: number;
}

interface HintRecord {
  key: string;
  entry: Entry;
  addedAtMs: number;
}

function segmentName(hex: string, seq: number): string {
  return `${hex}.${String(seq).padStart(8, '0')}.hint`;
}

function encodeRecord(key: string, entry: Entry, addedAtMs: number): Buffer {
  const body: Record<string, unknown> = { k: key, t: entry.ts, n: entry.node, v: entry.value, a: addedAtMs };
  if (entry.expiresAtMs !== undefined) body.x = entry.expiresAtMs;
  const payload = pack(body);
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  record.writeUInt32BE(payload.length, 0);
  record.writeUInt32BE(crc32c(payload), 4);
  payload.copy(record, RECORD_HEADER_BYTES);
  return record;
}

function decodePayload(payload: Buffer): HintRecord | null {
  const body = unpack(payload) as Record<string, unknown> | null;
  if (typeof body !== 'object' || body === null) return null;
  const { k, t, n, v, x, a } = body;
  if (typeof k !== 'string' || !Number.isSafeInteger(t) || typeof n !== 'string' || typeof a !== 'number') return null;
  if (v !== null && !(v instanceof Uint8Array)) return null;
  const entry: Entry = { ts: t as number, node: n, value: v === null ? null : Buffer.from(v.buffer, v.byteOffset, v.byteLength) };
  if (typeof x === 'number') entry.expiresAtMs = x;
  return { key: k, entry, addedAtMs: a };
}

function validateEntry(key: unknown, entry: Entry): void {
  const ok =
    typeof key === 'string' &&
    typeof entry === 'object' &&
    entry !== null &&
    Number.isSafeInteger(entry.ts) &&
    typeof entry.node === 'string' &&
    (entry.value === null || Buffer.isBuffer(entry.value)) &&
    (entry.expiresAtMs === undefined || typeof entry.expiresAtMs === 'number');
  if (!ok) throw new ShoalError('BAD_REQUEST', 'hint must be a string key and an Entry { ts, node, value: Buffer | null, expiresAtMs? }');
}

/**
 * Reads the records of one segment, chunk by chunk. Yields raw records (header included) with their
 * decoded hint; stops at the end or at the first bad record, reporting how many bytes were unreadable.
 */
async function* readSegment(fs: FsIo, path: string): AsyncGenerator<{ raw: Buffer; hint: HintRecord } | { bad: string }> {
  const fd = await fs.open(path, 'r');
  try {
    const size = (await fs.fstat(fd)).size;
    const header = Buffer.alloc(HEADER_BYTES);
    const bytesRead = await fs.read(fd, header, 0, HEADER_BYTES, 0);
    if (bytesRead < HEADER_BYTES || !header.subarray(0, 4).equals(MAGIC) || header.readUInt32BE(4) !== FORMAT_VERSION) {
      if (size > 0) yield { bad: 'bad segment header' };
      return;
    }
    let position = HEADER_BYTES;
    let carry = Buffer.alloc(0);
    while (position < size || carry.length > 0) {
      if (position < size) {
        const chunk = Buffer.allocUnsafe(Math.min(HINT_LIMITS.readChunkBytes, size - position));
        const got = await fs.read(fd, chunk, 0, chunk.length, position);
        if (got === 0) break;
        position += got;
        carry = carry.length === 0 ? chunk.subarray(0, got) : Buffer.concat([carry, chunk.subarray(0, got)]);
      }
      let offset = 0;
      while (carry.length - offset >= RECORD_HEADER_BYTES) {
        const length = carry.readUInt32BE(offset);
        if (length > HINT_LIMITS.recordBytesMax) {
          yield { bad: `record length ${length} over the limit` };
          return;
        }
        if (carry.length - offset < RECORD_HEADER_BYTES + length) break;
        const payload = carry.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length);
        if (crc32c(payload) !== carry.readUInt32BE(offset + 4)) {
          yield { bad: 'checksum mismatch' };
          return;
        }
        let hint: HintRecord | null = null;
        try {
          hint = decodePayload(payload);
        } catch {
          hint = null;
        }
        if (hint === null) {
          yield { bad: 'undecodable record' };
          return;
        }
        yield { raw: Buffer.from(carry.subarray(offset, offset + RECORD_HEADER_BYTES + length)), hint };
        offset += RECORD_HEADER_BYTES + length;
      }
      carry = carry.subarray(offset);
      if (position >= size && carry.length > 0) {
        yield { bad: `truncated record (${carry.length} bytes at the end)` };
        return;
      }
    }
  } finally {
    await fs.close(fd);
  }
}

export class HintStore {
  private readonly dir: string;
  private readonly hintsMax: number;
  private readonly hintBytesMax: number;
  private readonly fsync: boolean;
  private readonly hintTtlMs: number;
  private readonly replayPerSecMax: number;
  private readonly replayConcurrency: number;
  private readonly clock: Clock;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly logger: Logger;
  private readonly io: FsIo;
  private readonly byTarget = new Map<string, Target>();
  private count = 0;
  private bytes = 0;
  private nextSeq = 1;
  private flushScheduled = false;
  private closed = false;
  private failure: Error | null = null;
  private readonly counters = { added: 0, batches: 0, replayed: 0, replayFailed: 0, expired: 0, rejectedFull: 0, corruptRecords: 0 };

  private constructor(dir: string, options: HintStoreOptions) {
    this.dir = dir;
    this.hintsMax = options.hintsMax ?? HINT_DEFAULTS.hintsMax;
    this.hintBytesMax = options.hintBytesMax ?? HINT_DEFAULTS.hintBytesMax;
    this.fsync = options.fsync ?? HINT_DEFAULTS.fsync;
    this.hintTtlMs = options.hintTtlMs ?? HINT_DEFAULTS.hintTtlMs;
    this.replayPerSecMax = options.replayPerSecMax ?? HINT_DEFAULTS.replayPerSecMax;
    this.replayConcurrency = options.replayConcurrency ?? HINT_DEFAULTS.replayConcurrency;
    const clock = options.clock ?? systemClock;
    this.clock = clock;
    this.now = options.now ?? (() => clock.now());
    this.sleep = options.sleep ?? ((ms) => sleep(clock, ms));
    this.logger = options.logger ?? nullLogger;
    this.io = withFileIo(options.fs, options.io);
    for (const [name, value] of Object.entries({
      hintsMax: this.hintsMax,
      hintBytesMax: this.hintBytesMax,
      replayPerSecMax: this.replayPerSecMax,
      replayConcurrency: this.replayConcurrency,
    })) {
      if (!Number.isInteger(value) || value < 1) throw new ShoalError('CONFIG', `hints ${name} must be a positive integer, got ${value}`);
    }
  }

  /** Opens (creating) the hint directory and counts the hints already there. */
  static async open(dir: string, options: HintStoreOptions = {}): Promise<HintStore> {
    const store = new HintStore(dir, options);
    await store.io.mkdir(dir);
    await store.recover();
    return store;
  }

  /** Stores a hint for `targetId`; resolves once durable. UNAVAILABLE when the store is full. */
  add(targetId: string, key: string, entry: Entry): Promise<void> {
    if (this.closed) return Promise.reject(new ShoalError('CLOSED', 'hint store is closed'));
    if (this.failure) return Promise.reject(new ShoalError('UNAVAILABLE', `hint store failed: ${this.failure.message}`));
    let target: Target;
    let record: Buffer;
    try {
      validateEntry(key, entry);
      target = this.target(targetId);
      record = encodeRecord(key, entry, this.now());
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.count + 1 > this.hintsMax || this.bytes + record.length > this.hintBytesMax) {
      this.counters.rejectedFull++;
      return Promise.reject(
        new ShoalError('UNAVAILABLE', `hint store full (${this.count} hints, ${this.bytes} bytes; limits ${this.hintsMax}, ${this.hintBytesMax})`, {
          hints: this.count,
          hintBytes: this.bytes,
        }),
      );
    }
    this.reserve(target, 1, record.length);
    return new Promise<void>((resolve, reject) => {
      target.queue.push({ record, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** Hints waiting for `targetId` (including ones being written). */
  pendingFor(targetId: string): number {
    return this.byTarget.get(targetId)?.count ?? 0;
  }

  /** Targets with pending hints. */
  targets(): string[] {
    return [...this.byTarget.values()].filter((t) => t.count > 0).map((t) => t.id);
  }

  /**
   * Sends the hints of `targetId` through `send`, at most maxPerSec per second, removing each one only
   * after its send resolved; stops at the first failed send and keeps the rest. A replay already
   * running for the target is joined rather than started twice.
   */
  replay(targetId: string, send: (key: string, entry: Entry) => Promise<void>, options: { maxPerSec?: number } = {}): Promise<ReplayResult> {
    if (this.closed) return Promise.reject(new ShoalError('CLOSED', 'hint store is closed'));
    const target = this.byTarget.get(targetId);
    if (target === undefined) return Promise.resolve({ sent: 0, failed: 0, expired: 0, remaining: 0 });
    if (target.replaying) return target.replaying;
    const maxPerSec = options.maxPerSec ?? this.replayPerSecMax;
    if (!(maxPerSec > 0)) return Promise.reject(new ShoalError('BAD_REQUEST', `replay maxPerSec must be > 0, got ${maxPerSec}`));
    const run = this.runReplay(target, send, maxPerSec).finally(() => {
      target.replaying = null;
    });
    target.replaying = run;
    return run;
  }

  /** Deletes every hint of a target (a member removed from the cluster for good). */
  async drop(targetId: string): Promise<number> {
    const target = this.byTarget.get(targetId);
    if (target === undefined) return 0;
    if (target.replaying) await target.replaying.catch(() => undefined);
    await this.flushNow(target);
    let dropped = 0;
    await this.serial(target, async () => {
      await this.closeActive(target);
      let bytes = 0;
      for (const info of target.segments.values()) {
        dropped += info.count;
        bytes += info.bytes;
      }
      const seqs = [...target.segments.keys()];
      target.segments.clear();
      await Promise.all(seqs.map((seq) => this.io.unlink(join(this.dir, segmentName(target.hex, seq)))));
      await this.syncDir();
      this.reserve(target, -dropped, -bytes);
    });
    return dropped;
  }

  stats(): HintStats {
    let segments = 0;
    for (const t of this.byTarget.values()) segments += t.segments.size;
    return {
      hints: this.count,
      hintBytes: this.bytes,
      targets: this.targets().length,
      hintsMax: this.hintsMax,
      hintBytesMax: this.hintBytesMax,
      ...this.counters,
      segments,
      failed: this.failure ? this.failure.message : null,
    };
  }

  /** Waits for queued adds and running replays, then closes the files. Later calls fail with CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const targets = [...this.byTarget.values()];
    await Promise.all(targets.map((t) => t.replaying?.catch(() => undefined)));
    await Promise.all(targets.map((t) => this.flushNow(t)));
    await Promise.all(targets.map((t) => this.serial(t, () => this.closeActive(t))));
  }

  // ---- internals -------------------------------------------------------------------------------

  private target(id: string): Target {
    let t = this.byTarget.get(id);
    if (t === undefined) {
      if (typeof id !== 'string' || id.length === 0 || Buffer.byteLength(id) > HINT_LIMITS.targetIdBytesMax) {
        throw new ShoalError('BAD_REQUEST', `hint target id must be 1..${HINT_LIMITS.targetIdBytesMax} bytes`);
      }
      t = { id, hex: Buffer.from(id).toString('hex'), segments: new Map(), active: null, count: 0, bytes: 0, queue: [], chain: Promise.resolve(), replaying: null };
      this.byTarget.set(id, t);
    }
    return t;
  }

  private reserve(target: Target, count: number, bytes: number): void {
    target.count += count;
    target.bytes += bytes;
    this.count += count;
    this.bytes += bytes;
    // Every hint is released once (sent, expired, dropped or unreadable): the accounts never go negative.
    assert.ok(target.count >= 0 && target.bytes >= 0, `hint accounts of ${target.id} went negative (${target.count} hints, ${target.bytes} bytes)`);
    assert.ok(this.count >= target.count && this.bytes >= target.bytes, 'the hint store total covers each target');
  }

  /** Runs `task` after everything already queued on the target's chain; the chain never rejects. */
  private serial(target: Target, task: () => Promise<void>): Promise<void> {
    const run = target.chain.then(task);
    target.chain = run.catch(() => undefined);
    return run;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.clock.setImmediate(() => {
      this.flushScheduled = false;
      for (const t of this.byTarget.values()) {
        // flushNow settles every queued add itself; this catch only guards against a bug in it.
        if (t.queue.length > 0) this.flushNow(t).catch((err: unknown) => this.logger.error('hint flush failed', { error: toShoalError(err).message }));
      }
    });
  }

  /** Writes the target's queued records as one batch (one write, one fdatasync). */
  private flushNow(target: Target): Promise<void> {
    if (target.queue.length === 0) return target.chain;
    const batch = target.queue.splice(0);
    return this.serial(target, async () => {
      try {
        if (this.failure) throw new ShoalError('UNAVAILABLE', `hint store failed: ${this.failure.message}`);
        const active = target.active ?? (await this.createSegment(target));
        const data = batch.length === 1 ? batch[0].record : Buffer.concat(batch.map((p) => p.record));
        await writeFully(this.io, active.fd, data, 0, data.length, active.size);
        active.size += data.length;
        if (this.fsync) await this.io.fdatasync(active.fd);
        const info = target.segments.get(active.seq);
        if (info) {
          info.count += batch.length;
          info.bytes += data.length;
        }
      } catch (err) {
        if (!this.failure) {
          this.failure = err instanceof Error ? err : new Error(String(err));
          this.logger.error('hint store write failed; refusing further hints', { dir: this.dir, error: this.failure.message });
        }
        let bytes = 0;
        for (const p of batch) bytes += p.record.length;
        this.reserve(target, -batch.length, -bytes);
        const error = new ShoalError('UNAVAILABLE', `hint store failed: ${this.failure.message}`);
        for (const p of batch) p.reject(error);
        return;
      }
      this.counters.added += batch.length;
      this.counters.batches++;
      for (const p of batch) p.resolve();
    });
  }

  private async createSegment(target: Target): Promise<Active> {
    const seq = this.nextSeq++;
    const fd = await this.io.open(join(this.dir, segmentName(target.hex, seq)), 'wx');
    await writeFully(this.io, fd, segmentHeader(), 0, HEADER_BYTES, 0);
    if (this.fsync) {
      await this.io.fdatasync(fd);
      await this.syncDir();
    }
    target.active = { seq, fd, size: HEADER_BYTES };
    target.segments.set(seq, { count: 0, bytes: 0 });
    return target.active;
  }

  private async closeActive(target: Target): Promise<void> {
    const active = target.active;
    target.active = null;
    if (active) await this.io.close(active.fd);
  }

  private async syncDir(): Promise<void> {
    if (this.fsync) await fsyncDir(this.io, this.dir);
  }

  private async recover(): Promise<void> {
    const names = (await this.io.readdir(this.dir)).sort();
    for (const name of names) {
      if (name.endsWith('.hint.tmp')) {
        await this.io.unlink(join(this.dir, name)); // an interrupted compaction; its sources remain
        continue;
      }
      const match = SEGMENT_RE.exec(name);
      if (!match) continue;
      const id = Buffer.from(match[1], 'hex').toString();
      const seq = Number(match[2]);
      const target = this.target(id);
      const info = { count: 0, bytes: 0 };
      target.segments.set(seq, info);
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
      for await (const item of readSegment(this.io, join(this.dir, name))) {
        if ('bad' in item) {
          this.counters.corruptRecords++;
          this.logger.warn('hint segment damaged; skipping its remainder', { file: join(this.dir, name), reason: item.bad });
        } else {
          this.reserve(target, 1, item.raw.length);
          info.count++;
          info.bytes += item.raw.length;
        }
      }
      if (info.count === 0) {
        target.segments.delete(seq); // nothing (readable) left in it
        await this.io.unlink(join(this.dir, name));
      }
    }
    if (this.count > 0) this.logger.info('hints recovered', { hints: this.count, hintBytes: this.bytes, targets: this.targets().length });
  }

  private async runReplay(target: Target, send: (key: string, entry: Entry) => Promise<void>, maxPerSec: number): Promise<ReplayResult> {
    // Seal: records written so far are in these segments; adds from now on go to a new segment.
    await this.flushNow(target);
    const sealed = new Map<number, { count: number; bytes: number }>();
    await this.serial(target, async () => {
      await this.closeActive(target);
      for (const [seq, info] of target.segments) sealed.set(seq, info);
      target.segments.clear();
    });
    // What the sealed segments still account for in the counters; released as hints leave them.
    const left = { count: 0, bytes: 0 };
    for (const info of sealed.values()) {
      left.count += info.count;
      left.bytes += info.bytes;
    }
    const release = (bytes: number): void => {
      if (left.count <= 0) return;
      left.count--;
      left.bytes -= bytes;
      this.reserve(target, -1, -bytes);
    };
    const result: ReplayResult = { sent: 0, failed: 0, expired: 0, remaining: 0 };
    const keep = new Compactor(this.dir, target.hex, () => this.nextSeq++, this.fsync, this.io);
    const keepRaw = async (raw: Buffer): Promise<void> => {
      await keep.write(raw);
      left.count--;
      left.bytes -= raw.length;
    };
    const limiter = new RateLimiter(maxPerSec, this.now, this.sleep);
    const inFlight = new Set<Promise<void>>();
    let stop = false;
    let keepFailure: unknown = null;
    try {
      for (const seq of sealed.keys()) {
        for await (const item of readSegment(this.io, join(this.dir, segmentName(target.hex, seq)))) {
          if ('bad' in item) {
            this.counters.corruptRecords++;
            this.logger.warn('hint segment damaged; skipping its remainder', { target: target.id, seq, reason: item.bad });
            continue;
          }
          const { raw, hint } = item;
          if (this.now() - hint.addedAtMs > this.hintTtlMs) {
            result.expired++;
            this.counters.expired++;
            release(raw.length);
            continue;
          }
          if (stop || this.closed) {
            await keepRaw(raw);
            continue;
          }
          await limiter.take();
          if (stop || this.closed) {
            await keepRaw(raw);
            continue;
          }
          const sending: Promise<void> = send(hint.key, hint.entry).then(
            () => {
              result.sent++;
              this.counters.replayed++;
              release(raw.length);
            },
            async (err: unknown) => {
              result.failed++;
              this.counters.replayFailed++;
              if (!stop) this.logger.info('hint replay stopped at a failed send', { target: target.id, error: toShoalError(err).message });
              stop = true;
              await keepRaw(raw);
            },
          );
          // The tracked promise never rejects: a failure to keep a hint (disk full) is remembered and
          // rethrown below, where the sealed segments are restored.
          const tracked: Promise<void> = sending.then(
            () => {
              inFlight.delete(tracked);
            },
            (err: unknown) => {
              inFlight.delete(tracked);
              keepFailure ??= err;
              stop = true;
            },
          );
          inFlight.add(tracked);
          if (inFlight.size >= this.replayConcurrency) await Promise.race(inFlight);
        }
      }
      await Promise.all(inFlight);
      if (keepFailure !== null) throw keepFailure;
      const deleteSealed = async (): Promise<void> => {
        await Promise.all([...sealed.keys()].map((seq) => this.io.unlink(join(this.dir, segmentName(target.hex, seq)))));
        await this.syncDir();
      };
      // Known-bug mutation (src/mutations.ts): the sealed segments are deleted, durably, before the kept
      // hints are durable under their final name; a crash in between loses them (recovery removes the
      // *.hint.tmp). Off, the order below is the right one.
      const deleteFirst = mutant('hint-delete-before-rename');
      if (deleteFirst) await this.serial(target, deleteSealed);
      // The kept hints become a segment of the target, durable under its name (file fsync, rename,
      // directory fsync: Compactor.finish), before the sealed ones are deleted.
      const compacted = await keep.finish();
      await this.serial(target, async () => {
        if (compacted !== null) target.segments.set(compacted, { count: keep.records, bytes: keep.bytes });
        if (!deleteFirst) await deleteSealed();
      });
    } catch (err) {
      // Reading or compacting failed: the sealed segments stay and are replayed again next time
      // (hints already sent go again, which last-writer-wins makes harmless).
      await Promise.allSettled(inFlight);
      await keep.abandon();
      let first = true;
      for (const seq of sealed.keys()) {
        target.segments.set(seq, first ? { count: left.count + keep.records, bytes: left.bytes + keep.bytes } : { count: 0, bytes: 0 });
        first = false;
      }
      throw toShoalError(err);
    }
    // Records the sealed segments held but that could not be read back (corruption) are gone.
    if (left.count > 0) this.reserve(target, -left.count, -left.bytes);
    result.remaining = target.count;
    return result;
  }
}

/**
 * Writes the hints a replay keeps into a new segment: temp file, fsync, rename, fsync the directory.
 * Only after finish() resolved may the sources be deleted.
 */
class Compactor {
  records = 0;
  bytes = 0;
  private fd: number | null = null;
  private size = 0;
  private seq = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly hex: string,
    private readonly allocateSeq: () => number,
    private readonly fsync: boolean,
    private readonly io: FsIo,
  ) {}

  private tmpPath(): string {
    return join(this.dir, `${segmentName(this.hex, this.seq)}.tmp`);
  }

  /** Appends one raw record; calls are serialised (failed sends finish in any order). */
  write(raw: Buffer): Promise<void> {
    const run = this.chain.then(() => this.append(raw));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async append(raw: Buffer): Promise<void> {
    if (this.fd === null) {
      this.seq = this.allocateSeq();
      this.fd = await this.io.open(this.tmpPath(), 'wx');
      await writeFully(this.io, this.fd, segmentHeader(), 0, HEADER_BYTES, 0);
      this.size = HEADER_BYTES;
    }
    await writeFully(this.io, this.fd, raw, 0, raw.length, this.size);
    this.size += raw.length;
    this.records++;
    this.bytes += raw.length;
  }

  /** Makes the segment durable under its final name; returns its number, or null if nothing was kept. */
  async finish(): Promise<number | null> {
    await this.chain;
    if (this.fd === null) return null;
    if (this.fsync) await this.io.fdatasync(this.fd);
    await this.io.close(this.fd);
    this.fd = null;
    await this.io.rename(this.tmpPath(), join(this.dir, segmentName(this.hex, this.seq)));
    if (this.fsync) await fsyncDir(this.io, this.dir);
    return this.seq;
  }

  async abandon(): Promise<void> {
    await this.chain;
    if (this.fd === null) return;
    await this.io.close(this.fd).catch(() => undefined);
    this.fd = null;
    await this.io.unlink(this.tmpPath());
  }
}

function segmentHeader(): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(FORMAT_VERSION, 4);
  return header;
}

/** At most `perSec` takes per second on average, with bursts of up to a tenth of a second's worth. */
class RateLimiter {
  private readonly burst: number;
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly perSec: number,
    private readonly now: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {
    this.burst = Math.max(1, Math.floor(perSec / 10));
    this.tokens = this.burst;
    this.lastMs = now();
  }

  async take(): Promise<void> {
    for (let guard = 0; guard < 1_000_000; guard++) {
      const t = this.now();
      this.tokens = Math.min(this.burst, this.tokens + ((t - this.lastMs) * this.perSec) / 1000);
      this.lastMs = t;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await this.sleep(Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.perSec)));
    }
    throw new ShoalError('INTERNAL', 'rate limiter clock does not advance');
  }
}
