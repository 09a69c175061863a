/**
 * Snapshot files: the whole map at one point of the WAL, written so that a crash at any moment
 * leaves either the old snapshot or the new one, never half of one.
 *
 * Layout: a 64-byte header, then `count` entries, each `payloadBytes u32le | payload` (the payload
 * of src/storage/record.ts). Header (little-endian):
 *   0  magic "SHOALSNP"      8  format version u32 (1)   12 header bytes u32 (64)
 *   16 entry count u64       24 WAL seq covered u64      32 body bytes u64
 *   40 created at ms u64     48 body crc32c u32          52 reserved (zero) to 60
 *   60 crc32c of bytes 0..60
 *
 * Writing: temp file, body in slices that yield to the event loop (writes go on meanwhile; they are
 * in the WAL after the covered seq and replay over the snapshot idempotently), header last,
 * fdatasync, rename, fsync of the directory.
 */
import path from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { Clock } from '../clock.js';
import { ShoalError } from '../errors.js';
import { type DirIo, type FsIo, fsyncDir, nodeFsIo, writeFully } from './fsio.js';
import { snapshotName, TMP_SUFFIX } from './layout.js';
import { decodePayload, encodePayload, newDecodedRecord, payloadCapacity } from './record.js';
import type { Entry } from './types.js';

export const SNAPSHOT_MAGIC = 'SHOALSNP';
export const SNAPSHOT_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 64;
const ENTRY_PREFIX_BYTES = 4;
const TWO_POW_32 = 4294967296;
const READ_CHUNK_BYTES = 16 * 1024 * 1024;

export interface SnapshotSource {
  entries: Map<string, Entry>;
  /** Local apply time of each tombstone (for grace-period collection after a restart). */
  tombstoneAtMs: Map<string, number>;
}

export interface WriteSnapshotOptions {
  dir: string;
  /** Last WAL sequence number whose effect is in `source` when the snapshot starts. */
  seq: number;
  nowMs: number;
  chunkBytes: number;
  sliceMs: number;
  io: DirIo;
  /** Measures the slices (monotonicMs). */
  clock: Clock;
  /** Checked between slices; true aborts the snapshot (store closing). */
  aborted: () => boolean;
}

export interface SnapshotHeader {
  count: number;
  seq: number;
  bodyBytes: number;
  createdAtMs: number;
  bodyCrc: number;
}

function writeU64(buf: Buffer, v: number, off: number): void {
  const hi = Math.floor(v / TWO_POW_32);
  buf.writeUInt32LE(v - hi * TWO_POW_32, off);
  buf.writeUInt32LE(hi, off + 4);
}

function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + 4) * TWO_POW_32 + buf.readUInt32LE(off);
}

export function encodeHeader(h: SnapshotHeader): Buffer {
  const buf = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
  buf.write(SNAPSHOT_MAGIC, 0, 'latin1');
  buf.writeUInt32LE(SNAPSHOT_VERSION, 8);
  buf.writeUInt32LE(SNAPSHOT_HEADER_BYTES, 12);
  writeU64(buf, h.count, 16);
  writeU64(buf, h.seq, 24);
  writeU64(buf, h.bodyBytes, 32);
  writeU64(buf, h.createdAtMs, 40);
  buf.writeUInt32LE(h.bodyCrc, 48);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 60)), 60);
  return buf;
}

export function decodeHeader(buf: Buffer, file: string): SnapshotHeader {
  const bad = (why: string) => new ShoalError('CORRUPT', `snapshot ${file}: ${why}`, { file });
  if (buf.length < SNAPSHOT_HEADER_BYTES) throw bad('shorter than its header');
  if (buf.toString('latin1', 0, 8) !== SNAPSHOT_MAGIC) throw bad('bad magic');
  if (crc32c(buf.subarray(0, 60)) !== buf.readUInt32LE(60)) throw bad('header checksum mismatch');
  const version = buf.readUInt32LE(8);
  if (version !== SNAPSHOT_VERSION) throw bad(`unsupported format version ${version}`);
  return {
    count: readU64(buf, 16),
    seq: readU64(buf, 24),
    bodyBytes: readU64(buf, 32),
    createdAtMs: readU64(buf, 40),
    bodyCrc: buf.readUInt32LE(48),
  };
}

/** Writes `snap-<seq>.snap` and returns its name and entry count. Expired entries are left out. */
export async function writeSnapshot(
  source: SnapshotSource,
  opts: WriteSnapshotOptions,
): Promise<{ name: string; count: number; bytes: number }> {
  const name = snapshotName(opts.seq);
  const tmp = path.join(opts.dir, name + TMP_SUFFIX);
  const io = opts.io;
  const fd = await io.open(tmp, 'w');
  let done = false;
  try {
    let chunk = Buffer.allocUnsafe(opts.chunkBytes);
    let used = 0;
    let position = SNAPSHOT_HEADER_BYTES;
    let bodyCrc = 0;
    let count = 0;
    const flush = async () => {
      bodyCrc = crc32c(chunk.subarray(0, used), bodyCrc);
      await writeFully(io, fd, chunk, 0, used, position);
      position += used;
      used = 0;
      if (opts.aborted()) throw new ShoalError('CLOSED', 'snapshot aborted: store closing');
    };
    const clock = opts.clock;
    let sliceStart = clock.monotonicMs();
    let sinceCheck = 0;
    for (const [key, entry] of source.entries) {
      if (entry.expiresAtMs !== undefined && entry.expiresAtMs <= opts.nowMs) continue;
      const need = ENTRY_PREFIX_BYTES + payloadCapacity(key, entry.node, entry.value === null ? 0 : entry.value.length);
      if (used + need > chunk.length) {
        await flush();
        sliceStart = clock.monotonicMs();
        if (need > chunk.length) chunk = Buffer.allocUnsafe(need);
      }
      const end = encodePayload(chunk, used + ENTRY_PREFIX_BYTES, key, entry, source.tombstoneAtMs.get(key));
      chunk.writeUInt32LE(end - used - ENTRY_PREFIX_BYTES, used);
      used = end;
      count += 1;
      if (++sinceCheck >= 256) {
        sinceCheck = 0;
        if (clock.monotonicMs() - sliceStart >= opts.sliceMs) {
          await flush();
          sliceStart = clock.monotonicMs();
        }
      }
    }
    await flush();
    const header = encodeHeader({
      count,
      seq: opts.seq,
      bodyBytes: position - SNAPSHOT_HEADER_BYTES,
      createdAtMs: opts.nowMs,
      bodyCrc,
    });
    await writeFully(io, fd, header, 0, header.length, 0);
    await io.fdatasync(fd);
    done = true;
    await io.close(fd);
    await io.rename(tmp, path.join(opts.dir, name));
    await fsyncDir(io, opts.dir);
    return { name, count, bytes: position };
  } catch (err) {
    if (!done) await io.close(fd).catch(() => {});
    await io.unlink(tmp);
    throw err;
  }
}

export interface LoadedSnapshot extends SnapshotHeader {
  entries: Map<string, Entry>;
  tombstoneAtMs: Map<string, number>;
  /** The chunks read: the values are views into them. */
  slabs: Buffer[];
}

/**
 * Reads and verifies a snapshot. Entries already expired at `nowMs` are skipped. Throws CORRUPT
 * when the header, the body checksum or an entry does not hold. The values are views into the
 * chunks read (slabs of up to READ_CHUNK_BYTES, never written again): see recovery.ts's
 * `compactSlabs` for the memory this holds.
 */
export async function loadSnapshot(file: string, nowMs: number, io: FsIo = nodeFsIo): Promise<LoadedSnapshot> {
  const fd = await io.open(file, 'r');
  try {
    const size = (await io.fstat(fd)).size;
    const head = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
    await io.read(fd, head, 0, SNAPSHOT_HEADER_BYTES, 0);
    const header = decodeHeader(head, file);
    const bad = (why: string) => new ShoalError('CORRUPT', `snapshot ${file}: ${why}`, { file });
    if (size !== SNAPSHOT_HEADER_BYTES + header.bodyBytes) {
      throw bad(`size ${size} does not match the header's ${SNAPSHOT_HEADER_BYTES + header.bodyBytes}`);
    }
    const entries = new Map<string, Entry>();
    const tombstoneAtMs = new Map<string, number>();
    const rec = newDecodedRecord();
    let buf = Buffer.allocUnsafeSlow(Math.min(READ_CHUNK_BYTES, Math.max(header.bodyBytes, 1)));
    const slabs = [buf];
    let have = 0; // bytes in buf not yet parsed start at 0
    let position = SNAPSHOT_HEADER_BYTES;
    let crc = 0;
    let count = 0;
    while (position < size || have > 0) {
      if (position < size) {
        const want = Math.min(buf.length - have, size - position);
        const bytesRead = await io.read(fd, buf, have, want, position);
        if (bytesRead <= 0) throw bad('unexpected end of file');
        crc = crc32c(buf.subarray(have, have + bytesRead), crc);
        have += bytesRead;
        position += bytesRead;
      }
      let off = 0;
      while (have - off >= ENTRY_PREFIX_BYTES) {
        const n = buf.readUInt32LE(off);
        if (have - off < ENTRY_PREFIX_BYTES + n) break;
        const start = off + ENTRY_PREFIX_BYTES;
        try {
          // Values are views into this chunk (a slab): it is never written again, see below.
          decodePayload(buf, start, start + n, rec, true);
        } catch (err) {
          throw bad(`entry ${count} undecodable: ${(err as Error).message}`);
        }
        const entry = rec.entry;
        off = start + n;
        count += 1;
        if (entry.expiresAtMs !== undefined && entry.expiresAtMs <= nowMs) continue;
        entries.set(rec.key, entry);
        if (entry.value === null) tombstoneAtMs.set(rec.key, rec.deletedAtMs ?? nowMs);
      }
      if (off === 0 && have === buf.length) {
        // One entry larger than the buffer: grow to hold it.
        const n = ENTRY_PREFIX_BYTES + buf.readUInt32LE(0);
        if (n > header.bodyBytes) throw bad(`entry ${count} claims ${n} bytes`);
        const bigger = Buffer.allocUnsafeSlow(n);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
        slabs.push(buf);
        continue;
      }
      if (off === 0 && position >= size && have > 0) throw bad('trailing bytes after the last entry');
      if (off > 0) {
        // The parsed entries' values point into buf: the unparsed rest moves to a fresh chunk.
        const rest = have - off;
        if (rest > 0 || position < size) {
          const next = Buffer.allocUnsafeSlow(Math.min(READ_CHUNK_BYTES, Math.max(rest + (size - position), 1)));
          buf.copy(next, 0, off, have);
          buf = next;
          slabs.push(buf);
        }
        have = rest;
      }
    }
    if (crc !== header.bodyCrc) throw bad('body checksum mismatch');
    if (count !== header.count) throw bad(`holds ${count} entries, header says ${header.count}`);
    return { ...header, entries, tombstoneAtMs, slabs };
  } finally {
    await io.close(fd);
  }
}
