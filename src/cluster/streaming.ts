/**
 * Streaming on ring change. After the ring settles, this node works out the ranges it owns now but
 * did not own in the ring it last synced with ("base"), and pulls them from the base's up members (each
 * sends the keys it is the designated source for; stream-source.ts), at a bounded byte rate. Until a
 * round completes, reads of keys in those ranges are answered with `syncing: true` so a coordinator does
 * not take this replica's miss as final. A failed source makes the round retry later; the base advances
 * only when a round completed.
 *
 * A new node with an empty store bootstraps: its base is the ring without itself. A node restarting
 * with data keeps its base at the ring it starts with (hints, read repair and anti-entropy catch it up).
 * That ring holds only this node when membership has not heard from anyone yet, which is also the case
 * of a node that ran alone and now joins a cluster with its old data dir: nothing can be streamed from
 * a base of one, so a round from such a base calls `onJoinedFromAlone` (the node then runs an
 * anti-entropy sweep with every peer, which moves only what differs, in both directions).
 *
 * An announced leave pushes out instead: every key goes to the members that will own it once this node
 * has left, before membership announces the leave, then once more for writes that arrived meanwhile.
 */
import { type ClockTimer, sleep } from '../clock.js';
import { toShoalError } from '../errors.js';
import { RangeSet, rangeToWire } from '../ring/ranges.js';
import type { Entry } from '../storage/types.js';
import type { Args } from './args.js';
import { entryPairs, entryToWire } from './args.js';
import { BATCH_ITEMS_MAX, BatchAccumulator, batchBytesMax, entryWireBytes } from './batch.js';
import type { NodeContext } from './context.js';
import { Pacer } from './pacer.js';
import { boundedMap } from './bounded.js';
import { Progress } from './progress.js';
import type { RingLike } from './ports.js';
import { scanStore } from './scan.js';

/** Attempts per batch when pushing data out on leave. */
const PUSH_ATTEMPTS_MAX = 3;
/**
 * Rounds retried before giving up on unreachable sources (anti-entropy takes over): after streamRetryMs,
 * then doubling up to ROUND_RETRY_DELAY_MAX_MS, ±20 % (with the default 2 s: 2, 4, 8, 16, then 30 s;
 * about 3.5 min in all). A fixed 2 s retry of a round that asks every source kept starved members busy
 * during a rolling start.
 */
const ROUND_RETRIES_MAX = 10;
const ROUND_RETRY_DELAY_MAX_MS = 30_000;

export interface StreamingOptions extends NodeContext {
  /** Start as a new node (empty store): pull everything this node owns. */
  bootstrap: boolean;
  /** Called after each completed round (clean-up scheduling). */
  onSynced?: (ring: RingLike) => void;
  /** Called when a round moved this node from a ring of itself alone to one with others (see above). */
  onJoinedFromAlone?: () => void;
}

/**
 * Sources pulled from at once in a round. A new node asks every member (each is the designated source
 * of some of its ranges); 100 connections opened at once by each of many starting members overran
 * starved peers' accept queues and handshake timeouts during a rolling start of 100.
 */
const STREAM_SOURCES_IN_FLIGHT_MAX = 8;

/** Polling interval of settled() while a round is due but not running. */
const SETTLED_POLL_MS = 5;

interface PendingSync {
  wanted: RangeSet;
  base: RingLike;
  baseN: number;
}

export class Streaming {
  private readonly o: StreamingOptions;
  private readonly pacer: Pacer;
  /** Byte budget of one batch (derived from the frame limit). */
  private readonly batchBytes: number;
  private syncedRing: RingLike | null;
  private bootstrap: boolean;
  private pending: PendingSync | null = null;
  /** Sources that completed a pull for the plan (base, target, n) being retried. */
  private pulledFrom: { planKey: string; sources: Set<string> } | null = null;
  /** Ring changes not yet applied to `pending` (see ringChanged). */
  private pendingStale = false;
  private ringChanges = 0;
  /** ringChanges when the running round began. */
  private roundHeard = 0;
  private timer: ClockTimer | null = null;
  private timerDueMs = 0;
  private running: Promise<void> | null = null;
  private rerun = false;
  private retries = 0;
  private closed = false;
  /** The current round's progress (null between rounds). */
  private roundProgress: Progress | null = null;
  private readonly progress = {
    rounds: 0,
    roundsFailed: 0,
    keysReceived: 0,
    bytesReceived: 0,
    keysTotal: 0,
    sourcesDone: 0,
    sourcesTotal: 0,
    leavePushedKeys: 0,
    leaveFailedKeys: 0,
  };

  constructor(options: StreamingOptions) {
    this.o = options;
    this.pacer = new Pacer(options.config.streamBytesPerSecMax, { clock: options.clock });
    this.batchBytes = batchBytesMax(options.config.frameBytesMax);
    this.bootstrap = options.bootstrap;
    this.syncedRing = options.bootstrap ? null : options.view.ring();
  }

  /** Ring changed: (re)start a round once the ring has been quiet for ringSettleMs. */
  ringChanged(): void {
    if (!this.o.config.streamingEnabled || this.closed) return;
    // The newly owned ranges count as syncing from now on, not only when the round starts; they are
    // worked out at the next read that asks (refreshPending), not here: a rolling start changes the
    // ring once per joining member, and a bootstrapping node would build a base ring every time.
    this.pendingStale = true;
    this.ringChanges += 1;
    this.schedule(this.o.config.ringSettleMs);
  }

  /** Ring changes heard (each restarts the settle timer; rounds run once the ring is quiet). */
  get ringChangesHeard(): number {
    return this.ringChanges;
  }

  /** Applies the ring changes heard since the last look to `pending` (what reads answer as syncing). */
  private refreshPending(): void {
    if (!this.pendingStale) return;
    this.pendingStale = false;
    const plan = this.plan();
    if (plan) this.pending = { wanted: plan.wanted, base: plan.base, baseN: plan.baseN };
  }

  /** True if `key` lies in a range this node is still pulling (its miss may not be final). */
  isSyncing(key: string): boolean {
    this.refreshPending();
    const p = this.pending;
    if (!p) return false;
    const token = this.o.ringFactory.hashKey(key);
    return p.wanted.has(token) && !p.base.replicasForToken(token, p.baseN).includes(this.o.view.selfId);
  }

  /** Resolves when no round is running or due within waitMs (tests, benchmarks). Bounded by waitMs. */
  async settled(waitMs = 30_000): Promise<void> {
    const { clock } = this.o;
    const deadline = clock.monotonicMs() + waitMs;
    while ((this.running || (this.timer && this.timerDueMs <= deadline)) && clock.monotonicMs() < deadline) {
      if (this.running) await this.running;
      else await sleep(clock, SETTLED_POLL_MS);
    }
  }

  /** Runs one round now (also what the debounce timer calls). */
  runOnce(): Promise<void> {
    if (this.running) {
      this.rerun = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.rerun = false;
          await this.round();
        } while (this.rerun && !this.closed);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  stats(): Record<string, unknown> {
    this.refreshPending();
    const round = this.roundProgress?.figures();
    return {
      syncing: this.pending !== null,
      bootstrap: this.bootstrap,
      ...this.progress,
      round: round === undefined ? null : { keys: round.keys, keysTotal: round.keysTotal, bytes: round.bytes, elapsedMs: round.elapsedMs, ratio: this.roundProgress?.ratio() ?? 1 },
    };
  }

  close(): void {
    this.closed = true;
    this.o.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * Leave: push keys this node owns to the members that will own them once it has left. `only` limits
   * the pass to some keys (the second pass: writes that arrived during the first), and `before` is the
   * ring the leave began with: that pass runs after the announcement, when this node's own view no
   * longer holds it (without it every late key looked unowned and none was pushed; found by the
   * simulator, seed 86).
   */
  async pushOut(only?: Set<string>, before?: { ring: RingLike; n: number }): Promise<{ pushed: number; failed: number }> {
    const { view, config } = this.o;
    const ownersBefore = before === undefined ? (key: string) => view.owners(key) : (key: string) => before.ring.preferenceList(key, before.n);
    const after = view.ringWithoutSelf();
    const afterN = Math.min(config.replicationFactor, after.members().length);
    if (afterN === 0) return { pushed: 0, failed: 0 };
    const batches = new BatchAccumulator<[string, Args, number]>({ bytesMax: this.batchBytes, itemsMax: config.streamBatchKeysMax });
    let pushed = 0;
    let failed = 0;
    const flush = async (target: string, batch: Array<[string, Args, number]>): Promise<void> => {
      const ok = await this.send(target, batch);
      if (ok) pushed += batch.length;
      else failed += batch.length;
    };
    const entries: Array<[string, Entry]> = [];
    const collect = (key: string, entry: Entry): void => {
      if (!only || only.has(key)) entries.push([key, entry]);
    };
    await scanStore(this.o.store, collect, this.o.clock);
    const progress = new Progress(only ? 'leave: pushing late writes' : 'leave: handing data off', this.o.logger, this.elapsedClock);
    progress.expect(entries.length);
    for (const [key, entry] of entries) {
      progress.add(1, key.length + (entry.value?.length ?? 0));
      const owners = ownersBefore(key);
      if (!owners.includes(view.selfId)) continue;
      const size = entryWireBytes(key, entry);
      for (const target of after.preferenceList(key, afterN)) {
        // The late pass pushes to every owner: the write reached only this node (a hint replay, a
        // repair), so the owners it keeps may lack it as much as the new one.
        if (only === undefined && owners.includes(target)) continue;
        const full = batches.add(target, [key, entryToWire(entry), size], size);
        if (full) await flush(target, full);
      }
    }
    for (const [target, batch] of batches.drain()) await flush(target, batch);
    this.progress.leavePushedKeys += pushed;
    this.progress.leaveFailedKeys += failed;
    progress.done();
    this.o.logger.info('leave: data pushed to new owners', { pushed, failed, keys: entries.length });
    return { pushed, failed };
  }

  private async send(target: string, batch: Array<[string, Args, number]>): Promise<boolean> {
    await this.pacer.take(batch.reduce((sum, item) => sum + item[2], 0));
    const entries = batch.map(([key, e]) => [key, e]);
    for (let attempt = 1; attempt <= PUSH_ATTEMPTS_MAX; attempt++) {
      try {
        await this.o.transport.call(target, 'internal.applyBatch', { entries }, { timeoutMs: this.o.config.internalTimeoutMs * 5 });
        return true;
      } catch (err) {
        this.o.logger.warn('push batch failed', { target, attempt, error: toShoalError(err).message });
      }
    }
    return false;
  }

  /** Progress lines measure elapsed time on the monotonic clock. */
  private readonly elapsedClock = (): number => this.o.clock.monotonicMs();

  private schedule(delayMs: number): void {
    const { clock } = this.o;
    clock.clearTimeout(this.timer);
    this.timerDueMs = clock.monotonicMs() + delayMs;
    this.timer = clock.setTimeout(() => {
      this.timer = null;
      this.o.tasks.run('streaming', () => this.runOnce());
    }, delayMs);
    this.timer.unref();
  }

  /** What a round would pull now: null when the ring is the synced one. */
  private plan(): { target: RingLike; base: RingLike; baseN: number; n: number; wanted: RangeSet } | null {
    const { view, config } = this.o;
    const target = view.ring();
    const base = this.syncedRing ?? view.buildRing(target.members().filter((id) => id !== view.selfId));
    if (base.checksum() === target.checksum() || !target.members().includes(view.selfId)) return null;
    const n = view.replicas();
    const baseN = Math.min(config.replicationFactor, base.members().length);
    return { target, base, baseN, n, wanted: new RangeSet(target.rangesFor(view.selfId, n)) };
  }

  private async round(): Promise<void> {
    const { view, config } = this.o;
    const self = view.selfId;
    this.roundHeard = this.ringChanges;
    const plan = this.plan();
    if (!plan) {
      this.markSynced(view.ring());
      return;
    }
    const { target, base, baseN, n, wanted } = plan;
    if (baseN > 0 && base.members().includes(self) && coveredBy(wanted, new RangeSet(base.rangesFor(self, baseN)))) {
      // Nothing newly owned (another member joined or left, and this node only kept or lost ranges):
      // it already holds every range it owns now, so there is nothing to pull from anyone. Without
      // this, every ring change of a rolling start made every member ask every other member.
      this.o.logger.debug('streaming: no newly owned ranges', { ring: target.checksum() });
      this.retries = 0;
      this.markSynced(target);
      // From a ring of this node alone it "owned" everything, so nothing is newly owned, yet its
      // data has never met the others': catch up by anti-entropy (see the top of this file).
      if (this.joinedFromAlone(base, target)) {
        this.o.logger.info('streaming: joined from a ring of this node alone; catching up by anti-entropy', { ring: target.checksum() });
        this.o.onJoinedFromAlone?.();
      }
      return;
    }
    const planKey = `${base.checksum()}>${target.checksum()}/${n}`;
    if (this.pulledFrom?.planKey !== planKey) this.pulledFrom = { planKey, sources: new Set() };
    const pulledFrom = this.pulledFrom.sources;
    const allSources = base.members().filter((id) => id !== self && view.isUp(id));
    // A retry of the same plan asks only the sources that failed: a pull is idempotent, and what a
    // source that answered receives later reaches this node as an owner (writes, hints, repair).
    const sources = allSources.filter((id) => !pulledFrom.has(id));
    const exclude = base.members().filter((id) => id === self || !view.isUp(id));
    this.pending = { wanted, base, baseN };
    this.progress.sourcesTotal = sources.length;
    this.progress.sourcesDone = 0;
    this.progress.keysTotal = 0;
    this.o.logger.info('streaming: pulling newly owned ranges', { from: sources, base: base.checksum(), ring: target.checksum() });
    this.roundProgress = new Progress('streaming', this.o.logger, this.elapsedClock, { from: sources.length });
    const request: Args = {
      puller: self,
      ranges: target.rangesFor(self, n).map(rangeToWire),
      base: base.members().map((id) => {
        const zone = view.member(id)?.zone;
        return zone === undefined ? { id } : { id, zone };
      }),
      vnodes: config.vnodes,
      n: baseN,
      exclude,
      limit: config.streamBatchKeysMax,
      bytesMax: this.batchBytes,
    };
    const results = baseN === 0 ? [] : await boundedMap(sources, STREAM_SOURCES_IN_FLIGHT_MAX, async (source) => {
      const ok = await this.pull(source, request);
      if (ok) pulledFrom.add(source);
      return ok;
    });
    this.progress.rounds += 1;
    this.roundProgress.done(results.every(Boolean) ? 'done' : 'interrupted (will retry)');
    this.roundProgress = null;
    // Others in the base but none reachable: nothing could be pulled, which is not success.
    const ok = results.every(Boolean) && (allSources.length > 0 || base.members().every((id) => id === self));
    if (ok && view.ring().checksum() === target.checksum()) {
      this.retries = 0;
      const fromAlone = this.joinedFromAlone(base, target);
      this.markSynced(target);
      if (fromAlone) {
        this.o.logger.info('streaming: joined from a ring of this node alone; catching up by anti-entropy', { ring: target.checksum() });
        this.o.onJoinedFromAlone?.();
      }
    } else if (ok) {
      // The ring changed during the round: its listener (ringChanged) has scheduled the next round
      // once the ring is quiet for ringSettleMs. Not at once: during a rolling start the ring changes
      // during nearly every round, and an immediate rerun asked every member again, round after round.
      if (this.timer === null && !this.closed) this.schedule(config.ringSettleMs);
    } else if (this.retries >= ROUND_RETRIES_MAX) {
      this.o.logger.warn('streaming: sources unreachable, giving up; anti-entropy will fill in', { retries: this.retries });
      this.retries = 0;
      this.markSynced(target);
    } else {
      this.retries += 1;
      this.progress.roundsFailed += 1;
      const delayMs = Math.min(ROUND_RETRY_DELAY_MAX_MS, config.streamRetryMs * 2 ** (this.retries - 1));
      if (!this.closed) this.schedule(Math.round(delayMs * (0.8 + 0.4 * this.o.clock.random())));
    }
  }

  private markSynced(ring: RingLike): void {
    this.pending = null;
    // The ring changes heard before this round are dealt with: a read must not work them out again
    // afterwards (for a lone first node, whose synced ring stays unset, that made every key "syncing"
    // for good, and every local read took the slow path).
    if (this.ringChanges === this.roundHeard) this.pendingStale = false;
    this.pulledFrom = null;
    if (this.bootstrap && ring.members().length < 2) return; // alone: nobody to bootstrap from yet
    this.bootstrap = false;
    this.syncedRing = ring;
    this.o.onSynced?.(ring);
  }

  /** Pages one source's session to the end; false if the source failed. */
  /** The base ring was this node alone and the new one has others: its data never met theirs. */
  private joinedFromAlone(base: RingLike, target: RingLike): boolean {
    const self = this.o.view.selfId;
    return base.members().every((id) => id === self) && target.members().some((id) => id !== self);
  }

  private async pull(source: string, request: Args): Promise<boolean> {
    const { config, transport } = this.o;
    let args: Args = request;
    try {
      for (;;) {
        if (this.closed) return false;
        const result = (await transport.call(source, 'internal.stream', args, { timeoutMs: config.internalTimeoutMs * 5 })) as Args;
        const entries = entryPairs('internal.stream', result, 'entries', BATCH_ITEMS_MAX);
        if (args === request && typeof result.total === 'number') {
          this.progress.keysTotal += result.total;
          this.roundProgress?.expect(result.total);
        }
        let bytes = 0;
        // One batch applied together: a group-committing store makes it one fsync.
        await Promise.all(entries.map(([key, entry]) => this.o.apply(key, entry)));
        for (const [key, entry] of entries) bytes += entryWireBytes(key, entry);
        this.progress.keysReceived += entries.length;
        this.progress.bytesReceived += bytes;
        this.roundProgress?.add(entries.length, bytes);
        this.o.metrics?.inc('cluster_stream_keys_total', {}, entries.length);
        if (result.done === true) break;
        await this.pacer.take(bytes);
        args = { session: result.session, limit: config.streamBatchKeysMax, bytesMax: this.batchBytes };
      }
      this.progress.sourcesDone += 1;
      return true;
    } catch (err) {
      this.o.logger.warn('streaming from source failed; will retry', { source, error: toShoalError(err).message });
      return false;
    }
  }
}

/** True when every token of `wanted` is in `had` (both normalized, so the intersection is `wanted` itself). */
function coveredBy(wanted: RangeSet, had: RangeSet): boolean {
  const both = wanted.intersect(had).intervals;
  const w = wanted.intervals;
  return both.length === w.length && both.every(([lo, hi], i) => lo === w[i][0] && hi === w[i][1]);
}
