/**
 * Every default of the store in one place, each with the reason for its value, and the validation
 * that turns a user's partial options into a complete, checked set.
 */
import { type Clock, systemClock } from '../clock.js';
import { ShoalError } from '../errors.js';
import { nullLogger, type Logger } from '../log.js';
import type { FsyncPolicy, StoreOptions } from './types.js';

export const DEFAULT_STORE_OPTIONS = {
  /** Keys are identifiers, not data; 1 KiB is generous (memcached allows 250 B) and keeps the map small. */
  keyBytesMax: 1024,
  /** Large blobs belong in object storage; 1 MiB (memcached's item limit) bounds one WAL record and frame. */
  valueBytesMax: 1024 * 1024,
  /** Shoal acknowledges only what is durable, so every write waits for its group's fdatasync. */
  fsync: 'always' as FsyncPolicy,
  /** With 'interval': lose at most about one second of writes on power loss, like Redis `everysec`. */
  fsyncIntervalMs: 1000,
  /** Rotation unit: big enough that rotation is rare, small enough that a covered segment frees space soon. */
  walSegmentBytesMax: 64 * 1024 * 1024,
  /** Snapshot after 128 MiB of WAL so that replay at start stays around a second. */
  snapshotWalBytes: 128 * 1024 * 1024,
  /** Also snapshot hourly so that a quiet node does not keep an old WAL forever. */
  snapshotIntervalMs: 3_600_000,
  /** Tombstones must outlive hinted handoff and an anti-entropy round, or deleted data can come back. */
  tombstoneGraceMs: 86_400_000,
  /** Active expiry ten times a second, like Redis' default `hz 10`. */
  expiryIntervalMs: 100,
  /** At most 10k removals per tick (about 3 ms of work), i.e. up to 100k expirations per second. */
  expiryBatchMax: 10_000,
  /** 256 KiB of snapshot encoding per slice: about a millisecond of work between event-loop turns. */
  snapshotChunkBytes: 256 * 1024,
  /** Yield to the event loop after 5 ms of snapshot encoding even if the chunk is not full. */
  snapshotSliceMs: 5,
  /** Corruption in the middle of the WAL refuses to open; repairing drops data, so the operator decides. */
  repair: false,
};

export type ResolvedStoreOptions = typeof DEFAULT_STORE_OPTIONS & {
  clock: Clock;
  logger: Logger;
};

/** Record framing limits: a key is a msgpack str16, a node id a str8. */
export const KEY_BYTES_LIMIT = 0xffff;
export const NODE_BYTES_LIMIT = 0xff;

const POSITIVE_INTEGERS = [
  'keyBytesMax',
  'valueBytesMax',
  'fsyncIntervalMs',
  'walSegmentBytesMax',
  'expiryIntervalMs',
  'expiryBatchMax',
  'snapshotChunkBytes',
  'snapshotSliceMs',
] as const;
const NON_NEGATIVE_INTEGERS = ['snapshotWalBytes', 'snapshotIntervalMs', 'tombstoneGraceMs'] as const;

function configError(message: string): ShoalError {
  return new ShoalError('CONFIG', `store options: ${message}`);
}

export function resolveStoreOptions(options: StoreOptions = {}): ResolvedStoreOptions {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const resolved: ResolvedStoreOptions = {
    ...DEFAULT_STORE_OPTIONS,
    clock: systemClock,
    logger: nullLogger,
    ...defined,
  };
  for (const name of POSITIVE_INTEGERS) {
    const v = resolved[name];
    if (!Number.isSafeInteger(v) || v <= 0) throw configError(`${name} must be a positive integer, got ${v}`);
  }
  for (const name of NON_NEGATIVE_INTEGERS) {
    const v = resolved[name];
    if (!Number.isSafeInteger(v) || v < 0) throw configError(`${name} must be a non-negative integer, got ${v}`);
  }
  if (resolved.keyBytesMax > KEY_BYTES_LIMIT) {
    throw configError(`keyBytesMax must be at most ${KEY_BYTES_LIMIT}, got ${resolved.keyBytesMax}`);
  }
  if (resolved.valueBytesMax > 0x7fffffff) {
    throw configError(`valueBytesMax must be below 2 GiB, got ${resolved.valueBytesMax}`);
  }
  if (!['always', 'interval', 'none'].includes(resolved.fsync)) {
    throw configError(`fsync must be always, interval or none, got ${String(resolved.fsync)}`);
  }
  return resolved;
}
