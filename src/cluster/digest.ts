/**
 * Range digests for anti-entropy. Two replicas of the same token ranges each summarise their entries in
 * those ranges as `buckets` 64-bit bucket hashes; they compare the digests (first the one-value `root`,
 * then the bucket vectors) and then list and exchange only the entries of the buckets that differ.
 *
 * - An entry belongs to the digest when hashKey(key) lies in one of the ranges; its bucket is the low
 *   32 bits of hashKey(key) modulo `buckets` (independent of the ring position, so a digest over many
 *   scattered ranges still spreads evenly over all buckets).
 * - An entry's hash is XXH3-64 over (key, ts, node, tombstone flag, expiresAtMs): versions identify
 *   values (the same (ts, node) is always the same write), so the value bytes are not hashed.
 * - A bucket hash is the sum mod 2^64 of its entries' hashes: independent of iteration order (stores
 *   iterate in no particular order) and cheap to update.
 * - Expired entries can be left out with `expiredBeforeMs` (entries whose expiresAtMs ≤ it), so that two
 *   replicas that collected expired keys at different moments do not keep exchanging them.
 *
 * The digest is plain msgpack data: `hashes` is a Buffer of 8 bytes per bucket (little-endian).
 * With the default 1024 buckets it is 8 KiB; with ~1 M keys per range set a differing bucket holds
 * ~1000 entries, so a single changed key costs one 8 KiB digest plus ~1000 (key, version) pairs.
 */
import { type Clock, systemClock, yieldTurn } from '../clock.js';
import { ShoalError } from '../errors.js';
import type { Entry } from '../storage/types.js';
import { hashBytes, hashKey, hashString, hex64 } from '../ring/hash.js';
import { RangeSet, type TokenRange } from '../ring/ranges.js';

export interface DigestOptions {
  /** Bucket count. Default 1024. */
  buckets?: number;
  /** Leave out entries with expiresAtMs ≤ this (epoch ms). Default: keep all. */
  expiredBeforeMs?: number;
}

export const DIGEST_DEFAULTS = {
  /** 1024 × 8 bytes = 8 KiB per digest; see the module comment for the trade-off. */
  buckets: 1024,
} as const;

export const DIGEST_LIMITS = {
  /** 65 536 buckets = 512 KiB: the largest digest a peer has to accept. */
  bucketsMax: 65_536,
} as const;

export interface RangeDigest {
  buckets: number;
  /** Entries summarised. */
  count: number;
  /** 8 bytes per bucket, little-endian sum of entry hashes. */
  hashes: Buffer;
  /** Hash of `hashes`: equal roots mean (with overwhelming probability) equal digests. */
  root: string;
}

export type RangesInput = TokenRange | readonly TokenRange[] | RangeSet;

function toRangeSet(ranges: RangesInput): RangeSet {
  if (ranges instanceof RangeSet) return ranges;
  return new RangeSet(Array.isArray(ranges) ? ranges : [ranges as TokenRange]);
}

function checkBuckets(buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > DIGEST_LIMITS.bucketsMax) {
    throw new ShoalError('BAD_REQUEST', `digest buckets must be an integer in 1..${DIGEST_LIMITS.bucketsMax}, got ${buckets}`);
  }
  return buckets;
}

function bucketFromHash(keyHash: bigint, buckets: number): number {
  return Number(keyHash & 0xffffffffn) % buckets;
}

/** The bucket of a key in a digest of `buckets` buckets. */
export function bucketOf(key: string, buckets: number): number {
  return bucketFromHash(hashKey(key), checkBuckets(buckets));
}

/** The hash of one entry as the digest sees it. */
export function entryHash(key: string, entry: Entry): bigint {
  const tombstone = entry.value === null ? 1 : 0;
  return hashString(
    `${key.length}:${key}\u0000${entry.ts}\u0000${entry.node.length}:${entry.node}\u0000${tombstone}\u0000${entry.expiresAtMs ?? -1}`,
  );
}

function included(entry: Entry, expiredBeforeMs: number | undefined): boolean {
  return expiredBeforeMs === undefined || entry.expiresAtMs === undefined || entry.expiresAtMs > expiredBeforeMs;
}

/** Accumulates a digest entry by entry (the sync and async builders share it). */
class DigestAccumulator {
  readonly buckets: number;
  private readonly set: RangeSet;
  private readonly expiredBeforeMs: number | undefined;
  private readonly sums: BigUint64Array;
  private count = 0;

  constructor(ranges: RangesInput, options: DigestOptions) {
    this.buckets = checkBuckets(options.buckets ?? DIGEST_DEFAULTS.buckets);
    this.set = toRangeSet(ranges);
    this.expiredBeforeMs = options.expiredBeforeMs;
    this.sums = new BigUint64Array(this.buckets);
  }

  add(key: string, entry: Entry): void {
    const h = hashKey(key);
    if (!this.set.has(h) || !included(entry, this.expiredBeforeMs)) return;
    this.sums[bucketFromHash(h, this.buckets)] += entryHash(key, entry); // stored modulo 2^64
    this.count++;
  }

  finish(): RangeDigest {
    const hashes = Buffer.alloc(this.buckets * 8);
    for (let b = 0; b < this.buckets; b++) hashes.writeBigUInt64LE(this.sums[b], b * 8);
    return { buckets: this.buckets, count: this.count, hashes, root: hex64(hashBytes(hashes)) };
  }
}

function digestOptions(bucketsOrOptions: number | DigestOptions): DigestOptions {
  return typeof bucketsOrOptions === 'number' ? { buckets: bucketsOrOptions } : bucketsOrOptions;
}

/** Builds the digest of the entries whose keys fall in `ranges`, in one synchronous pass. */
export function buildDigest(entries: Iterable<[string, Entry]>, ranges: RangesInput, bucketsOrOptions: number | DigestOptions = {}): RangeDigest {
  const acc = new DigestAccumulator(ranges, digestOptions(bucketsOrOptions));
  for (const [key, entry] of entries) acc.add(key, entry);
  return acc.finish();
}

/** Entries handled between two yields to the event loop in the async variants. */
export const DIGEST_YIELD_EVERY_ENTRIES = 4096;

/** What the async variants take beyond the sync ones: how often to yield, and on which clock's loop. */
export interface YieldOptions {
  /** Entries handled between two yields (default DIGEST_YIELD_EVERY_ENTRIES). */
  yieldEveryEntries?: number;
  /** Whose event loop to yield to (default systemClock; the simulator's node clock). */
  clock?: Clock;
}

/**
 * Like buildDigest, but yields to the event loop every `yieldEveryEntries` entries (default 4096), so
 * a digest over a large store (~3 µs per entry) does not stall request handling. The store's iterator
 * must tolerate writes in between (Store.entries() does).
 */
export async function buildDigestAsync(
  entries: Iterable<[string, Entry]>,
  ranges: RangesInput,
  options: DigestOptions & YieldOptions = {},
): Promise<RangeDigest> {
  const acc = new DigestAccumulator(ranges, options);
  const every = options.yieldEveryEntries ?? DIGEST_YIELD_EVERY_ENTRIES;
  const clock = options.clock ?? systemClock;
  let n = 0;
  for (const [key, entry] of entries) {
    acc.add(key, entry);
    if (++n % every === 0) await yieldTurn(clock);
  }
  return acc.finish();
}

/** Bucket indices whose hashes differ (empty when the digests are equal). */
export function diffDigests(a: RangeDigest, b: RangeDigest): number[] {
  if (a.buckets !== b.buckets) {
    throw new ShoalError('BAD_REQUEST', `digests have different bucket counts (${a.buckets} vs ${b.buckets})`);
  }
  if (a.root === b.root && a.hashes.equals(b.hashes)) return [];
  const out: number[] = [];
  for (let i = 0; i < a.buckets; i++) {
    if (a.hashes.compare(b.hashes, i * 8, i * 8 + 8, i * 8, i * 8 + 8) !== 0) out.push(i);
  }
  return out;
}

export interface BucketListing {
  entries: Array<[string, Entry]>;
  /** True when entriesMax cut the listing short; ask again for the rest after applying these. */
  truncated: boolean;
}

export interface ListOptions {
  /** Most entries returned (default 10 000); `truncated` says when more matched. */
  entriesMax?: number;
  expiredBeforeMs?: number;
}

/** Selects the entries of wanted buckets inside the ranges (the sync and async listings share it). */
function bucketFilter(ranges: RangesInput, buckets: number, bucketIds: Iterable<number>, options: ListOptions): (key: string, entry: Entry) => boolean {
  checkBuckets(buckets);
  const wanted = new Uint8Array(buckets);
  for (const b of bucketIds) {
    if (!Number.isInteger(b) || b < 0 || b >= buckets) throw new ShoalError('BAD_REQUEST', `digest bucket ${b} out of range 0..${buckets - 1}`);
    wanted[b] = 1;
  }
  const set = toRangeSet(ranges);
  return (key, entry) => {
    const h = hashKey(key);
    return wanted[bucketFromHash(h, buckets)] === 1 && set.has(h) && included(entry, options.expiredBeforeMs);
  };
}

/**
 * The entries in `ranges` whose bucket is in `bucketIds`, at most `entriesMax`, for the replica on the
 * other side to apply (last-writer-wins makes applying both ways safe).
 */
export function listBuckets(
  entries: Iterable<[string, Entry]>,
  ranges: RangesInput,
  buckets: number,
  bucketIds: Iterable<number>,
  options: ListOptions = {},
): BucketListing {
  const match = bucketFilter(ranges, buckets, bucketIds, options);
  const entriesMax = options.entriesMax ?? 10_000;
  const out: Array<[string, Entry]> = [];
  for (const [key, entry] of entries) {
    if (!match(key, entry)) continue;
    if (out.length >= entriesMax) return { entries: out, truncated: true };
    out.push([key, entry]);
  }
  return { entries: out, truncated: false };
}

/** listBuckets that yields to the event loop every `yieldEveryEntries` entries scanned. */
export async function listBucketsAsync(
  entries: Iterable<[string, Entry]>,
  ranges: RangesInput,
  buckets: number,
  bucketIds: Iterable<number>,
  options: ListOptions & YieldOptions = {},
): Promise<BucketListing> {
  const match = bucketFilter(ranges, buckets, bucketIds, options);
  const entriesMax = options.entriesMax ?? 10_000;
  const every = options.yieldEveryEntries ?? DIGEST_YIELD_EVERY_ENTRIES;
  const clock = options.clock ?? systemClock;
  const out: Array<[string, Entry]> = [];
  let n = 0;
  for (const [key, entry] of entries) {
    if (++n % every === 0) await yieldTurn(clock);
    if (!match(key, entry)) continue;
    if (out.length >= entriesMax) return { entries: out, truncated: true };
    out.push([key, entry]);
  }
  return { entries: out, truncated: false };
}

/** Validates a digest received from a peer (msgpack gives back plain objects). */
export function digestFromWire(wire: unknown): RangeDigest {
  const d = wire as Partial<RangeDigest> | null;
  if (typeof d !== 'object' || d === null) throw new ShoalError('BAD_REQUEST', 'digest must be an object');
  const buckets = checkBuckets(d.buckets as number);
  const hashes = d.hashes instanceof Uint8Array ? Buffer.from(d.hashes.buffer, d.hashes.byteOffset, d.hashes.byteLength) : null;
  if (hashes === null || hashes.length !== buckets * 8) throw new ShoalError('BAD_REQUEST', `digest hashes must be ${buckets * 8} bytes`);
  if (!Number.isSafeInteger(d.count) || (d.count as number) < 0) throw new ShoalError('BAD_REQUEST', 'digest count must be a count');
  return { buckets, count: d.count as number, hashes, root: hex64(hashBytes(hashes)) };
}
