/**
 * What the simulator demands once the faults have healed and the cluster has had time to settle
 * (issue 12): no acknowledged write lost, no resurrected delete, replicas equal, no copies left on
 * non-owners, one cluster (every view agrees), one client's writes ordered by the HLC, and reads that
 * only ever returned values some client wrote for that key. Each check returns its violations (empty:
 * it holds), so the runner can wait for them to clear and report the ones that never did.
 */
import type { Entry } from '../storage/types.js';
import { identify, type Attempt, type Workload } from './workload.js';

/** One running node as the checker sees it (read directly, not through the cluster). */
export interface NodeProbe {
  id: string;
  /** Raw local entry, tombstones included. */
  entry(key: string): Entry | undefined;
  /** Every local key with a live value (not a tombstone, not expired). */
  liveKeys(): string[];
  /** This node's owners of `key` (its ring and N). */
  owners(key: string): string[];
  ringChecksum(): string;
  /** The members of this node's ring (reports). */
  ringMembers(): string[];
  /** Ids this node's membership sees alive (itself included). */
  aliveIds(): string[];
  /** How this node's membership sees `id` (state and incarnation), for reports. */
  describeMember(id: string): string;
  /** Wall-clock now of this node (expiry is judged on it). */
  now(): number;
}

export interface Violation {
  check: 'ack-copies' | 'lost-write' | 'resurrected' | 'replicas-differ' | 'copies-on-non-owner' | 'one-cluster' | 'hlc-order' | 'bad-read' | 'node-error';
  detail: string;
}

/** Slack for expiry judged across drifting clocks (ms). */
const EXPIRY_SLACK_MS = 70_000;

function versionOf(e: Entry | undefined): string {
  if (e === undefined) return 'absent';
  return `${e.ts}/${e.node}${e.value === null ? '/tomb' : ''}`;
}

/** The attempt a stored entry comes from (a value names it; a tombstone matches a delete's version). */
function sourceOf(entry: Entry, attempts: Attempt[]): Attempt | 'unknown-tombstone' | null {
  if (entry.value !== null) {
    const which = identify(Buffer.from(entry.value));
    if (which === null) return null;
    return attempts.find((a) => a.seq === which.seq && a.kind === 'put') ?? null;
  }
  return attempts.find((a) => a.kind === 'del' && a.version !== undefined && a.version.ts === entry.ts && a.version.node === entry.node) ?? 'unknown-tombstone';
}

function expired(entry: Entry, nowMs: number): boolean {
  return entry.expiresAtMs !== undefined && entry.expiresAtMs <= nowMs;
}

/** Copies a write acknowledged at each level is on (N = 3, W = 2): destroying that many may lose it. */
export const COPIES_ACKED = { one: 1, quorum: 2, all: 3 } as const;

/**
 * `wipesAfter(ms)`: data dirs destroyed (wiped) after simulated time `ms`. A write acknowledged at
 * level L is only promised to survive while fewer than COPIES_ACKED[L] of its copies are destroyed;
 * when at least that many wipes followed its acknowledgement, its loss is excused (and counted).
 */
export function checkCluster(
  workload: Workload,
  nodes: NodeProbe[],
  expectedIds: string[],
  extraViolations: Violation[] = [],
  wipesAfter: (ms: number) => number = () => 0,
  /**
   * The largest wall-clock offset between two nodes in the run. A write whose outcome the client
   * never learned (its coordinator died or the answer was lost: no version came back) may carry a
   * version up to that far ahead and so beat the same client's later write sent within that window:
   * docs/CLUSTER.md documents it ("unless the client carried seenTs", which it could not).
   */
  clockSkewMs = 0,
): Violation[] {
  /** `early` is an earlier attempt of unknown outcome sent within the skew window before `late`. */
  const skewExcuses = (early: Attempt, late: Attempt): boolean =>
    !early.acked && early.failedVersion === undefined && early.seq < late.seq && late.sentMs - early.sentMs <= clockSkewMs;
  const out: Violation[] = [...extraViolations];
  const expected = [...expectedIds].sort().join(',');

  // One cluster: every running node sees exactly the running nodes alive, and the same ring.
  const checksums = new Set<string>();
  for (const n of nodes) {
    const alive = n.aliveIds().sort().join(',');
    if (alive !== expected) {
      const missing = expectedIds.filter((id) => !n.aliveIds().includes(id)).map((id) => `${id}: ${n.describeMember(id)}`);
      out.push({ check: 'one-cluster', detail: `${n.id} sees alive [${alive}], expected [${expected}]${missing.length > 0 ? ` (${missing.join('; ')})` : ''}` });
    }
    checksums.add(n.ringChecksum());
  }
  if (checksums.size > 1) {
    const all = [...new Set(nodes.flatMap((n) => n.ringMembers()))].sort();
    const odd = all.filter((id) => !nodes.every((n) => n.ringMembers().includes(id)));
    const views = odd.map((id) => `${id}: ${nodes.map((n) => `${n.id} sees ${n.describeMember(id)}`).join(', ')}`).join('; ');
    out.push({ check: 'one-cluster', detail: `${checksums.size} different rings among ${nodes.length} nodes: ${nodes.map((n) => `${n.id} [${n.ringMembers().join(',')}]`).join(' ')} (${views})` });
  }
  if (out.length > 0 || nodes.length === 0) return out; // the data checks need one agreed ring

  const byId = new Map(nodes.map((n) => [n.id, n]));
  const ref = nodes[0];
  const byKey = workload.byKey();

  for (const [key, attempts] of byKey) {
    const owners = ref.owners(key);
    const entries = owners.map((id) => byId.get(id)?.entry(key));
    // Replicas equal (an entry expired everywhere may linger as a copy on some: compare live state).
    const now = ref.now();
    const states = entries.map((e) => (e === undefined ? 'absent' : e.value !== null && expired(e, now - EXPIRY_SLACK_MS) ? 'expired' : versionOf(e)));
    const distinct = new Set(states.map((s) => (s === 'expired' ? 'absent' : s)));
    if (distinct.size > 1) {
      out.push({ check: 'replicas-differ', detail: `${key}: ${owners.map((id, i) => `${id}=${states[i]}`).join(' ')}` });
      continue;
    }
    // The newest entry any owner holds decides the key's state.
    let newest: Entry | undefined;
    for (const e of entries) if (e !== undefined && (newest === undefined || e.ts > newest.ts || (e.ts === newest.ts && e.node > newest.node))) newest = e;

    // The last acknowledged attempt: the final state must come from it or from a later attempt.
    let lastAcked: Attempt | undefined;
    for (const a of attempts) if (a.acked && wipesAfter(a.doneMs) < COPIES_ACKED[a.consistency]) lastAcked = a;
    // HLC order: one client's acknowledged writes of a key carry increasing versions.
    let prev: Attempt | undefined;
    for (const a of attempts) {
      if (!a.acked || a.version === undefined) continue;
      if (prev?.version !== undefined && (a.version.ts < prev.version.ts || (a.version.ts === prev.version.ts && a.version.node <= prev.version.node))) {
        out.push({ check: 'hlc-order', detail: `${key}: write #${a.seq} acknowledged with ${a.version.ts}/${a.version.node}, not after #${prev.seq}'s ${prev.version.ts}/${prev.version.node}` });
      }
      prev = a;
    }
    if (lastAcked === undefined) {
      // Nothing acknowledged: any state coming from an attempt (or none) is fine.
      if (newest?.value != null && sourceOf(newest, attempts) === null) out.push({ check: 'bad-read', detail: `${key}: holds a value no client wrote` });
      continue;
    }
    if (newest === undefined) {
      const gone = lastAcked.kind === 'del' || (lastAcked.ttlMs !== undefined && lastAcked.ttlMs < 60_000);
      if (!gone) {
        const v = lastAcked.version === undefined ? '?' : `${lastAcked.version.ts}/${lastAcked.version.node}`;
        out.push({ check: 'lost-write', detail: `${key}: acknowledged ${lastAcked.kind} #${lastAcked.seq} (${lastAcked.valueBytes ?? 0} bytes, version ${v}, sent at ${(lastAcked.sentMs / 1000).toFixed(2)} s) is on none of its owners [${owners.join(',')}]` });
      }
      continue;
    }
    const source = sourceOf(newest, attempts);
    if (source === null) {
      out.push({ check: 'bad-read', detail: `${key}: owners hold a value no client wrote` });
      continue;
    }
    if (source === 'unknown-tombstone') {
      // A tombstone from an unacknowledged delete: it must be a delete sent after the last ack.
      const laterDel = attempts.some((a) => a.kind === 'del' && !a.acked && a.seq > lastAcked.seq);
      const ackedDel = lastAcked.kind === 'del';
      const skewedDel = attempts.some((a) => a.kind === 'del' && skewExcuses(a, lastAcked));
      if (!laterDel && !ackedDel && !skewedDel) out.push({ check: 'lost-write', detail: `${key}: acknowledged put #${lastAcked.seq} was replaced by a tombstone no later delete explains` });
      continue;
    }
    if (source.seq < lastAcked.seq && !skewExcuses(source, lastAcked)) {
      const check = lastAcked.kind === 'del' ? 'resurrected' : 'lost-write';
      out.push({ check, detail: `${key}: owners hold #${source.seq} (${source.kind}) but #${lastAcked.seq} (${lastAcked.kind}) was acknowledged` });
    }
  }

  // No copies on non-owners: every live local key of a node is one it owns.
  for (const n of nodes) {
    let stray = 0;
    let example = '';
    for (const key of n.liveKeys()) {
      if (!n.owners(key).includes(n.id)) {
        stray++;
        example ||= key;
      }
    }
    if (stray > 0) {
      const e = n.entry(example);
      out.push({ check: 'copies-on-non-owner', detail: `${n.id} holds ${stray} keys it does not own (e.g. ${example} version ${versionOf(e)}, owners ${n.owners(example).join(',')})` });
    }
  }

  for (const v of workload.readViolations) out.push({ check: 'bad-read', detail: `${v.key} at ${Math.round(v.atMs)} ms: ${v.problem}` });
  return out;
}
