/**
 * Argument checking for client and internal operations: every field is checked for type and range,
 * and a bad one is a BAD_REQUEST naming the operation and the field.
 */
import { ShoalError } from '../errors.js';
import type { Entry } from '../storage/types.js';
import type { Consistency } from './config.js';

export type Args = Record<string, unknown>;

function bad(op: string, message: string): ShoalError {
  return new ShoalError('BAD_REQUEST', `${op}: ${message}`);
}

export function str(op: string, args: Args, field: string, options: { empty?: boolean } = {}): string {
  const value = args[field];
  if (typeof value !== 'string') throw bad(op, `"${field}" must be a string`);
  if (!options.empty && value.length === 0) throw bad(op, `"${field}" must not be empty`);
  return value;
}

export function optInt(op: string, args: Args, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const value = args[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw bad(op, `"${field}" must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function int(op: string, args: Args, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = optInt(op, args, field, min, max);
  if (value === undefined) throw bad(op, `"${field}" is required`);
  return value;
}

export function optConsistency(op: string, args: Args): Consistency | undefined {
  const value = args.consistency;
  if (value === undefined || value === null) return undefined;
  if (value !== 'one' && value !== 'quorum' && value !== 'all') {
    throw bad(op, `"consistency" must be one of one, quorum, all (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** A value: msgpack bin (Buffer / Uint8Array) or a string (UTF-8). */
export function bin(op: string, args: Args, field: string): Buffer {
  const value = args[field];
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  throw bad(op, `"${field}" must be binary (msgpack bin) or a string`);
}

export function strArray(op: string, args: Args, field: string, lengthMax: number): string[] {
  const value = args[field];
  if (!Array.isArray(value) || value.length > lengthMax || !value.every((v) => typeof v === 'string')) {
    throw bad(op, `"${field}" must be an array of at most ${lengthMax} strings`);
  }
  return value as string[];
}

/** An entry as it travels between nodes: { value: bin | null, ts, node, expiresAtMs? }. */
export function entryFrom(op: string, raw: unknown): Entry {
  if (raw === null || typeof raw !== 'object') throw bad(op, 'entry must be an object');
  const e = raw as Args;
  const ts = int(op, e, 'ts', 0);
  const node = str(op, e, 'node');
  const value = e.value === null || e.value === undefined ? null : bin(op, e, 'value');
  const expiresAtMs = optInt(op, e, 'expiresAtMs', 0);
  const entry: Entry = { value, ts, node };
  if (expiresAtMs !== undefined) entry.expiresAtMs = expiresAtMs;
  return entry;
}

/** The plain-msgpack form of an entry (no undefined fields). */
export function entryToWire(entry: Entry): Args {
  const wire: Args = { value: entry.value, ts: entry.ts, node: entry.node };
  if (entry.expiresAtMs !== undefined) wire.expiresAtMs = entry.expiresAtMs;
  return wire;
}

/** [key, entry] pairs from a batch field. */
export function entryPairs(op: string, args: Args, field: string, lengthMax: number): Array<[string, Entry]> {
  const value = args[field];
  if (!Array.isArray(value) || value.length > lengthMax) {
    throw bad(op, `"${field}" must be an array of at most ${lengthMax} [key, entry] pairs`);
  }
  return value.map((pair): [string, Entry] => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') {
      throw bad(op, `"${field}" items must be [key, entry]`);
    }
    return [pair[0], entryFrom(op, pair[1])];
  });
}

export function isExpired(entry: Entry, nowMs: number): boolean {
  return entry.expiresAtMs !== undefined && entry.expiresAtMs <= nowMs;
}

/** A tombstone or an expired value: the key has no live value, but the version still counts for LWW. */
export function isDead(entry: Entry, nowMs: number): boolean {
  return entry.value === null || isExpired(entry, nowMs);
}
