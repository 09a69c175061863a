/**
 * A cursor over every key of the cluster, in ring (hash) order: what SCAN, KEYS and DBSIZE of the RESP
 * front end stand on.
 *
 * Per node (`internal.keys`, KeyListing): a bounded page of this node's entries whose key tokens are ≥
 * `from`, in token order, tombstones included (so the coordinator can let a newer delete win), and
 * `through`, the last token the page covers completely (null = the end of the token space). A page
 * never splits keys that share a token. The node keeps a token-sorted index of its keys, built on
 * demand and kept complete by noting every key the node applies after the build; it is dropped when
 * nobody has listed for INDEX_IDLE_MS, and rebuilt when too many keys were applied since.
 *
 * Across the cluster (scanCluster): one page asks every up ring member for its page from the cursor,
 * keeps the keys up to the smallest `through` (everything before it was seen by every member asked),
 * lets the newest version of each key win, hides tombstones and expired values, and returns
 * smallest-through + 1 as the next cursor (0 at the end). A key is therefore returned at most once per
 * scan, and every key that exists for the whole scan is returned as long as fewer than W of its
 * holders are down (the scan refuses to run otherwise, unless consistency is `one`).
 */
import assert from 'node:assert/strict';
import { type Clock, systemClock } from '../clock.js';
import { ShoalError, toShoalError } from '../errors.js';
import type { Entry, Store } from '../storage/types.js';
import type { Args } from './args.js';
import { isDead, optInt, str } from './args.js';
import type { Consistency } from './config.js';
import type { RingFactory, Transport } from './ports.js';
import { scanStore } from './scan.js';
import type { ClusterView } from './view.js';

/** 2^64: tokens are in [0, 2^64). */
const TOKEN_SPACE = 1n << 64n;
/** Most keys one node returns in one page. */
export const SCAN_PAGE_KEYS_MAX = 10_000;
/** Most index entries one page visits (a MATCH that rarely matches still returns within this). */
const SCAN_VISIT_MAX = 100_000;
/** Bytes of keys one page carries at most (well inside a frame). */
const SCAN_PAGE_BYTES_MAX = 1024 * 1024;
/** An index nobody listed from for this long is dropped (memory, and the cost of noting writes). */
const INDEX_IDLE_MS = 60_000;
/** Keys noted since the build beyond which the index is rebuilt instead of merged with them. */
const NOTED_KEYS_MAX = 65_536;

/** One key of a node's page: [key, ts, node, expiresAtMs (-1 = none), tombstone (1) or value (0)]. */
export type ListedKey = [string, number, string, number, number];

export interface KeyPage {
  keys: ListedKey[];
  /** Decimal token: every key with a token in [from, through] was considered. Null: to the end. */
  through: string | null;
}

interface KeyIndex {
  tokens: BigUint64Array;
  keys: string[];
}

export interface KeyListingOptions {
  store: Store;
  hashKey: (key: string) => bigint;
  /** The index's idle time (monotonic) and the build's yields. Default systemClock. */
  clock?: Clock;
}

/** Parses a decimal token (a cursor) in [0, 2^64); throws BAD_REQUEST. */
export function parseToken(text: string, what = 'cursor'): bigint {
  if (!/^\d{1,20}$/.test(text)) throw new ShoalError('BAD_REQUEST', `invalid ${what}`);
  const value = BigInt(text);
  if (value >= TOKEN_SPACE) throw new ShoalError('BAD_REQUEST', `invalid ${what}`);
  return value;
}

/** The node side: pages of this node's keys in token order. */
export class KeyListing {
  private index: KeyIndex | null = null;
  private building: Promise<KeyIndex> | null = null;
  /** Keys applied since the current build started, with their tokens; null when not noting. */
  private noted: Map<string, bigint> | null = null;
  /** More than NOTED_KEYS_MAX keys were applied since the build: the index must be rebuilt. */
  private stale = false;
  private lastUsedMs = 0;
  private readonly clock: Clock;
  builds = 0;

  constructor(private readonly o: KeyListingOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /** Called for every key this node applies (Replica.onApplied). Cheap when no index is kept. */
  noteApplied(key: string): void {
    if (this.noted === null) return;
    if (this.building === null && this.clock.monotonicMs() - this.lastUsedMs > INDEX_IDLE_MS) {
      this.drop();
      return;
    }
    if (this.noted.size >= NOTED_KEYS_MAX) {
      this.stale = true;
      this.noted = null;
      return;
    }
    if (!this.noted.has(key)) this.noted.set(key, this.o.hashKey(key));
  }

  private drop(): void {
    this.index = null;
    this.noted = null;
    this.stale = false;
  }

  /** Reads every key of the store and sorts them by token, yielding to the event loop between chunks. */
  private async build(): Promise<KeyIndex> {
    // Keys applied from now on are noted: the index plus them is every key of the store.
    this.noted = new Map();
    this.stale = false;
    const keys: string[] = [];
    const hashes: bigint[] = [];
    const visit = (key: string): void => {
      keys.push(key);
      hashes.push(this.o.hashKey(key));
    };
    await scanStore(this.o.store, visit, this.clock);
    const raw = BigUint64Array.from(hashes);
    const order = sortedOrder(raw, keys);
    const tokens = new BigUint64Array(keys.length);
    const sorted = new Array<string>(keys.length);
    for (let i = 0; i < order.length; i++) {
      tokens[i] = raw[order[i]];
      sorted[i] = keys[order[i]];
    }
    this.builds += 1;
    this.index = { tokens, keys: sorted };
    return this.index;
  }

  /** The index, built if there is none (or it went stale or idle); concurrent callers share a build. */
  private async current(): Promise<KeyIndex> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const nowMs = this.clock.monotonicMs();
      if (this.building === null && this.index !== null && (this.stale || nowMs - this.lastUsedMs > INDEX_IDLE_MS)) this.drop();
      this.lastUsedMs = nowMs;
      const index = this.index ?? (await (this.building ??= this.build().finally(() => (this.building = null))));
      if (!this.stale) return index;
      this.drop();
    }
    throw new ShoalError('UNAVAILABLE', `more than ${NOTED_KEYS_MAX} keys were written during each of three attempts to index this node's keys for a scan; try again`);
  }

  /** Drops the index (tests; also what idleness does). */
  reset(): void {
    if (this.building === null) this.drop();
  }

  /** One page from `from` (inclusive). `match` filters key names (the same on every node). */
  async page(from: bigint, limit: number, match?: (key: string) => boolean): Promise<KeyPage> {
    assert.ok(limit >= 1 && limit <= SCAN_PAGE_KEYS_MAX, 'page limit out of range');
    const index = await this.current();
    const noted = [...(this.noted ?? new Map<string, bigint>())].filter(([, t]) => t >= from);
    noted.sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let i = lowerBound(index.tokens, from);
    let j = 0;
    const keys: ListedKey[] = [];
    let bytes = 0;
    let visited = 0;
    let lastToken = -1n;
    let lastKey = '';
    while (i < index.keys.length || j < noted.length) {
      // The next candidate in (token, key) order from the index and the noted keys.
      let token: bigint;
      let key: string;
      const fromIndex = j >= noted.length || (i < index.keys.length && (index.tokens[i] < noted[j][1] || (index.tokens[i] === noted[j][1] && index.keys[i] <= noted[j][0])));
      if (fromIndex) {
        token = index.tokens[i];
        key = index.keys[i++];
      } else {
        token = noted[j][1];
        key = noted[j++][0];
      }
      // Stop only between tokens, so keys sharing one are never split across pages.
      if (token !== lastToken && lastToken >= 0n && (keys.length >= limit || bytes >= SCAN_PAGE_BYTES_MAX || visited >= SCAN_VISIT_MAX)) {
        return { keys, through: lastToken.toString() };
      }
      lastToken = token;
      visited += 1;
      // A key both in the index and noted since comes twice in a row (same token and key).
      if (key === lastKey) continue;
      lastKey = key;
      if (match !== undefined && !match(key)) continue;
      const entry = this.o.store.getEntry(key);
      if (entry === undefined) continue;
      keys.push(listed(key, entry));
      bytes += Buffer.byteLength(key) + 32;
    }
    return { keys, through: null };
  }

  /** The `internal.keys` handler: { from, limit, match? } → KeyPage. */
  handle(op: string, args: Args): Promise<KeyPage> {
    const from = parseToken(str(op, args, 'from'), 'from');
    const limit = optInt(op, args, 'limit', 1, SCAN_PAGE_KEYS_MAX) ?? 1000;
    const pattern = args.match;
    if (pattern !== undefined && pattern !== null && typeof pattern !== 'string') throw new ShoalError('BAD_REQUEST', `${op}: "match" must be a string`);
    return this.page(from, limit, typeof pattern === 'string' ? globMatcher(pattern) : undefined);
  }
}

function listed(key: string, entry: Entry): ListedKey {
  return [key, entry.ts, entry.node, entry.expiresAtMs ?? -1, entry.value === null ? 1 : 0];
}

/**
 * The permutation that sorts `tokens` (ties by key). A comparator sort of a million bigints takes
 * seconds; instead each token's low bits are replaced by its index and the typed array is sorted
 * natively, then one insertion pass puts neighbours that shared the kept high bits in full order
 * (rare: the expected number of such pairs is about n² / 2^(64 − index bits)).
 */
function sortedOrder(tokens: BigUint64Array, keys: string[]): Uint32Array {
  const n = tokens.length;
  const indexBits = Math.max(1, Math.ceil(Math.log2(n + 1)));
  assert.ok(indexBits <= 32, 'too many keys to index');
  const shift = BigInt(indexBits);
  const mask = (1n << shift) - 1n;
  const packed = new BigUint64Array(n);
  for (let i = 0; i < n; i++) packed[i] = ((tokens[i] >> shift) << shift) | BigInt(i);
  packed.sort();
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = Number(packed[i] & mask);
  const before = (a: number, b: number) => tokens[a] < tokens[b] || (tokens[a] === tokens[b] && keys[a] < keys[b]);
  for (let i = 1; i < n; i++) {
    const cur = order[i];
    let j = i - 1;
    while (j >= 0 && before(cur, order[j])) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = cur;
  }
  return order;
}

/** First index whose token is ≥ `token`. */
function lowerBound(tokens: BigUint64Array, token: bigint): number {
  let lo = 0;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (tokens[mid] < token) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface ScanClusterOptions {
  view: ClusterView;
  transport: Transport;
  ringFactory: Pick<RingFactory, 'hashKey'>;
  writeQuorum: number;
  timeoutMs: number;
  /** Its wall clock decides what has expired. */
  clock: Pick<Clock, 'now'>;
}

export interface ScanPageRequest {
  /** Keys per node page (a hint for the number of keys returned). */
  count: number;
  match?: string;
  consistency?: Consistency;
}

export interface ScanPage {
  /** 0n when the scan is complete. */
  cursor: bigint;
  keys: string[];
}

/** One page of the cluster-wide scan starting at `cursor` (0n = the beginning). */
export async function scanCluster(o: ScanClusterOptions, cursor: bigint, request: ScanPageRequest): Promise<ScanPage> {
  assert.ok(cursor >= 0n && cursor < TOKEN_SPACE, 'cursor out of range');
  const limit = Math.max(1, Math.min(SCAN_PAGE_KEYS_MAX, Math.floor(request.count)));
  const members = o.view.ring().members();
  const w = Math.max(1, Math.min(o.writeQuorum, o.view.replicas()));
  // How many ring members may be missing while every key written with W copies is still seen.
  const missingMax = request.consistency === 'all' ? 0 : request.consistency === 'one' ? members.length - 1 : w - 1;
  const up = members.filter((id) => o.view.isUp(id));
  const args: Args = { from: cursor.toString(), limit };
  if (request.match !== undefined) args.match = request.match;
  const failures: string[] = members.filter((id) => !o.view.isUp(id)).map((id) => `${id} is down`);
  const pages: KeyPage[] = [];
  await Promise.all(
    up.map((id) =>
      o.transport.call(id, 'internal.keys', args, { timeoutMs: o.timeoutMs }).then(
        (result) => pages.push(pageFrom(result)),
        (err: unknown) => failures.push(`${id}: ${toShoalError(err).code}`),
      ),
    ),
  );
  if (failures.length > missingMax || pages.length === 0) {
    throw new ShoalError(
      'UNAVAILABLE',
      `scan needs ${members.length - missingMax} of ${members.length} ring members, ${pages.length} answered (${failures.slice(0, 3).join('; ')})`,
    );
  }
  let bound = TOKEN_SPACE - 1n;
  let complete = true;
  for (const page of pages) {
    if (page.through === null) continue;
    const t = parseToken(page.through, 'through');
    complete = false;
    if (t < bound) bound = t;
  }
  const newest = new Map<string, ListedKey>();
  for (const page of pages) {
    for (const item of page.keys) {
      const have = newest.get(item[0]);
      if (have === undefined || item[1] > have[1] || (item[1] === have[1] && item[2] > have[2])) newest.set(item[0], item);
    }
  }
  const nowMs = o.clock.now();
  const keys: Array<[bigint, string]> = [];
  for (const [key, item] of newest) {
    const token = o.ringFactory.hashKey(key);
    if (token < cursor || token > bound) continue;
    const entry: Entry = { value: item[4] === 1 ? null : Buffer.alloc(0), ts: item[1], node: item[2] };
    if (item[3] >= 0) entry.expiresAtMs = item[3];
    if (!isDead(entry, nowMs)) keys.push([token, key]);
  }
  keys.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1));
  const next = complete || bound + 1n >= TOKEN_SPACE ? 0n : bound + 1n;
  return { cursor: next, keys: keys.map(([, key]) => key) };
}

function pageFrom(raw: unknown): KeyPage {
  const r = raw as { keys?: unknown; through?: unknown } | null;
  if (r === null || typeof r !== 'object' || !Array.isArray(r.keys) || !(r.through === null || typeof r.through === 'string')) {
    throw new ShoalError('INTERNAL', 'internal.keys: malformed page');
  }
  for (const item of r.keys) {
    if (!Array.isArray(item) || item.length !== 5 || typeof item[0] !== 'string' || typeof item[1] !== 'number' || typeof item[2] !== 'string') {
      throw new ShoalError('INTERNAL', 'internal.keys: malformed key');
    }
  }
  return { keys: r.keys as ListedKey[], through: r.through };
}

/**
 * Redis's glob-style MATCH: `*` any run, `?` one character, `[abc]`, `[^a]`, `[a-z]` classes and `\x`
 * to match x literally. Matches characters of the key (Shoal keys are UTF-8 strings).
 */
export function globMatcher(pattern: string): (key: string) => boolean {
  if (pattern === '*') return () => true;
  const p = [...pattern];
  return (key: string) => globAt(p, 0, [...key], 0, 0);
}

/** Bound on backtracking steps, so a hostile pattern cannot stall the node. */
const GLOB_STEPS_MAX = 100_000;

function globAt(p: string[], pi: number, s: string[], si: number, depth: number): boolean {
  let steps = depth;
  while (pi < p.length) {
    if (++steps > GLOB_STEPS_MAX) return false;
    const c = p[pi];
    if (c === '*') {
      while (pi + 1 < p.length && p[pi + 1] === '*') pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k <= s.length; k++) {
        if (globAt(p, pi + 1, s, k, steps + (k - si))) return true;
      }
      return false;
    }
    if (si >= s.length) return false;
    if (c === '?') {
      pi++;
      si++;
      continue;
    }
    if (c === '[') {
      let i = pi + 1;
      const negate = p[i] === '^';
      if (negate) i++;
      let matched = false;
      while (i < p.length && p[i] !== ']') {
        if (p[i] === '\\' && i + 1 < p.length) {
          if (p[i + 1] === s[si]) matched = true;
          i += 2;
        } else if (i + 2 < p.length && p[i + 1] === '-' && p[i + 2] !== ']') {
          let lo = p[i];
          let hi = p[i + 2];
          if (lo > hi) [lo, hi] = [hi, lo];
          if (s[si] >= lo && s[si] <= hi) matched = true;
          i += 3;
        } else {
          if (p[i] === s[si]) matched = true;
          i++;
        }
      }
      if (matched === negate) return false;
      pi = i < p.length ? i + 1 : i;
      si++;
      continue;
    }
    if (c === '\\' && pi + 1 < p.length) {
      if (p[pi + 1] !== s[si]) return false;
      pi += 2;
      si++;
      continue;
    }
    if (c !== s[si]) return false;
    pi++;
    si++;
  }
  return si === s.length;
}
