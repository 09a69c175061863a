/**
 * The coordinator: any node runs it for any key. A write goes to the key's N owners in parallel and
 * is acknowledged after W of them (or of stand-ins holding hints for owners that are down); a read
 * asks the up owners and answers with the newest of R replies. Replicas a write missed get a hint;
 * replicas a read found stale get repaired (read-repair.ts).
 */
import { ShoalError, toShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Entry } from '../storage/types.js';
import { compareVersion } from '../storage/types.js';
import { entryFrom, entryToWire } from './args.js';
import type { ClusterConfig, Consistency } from './config.js';
import { requiredReplies } from './config.js';
import type { ClusterMetrics, HintStoreLike, Transport } from './ports.js';
import type { ClusterView } from './view.js';

/** Errors that are the request's fault: every replica would say the same, so fail at once. */
const CLIENT_FAULTS = new Set(['KEY_TOO_LARGE', 'VALUE_TOO_LARGE', 'BAD_REQUEST']);

export interface ReadReply {
  node: string;
  entry: Entry | null;
  /** The replica is still streaming in ranges it newly owns: a miss may just not have arrived yet. */
  syncing: boolean;
}

export interface CoordinatorOptions {
  config: ClusterConfig;
  view: ClusterView;
  transport: Transport;
  hints: HintStoreLike;
  /** Called once every read reply has settled (read-repair.ts). */
  onReadSettled?: (key: string, replies: ReadReply[]) => void;
  logger: Logger;
  metrics?: ClusterMetrics;
}

function unavailable(what: string, got: number, need: number, n: number, detail: string): ShoalError {
  return new ShoalError(
    'UNAVAILABLE',
    `only ${got} of ${need} replicas answered the ${what} (${n} replicas${detail})`,
    { answered: got, required: need, replicas: n },
  );
}

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
    void work.finally(() => this.inFlight.delete(work));
  }

  /** Replicates `entry` (a value or a tombstone) and resolves once enough replicas hold it. */
  write(key: string, entry: Entry, consistency?: Consistency): Promise<void> {
    const { config, view, transport } = this.o;
    const owners = view.owners(key);
    // N from the configured replication factor (clamped to the cluster's size, never to who is alive):
    // owners missing from a shrunken ring count as failed replicas.
    const n = view.replicas();
    const need = requiredReplies(consistency, config.writeQuorum, n);
    const standInsCount = config.hintsEnabled && consistency !== 'all';
    const usedStandIns = new Set<string>(owners);
    const wire = { key, entry: entryToWire(entry) };
    const timeoutMs = config.internalTimeoutMs;

    return new Promise<void>((resolve, reject) => {
      let acks = 0;
      let pending = 0;
      let done = false;
      const failures: string[] = owners.length < n ? [`${n - owners.length} of ${n} replicas are not in the ring`] : [];
      const timer = setTimeout(() => finish(new ShoalError('TIMEOUT', `write of "${key}" timed out after ${config.requestTimeoutMs} ms`)), config.requestTimeoutMs);
      timer.unref();

      const finish = (err?: ShoalError): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.o.metrics?.inc('cluster_writes_total', { outcome: err ? err.code : 'ok' });
        if (err) reject(err);
        else resolve();
      };
      const check = (): void => {
        if (done) return;
        if (acks >= need) finish();
        else if (pending === 0) {
          const detail = failures.length ? `; ${failures.slice(0, 3).join('; ')}` : '';
          finish(unavailable('write', acks, need, n, detail));
        }
      };
      const track = (attempt: Promise<boolean>): void => {
        pending += 1;
        attempt.then(
          (counted) => {
            pending -= 1;
            if (counted) acks += 1;
            check();
          },
          (err: unknown) => {
            pending -= 1;
            finish(toShoalError(err));
          },
        );
      };
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
      const send = async (owner: string): Promise<boolean> => {
        if (!view.isUp(owner)) {
          failures.push(`${owner} is down`);
          return cover(owner);
        }
        try {
          await transport.call(owner, 'internal.apply', wire, { timeoutMs });
          return true;
        } catch (err) {
          const e = toShoalError(err);
          if (CLIENT_FAULTS.has(e.code)) throw e;
          failures.push(`${owner}: ${e.code}`);
          return cover(owner);
        }
      };
      const attempts = owners.map((owner) => send(owner));
      attempts.forEach(track);
      this.background(Promise.allSettled(attempts));
      check();
    });
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
    const up = owners.filter((id) => view.isUp(id));
    if (up.length < need) {
      this.o.metrics?.inc('cluster_reads_total', { outcome: 'UNAVAILABLE' });
      return Promise.reject(unavailable('read', 0, need, n, `; only ${up.length} up`));
    }
    const self = up.indexOf(view.selfId);
    const targets = self > 0 ? [view.selfId, ...up.slice(0, self), ...up.slice(self + 1)] : up;
    const timeoutMs = config.internalTimeoutMs;
    const replies: ReadReply[] = [];
    let launched = 0;
    let settled = 0;

    return new Promise<Entry | null>((resolve, reject) => {
      let done = false;
      let reported = false;
      const failures: string[] = [];
      const timer = setTimeout(() => finish(new ShoalError('TIMEOUT', `read of "${key}" timed out after ${config.requestTimeoutMs} ms`)), config.requestTimeoutMs);
      timer.unref();
      const speculative = config.readAllReplicas || need >= targets.length
        ? null
        : setTimeout(() => launch(targets.length), config.readSpeculativeMs);
      speculative?.unref();
      const finish = (err?: ShoalError): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (speculative) clearTimeout(speculative);
        this.o.metrics?.inc('cluster_reads_total', { outcome: err ? err.code : 'ok' });
        if (err) reject(err);
        else resolve(newest(replies));
      };
      const firm = (): number => replies.filter((r) => !r.syncing).length;
      const check = (): void => {
        if (firm() >= need) finish();
        else if (settled === launched && launched < targets.length && !done) launch(launched + 1);
        // Replies of syncing replicas count only when nothing firmer is coming.
        else if (settled === targets.length && replies.length >= need) finish();
        else if (settled === targets.length) {
          const detail = failures.length ? `; ${failures.slice(0, 3).join('; ')}` : '';
          finish(unavailable('read', replies.length, need, n, detail));
        }
        if (settled === launched && done && !reported) {
          reported = true;
          this.o.onReadSettled?.(key, replies);
        }
      };
      const ask = (id: string): Promise<void> =>
        transport.call(id, 'internal.read', { key }, { timeoutMs }).then(
          (result) => {
            const r = result as { entry?: unknown; syncing?: unknown } | null;
            try {
              const entry = r?.entry == null ? null : entryFrom('internal.read', r.entry);
              replies.push({ node: id, entry, syncing: r?.syncing === true });
            } catch (err) {
              failures.push(`${id}: ${toShoalError(err).message}`);
            }
          },
          (err: unknown) => {
            const e = toShoalError(err);
            failures.push(`${id}: ${e.code}`);
            if (CLIENT_FAULTS.has(e.code)) finish(e);
          },
        ).finally(() => {
          settled += 1;
          check();
        });
      /** Asks targets up to index `upTo` (exclusive) that have not been asked yet. */
      const launch = (upTo: number): void => {
        if (done) return;
        const fresh: Array<Promise<void>> = [];
        while (launched < Math.min(upTo, targets.length)) fresh.push(ask(targets[launched++]));
        this.background(Promise.allSettled(fresh));
      };
      launch(config.readAllReplicas ? targets.length : need);
    });
  }
}

export function newest(replies: ReadReply[]): Entry | null {
  let best: Entry | null = null;
  for (const r of replies) {
    if (r.entry && (best === null || compareVersion(r.entry, best) > 0)) best = r.entry;
  }
  return best;
}
