/**
 * Listing keys cluster-wide with a resumable cursor (`shoal scan`, the `scan` op; RESP SCAN reuses
 * scanCluster). Keys come in key order (JavaScript string order, the same on every node), one page
 * at a time:
 *
 *  - every up owner on the ring answers `internal.scan` (scanNode): its smallest `limit` keys after
 *    the cursor that it owns, tombstones included, found in one pass over its store that keeps only
 *    `limit` keys (memory bounded by the page, not by the store), and cut at `bytesMax` bytes;
 *  - the coordinator merges the answers (newest version of a key wins), keeps only the keys up to the
 *    smallest "last key" of the nodes that had more (below it every node's answer is complete), takes
 *    the first `limit` of them, then hides tombstones and expired keys. The cursor is the last key
 *    looked at, so a page may show fewer than `limit` keys (or none) and still have a cursor, as with
 *    Redis SCAN. A null cursor means the scan is done.
 *
 * A key is missed only if every one of its owners is unreachable; those are listed in `unreachable`.
 * Writes made during a scan may or may not be seen; keys present for the whole scan are listed once.
 */
import assert from 'node:assert/strict';
import { ShoalError } from '../errors.js';
import type { Entry, Store } from '../storage/types.js';
import { compareVersion } from '../storage/types.js';
import type { Args } from './args.js';
import { entryPairs, entryToWire, isDead, optInt, str } from './args.js';
import type { Transport } from './ports.js';
import { SCAN_CHUNK_ENTRIES } from './scan.js';
import type { ClusterView } from './view.js';

/** Keys per page by default and at most (one page is held in memory per node answering). */
export const SCAN_LIMIT_DEFAULT = 100;
export const SCAN_LIMIT_MAX = 1000;
/** Bytes of keys and values one node sends for one page (at least one entry is always sent). */
export const SCAN_PAGE_BYTES_MAX = 1024 * 1024;
/** Longest prefix or cursor key accepted (keys are bounded by storage.keyBytesMax anyway). */
const SCAN_KEY_BYTES_MAX = 64 * 1024;

export interface ScanNodeOptions {
  /** Only keys after this one (string order); '' = from the start. */
  after: string;
  prefix: string;
  limit: number;
  /** Leave values out (their bytes still do not count). */
  keysOnly: boolean;
  bytesMax: number;
  /** Whether this node is an owner of the key (the ring's preference list). */
  owns: (key: string) => boolean;
}

export interface ScanNodeResult {
  entries: Array<[string, Entry]>;
  /** The node has more keys after the last one sent. */
  more: boolean;
}

/** Inserts `key` into the sorted array `keys` (which has room for it). */
function insertSorted(keys: string[], key: string): void {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  keys.splice(lo, 0, key);
}

/**
 * One node's page: its smallest owned keys after `after`, in one pass over the store that keeps at
 * most `limit` keys. Ownership (a preference-list lookup) is checked only for keys that would enter
 * the page, and for larger ones only until one shows that more remain.
 */
export async function scanNode(store: Store, o: ScanNodeOptions): Promise<ScanNodeResult> {
  assert.ok(o.limit >= 1 && o.bytesMax >= 1, 'scan page limits must be positive');
  const keys: string[] = [];
  /** An owned key after `after` exists beyond the ones kept. */
  let more = false;
  let inChunk = 0;
  for (const [key] of store.entries()) {
    if (++inChunk >= SCAN_CHUNK_ENTRIES) {
      inChunk = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (!(key > o.after) || !key.startsWith(o.prefix)) continue;
    if (keys.length >= o.limit && key >= keys[keys.length - 1]) {
      if (!more && o.owns(key)) more = true;
      continue;
    }
    if (!o.owns(key)) continue;
    insertSorted(keys, key);
    if (keys.length > o.limit) {
      keys.pop(); // an owned key, now beyond the page
      more = true;
    }
  }
  const entries: Array<[string, Entry]> = [];
  let bytes = 0;
  let cut = false;
  for (const key of keys) {
    const entry = store.getEntry(key);
    if (entry === undefined) continue; // collected since the pass
    const size = Buffer.byteLength(key) + (o.keysOnly ? 0 : (entry.value?.length ?? 0)) + 32;
    if (entries.length > 0 && bytes + size > o.bytesMax) {
      cut = true;
      break;
    }
    bytes += size;
    entries.push([key, o.keysOnly && entry.value !== null ? { ...entry, value: Buffer.alloc(0) } : entry]);
  }
  assert.ok(entries.length <= o.limit, 'a node page never exceeds its limit');
  return { entries, more: cut || more };
}

/** `internal.scan` arguments: { after?, prefix?, limit, keysOnly?, bytesMax? }. */
export function parseScanNodeArgs(args: Args): Omit<ScanNodeOptions, 'owns'> {
  const op = 'internal.scan';
  const after = args.after === undefined || args.after === null ? '' : str(op, args, 'after', { empty: true });
  const prefix = args.prefix === undefined || args.prefix === null ? '' : str(op, args, 'prefix', { empty: true });
  if (Buffer.byteLength(after) > SCAN_KEY_BYTES_MAX || Buffer.byteLength(prefix) > SCAN_KEY_BYTES_MAX) {
    throw new ShoalError('BAD_REQUEST', `${op}: "after" and "prefix" are at most ${SCAN_KEY_BYTES_MAX} bytes`);
  }
  return {
    after,
    prefix,
    limit: optInt(op, args, 'limit', 1, SCAN_LIMIT_MAX) ?? SCAN_LIMIT_DEFAULT,
    keysOnly: args.keysOnly === true,
    bytesMax: optInt(op, args, 'bytesMax', 1, SCAN_PAGE_BYTES_MAX) ?? SCAN_PAGE_BYTES_MAX,
  };
}

export function scanNodeResultToWire(result: ScanNodeResult): Args {
  return { entries: result.entries.map(([key, entry]) => [key, entryToWire(entry)]), more: result.more };
}

export interface ScanOptions {
  /** From scanCluster's previous result; absent or '' = from the start. */
  cursor?: string;
  prefix?: string;
  /** Keys looked at per page (1..SCAN_LIMIT_MAX, default SCAN_LIMIT_DEFAULT). */
  limit?: number;
  keysOnly?: boolean;
}

export interface ScanItem {
  key: string;
  /** Absent with keysOnly. */
  value?: Buffer;
  version: { ts: number; node: string };
  expiresAtMs?: number;
}

export interface ScanResult {
  entries: ScanItem[];
  /** Pass it back for the next page; null when the scan is done. */
  cursor: string | null;
  /** Owners that did not answer (their keys may be missing if all their replicas are down). */
  unreachable: string[];
}

export interface ScanClusterContext {
  view: Pick<ClusterView, 'ring' | 'isUp' | 'selfId'>;
  transport: Transport;
  timeoutMs: number;
  now: () => number;
}

/** The cursor is the last key looked at, base64url: opaque, printable, safe in a shell. */
export function encodeScanCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

export function decodeScanCursor(cursor: string | undefined): string {
  if (cursor === undefined || cursor === '') return '';
  if (!/^[A-Za-z0-9_-]+$/.test(cursor) || cursor.length > SCAN_KEY_BYTES_MAX * 2) throw new ShoalError('BAD_REQUEST', 'scan: invalid cursor (pass back the cursor a scan returned)');
  return Buffer.from(cursor, 'base64url').toString('utf8');
}

/** One page of the cluster-wide scan (see the file header). */
export async function scanCluster(ctx: ScanClusterContext, options: ScanOptions = {}): Promise<ScanResult> {
  const limit = options.limit ?? SCAN_LIMIT_DEFAULT;
  if (!Number.isInteger(limit) || limit < 1 || limit > SCAN_LIMIT_MAX) throw new ShoalError('BAD_REQUEST', `scan: limit must be an integer from 1 to ${SCAN_LIMIT_MAX}`);
  const after = decodeScanCursor(options.cursor);
  const prefix = options.prefix ?? '';
  const owners = ctx.view.ring().members();
  const asked = owners.filter((id) => ctx.view.isUp(id));
  const unreachable = owners.filter((id) => !ctx.view.isUp(id));
  const args: Args = { after, prefix, limit, keysOnly: options.keysOnly === true, bytesMax: SCAN_PAGE_BYTES_MAX };
  const answers = await Promise.all(
    asked.map(async (id) => {
      try {
        const raw = (await ctx.transport.call(id, 'internal.scan', args, { timeoutMs: ctx.timeoutMs })) as Args;
        return { id, entries: entryPairs('internal.scan', raw, 'entries', limit), more: raw.more === true };
      } catch {
        unreachable.push(id);
        return null;
      }
    }),
  );
  if (asked.length > 0 && answers.every((a) => a === null)) throw new ShoalError('UNAVAILABLE', `scan: no owner answered (asked ${asked.join(', ')})`);

  const newest = new Map<string, Entry>();
  /** Below this key every answer is complete: the smallest last key of the nodes that had more. */
  let boundary: string | null = null;
  for (const answer of answers) {
    if (answer === null) continue;
    for (const [key, entry] of answer.entries) {
      const seen = newest.get(key);
      if (seen === undefined || compareVersion(entry, seen) > 0) newest.set(key, entry);
    }
    if (answer.more && answer.entries.length > 0) {
      const last = answer.entries[answer.entries.length - 1][0];
      if (boundary === null || last < boundary) boundary = last;
    }
  }
  const candidates = [...newest.keys()].filter((k) => boundary === null || k <= boundary).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const page = candidates.slice(0, limit);
  const more = candidates.length > limit || boundary !== null;
  const now = ctx.now();
  const entries: ScanItem[] = [];
  for (const key of page) {
    const entry = newest.get(key) as Entry;
    if (isDead(entry, now)) continue;
    const item: ScanItem = { key, version: { ts: entry.ts, node: entry.node } };
    if (options.keysOnly !== true && entry.value !== null) item.value = entry.value;
    if (entry.expiresAtMs !== undefined) item.expiresAtMs = entry.expiresAtMs;
    entries.push(item);
  }
  const cursor = more && page.length > 0 ? encodeScanCursor(page[page.length - 1]) : null;
  return { entries, cursor, unreachable: unreachable.sort() };
}
