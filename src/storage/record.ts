/**
 * The byte layout of one stored entry, shared by WAL records and snapshot bodies.
 *
 * Payload: a msgpack array `[kind, key, ts, node, value, expiresAtMs, deletedAtMs]` where kind is 1
 * (value), 2 (tombstone) or 3 (drop: WAL only, removes the key if it holds exactly that version, with
 * no tombstone — the cluster's clean-up of copies it no longer owns), value is bin or nil, and the two times are uint64 or nil. The writer packs
 * it by hand with fixed-width headers (valid msgpack any library reads); the reader has a fast path for
 * exactly that layout and falls back to the generic decoder for any other valid encoding.
 *
 * WAL frame: `payloadBytes u32le | crc32c u32le | seq u64le | payload`, the CRC32C covering seq and
 * payload. The sequence number rises by one per record across segments, so bytes left over from an
 * older file can never pass as the next record.
 */
import { unpack } from '../codec.js';
import { crc32cRange } from './crc.js';
import type { Entry } from './types.js';

export const RECORD_HEADER_BYTES = 16;
export const KIND_VALUE = 1;
export const KIND_TOMBSTONE = 2;
export const KIND_DROP = 3;
type Kind = typeof KIND_VALUE | typeof KIND_TOMBSTONE | typeof KIND_DROP;

const TWO_POW_32 = 4294967296;
const ARRAY7 = 0x97;
const NIL = 0xc0;
const UINT64 = 0xcf;
const STR8 = 0xd9;
const STR16 = 0xda;
const BIN32 = 0xc6;

/** A decoded payload; reused by readers to avoid an allocation per record. */
export interface DecodedRecord {
  kind: Kind;
  key: string;
  entry: Entry;
  /** Local time the tombstone was applied (for grace-period collection); undefined for values. */
  deletedAtMs: number | undefined;
}

/** Upper bound of the encoded payload size (strings counted at 3 bytes per UTF-16 unit). */
export function payloadCapacity(key: string, node: string, valueBytes: number): number {
  return 1 + 1 + 3 + key.length * 3 + 9 + 2 + node.length * 3 + 5 + valueBytes + 9 + 9;
}

function writeUint64(buf: Buffer, off: number, v: number): number {
  buf[off] = UINT64;
  const hi = Math.floor(v / TWO_POW_32);
  const lo = v - hi * TWO_POW_32;
  buf[off + 1] = hi >>> 24;
  buf[off + 2] = (hi >>> 16) & 0xff;
  buf[off + 3] = (hi >>> 8) & 0xff;
  buf[off + 4] = hi & 0xff;
  buf[off + 5] = lo >>> 24;
  buf[off + 6] = (lo >>> 16) & 0xff;
  buf[off + 7] = (lo >>> 8) & 0xff;
  buf[off + 8] = lo & 0xff;
  return off + 9;
}

/** Keys up to this many UTF-16 units are copied by a JavaScript loop when ASCII (cheaper than the native call). */
const ASCII_LOOP_UNITS_MAX = 64;

/** Writes `str` as UTF-8 at `off` (the caller checked the room) and returns the byte count. */
function writeString(buf: Buffer, str: string, off: number): number {
  const n = str.length;
  if (n <= ASCII_LOOP_UNITS_MAX) {
    let i = 0;
    for (; i < n; i++) {
      const c = str.charCodeAt(i);
      if (c >= 0x80) break;
      buf[off + i] = c;
    }
    if (i === n) return n;
  }
  return buf.write(str, off);
}

/** The last node id written and its UTF-8 bytes: a WAL sees few distinct node ids. */
let lastEncodedNode = '';
let lastEncodedNodeBytes: Buffer = Buffer.alloc(0);
function writeNode(buf: Buffer, node: string, off: number): number {
  if (node !== lastEncodedNode) {
    lastEncodedNodeBytes = Buffer.from(node, 'utf8');
    lastEncodedNode = node;
  }
  const bytes = lastEncodedNodeBytes;
  const n = bytes.length;
  for (let i = 0; i < n; i++) buf[off + i] = bytes[i];
  return n;
}

function writeOptionalUint64(buf: Buffer, off: number, v: number | undefined): number {
  if (v === undefined) {
    buf[off] = NIL;
    return off + 1;
  }
  return writeUint64(buf, off, v);
}

/**
 * Packs the payload at `off` (the buffer must have `payloadCapacity` bytes free) and returns the end
 * offset. Times and ts must be non-negative safe integers (checked by the store).
 */
export function encodePayload(
  buf: Buffer,
  off: number,
  key: string,
  entry: Entry,
  deletedAtMs?: number,
  kind: Kind = entry.value === null ? KIND_TOMBSTONE : KIND_VALUE,
): number {
  buf[off] = ARRAY7;
  buf[off + 1] = kind;
  buf[off + 2] = STR16;
  const keyBytes = writeString(buf, key, off + 5);
  if (keyBytes > 0xffff) throw new RangeError(`a key of ${keyBytes} bytes does not fit a record (at most 65535)`);
  buf[off + 3] = keyBytes >>> 8;
  buf[off + 4] = keyBytes & 0xff;
  let p = writeUint64(buf, off + 5 + keyBytes, entry.ts);
  buf[p] = STR8;
  const nodeBytes = writeNode(buf, entry.node, p + 2);
  buf[p + 1] = nodeBytes;
  p += 2 + nodeBytes;
  const value = entry.value;
  if (value === null) {
    buf[p++] = NIL;
  } else {
    buf[p] = BIN32;
    buf.writeUInt32BE(value.length, p + 1);
    value.copy(buf, p + 5);
    p += 5 + value.length;
  }
  p = writeOptionalUint64(buf, p, entry.expiresAtMs);
  return writeOptionalUint64(buf, p, deletedAtMs);
}

/** Packs a framed WAL record at `off` and returns its end offset. */
export function encodeRecord(
  buf: Buffer,
  off: number,
  seq: number,
  key: string,
  entry: Entry,
  deletedAtMs?: number,
  kind?: Kind,
): number {
  const start = off + RECORD_HEADER_BYTES;
  const end = encodePayload(buf, start, key, entry, deletedAtMs, kind);
  const hi = Math.floor(seq / TWO_POW_32);
  buf.writeUInt32LE(end - start, off);
  buf.writeUInt32LE(seq - hi * TWO_POW_32, off + 8);
  buf.writeUInt32LE(hi, off + 12);
  buf.writeUInt32LE(crc32cRange(buf, off + 8, end), off + 4);
  return end;
}

export function recordSeq(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + 12) * TWO_POW_32 + buf.readUInt32LE(off + 8);
}

/**
 * Checks the frame at `off`: returns the record's total byte length, or a string saying why the
 * bytes there are not a whole, intact record.
 */
export function checkFrame(buf: Buffer, off: number, end: number, payloadBytesMax: number): number | string {
  if (end - off < RECORD_HEADER_BYTES) return 'truncated header';
  const payloadBytes = buf.readUInt32LE(off);
  if (payloadBytes === 0 || payloadBytes > payloadBytesMax) return `implausible length ${payloadBytes}`;
  const total = RECORD_HEADER_BYTES + payloadBytes;
  if (end - off < total) return 'truncated record';
  if (crc32cRange(buf, off + 8, off + total) !== buf.readUInt32LE(off + 4)) return 'checksum mismatch';
  return total;
}

function readUint64(buf: Buffer, p: number): number {
  return buf.readUInt32BE(p + 1) * TWO_POW_32 + buf.readUInt32BE(p + 5);
}

function copyBytes(buf: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  buf.copy(out, 0, start, end);
  return out;
}

/** Reuses the previous node id string when the bytes match: replay sees few distinct node ids. */
let lastNodeBytes: Buffer = Buffer.alloc(0);
let lastNode = '';
function readNode(buf: Buffer, start: number, end: number): string {
  const n = end - start;
  if (n === lastNodeBytes.length) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (buf[start + i] !== lastNodeBytes[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastNode;
  }
  lastNodeBytes = copyBytes(buf, start, end);
  lastNode = buf.toString('utf8', start, end);
  return lastNode;
}

class MalformedPayload extends Error {}

/** End offset of the last `readOptionalTime` (module state: the fast path allocates nothing). */
let timeEnd = 0;
/** Reads a uint64 or nil at p: the number, undefined for nil, null when it is neither. */
function readOptionalTime(buf: Buffer, p: number, end: number): number | undefined | null {
  if (buf[p] === NIL) {
    timeEnd = p + 1;
    return undefined;
  }
  if (buf[p] !== UINT64 || p + 9 > end) return null;
  timeEnd = p + 9;
  return readUint64(buf, p);
}

function decodeFast(buf: Buffer, p: number, end: number, out: DecodedRecord, viewValues: boolean): boolean {
  if (buf[p] !== ARRAY7 || buf[p + 2] !== STR16) return false;
  const kind = buf[p + 1];
  const keyBytes = buf.readUInt16BE(p + 3);
  const keyStart = p + 5;
  p = keyStart + keyBytes;
  if (p + 11 > end || buf[p] !== UINT64 || buf[p + 9] !== STR8) return false;
  const ts = readUint64(buf, p);
  const nodeStart = p + 11;
  const nodeEnd = nodeStart + buf[p + 10];
  p = nodeEnd;
  if (p >= end) return false;
  let value: Buffer | null = null;
  if (buf[p] === BIN32) {
    const n = buf.readUInt32BE(p + 1);
    if (p + 5 + n > end) return false;
    value = viewValues ? buf.subarray(p + 5, p + 5 + n) : copyBytes(buf, p + 5, p + 5 + n);
    p += 5 + n;
  } else if (buf[p] === NIL) {
    p += 1;
  } else {
    return false;
  }
  const expiresAtMs = readOptionalTime(buf, p, end);
  if (expiresAtMs === null) return false;
  p = timeEnd;
  const deletedAtMs = readOptionalTime(buf, p, end);
  if (deletedAtMs === null) return false;
  p = timeEnd;
  if (p !== end || (kind === KIND_VALUE) !== (value !== null) || (kind !== KIND_VALUE && kind !== KIND_TOMBSTONE && kind !== KIND_DROP)) {
    return false;
  }
  out.kind = kind;
  out.key = buf.toString('utf8', keyStart, keyStart + keyBytes);
  const node = readNode(buf, nodeStart, nodeEnd);
  out.entry = expiresAtMs === undefined ? { ts, node, value } : { ts, node, value, expiresAtMs };
  out.deletedAtMs = deletedAtMs;
  return true;
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function decodeGeneric(payload: Buffer, out: DecodedRecord): void {
  let fields: unknown;
  try {
    fields = unpack(payload);
  } catch (err) {
    throw new MalformedPayload(`undecodable msgpack: ${(err as Error).message}`);
  }
  if (!Array.isArray(fields) || fields.length !== 7) throw new MalformedPayload('payload is not a 7-element array');
  const [kind, key, ts, node, value, expiresAtMs, deletedAtMs] = fields as unknown[];
  const isValue = kind === KIND_VALUE && value instanceof Uint8Array;
  const isTombstone = (kind === KIND_TOMBSTONE || kind === KIND_DROP) && value == null;
  if (typeof key !== 'string' || !isTime(ts) || typeof node !== 'string' || !(isValue || isTombstone)) {
    throw new MalformedPayload('payload fields have the wrong types');
  }
  if ((expiresAtMs != null && !isTime(expiresAtMs)) || (deletedAtMs != null && !isTime(deletedAtMs))) {
    throw new MalformedPayload('payload times have the wrong types');
  }
  const bytes = isValue ? Buffer.from(value as Uint8Array) : null;
  out.kind = kind as Kind;
  out.key = key;
  out.entry = expiresAtMs == null ? { ts, node, value: bytes } : { ts, node, value: bytes, expiresAtMs };
  out.deletedAtMs = deletedAtMs == null ? undefined : deletedAtMs;
}

/**
 * Decodes the payload in buf[start, end) into `out`. Values are copied out of `buf`, or with
 * `viewValues` are views into it (recovery: `buf` is then a slab nobody writes to again, and each
 * value keeps it alive). Throws `MalformedPayload` when the bytes are not a payload; framing checksums
 * make that a writer bug.
 */
export function decodePayload(buf: Buffer, start: number, end: number, out: DecodedRecord, viewValues = false): void {
  if (!decodeFast(buf, start, end, out, viewValues)) decodeGeneric(buf.subarray(start, end), out);
}

export function newDecodedRecord(): DecodedRecord {
  return { kind: KIND_VALUE, key: '', entry: { ts: 0, node: '', value: null }, deletedAtMs: undefined };
}

export { MalformedPayload };
