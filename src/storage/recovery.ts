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
  let replayed = 0;
  let lastRecordSeq = snapshotSeq;
  let cut: BadSpot | null = null;
  let buf: Buffer = Buffer.alloc(0);
  for (let i = 0; i < live.length && cut === null; i++) {
    const seg = live[i];
    buf = await io.readFile(path.join(dir, seg.name));
    seg.bytes = buf.length;
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
          decodePayload(buf, off + RECORD_HEADER_BYTES, off + (total as number), rec);
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
