/**
 * Anti-entropy: every antiEntropyIntervalMs this node picks the next up peer (round robin) and compares
 * the token ranges both replicate. Each side summarises its entries there as a bucketed digest
 * (digest.ts); for buckets that differ the peer lists (key, version) pairs, and only keys whose
 * versions differ move: newer on the peer → read from it and applied here; newer here → pushed to it.
 * So replicas converge even for keys nobody reads. Work is bounded: keys exchanged per round and per
 * second, and stores are scanned in chunks that yield to the event loop.
 *
 * Every call fits in one frame whatever the value sizes (batch.ts): a version listing covers as many
 * of the asked buckets as fit and names them (`bucketIds`), the rest are asked for next; a readBatch
 * reply covers a prefix of the keys (`next`); pushes are cut by bytes.
 */
import assert from 'node:assert/strict';
import type { ClockTimer } from '../clock.js';
import { ShoalError, toShoalError } from '../errors.js';
import { RangeSet, rangeFromWire, rangeToWire } from '../ring/ranges.js';
import { compareVersion } from '../storage/types.js';
import type { Args } from './args.js';
import { entryPairs, entryToWire, int, optInt, str } from './args.js';
import type { NodeContext } from './context.js';
import type { RangeDigest } from './digest.js';
import { bucketOf, buildDigestAsync, diffDigests, digestFromWire, DIGEST_LIMITS, listBucketsAsync } from './digest.js';
import { BATCH_ITEMS_MAX, batchBytesMax, cutBatches, entryWireBytes, rowWireBytes } from './batch.js';
import { Pacer } from './pacer.js';

/** Most token ranges a digest request may name. */
const RANGES_MAX = 1 << 20;

/** Time (expiry cut-off, the round timer, the pacer) comes from the context's clock. */
export type AntiEntropyOptions = NodeContext;

/** A version as listed for comparison: [key, ts, node, tombstone 0|1]. */
type VersionRow = [string, number, string, number];

export interface RoundResult {
  peer: string | null;
  differingBuckets: number;
  pulled: number;
  pushed: number;
  skipped?: string;
}

export class AntiEntropy {
  private readonly o: AntiEntropyOptions;
  private readonly pacer: Pacer;
  private timer: ClockTimer | null = null;
  private running: Promise<RoundResult> | null = null;
  private nextPeer = 0;
  private stopped = false;
  /** Byte budget of one batch (derived from the frame limit). */
  private readonly batchBytes: number;
  private readonly counters = { rounds: 0, roundsInSync: 0, roundsFailed: 0, keysPulled: 0, keysPushed: 0, lastRoundAtMs: 0 };

  constructor(options: AntiEntropyOptions) {
    this.o = options;
    this.pacer = new Pacer(options.config.antiEntropyKeysPerSecMax, { clock: options.clock });
    this.batchBytes = batchBytesMax(options.config.frameBytesMax);
  }

  start(): void {
    if (this.o.config.antiEntropyIntervalMs <= 0 || this.timer) return;
    this.timer = this.o.clock.setInterval(() => this.o.tasks.run('anti-entropy', () => this.runOnce()), this.o.config.antiEntropyIntervalMs);
    this.timer.unref();
  }

  /** Stops the timer; a round in progress ends at its next call (CLOSED). */
  stop(): void {
    this.o.clock.clearInterval(this.timer);
    this.timer = null;
    this.stopped = true;
  }

  private call(peer: string, op: string, args: Args, timeoutMs: number): Promise<Args> {
    if (this.stopped) return Promise.reject(new ShoalError('CLOSED', 'anti-entropy stopped'));
    return this.o.transport.call(peer, op, args, { timeoutMs }) as Promise<Args>;
  }

  /** One round with the next peer (or with `peer`). Rounds never overlap. */
  runOnce(peer?: string): Promise<RoundResult> {
    this.running ??= this.round(peer).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Rounds with every up peer in turn (tests; the chaos harness's convergence wait). */
  async runWithAll(): Promise<RoundResult[]> {
    const { view } = this.o;
    const peers = view.ring().members().filter((id) => id !== view.selfId && view.isUp(id));
    const results: RoundResult[] = [];
    for (const peer of peers) {
      if (this.running) await this.running.catch(() => undefined);
      results.push(await this.runOnce(peer));
    }
    return results;
  }

  stats(): Record<string, unknown> {
    return { ...this.counters };
  }

  /** The peer side: `internal.digest` and `internal.versions`. */
  async handle(op: string, args: Args): Promise<unknown> {
    const ring = this.o.view.ring();
    if (str(op, args, 'ring') !== ring.checksum()) return { ringMismatch: ring.checksum() };
    const buckets = int(op, args, 'buckets', 1, DIGEST_LIMITS.bucketsMax);
    const expiredBeforeMs = int(op, args, 'expiredBeforeMs', 0);
    if (!Array.isArray(args.ranges) || args.ranges.length > RANGES_MAX) throw new ShoalError('BAD_REQUEST', `${op}: "ranges" must be an array`);
    const ranges = new RangeSet(args.ranges.map((r) => rangeFromWire(r)));
    if (op === 'internal.digest') return { digest: await this.digest(ranges, buckets, expiredBeforeMs) };
    if (!Array.isArray(args.bucketIds) || args.bucketIds.length > buckets) {
      throw new ShoalError('BAD_REQUEST', `${op}: "bucketIds" must be an array of at most ${buckets} bucket numbers`);
    }
    const ids = args.bucketIds.map((b) => {
      if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b >= buckets) throw new ShoalError('BAD_REQUEST', `${op}: bad bucket ${String(b)}`);
      return b;
    });
    const bytesMax = Math.min(optInt(op, args, 'bytesMax', 1) ?? this.batchBytes, this.batchBytes);
    const listing = await this.versions(ranges, buckets, ids, expiredBeforeMs, bytesMax);
    return { versions: listing.rows, bucketIds: listing.covered };
  }

  private async round(only?: string): Promise<RoundResult> {
    const { view, config } = this.o;
    const ring = view.ring();
    const self = view.selfId;
    const peers = ring.members().filter((id) => id !== self && view.isUp(id));
    const result: RoundResult = { peer: null, differingBuckets: 0, pulled: 0, pushed: 0 };
    if (peers.length === 0) return { ...result, skipped: 'no up peer' };
    const peer = only ?? peers[this.nextPeer++ % peers.length];
    result.peer = peer;
    const n = view.replicas();
    const shared = new RangeSet(ring.rangesFor(self, n)).intersect(new RangeSet(ring.rangesFor(peer, n)));
    if (shared.isEmpty()) return { ...result, skipped: 'no shared ranges' };
    const timeoutMs = config.internalTimeoutMs * 5;
    const base: Args = {
      ring: ring.checksum(),
      buckets: config.antiEntropyBuckets,
      expiredBeforeMs: this.o.clock.now(),
      ranges: shared.toRanges().map(rangeToWire),
    };
    this.counters.rounds += 1;
    this.counters.lastRoundAtMs = this.o.clock.now();
    try {
      const reply = await this.call(peer, 'internal.digest', base, timeoutMs);
      if (reply.ringMismatch !== undefined) return { ...result, skipped: 'rings differ' };
      const theirs = digestFromWire(reply.digest);
      const mine = await this.digest(shared, config.antiEntropyBuckets, base.expiredBeforeMs as number);
      const differing = diffDigests(mine, theirs);
      result.differingBuckets = differing.length;
      if (differing.length === 0) {
        this.counters.roundsInSync += 1;
        return result;
      }
      // List the differing buckets in as many calls as their listings need frames.
      let remaining = differing;
      const budget = config.antiEntropyKeysPerRoundMax;
      while (remaining.length > 0 && result.pulled + result.pushed < budget) {
        const listed = await this.call(peer, 'internal.versions', { ...base, bucketIds: remaining, bytesMax: this.batchBytes }, timeoutMs);
        if (listed.ringMismatch !== undefined) return { ...result, skipped: 'rings differ' };
        const covered = coveredBuckets(listed.bucketIds, remaining);
        const theirVersions = versionRows(listed.versions);
        const myVersions = (await this.versions(shared, config.antiEntropyBuckets, covered, base.expiredBeforeMs as number, Infinity)).rows;
        const { pull, push } = compareRows(myVersions, theirVersions, budget - result.pulled - result.pushed);
        result.pulled += await this.pull(peer, pull, timeoutMs);
        result.pushed += await this.push(peer, push, timeoutMs);
        const done = new Set(covered);
        remaining = remaining.filter((b) => !done.has(b));
      }
      this.counters.keysPulled += result.pulled;
      this.counters.keysPushed += result.pushed;
      this.o.metrics?.inc('cluster_anti_entropy_keys_total', {}, result.pulled + result.pushed);
      if (result.pulled + result.pushed > 0) this.o.logger.info('anti-entropy repaired keys', { ...result });
      return result;
    } catch (err) {
      this.counters.roundsFailed += 1;
      this.o.logger.warn('anti-entropy round failed', { peer, error: toShoalError(err).message });
      return { ...result, skipped: toShoalError(err).message };
    }
  }

  private async pull(peer: string, keys: string[], timeoutMs: number): Promise<number> {
    let pulled = 0;
    const requests = cutBatches(keys, (key) => rowWireBytes(key, ''), { bytesMax: this.batchBytes, itemsMax: BATCH_ITEMS_MAX });
    for (const request of requests) {
      let rest = request;
      while (rest.length > 0) {
        await this.pacer.take(rest.length);
        const reply = await this.call(peer, 'internal.readBatch', { keys: rest, bytesMax: this.batchBytes }, timeoutMs);
        const entries = entryPairs('internal.readBatch', reply, 'entries', BATCH_ITEMS_MAX);
        // An older peer answers every key at once (no `next`).
        const next = reply.next === undefined ? rest.length : reply.next;
        if (typeof next !== 'number' || !Number.isInteger(next) || next < 1 || next > rest.length) {
          throw new ShoalError('BAD_REQUEST', `internal.readBatch: "next" must be 1..${rest.length}, got ${String(next)}`);
        }
        await Promise.all(entries.map(([key, entry]) => this.o.apply(key, entry)));
        pulled += entries.length;
        rest = rest.slice(next);
      }
    }
    return pulled;
  }

  private async push(peer: string, keys: string[], timeoutMs: number): Promise<number> {
    let pushed = 0;
    const present: Array<[string, Args, number]> = [];
    for (const key of keys) {
      const entry = this.o.store.getEntry(key);
      if (entry) present.push([key, entryToWire(entry), entryWireBytes(key, entry)]);
    }
    for (const batch of cutBatches(present, (p) => p[2], { bytesMax: this.batchBytes, itemsMax: BATCH_ITEMS_MAX })) {
      await this.pacer.take(batch.length);
      await this.call(peer, 'internal.applyBatch', { entries: batch.map(([k, e]) => [k, e]) }, timeoutMs);
      pushed += batch.length;
    }
    return pushed;
  }

  private digest(ranges: RangeSet, buckets: number, expiredBeforeMs: number): Promise<RangeDigest> {
    return buildDigestAsync(this.o.store.entries(), ranges, { buckets, expiredBeforeMs, clock: this.o.clock });
  }

  /**
   * The version rows of the asked buckets, whole buckets in the asked order while they fit in
   * `bytesMax` (the first one always, cut if it alone is larger); `covered` names the buckets listed.
   */
  private async versions(
    ranges: RangeSet,
    buckets: number,
    bucketIds: number[],
    expiredBeforeMs: number,
    bytesMax: number,
  ): Promise<{ rows: VersionRow[]; covered: number[] }> {
    const listing = await listBucketsAsync(this.o.store.entries(), ranges, buckets, bucketIds, {
      expiredBeforeMs,
      entriesMax: this.o.config.antiEntropyKeysPerRoundMax * 4,
      clock: this.o.clock,
    });
    const byBucket = new Map<number, VersionRow[]>();
    for (const [key, e] of listing.entries) {
      const b = bucketOf(key, buckets);
      const list = byBucket.get(b) ?? [];
      list.push([key, e.ts, e.node, e.value === null ? 1 : 0]);
      byBucket.set(b, list);
    }
    const rows: VersionRow[] = [];
    const covered: number[] = [];
    let bytes = 0;
    for (const b of bucketIds) {
      const list = byBucket.get(b) ?? [];
      let size = 0;
      for (const r of list) size += rowWireBytes(r[0], r[2]);
      if (covered.length > 0 && bytes + size > bytesMax) break;
      covered.push(b);
      for (const r of list) {
        const rowBytes = rowWireBytes(r[0], r[2]);
        if (rows.length > 0 && bytes + rowBytes > bytesMax) break; // one bucket larger than a frame: cut
        rows.push(r);
        bytes += rowBytes;
      }
    }
    assert.ok(bucketIds.length === 0 || covered.length >= 1, 'a listing covers at least one bucket');
    return { rows, covered };
  }
}

/** The buckets a listing covered: a non-empty subset of those asked (all of them from an older peer). */
function coveredBuckets(raw: unknown, asked: number[]): number[] {
  if (raw === undefined) return asked;
  const askedSet = new Set(asked);
  if (!Array.isArray(raw) || raw.length === 0 || !raw.every((b) => typeof b === 'number' && askedSet.has(b))) {
    throw new ShoalError('BAD_REQUEST', 'internal.versions: "bucketIds" must be a non-empty subset of the buckets asked');
  }
  return raw as number[];
}

function versionRows(raw: unknown): VersionRow[] {
  if (!Array.isArray(raw)) throw new ShoalError('BAD_REQUEST', 'internal.versions: "versions" must be an array');
  return raw.map((row) => {
    if (!Array.isArray(row) || typeof row[0] !== 'string' || typeof row[1] !== 'number' || typeof row[2] !== 'string') {
      throw new ShoalError('BAD_REQUEST', 'internal.versions: rows must be [key, ts, node, tombstone]');
    }
    return [row[0], row[1], row[2], row[3] === 1 ? 1 : 0];
  });
}

/** Keys to pull (peer newer or only there) and to push (here newer or only here), at most `max` together. */
function compareRows(mine: VersionRow[], theirs: VersionRow[], max: number): { pull: string[]; push: string[] } {
  const mineByKey = new Map(mine.map((r) => [r[0], r]));
  const pull: string[] = [];
  const push: string[] = [];
  for (const [key, ts, node] of theirs) {
    if (pull.length + push.length >= max) break;
    const m = mineByKey.get(key);
    mineByKey.delete(key);
    const order = m ? compareVersion({ ts: m[1], node: m[2] }, { ts, node }) : -1;
    if (order < 0) pull.push(key);
    else if (order > 0) push.push(key);
  }
  for (const key of mineByKey.keys()) {
    if (pull.length + push.length >= max) break;
    push.push(key);
  }
  return { pull, push };
}
