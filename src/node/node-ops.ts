/**
 * The operations a node answers itself, whatever layer serves the keys: `health`, `stats` (node
 * figures plus the cluster's), `members` (from membership, with the cluster's ownership and hints
 * per member) and `leave`. Everything else goes to the base handler: ClusterNode.rpcHandler, or the
 * single-node handler when the node runs without the cluster layer.
 */
import type { Member } from '../membership/types.js';

export type OpHandler = (op: string, args: Record<string, unknown>, ctx: { remote: string; peer: string | null }) => Promise<unknown>;

export interface MembershipLike {
  members(): Member[];
  leave(options?: { timeoutMs?: number }): Promise<void>;
}

export interface NodeOpsOptions {
  base: OpHandler;
  /** True when the base handler is the cluster layer's (it has its own stats, members, leave). */
  clustered: boolean;
  membership: MembershipLike | null;
  leaveTimeoutMs: number;
  health: () => Record<string, unknown>;
  stats: () => Record<string, unknown>;
}

/** One member as `members` answers it (docs/PROTOCOL.md): membership's view plus the cluster's figures. */
export function memberRow(m: Member, cluster?: Record<string, unknown>): Record<string, unknown> {
  const row: Record<string, unknown> = { id: m.id, gossip: m.gossip, rpc: m.rpc, state: m.state, incarnation: m.incarnation };
  if (m.zone !== undefined && m.zone !== '') row.zone = m.zone;
  if (m.tags !== undefined && Object.keys(m.tags).length > 0) row.tags = m.tags;
  if (cluster) {
    for (const field of ['owner', 'owns', 'pendingHints']) if (cluster[field] !== undefined) row[field] = cluster[field];
  }
  return row;
}

function byId(rows: unknown): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  if (!Array.isArray(rows)) return out;
  for (const row of rows) {
    if (row && typeof row === 'object' && typeof (row as { id?: unknown }).id === 'string') out.set((row as { id: string }).id, row as Record<string, unknown>);
  }
  return out;
}

export function nodeOps(options: NodeOpsOptions): OpHandler {
  const { base, clustered, membership } = options;
  // Data and node-to-node ops go straight to the base handler (no async layer of their own).
  const own = async (op: string, args: Record<string, unknown>, ctx: { remote: string; peer: string | null }): Promise<unknown> => {
    switch (op) {
      case 'health':
        return options.health();
      case 'stats': {
        const stats = options.stats();
        if (clustered) stats.cluster = await base(op, args, ctx);
        return stats;
      }
      case 'members': {
        if (!membership) return base(op, args, ctx);
        const cluster = clustered ? byId(await base(op, args, ctx)) : new Map<string, Record<string, unknown>>();
        return membership
          .members()
          .map((m) => memberRow(m, cluster.get(m.id)))
          .sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
      }
      case 'leave':
        if (clustered || !membership) return base(op, args, ctx);
        await membership.leave({ timeoutMs: options.leaveTimeoutMs });
        return {};
      default:
        return base(op, args, ctx);
    }
  };
  return (op, args, ctx) => (OWN_OPS.has(op) ? own(op, args, ctx) : base(op, args, ctx));
}

/** The ops nodeOps answers (in part) itself. */
const OWN_OPS: ReadonlySet<string> = new Set(['health', 'stats', 'members', 'leave']);
