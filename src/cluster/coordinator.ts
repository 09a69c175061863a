/**
 * The coordinator: any node runs it for any key. A write goes to the key's N owners in parallel and
 * is acknowledged after W of them (or of stand-ins holding hints for owners that are down); a read
 * asks the up owners and answers with the newest of R replies. Replicas a write missed get a hint;
 * replicas a read found stale get repaired (read-repair.ts).
 *
 * Fast paths through `local` (this node's replica, called directly): a read that needs one reply from
 * a key this node owns is answered from the local store at once (`readNow`, synchronous: no round, no
 * timer, no promise), which is exactly what the round would answer since it asks this node first; a
 * write whose only owner is this node (N = 1) goes straight to the local store. Either falls back to
 * the round whenever it would not give the round's answer (the replica is syncing the key's range, or
 * the local write failed: the round then covers the owner as it would have). The local write keeps the
 * round's bound: TIMEOUT after requestTimeoutMs (one timer per WAL batch, not per write).
 */
import assert from 'node:assert/strict';
import { type Clock, systemClock } from '../clock.js';
import { ShoalError, toShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Entry } from '../storage/types.js';
import { entryFrom, entryToWire } from './args.js';
import type { ClusterConfig, Consistency } from './config.js';
import { requiredReplies } from './config.js';
import type { ClusterMetrics, HintStoreLike, Transport } from './ports.js';
import { type ReadReply, ReadRound, unavailable, WriteRound } from './rounds.js';
import type { ClusterView } from './view.js';

export type { ReadReply } from './rounds.js';
export { newest } from './rounds.js';

export interface CoordinatorOptions {
  config: ClusterConfig;
  view: ClusterView;
  transport: Transport;
  hints: HintStoreLike;
  /** Called once every read reply has settled (read-repair.ts). */
  onReadSettled?: (key: string, replies: ReadReply[]) => void;
  logger: Logger;
  metrics?: ClusterMetrics;
  /** The rounds' timers (default systemClock). */
  clock?: Clock;
  /** This node's replica, for the fast paths (without it every read and write is a round). */
  local?: LocalReplica;
}

/** This node's replica as the coordinator calls it directly. */
export interface LocalReplica {
  /** The entry held here (raw), or undefined while this node is still syncing the key's range. */
  read(key: string): Entry | null | undefined;
  /** Applies an entry with LWW, like internal.apply; resolves once durable under the fsync policy. */
  apply(key: string, entry: Entry): Promise<boolean>;
}

const OK_LABELS = Object.freeze({ outcome: 'ok' });
const noop = (): void => {};

export class Coordinator {
  private readonly o: CoordinatorOptions;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(options: CoordinatorOptions) {
    this.o = options;
  }

  /** Resolves when every replica call (and hint) of earlier requests has settled. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private background(work: Promise<unknown>): void {
    this.inFlight.add(work);
    const forget = (): void => {
      this.inFlight.delete(work);
    };
    work.then(forget, forget);
  }

  /**
   * A local apply bounded by requestTimeoutMs (a write round's bound: the client gets TIMEOUT, the
   * write may still land), and tracked for idle(). The store answers every write of one WAL batch
   * with the same promise, so the timer and the tracking are per batch, not per write.
   */
  private guard(applied: Promise<boolean>): Promise<boolean> {
    if (applied === this.lastApplied && this.lastGuarded !== null) {
      this.lastBatchWrites.n += 1;
      return this.lastGuarded;
    }
    const timeoutMs = this.o.config.requestTimeoutMs;
    // The writes of this batch: counted as acknowledged all at once when it is durable.
    const writes = { n: 1 };
    const guarded = new Promise<boolean>((resolve, reject) => {
      const timeout = new ShoalError('TIMEOUT', `write timed out after ${timeoutMs} ms (this node's store did not make it durable)`);
      const clock = this.o.clock ?? systemClock;
      const timer = clock.setTimeout(() => {
        this.localTimeouts.add(timeout);
        reject(timeout);
      }, timeoutMs);
      timer.unref();
      applied.then(
        (v) => {
          clock.clearTimeout(timer);
          this.o.metrics?.inc('cluster_writes_total', OK_LABELS, writes.n);
          resolve(v);
        },
        (err: unknown) => {
          clock.clearTimeout(timer);
          reject(err);
        },
      );
    });
    this.lastApplied = applied;
    this.lastGuarded = guarded;
    this.lastBatchWrites = writes;
    this.background(applied);
    return guarded;
  }

  /** guard()'s memo: the last batch promise seen and its bounded form; the timeouts it raised. */
  private lastApplied: Promise<boolean> | null = null;
  private lastGuarded: Promise<boolean> | null = null;
  private lastBatchWrites = { n: 0 };
  private readonly localTimeouts = new WeakSet<object>();

  /** Replicates `entry` (a value or a tombstone) and resolves once enough replicas hold it (WriteRound). */
  write(key: string, entry: Entry, consistency?: Consistency): Promise<void> {
    const { config, view } = this.o;
    // N from the configured replication factor (clamped to the cluster's size, never to who is alive):
    // owners missing from a shrunken ring count as failed replicas.
    const n = view.replicas();
    if (this.writesLocally(key)) {
      return this.writeLocal(key, entry, consistency).then(noop, (err: unknown) => this.afterLocalWrite(key, entry, consistency, err));
    }
    const need = requiredReplies(consistency, config.writeQuorum, n);
    return this.writeRound(key, entry, view.owners(key), n, need, consistency, undefined);
  }

  /** True when a write of `key` takes the local path: N = 1 and this node is the owner (no round). */
  writesLocally(key: string): boolean {
    return this.o.local !== undefined && this.o.view.replicas() === 1 && this.o.view.ownsKey(key);
  }

  /**
   * The local path of write() (the caller checked writesLocally): applies `entry` to this node's store
   * now. The promise settles when its WAL batch is durable under the fsync policy, or rejects TIMEOUT
   * after requestTimeoutMs; it is one object per batch (so a caller can wait for many writes with one
   * callback). On a rejection, afterLocalWrite does the rest of write().
   */
  writeLocal(key: string, entry: Entry, consistency: Consistency | undefined): Promise<boolean> {
    const local = this.o.local;
    assert.ok(local !== undefined, 'the local path needs the local replica');
    assert.equal(requiredReplies(consistency, this.o.config.writeQuorum, 1), 1, 'one replica needs one ack');
    return this.guard(local.apply(key, entry));
  }

  /**
   * write() after writeLocal's promise rejected with `err`: a timeout stays one; any other failure goes
   * to the round (with this attempt as its failed apply, not repeated), which covers the owner with a
   * hint or refuses, exactly as it would have.
   */
  afterLocalWrite(key: string, entry: Entry, consistency: Consistency | undefined, err: unknown): Promise<void> {
    if (this.localTimeouts.has(err as object)) {
      this.o.metrics?.inc('cluster_writes_total', { outcome: 'TIMEOUT' });
      return Promise.reject(err);
    }
    return this.writeRound(key, entry, this.o.view.owners(key), 1, 1, consistency, err);
  }

  /** A write as a WriteRound; `localFailure` is the error of a local apply already tried (not repeated). */
  private writeRound(key: string, entry: Entry, owners: string[], n: number, need: number, consistency: Consistency | undefined, localFailure: unknown): Promise<void> {
    const { config, view, transport } = this.o;
    const standInsCount = config.hintsEnabled && consistency !== 'all';
    const usedStandIns = new Set<string>(owners);
    const wire = { key, entry: entryToWire(entry) };
    const timeoutMs = config.internalTimeoutMs;
    // An owner that cannot take the write: a stand-in holds a hint for it (and counts toward W),
    // else the coordinator keeps the hint itself (durable, but not a second copy: it does not count).
    const cover = async (owner: string): Promise<boolean> => {
      if (!config.hintsEnabled) return false;
      if (standInsCount) {
        for (const standIn of view.standIns(key, 2, usedStandIns)) {
          usedStandIns.add(standIn);
          try {
            await transport.call(standIn, 'internal.hint', { target: owner, ...wire }, { timeoutMs });
            this.o.metrics?.inc('cluster_hints_total', { where: 'stand-in' });
            return true;
          } catch (err) {
            this.o.logger.debug('stand-in refused hint', { standIn, owner, error: toShoalError(err).message });
          }
        }
      }
      try {
        await this.o.hints.add(owner, key, entry);
        this.o.metrics?.inc('cluster_hints_total', { where: 'coordinator' });
      } catch (err) {
        this.o.logger.warn('could not store hint; anti-entropy will repair', { owner, key, error: toShoalError(err).message });
      }
      return false;
    };
    const round = new WriteRound({
      key,
      owners,
      n,
      need,
      timeoutMs: config.requestTimeoutMs,
      isUp: (id) => view.isUp(id),
      apply: async (owner) => {
        if (localFailure !== undefined && owner === view.selfId) throw localFailure;
        await transport.call(owner, 'internal.apply', wire, { timeoutMs });
      },
      cover,
      clock: this.o.clock,
    });
    this.background(Promise.allSettled(round.attempts));
    return round.result.then(
      () => this.o.metrics?.inc('cluster_writes_total', OK_LABELS),
      (err: unknown) => {
        this.o.metrics?.inc('cluster_writes_total', { outcome: toShoalError(err).code });
        throw err;
      },
    );
  }

  /**
   * The newest entry among R replies (raw: may be a tombstone or expired), or null if none has one.
   * Asks R up replicas, this node first when it is one (no network), then the rest in preference
   * order; another is asked when one fails or answers while still syncing, and all remaining ones
   * after readSpeculativeMs without enough replies. With readAllReplicas every up replica is asked.
   */
  read(key: string, consistency?: Consistency): Promise<Entry | null> {
    const { config, view, transport } = this.o;
    const owners = view.owners(key);
    const n = view.replicas();
    const need = requiredReplies(consistency, config.readQuorum, n);
    const now = this.localRead(key, owners, need);
    if (now !== undefined) return Promise.resolve(now);
    const up = owners.filter((id) => view.isUp(id));
    if (up.length < need) {
      this.o.metrics?.inc('cluster_reads_total', { outcome: 'UNAVAILABLE' });
      return Promise.reject(unavailable('read', 0, need, n, `; only ${up.length} up`));
    }
    const self = up.indexOf(view.selfId);
    const targets = self > 0 ? [view.selfId, ...up.slice(0, self), ...up.slice(self + 1)] : up;
    const timeoutMs = config.internalTimeoutMs;
    const round = new ReadRound({
      key,
      targets,
      n,
      need,
      timeoutMs: config.requestTimeoutMs,
      all: config.readAllReplicas,
      speculativeMs: config.readSpeculativeMs,
      ask: async (id) => {
        const r = (await transport.call(id, 'internal.read', { key }, { timeoutMs })) as { entry?: unknown; syncing?: unknown } | null;
        let entry: Entry | null;
        try {
          entry = r?.entry == null ? null : entryFrom('internal.read', r.entry);
        } catch (err) {
          // A malformed reply is that replica's failure, not the client's (not a BAD_REQUEST to pass on).
          throw new ShoalError('INTERNAL', toShoalError(err).message);
        }
        return { node: id, entry, syncing: r?.syncing === true };
      },
      onSettled: this.o.onReadSettled,
      track: (call) => this.background(call),
      clock: this.o.clock,
    });
    return round.result.then(
      (entry) => {
        this.o.metrics?.inc('cluster_reads_total', OK_LABELS);
        return entry;
      },
      (err: unknown) => {
        this.o.metrics?.inc('cluster_reads_total', { outcome: toShoalError(err).code });
        throw err;
      },
    );
  }

  /**
   * The read's answer at once when this node alone gives it (see the file header), else undefined:
   * the caller then runs read(). Raw like read(): may be a tombstone or expired.
   */
  readNow(key: string, consistency?: Consistency): Entry | null | undefined {
    const { config, view } = this.o;
    const n = view.replicas();
    return this.localRead(key, null, requiredReplies(consistency, config.readQuorum, n));
  }

  /** `owners`: the key's owners when the caller has them (else ownsKey answers without hashing when it can). */
  private localRead(key: string, owners: string[] | null, need: number): Entry | null | undefined {
    const local = this.o.local;
    // The round asks this node first when it owns the key, and one firm reply is enough when need = 1.
    if (local === undefined || need !== 1 || this.o.config.readAllReplicas) return undefined;
    if (!(owners === null ? this.o.view.ownsKey(key) : owners.includes(this.o.view.selfId))) return undefined;
    const entry = local.read(key);
    if (entry === undefined) return undefined; // syncing: the round asks the others too
    this.o.metrics?.inc('cluster_reads_total', OK_LABELS);
    return entry;
  }
}
