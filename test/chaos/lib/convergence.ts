/**
 * After the heal: wait (bounded) until the cluster agrees with itself, and measure how long each
 * part took. Membership: every node sees exactly the expected members alive (and the membership
 * checksums in `stats`, where present, are equal). Ring: ring checksums equal. Hints: no node has
 * pending hints. Replicas: every key's copies on its preference list are identical (read from each
 * node's own store with `internal.readBatch`), and no other node holds a live copy.
 */
import { Ring } from '../../../src/ring/ring.js';
import type { ShoalClient } from '../../../src/rpc/shoal-client.js';
import { replicaFindings, type ConvergenceResult, type ReplicaCopy, type ReplicaInput } from './checker.js';
import type { ChaosCluster } from './cluster.js';

export interface ConvergenceOptions {
  /** Members expected alive at the end. */
  expected: string[];
  /** Every key the workload wrote. */
  keys: string[];
  /** Give up after this long. Default 75 s. */
  budgetMs?: number;
  /** After replicas agree, wait up to this long for copies on non-owners to be cleaned up. Default 15 s. */
  cleanupWaitMs?: number;
  pollMs?: number;
  log?: (line: string) => void;
  /** Stop waiting (result: not converged) when this aborts. */
  signal?: AbortSignal;
}

export interface ConvergenceOutcome {
  result: ConvergenceResult;
  /** The last replica snapshot (for the checker), when the replica check could run. */
  replicas?: ReplicaInput;
  /** What could not be measured and why. */
  notes: string[];
}

const BATCH_KEYS = 2000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function isMap(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** The first value at a key named `leaf` whose path contains `under` (case-insensitive). */
export function findStat(stats: unknown, under: string, leaf: string, path = ''): unknown {
  if (!isMap(stats)) return undefined;
  for (const [k, v] of Object.entries(stats)) {
    const p = `${path}.${k}`.toLowerCase();
    if (k === leaf && p.includes(under.toLowerCase())) return v;
    const inner = findStat(v, under, leaf, p);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

interface NodeView {
  id: string;
  members: Map<string, string>;
  membershipChecksum?: string;
  ringChecksum?: string;
  pendingHints?: number;
  cleanupSupported?: boolean;
}

async function viewOf(id: string, client: ShoalClient): Promise<NodeView> {
  const [members, stats, ring] = await Promise.all([client.members(), client.stats(), client.ring()]);
  const view: NodeView = { id, members: new Map() };
  if (Array.isArray(members)) {
    for (const m of members) if (isMap(m) && typeof m.id === 'string') view.members.set(m.id, String(m.state));
  }
  const mc = findStat(stats, 'member', 'checksum');
  if (typeof mc === 'string') view.membershipChecksum = mc;
  const rc = isMap(ring) && typeof ring.checksum === 'string' ? ring.checksum : findStat(stats, 'ring', 'checksum');
  if (typeof rc === 'string') view.ringChecksum = rc;
  const hints = findStat(stats, '', 'pendingHints');
  if (typeof hints === 'number') view.pendingHints = hints;
  const cleanup = findStat(stats, 'cleanup', 'supported');
  if (typeof cleanup === 'boolean') view.cleanupSupported = cleanup;
  return view;
}

function membershipAgrees(views: NodeView[], expected: string[]): string | null {
  for (const v of views) {
    for (const id of expected) {
      if (v.members.get(id) !== 'alive') return `${v.id} sees ${id} as ${v.members.get(id) ?? 'absent'}`;
    }
    for (const [id, state] of v.members) {
      if (!expected.includes(id) && (state === 'alive' || state === 'suspect')) return `${v.id} sees non-member ${id} as ${state}`;
    }
  }
  const sums = new Set(views.map((v) => v.membershipChecksum).filter((c) => c !== undefined));
  if (sums.size > 1) return `membership checksums differ: ${views.map((v) => `${v.id}=${v.membershipChecksum}`).join(' ')}`;
  return null;
}

interface RingInfo {
  owners: string[];
  vnodes: number;
  n: number;
}

function ringInfo(raw: unknown): RingInfo | null {
  if (!isMap(raw) || !Array.isArray(raw.members)) return null;
  const owners = raw.members.filter(isMap).map((m) => String(m.id));
  const vnodes = typeof raw.vnodes === 'number' ? raw.vnodes : undefined;
  const n = typeof raw.replicationFactor === 'number' ? raw.replicationFactor : 3;
  return vnodes === undefined ? null : { owners, vnodes, n };
}

/** Reads every key from every node's local store; null when the cluster refuses internal reads. */
async function replicaSnapshot(clients: Map<string, ShoalClient>, keys: string[], info: RingInfo): Promise<ReplicaInput> {
  const ring = Ring.build(info.owners.map((id) => ({ id })), { vnodes: info.vnodes });
  const owners: Record<string, string[]> = {};
  for (const key of keys) owners[key] = ring.preferenceList(key, Math.min(info.n, info.owners.length));
  const copies: ReplicaCopy[] = [];
  const now = Date.now();
  for (const [node, client] of clients) {
    for (let i = 0; i < keys.length; i += BATCH_KEYS) {
      const batch = keys.slice(i, i + BATCH_KEYS);
      const held = new Map<string, ReplicaCopy['entry']>();
      // Versions only (values can be up to valueBytesMax); a reply covers a prefix of the keys (`next`).
      for (let from = 0; from < batch.length; ) {
        const result = await client.call('internal.readBatch', { keys: batch.slice(from), versionsOnly: true });
        if (!isMap(result)) break;
        if (Array.isArray(result.entries)) {
          for (const pair of result.entries) {
            if (!Array.isArray(pair) || !isMap(pair[1])) continue;
            const e = pair[1];
            // An expired entry counts as absent: replicas collect expired keys at their own pace.
            if (typeof e.expiresAtMs === 'number' && e.expiresAtMs <= now) continue;
            held.set(String(pair[0]), { ts: Number(e.ts), node: String(e.node), tombstone: e.tombstone === true });
          }
        }
        const next = typeof result.next === 'number' && result.next >= 1 ? result.next : batch.length - from;
        from += next;
      }
      for (const key of batch) copies.push({ key, node, entry: held.get(key) ?? null });
    }
  }
  return { owners, copies };
}

export async function awaitConvergence(cluster: ChaosCluster, options: ConvergenceOptions): Promise<ConvergenceOutcome> {
  const start = Date.now();
  const budgetMs = options.budgetMs ?? 75_000;
  const pollMs = options.pollMs ?? 500;
  const log = options.log ?? (() => {});
  const clients = new Map(options.expected.map((id) => [id, cluster.probeClient(id, 5000)]));
  const notes: string[] = [];
  const result: ConvergenceResult = { converged: false, membershipMs: null, hintsMs: null, replicasMs: null };
  let replicas: ReplicaInput | undefined;
  let replicaCheck = true;
  let misplaced = 0;
  let cleanupSupported = true;
  let lastProblem = '';
  try {
    while (Date.now() - start < budgetMs && !(options.signal?.aborted ?? false)) {
      const elapsed = () => Date.now() - start;
      let views: NodeView[];
      try {
        views = await Promise.all([...clients].map(([id, c]) => viewOf(id, c)));
      } catch (err) {
        lastProblem = `stats/members failed: ${(err as Error).message}`;
        await sleep(pollMs);
        continue;
      }
      if (cleanupSupported && views.some((v) => v.cleanupSupported === false)) {
        cleanupSupported = false;
        notes.push('clean-up of copies no longer owned: the nodes report cleanup.supported = false, so copies on non-owners are counted, not checked');
        log(notes[notes.length - 1]);
      }
      const membershipProblem = membershipAgrees(views, options.expected);
      const rings = new Set(views.map((v) => v.ringChecksum));
      const ringProblem = rings.size > 1 ? `ring checksums differ: ${views.map((v) => `${v.id}=${v.ringChecksum}`).join(' ')}` : null;
      if (result.membershipMs === null && membershipProblem === null && ringProblem === null) {
        result.membershipMs = elapsed();
        log(`membership and ring agree after ${result.membershipMs} ms`);
      }
      const hintCounts = views.map((v) => v.pendingHints);
      if (hintCounts.some((h) => h === undefined)) {
        if (!notes.includes('hints')) notes.push('hints');
      } else if (result.hintsMs === null && hintCounts.every((h) => h === 0)) {
        result.hintsMs = elapsed();
        log(`hints drained after ${result.hintsMs} ms`);
      }
      const hintsDone = result.hintsMs !== null || notes.includes('hints');
      if (result.membershipMs !== null && hintsDone && (result.replicasMs === null || misplaced > 0)) {
        if (replicaCheck) {
          try {
            const info = ringInfo(await clients.get(options.expected[0])?.ring());
            if (info === null) throw new Error('the ring op does not report members and vnodes');
            replicas = await replicaSnapshot(clients, options.keys, info);
            const findings = replicaFindings(replicas);
            const p = { divergent: findings.divergent.length, misplaced: cleanupSupported ? findings.misplaced.length : 0 };
            replicas.placementChecked = cleanupSupported;
            misplaced = p.misplaced;
            if (p.divergent === 0 && result.replicasMs === null) {
              result.replicasMs = elapsed();
              log(`replicas agree after ${result.replicasMs} ms (${p.misplaced} keys on non-owners)`);
            } else if (p.divergent > 0) {
              lastProblem = `${p.divergent} keys differ between replicas`;
            }
          } catch (err) {
            replicaCheck = false;
            notes.push(`replica check unavailable: ${(err as Error).message}`);
            log(notes[notes.length - 1]);
          }
        }
        if (!replicaCheck) {
          misplaced = 0;
          result.replicasMs ??= elapsed();
        }
      }
      const cleanupOver = misplaced === 0 || elapsed() - (result.replicasMs ?? 0) > (options.cleanupWaitMs ?? 15_000);
      if (result.membershipMs !== null && hintsDone && result.replicasMs !== null && cleanupOver) {
        if (misplaced > 0) log(`${misplaced} keys still held by non-owners`);
        result.converged = true;
        return { result, ...(replicas === undefined ? {} : { replicas }), notes };
      }
      lastProblem = membershipProblem ?? ringProblem ?? lastProblem;
      await sleep(pollMs);
    }
    result.detail = `not converged within ${budgetMs} ms: ${lastProblem || 'hints pending'}`;
    return { result, ...(replicas === undefined ? {} : { replicas }), notes };
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
  }
}
