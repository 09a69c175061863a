/**
 * What the status page shows (GET /status.json on the metrics port): this node's view of the
 * cluster (members, their states, the ring as arcs of the key space per primary owner) plus each
 * member's own figures, asked of it over RPC (`stats`) with a short timeout, and this node's recent
 * membership events. Built at most once per STATUS_CACHE_MS however many pages poll it.
 */
import type { RingLike } from '../cluster/ports.js';
import type { MemberEventRecord } from './member-events.js';

/** A snapshot is reused for this long (pages refresh every 2 s; several may be open). */
export const STATUS_CACHE_MS = 1_000;
/** How long a member may take to send its figures before it is shown unreachable. */
export const STATUS_PEER_TIMEOUT_MS = 1_500;
/** Arcs drawn for the ring (adjacent arcs of one owner are merged first). */
const RING_ARCS_MAX = 4_096;

export interface StatusMemberView {
  id: string;
  state: string;
  rpc: string;
  gossip: string;
  incarnation: number;
  zone?: string;
}

export interface StatusSources {
  self: string;
  cluster: string;
  version: string;
  members: () => StatusMemberView[];
  ring: () => RingLike;
  /** This node's stats (as the `stats` op answers). */
  stats: () => Record<string, unknown>;
  /** Another member's stats over RPC. */
  peerStats: (rpc: string, timeoutMs: number) => Promise<unknown>;
  events: () => MemberEventRecord[];
  now: () => number;
}

const TOKEN_SPACE = 2 ** 64;

/** The ring as arcs [from, to) in fractions of the key space, each with its primary owner, in order. */
export function ringArcs(ring: RingLike): Array<{ from: number; to: number; owner: string }> {
  const arcs: Array<{ from: number; to: number; owner: string }> = [];
  for (const owner of ring.members()) {
    for (const r of ring.rangesFor(owner, 1)) {
      const from = Number(r.start) / TOKEN_SPACE;
      const to = Number(r.end) / TOKEN_SPACE;
      if (r.start === r.end) arcs.push({ from: 0, to: 1, owner });
      else if (r.start < r.end) arcs.push({ from, to, owner });
      else arcs.push({ from, to: 1, owner }, { from: 0, to, owner });
    }
  }
  arcs.sort((a, b) => a.from - b.from);
  const merged: typeof arcs = [];
  for (const arc of arcs) {
    const last = merged[merged.length - 1];
    if (last && last.owner === arc.owner && Math.abs(last.to - arc.from) < 1e-12) last.to = arc.to;
    else merged.push({ ...arc });
  }
  return merged.slice(0, RING_ARCS_MAX);
}

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : {});
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The figures of one member's stats that the page shows. */
export function memberFigures(stats: unknown): Rec {
  const s = rec(stats);
  const store = rec(s.store);
  const cluster = rec(s.cluster);
  const streaming = rec(cluster.streaming);
  const round = rec(streaming.round);
  const requests = rec(s.requests);
  return {
    reachable: true,
    nodeState: s.state ?? null,
    joining: rec(s.membership).joining === true,
    keys: num(store.keys),
    valueBytes: num(store.valueBytes),
    readOnly: store.readOnly === true,
    opsPerSec: num(requests.perSec),
    p99Ms: num(requests.p99MsLastMinute),
    hintsPending: num(cluster.pendingHints),
    uptimeMs: num(s.uptimeMs),
    version: typeof s.version === 'string' ? s.version : null,
    syncing: streaming.syncing === true,
    syncRatio: streaming.syncing === true ? (num(round.ratio) ?? 0) : null,
    syncKeys: num(round.keys),
    syncKeysTotal: num(round.keysTotal),
    syncBytes: num(round.bytes),
    ringChecksum: typeof rec(cluster.ring).checksum === 'string' ? rec(cluster.ring).checksum : null,
  };
}

export function statusSnapshotter(sources: StatusSources): () => Promise<Rec> {
  let cached: { atMs: number; snapshot: Promise<Rec> } | null = null;
  const build = async (): Promise<Rec> => {
    const ring = sources.ring();
    const ownership = ring.ownership();
    const members = sources.members().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const rows = await Promise.all(
      members.map(async (m) => {
        const base: Rec = { id: m.id, state: m.state, rpc: m.rpc, gossip: m.gossip, incarnation: m.incarnation, zone: m.zone ?? null, owns: ownership.get(m.id) ?? 0, self: m.id === sources.self };
        if (m.id === sources.self) return { ...base, ...memberFigures(sources.stats()) };
        if (m.state === 'left' || m.state === 'dead') return { ...base, reachable: false };
        try {
          return { ...base, ...memberFigures(await sources.peerStats(m.rpc, STATUS_PEER_TIMEOUT_MS)) };
        } catch (err) {
          return { ...base, reachable: false, error: (err as Error).message };
        }
      }),
    );
    return {
      cluster: sources.cluster,
      node: sources.self,
      version: sources.version,
      generatedAtMs: sources.now(),
      ring: { checksum: ring.checksum(), arcs: ringArcs(ring) },
      members: rows,
      events: sources.events().slice(-20).reverse(),
    };
  };
  return () => {
    const now = sources.now();
    if (cached === null || now - cached.atMs >= STATUS_CACHE_MS) cached = { atMs: now, snapshot: build() };
    return cached.snapshot;
  };
}
