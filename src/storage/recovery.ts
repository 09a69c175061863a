/**
 * Recovery at open: the newest snapshot whose checksums hold, then every newer WAL record, applied
 * last-writer-wins (so records the snapshot already contains are harmless).
 *
 * A bad record (short, failing its CRC, or with an unexpected sequence number) with nothing valid
 * after it is a torn tail from a crash: the segment is truncated there and a warning names the file
 * and offset. A bad record followed by valid ones is corruption in the middle: opening fails with
 * CORRUPT naming file and offset, unless `repair` is set, which sets the bad bytes and every later
 * segment aside (`*.corrupt*` files) and keeps the records before them.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { ShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import { type FsIo, fsyncDir, nodeFsIo, truncateSynced, writeFileSynced } from './fsio.js';
import { type NamedSeq, parseSegments, parseSnapshots, TMP_SUFFIX } from './layout.js';
import {
  checkFrame,
  type DecodedRecord,
  decodePayload,
  KIND_DROP,
  newDecodedRecord,
  RECORD_HEADER_BYTES,
  recordSeq,
} from './record.js';
import { loadSnapshot } from './snapshot.js';
import type { Entry } from './types.js';
import { compareVersion } from './types.js';
import type { SegmentState, WalStart } from './wal.js';

/** A record's payload is at most this big: anything larger is a corrupt length field. */
const PAYLOAD_BYTES_PLAUSIBLE_MAX = 0x7fffffff;

export interface RecoveryOptions {
  /** Every file access of recovery (listing, reads, truncate, set aside); default node's. */
  io?: FsIo;
  repair: boolean;
  nowMs: number;
  logger: Logger;
}

export interface Recovered {
  entries: Map<string, Entry>;
  tombstoneAtMs: Map<string, number>;
  /** Snapshots on disk (valid or not), oldest first. */
  snapshots: NamedSeq[];
  /** The WAL seq covered by the snapshot that was loaded (0 = none). */
  snapshotSeq: number;
  wal: WalStart;
  /** Records replayed from the WAL. */
  replayed: number;
}

interface BadSpot {
  segment: number;
  offset: number;
  reason: string;
  /** Where to start looking for valid records after the bad spot. */
  scanFrom: number;
}

/** Applies a recovered record: last-writer-wins, or for a drop, removal of exactly that version. */
function applyRecovered(
  entries: Map<string, Entry>,
  tombstoneAtMs: Map<string, number>,
  rec: DecodedRecord,
  nowMs: number,
): void {
  const { key, entry, deletedAtMs } = rec;
  const existing = entries.get(key);
  if (rec.kind === KIND_DROP) {
    if (existing !== undefined && compareVersion(entry, existing) === 0) {
      entries.delete(key);
      tombstoneAtMs.delete(key);
    }
    return;
  }
  if (existing !== undefined && compareVersion(entry, existing) <= 0) return;
  entries.set(key, entry);
  if (entry.value === null) tombstoneAtMs.set(key, deletedAtMs ?? nowMs);
  else if (existing !== undefined && existing.value === null) tombstoneAtMs.delete(key);
}

/**
 * A slab whose live values fill less than this share of it has them copied out, so that it can be
 * released (see `compactSlabs`).
 */
export const SLAB_LIVE_SHARE_MIN = 0.5;

/**
 * Recovered values are views into the buffers recovery read (the snapshot's chunks, each WAL segment
 * replayed), not one copy each: a million keys cost no million value copies. A view keeps its whole
 * buffer alive, so a slab whose live values fill less than SLAB_LIVE_SHARE_MIN of it (older versions
 * overwritten later in the WAL, tombstones, small values in large records) has them copied out here
 * and is released. A slab kept is thus at most 1/SLAB_LIVE_SHARE_MIN times the value bytes pointing
 * into it at open; it is released when the last of them is overwritten, deleted or expired, and
 * never grows (new writes copy their values). Returns how many slabs were released.
 */
export function compactSlabs(entries: Map<string, Entry>, slabs: Buffer[]): number {
  if (slabs.length === 0) return 0;
  const live = new Map<ArrayBufferLike, number>();
  for (const s of slabs) live.set(s.buffer, 0);
  // Values of one slab mostly come one after another: count runs, look the slab up once per run.
  let runSlab: ArrayBufferLike | null = null;
  let runBytes = 0;
  for (const entry of entries.values()) {
    const value = entry.value;
    if (value === null) continue;
    const slab = value.buffer;
    if (slab !== runSlab) {
      if (runSlab !== null) live.set(runSlab, (live.get(runSlab) as number) + runBytes);
      runSlab = live.has(slab) ? slab : null;
      runBytes = 0;
    }
    runBytes += value.length;
  }
  if (runSlab !== null) live.set(runSlab, (live.get(runSlab) as number) + runBytes);
  const release = new Set<ArrayBufferLike>();
  for (const [slab, bytes] of live) {
    assert.ok(bytes <= slab.byteLength, 'the live values of a slab fit in it');
    if (bytes < slab.byteLength * SLAB_LIVE_SHARE_MIN) release.add(slab);
  }
  if (release.size === 0) return 0;
  for (const entry of entries.values()) {
    const value = entry.value;
    if (value === null || !release.has(value.buffer)) continue;
    const copy = Buffer.allocUnsafe(value.length);
    copy.set(value);
    entry.value = copy;
  }
  return release.size;
}

/**
 * True when a valid record that could come after the bad spot (sequence number not below the one
 * expected there) starts somewhere in buf[from, end). Random bytes rarely carry a length that fits
 * the file, so the CRC is seldom computed.
 */
function validRecordAfter(buf: Buffer, from: number, end: number, expectedSeq: number): boolean {
  for (let off = from; off + RECORD_HEADER_BYTES <= end; off++) {
    if (recordSeq(buf, off) < expectedSeq) continue;
    if (typeof checkFrame(buf, off, end, PAYLOAD_BYTES_PLAUSIBLE_MAX) === 'number') return true;
  }
  return false;
}

async function startsWithValidRecord(io: FsIo, file: string): Promise<boolean> {
  const buf = await io.readFile(file);
  return buf.length > 0 && typeof checkFrame(buf, 0, buf.length, PAYLOAD_BYTES_PLAUSIBLE_MAX) === 'number';
}

async function loadNewestSnapshot(dir: string, snapshots: NamedSeq[], opts: RecoveryOptions) {
  for (let i = snapshots.length - 1; i >= 0; i--) {
    const file = path.join(dir, snapshots[i].name);
    try {
      return await loadSnapshot(file, opts.nowMs, opts.io ?? nodeFsIo);
    } catch (err) {
      if (!(err instanceof ShoalError) || err.code !== 'CORRUPT') throw err;
      opts.logger.warn('recovery: skipping invalid snapshot', { file, error: err.message });
    }
  }
  return null;
}

export async function recover(dir: string, opts: RecoveryOptions): Promise<Recovered> {
  const io = opts.io ?? nodeFsIo;
  const names = (await io.readdir(dir)).sort();
  for (const name of names) if (name.endsWith(TMP_SUFFIX)) await io.unlink(path.join(dir, name));
  const snapshots = parseSnapshots(names);
  const snap = await loadNewestSnapshot(dir, snapshots, opts);
  const entries = snap?.entries ?? new Map<string, Entry>();
  const tombstoneAtMs = snap?.tombstoneAtMs ?? new Map<string, number>();
  const snapshotSeq = snap?.seq ?? 0;

  const segments: SegmentState[] = parseSegments(names).map((s) => ({ name: s.name, firstSeq: s.seq, bytes: 0 }));
  // Segments wholly covered by the snapshot are not read.
  let first = 0;
  while (first + 1 < segments.length && segments[first + 1].firstSeq - 1 <= snapshotSeq) first++;
  const live = segments.slice(first);

  let expected = live.length > 0 ? Math.min(live[0].firstSeq, snapshotSeq + 1) : snapshotSeq + 1;
  if (live.length > 0 && live[0].firstSeq > snapshotSeq + 1) {
    const gap = `WAL records ${snapshotSeq + 1}..${live[0].firstSeq - 1} are missing (no snapshot covers them)`;
    if (!opts.repair) {
      throw new ShoalError('CORRUPT', `data dir ${dir}: ${gap}; open with { repair: true } (--repair) to start from what is there`, {
        file: live[0].name,
        offset: 0,
      });
    }
    opts.logger.warn('recovery: repair: accepting missing WAL records', { dir, gap });
    expected = live[0].firstSeq;
  }

  const rec = newDecodedRecord();
  /** The buffers recovered values are views into: the snapshot's chunks, then each segment read. */
  const slabs: Buffer[] = snap?.slabs ?? [];
  let replayed = 0;
  let lastRecordSeq = snapshotSeq;
  let cut: BadSpot | null = null;
  let buf: Buffer = Buffer.alloc(0);
  for (let i = 0; i < live.length && cut === null; i++) {
    const seg = live[i];
    buf = await io.readFile(path.join(dir, seg.name));
    seg.bytes = buf.length;
    slabs.push(buf);
    if (seg.firstSeq !== expected) {
      const reason = `segment starts at seq ${seg.firstSeq}, expected ${expected}`;
      cut = { segment: i, offset: 0, reason, scanFrom: 0 };
      break;
    }
    let off = 0;
    while (off < buf.length) {
      const total = checkFrame(buf, off, buf.length, PAYLOAD_BYTES_PLAUSIBLE_MAX);
      let reason: string | null = typeof total === 'string' ? total : null;
      if (reason === null && recordSeq(buf, off) !== expected) {
        reason = `sequence number ${recordSeq(buf, off)}, expected ${expected}`;
      }
      if (reason === null) {
        try {
          decodePayload(buf, off + RECORD_HEADER_BYTES, off + (total as number), rec, true);
        } catch (err) {
          reason = `undecodable payload: ${(err as Error).message}`;
        }
      }
      if (reason !== null) {
        cut = { segment: i, offset: off, reason, scanFrom: off + 1 };
        break;
      }
      if (expected > snapshotSeq) {
        applyRecovered(entries, tombstoneAtMs, rec, opts.nowMs);
        replayed += 1;
      }
      lastRecordSeq = expected;
      expected += 1;
      off += total as number;
    }
  }

  if (cut !== null) await handleCut(dir, live, cut, buf, expected, opts);
  compactSlabs(entries, slabs);
  const kept = cut === null ? live : live.slice(0, cut.segment + 1);
  // An empty last segment (all torn) is removed: the next write opens one named after its seq.
  while (kept.length > 0 && kept[kept.length - 1].bytes === 0) {
    await io.unlink(path.join(dir, (kept.pop() as SegmentState).name));
  }
  const last = kept[kept.length - 1];
  const covered = segments.slice(0, first);
  for (const seg of covered) seg.bytes = (await io.stat(path.join(dir, seg.name))).size;
  return {
    entries,
    tombstoneAtMs,
    snapshots,
    snapshotSeq,
    replayed,
    wal: {
      segments: [...covered, ...kept],
      nextSeq: Math.max(lastRecordSeq, snapshotSeq) + 1,
      // Append to the last segment only if it holds records the snapshot does not cover.
      appendToLast: last !== undefined && lastRecordSeq > snapshotSeq && last.bytes > 0,
    },
  };
}

/**
 * Deals with the first bad record: truncates a torn tail, refuses corruption in the middle, or
 * (repair) sets the rest aside. `buf` holds the segment `cut.segment`.
 */
async function handleCut(
  dir: string,
  live: SegmentState[],
  cut: BadSpot,
  buf: Buffer,
  expectedSeq: number,
  opts: RecoveryOptions,
): Promise<void> {
  const io = opts.io ?? nodeFsIo;
  const seg = live[cut.segment];
  const file = path.join(dir, seg.name);
  let validAfter = validRecordAfter(buf, cut.scanFrom, buf.length, expectedSeq);
  for (let j = cut.segment + 1; j < live.length && !validAfter; j++) {
    validAfter = await startsWithValidRecord(io, path.join(dir, live[j].name));
  }
  if (validAfter && !opts.repair) {
    throw new ShoalError(
      'CORRUPT',
      `WAL ${file} is corrupt at offset ${cut.offset} (${cut.reason}) and valid records follow; ` +
        `refusing to open. Open with { repair: true } (CLI: --repair) to keep the records before offset ` +
        `${cut.offset} and set the rest aside as *.corrupt files.`,
      { file, offset: cut.offset, reason: cut.reason },
    );
  }
  // Durability order: the set-aside copy is durable (file and directory) before the original is cut;
  // the cut is fsynced, then later segments are renamed aside and the directory fsynced once more.
  if (validAfter) {
    const aside = `${file}.corrupt-${cut.offset}`;
    await writeFileSynced(io, aside, buf.subarray(cut.offset));
    await fsyncDir(io, dir);
    opts.logger.warn('recovery: repair: truncating WAL at corrupt record', {
      file,
      offset: cut.offset,
      reason: cut.reason,
      setAside: aside,
    });
  } else {
    opts.logger.warn('recovery: truncating torn WAL tail', { file, offset: cut.offset, reason: cut.reason });
  }
  if (cut.offset < buf.length) await truncateSynced(io, file, cut.offset);
  seg.bytes = cut.offset;
  const later = live.slice(cut.segment + 1);
  for (const seg of later) {
    const laterFile = path.join(dir, seg.name);
    await io.rename(laterFile, `${laterFile}.corrupt`);
    opts.logger.warn('recovery: setting aside WAL segment after the cut', { file: laterFile });
  }
  if (later.length > 0) await fsyncDir(io, dir);
}
