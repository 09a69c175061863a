/**
 * The commands that look at the whole cluster or walk its keys: `status` (one row per member,
 * gathered from every node, like `nodetool status`), `scan` (keys cluster-wide with a resumable
 * cursor), `ttl` (a key's remaining time) and the human summary of `stats`.
 */
import { ShoalClient } from '../rpc/shoal-client.js';
import { makeClient, type ClientArgs } from './client-commands.js';
import { EXIT, UsageError, type ExitCode } from './exit-codes.js';
import { bytes, duration, isUtf8, percent, table, toJson, tree } from './format.js';
import type { CliIo } from './io.js';

/** How long `status` waits for each member before showing it unreachable. */
const STATUS_MEMBER_TIMEOUT_MS = 3_000;
/** Keys per scan page asked of the cluster (the server's maximum). */
const SCAN_PAGE_KEYS_MAX = 1000;
/** `scan --json` without --limit lists this many keys (one JSON document must fit in memory). */
const SCAN_JSON_KEYS_DEFAULT = 1000;

type Rec = Record<string, unknown>;

function rec(value: unknown): Rec {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Rec) : {};
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

async function withClient<T>(args: ClientArgs, run: (client: ShoalClient) => Promise<T>): Promise<T> {
  const client = makeClient(args);
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}

export interface StatusRow {
  id: string;
  /** The member's state as the node asked first sees it. */
  state: string;
  rpc: string;
  gossip: string | null;
  reachable: boolean;
  keys: number | null;
  valueBytes: number | null;
  ownsPercent: number | null;
  /** Hints this node holds for members that were down. */
  hintsPending: number | null;
  version: string | null;
  uptimeMs: number | null;
  /** ok | syncing | joining | starting | stopping | unhealthy | unreachable | left */
  health: string;
  healthReason: string | null;
  syncing: boolean;
  /** Share of the current streaming round done, 0..100 (null when not syncing). */
  syncPercent: number | null;
  ringChecksum: string | null;
}

/** What one member says about itself, or why it could not be asked. */
export async function memberStatus(args: ClientArgs, member: Rec): Promise<StatusRow> {
  const id = String(member.id);
  const row: StatusRow = {
    id,
    state: String(member.state ?? 'unknown'),
    rpc: String(member.rpc ?? '-'),
    gossip: typeof member.gossip === 'string' ? member.gossip : null,
    reachable: false,
    keys: null,
    valueBytes: null,
    ownsPercent: typeof member.owns === 'number' ? percent(member.owns) : null,
    hintsPending: null,
    version: null,
    uptimeMs: null,
    health: 'unreachable',
    healthReason: null,
    syncing: false,
    syncPercent: null,
    ringChecksum: null,
  };
  if (row.state === 'left') {
    row.health = 'left';
    return row;
  }
  if (typeof member.rpc !== 'string') return row;
  try {
    const timeoutMs = Math.min(args.timeoutMs, STATUS_MEMBER_TIMEOUT_MS);
    const [health, stats] = await withClient({ ...args, addr: member.rpc, timeoutMs }, (c) => Promise.all([c.health(), c.stats()]));
    const h = rec(health);
    const s = rec(stats);
    const store = rec(s.store);
    const cluster = rec(s.cluster);
    const streaming = rec(cluster.streaming);
    const round = rec(streaming.round);
    if (h.node !== undefined && h.node !== id) throw new Error(`${member.rpc} is answered by node ${String(h.node)}, not ${id}`);
    row.reachable = true;
    row.keys = num(store.keys) ?? null;
    row.valueBytes = num(store.valueBytes) ?? null;
    row.hintsPending = num(cluster.pendingHints) ?? null;
    row.version = typeof s.version === 'string' ? s.version : typeof h.version === 'string' ? h.version : null;
    row.uptimeMs = num(h.uptimeMs) ?? null;
    row.ringChecksum = typeof rec(cluster.ring).checksum === 'string' ? (rec(cluster.ring).checksum as string) : null;
    row.syncing = streaming.syncing === true;
    if (row.syncing) row.syncPercent = num(round.ratio) === undefined ? 0 : percent(num(round.ratio) ?? 0);
    const state = typeof h.state === 'string' ? h.state : 'serving';
    const reason = typeof h.reason === 'string' ? h.reason : null;
    if (h.ok === true) row.health = row.syncing ? 'syncing' : 'ok';
    else if (reason !== null && reason.startsWith('joining')) {
      // Waiting for a seed or a member it knew (docs/CLUSTER.md, "One cluster").
      row.health = 'joining';
      row.healthReason = reason.replace(/^joining:\s*/, '');
    } else {
      row.health = state === 'serving' ? 'unhealthy' : state;
      row.healthReason = reason;
    }
  } catch (err) {
    row.healthReason = (err as Error).message;
  }
  return row;
}

export function statusTable(rows: StatusRow[]): string {
  const dash = (v: string | number | null) => (v === null ? '-' : String(v));
  return table(
    ['ID', 'STATE', 'ADDRESS', 'KEYS', 'BYTES', 'OWNS', 'HINTS', 'VERSION', 'UPTIME', 'HEALTH'],
    rows.map((r) => [
      r.id,
      r.state,
      r.rpc,
      dash(r.keys),
      r.valueBytes === null ? '-' : bytes(r.valueBytes),
      r.ownsPercent === null ? '-' : `${r.ownsPercent.toFixed(1)}%`,
      dash(r.hintsPending),
      dash(r.version),
      r.uptimeMs === null ? '-' : duration(r.uptimeMs),
      r.health === 'syncing' ? `syncing ${r.syncPercent ?? 0}%` : r.healthReason !== null && r.health !== 'unreachable' ? `${r.health}: ${r.healthReason}` : r.health,
    ]),
  );
}

/** `shoal status`: every member, asked in parallel; the first node answering gives the member list. */
export async function statusCommand(args: ClientArgs, io: CliIo): Promise<ExitCode> {
  const { members, cluster } = await withClient(args, async (c) => {
    const list = await c.members();
    const health = rec(await c.health());
    return { members: (Array.isArray(list) ? list : []).map(rec), cluster: typeof health.cluster === 'string' ? health.cluster : args.cluster };
  });
  const rows = (await Promise.all(members.map((m) => memberStatus(args, m)))).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const reachable = rows.filter((r) => r.reachable);
  const checksums = new Set(reachable.map((r) => r.ringChecksum).filter((c) => c !== null));
  if (args.json) {
    io.stdout.write(toJson({ cluster, ringAgreed: checksums.size <= 1, members: rows }));
    return EXIT.OK;
  }
  const states = new Map<string, number>();
  for (const r of rows) states.set(r.state, (states.get(r.state) ?? 0) + 1);
  const summary = [...states].map(([state, n]) => `${n} ${state}`).join(', ');
  const ring = checksums.size <= 1 ? `ring agreed by ${reachable.length} of ${rows.length} nodes` : `ring NOT agreed: ${checksums.size} different checksums (membership still settling?)`;
  io.stdout.write(`Cluster "${cluster}": ${rows.length} members (${summary}); ${ring}\n\n${statusTable(rows)}`);
  const missing = rows.filter((r) => r.health === 'unreachable');
  if (missing.length > 0) io.stdout.write(`\nunreachable: ${missing.map((r) => `${r.id} (${r.healthReason ?? 'no answer'})`).join('; ')}\n`);
  return EXIT.OK;
}

/** One value for a line of `scan` output: text when it is printable UTF-8 on one line, else its size. */
function shownValue(value: Buffer): string {
  if (isUtf8(value)) {
    const text = value.toString('utf8');
    // eslint-disable-next-line no-control-regex
    if (!/[\u0000-\u001f\u007f]/.test(text)) return text;
  }
  return `<${value.length} bytes>`;
}

export interface ScanArgs extends ClientArgs {
  prefix?: string;
  /** Stop after the page that reaches this many keys (default: all; with --json, SCAN_JSON_KEYS_DEFAULT). */
  limit?: number;
  keysOnly: boolean;
  cursor?: string;
}

/**
 * `shoal scan`: pages through the cluster's keys in ring (hash) order, printing as it goes (memory
 * bounded by one page). Text: `KEY` or `KEY<TAB>VALUE` per line. A page is never split (the cursor
 * can only resume between pages), so --limit stops after the page that reaches it; with keys left,
 * the command to go on is printed on stderr. --json: one document with the entries and the cursor.
 */
export async function scanCommand(args: ScanArgs, io: CliIo): Promise<ExitCode> {
  if (args.limit !== undefined && (!Number.isInteger(args.limit) || args.limit < 1)) throw new UsageError(`--limit must be a positive integer, got ${args.limit}`);
  const wanted = args.limit ?? (args.json ? SCAN_JSON_KEYS_DEFAULT : Infinity);
  return withClient(args, async (client) => {
    let cursor: string | null = args.cursor ?? '';
    let shown = 0;
    const unreachable = new Set<string>();
    const collected: Rec[] = [];
    while (cursor !== null && shown < wanted) {
      const page = await client.scan({ cursor, prefix: args.prefix, limit: Math.min(SCAN_PAGE_KEYS_MAX, wanted - shown), keysOnly: args.keysOnly });
      for (const u of page.unreachable) unreachable.add(u);
      for (const e of page.entries) {
        shown += 1;
        if (args.json) {
          const item: Rec = { key: e.key };
          if (e.value !== undefined) {
            if (isUtf8(e.value)) item.value = e.value.toString('utf8');
            else item.valueBase64 = e.value.toString('base64');
          }
          if (e.version !== undefined) item.version = e.version;
          if (e.expiresAtMs !== undefined) item.expiresAtMs = e.expiresAtMs;
          collected.push(item);
        } else {
          io.stdout.write(args.keysOnly || e.value === undefined ? `${e.key}\n` : `${e.key}\t${shownValue(e.value)}\n`);
        }
      }
      cursor = page.cursor;
    }
    if (unreachable.size > 0) io.stderr.write(`shoal: warning: ${[...unreachable].join(', ')} ${unreachable.size === 1 ? 'is' : 'are'} down; the scan went on without them (W−1 at most)\n`);
    if (args.json) io.stdout.write(toJson({ entries: collected, cursor, unreachable: [...unreachable] }));
    else if (cursor !== null) io.stderr.write(`shoal: more keys; go on with: shoal scan --cursor ${cursor}${args.prefix ? ` --prefix ${JSON.stringify(args.prefix)}` : ''}\n`);
    return EXIT.OK;
  });
}

/** `shoal ttl KEY`: the time left before the key expires, "none" without expiry; exit 1 if missing. */
export async function ttlCommand(args: ClientArgs & { key: string }, io: CliIo): Promise<ExitCode> {
  return withClient(args, async (client) => {
    const result = await client.get(args.key);
    if (result === null) {
      io.stderr.write(`shoal: key ${JSON.stringify(args.key)} not found\n`);
      return EXIT.NOT_FOUND;
    }
    const leftMs = result.expiresAtMs === undefined ? null : Math.max(0, result.expiresAtMs - Date.now());
    if (args.json) io.stdout.write(toJson({ key: args.key, ttlMs: leftMs, expiresAtMs: result.expiresAtMs ?? null }));
    else if (leftMs === null) io.stdout.write('none\n');
    else io.stdout.write(`${duration(leftMs)} (expires at ${new Date(result.expiresAtMs ?? 0).toISOString()})\n`);
    return EXIT.OK;
  });
}

/** The short summary `shoal stats` prints for people. */
export function statsSummary(stats: unknown): string {
  const s = rec(stats);
  const store = rec(s.store);
  const requests = rec(s.requests);
  const cluster = rec(s.cluster);
  const ring = rec(cluster.ring);
  const replication = rec(cluster.replication);
  const streaming = rec(cluster.streaming);
  const round = rec(streaming.round);
  const ae = rec(cluster.antiEntropy);
  const members = rec(rec(s.membership).members);
  const handoff = rec(cluster.handoff);
  const lines: Array<[string, string]> = [];
  const n = (v: unknown) => (typeof v === 'number' ? String(v) : '-');
  const clusterName = typeof s.clusterName === 'string' ? s.clusterName : typeof s.cluster === 'string' ? s.cluster : '-';
  lines.push(['node', `${String(s.node)} of cluster ${clusterName}, ${String(s.state)}, up ${duration(num(s.uptimeMs) ?? 0)}, version ${String(s.version ?? '-')}`]);
  lines.push(['keys', `${n(store.keys)} (${n(store.tombstones)} tombstones), ${bytes(num(store.valueBytes) ?? 0)} of values, WAL ${bytes(num(store.walBytes) ?? 0)}${store.readOnly === true ? `, READ-ONLY: ${String(store.readOnlyReason)}` : ''}`]);
  const p99 = num(requests.p99MsLastMinute);
  lines.push(['requests', `${(num(requests.perSec) ?? 0).toFixed(1)}/s over the last 10 s, p99 ${p99 === undefined ? '-' : `${p99} ms`} over the last minute`]);
  lines.push(['fsync', `${n(store.fsyncs)} fsyncs, last took ${(num(store.fsyncLatencyMsLast) ?? 0).toFixed(2)} ms`]);
  lines.push(['members', Object.entries(members).map(([state, count]) => `${String(count)} ${state}`).join(', ') || '-']);
  if (Object.keys(cluster).length > 0) {
    lines.push(['ring', `owns ${percent(num(ring.owns) ?? 0).toFixed(1)}% of the keys, ${n(ring.owners)} owners, N=${n(replication.n)} W=${n(replication.w)} R=${n(replication.r)}, checksum ${String(ring.checksum ?? '-')}`]);
    lines.push(['hints', `${n(cluster.pendingHints)} pending for members that were down, ${n(handoff.replayed)} replayed`]);
    const syncing = streaming.syncing === true;
    const roundText = streaming.round === null || streaming.round === undefined ? 'waiting for the ring to settle' : `${percent(num(round.ratio) ?? 0)}% (${n(round.keys)} of ${n(round.keysTotal)} keys, ${bytes(num(round.bytes) ?? 0)})`;
    lines.push(['streaming', syncing ? `syncing: ${roundText}` : `idle (${n(streaming.keysReceived)} keys received in ${n(streaming.rounds)} rounds)`]);
    const last = num(ae.lastRoundAtMs);
    lines.push(['anti-entropy', `${n(ae.rounds)} rounds (${n(ae.roundsInSync)} in sync, ${n(ae.roundsFailed)} failed), ${n(ae.keysPulled)} keys pulled, ${n(ae.keysPushed)} pushed${last ? `, last ${duration(Date.now() - last)} ago` : ''}`]);
  }
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('') + '(shoal stats --full for every figure, --json for scripts)\n';
}

export async function statsCommand(args: ClientArgs & { full?: boolean }, io: CliIo): Promise<ExitCode> {
  return withClient(args, async (client) => {
    const stats = await client.stats();
    io.stdout.write(args.json ? toJson(stats ?? {}) : args.full ? tree(stats) : statsSummary(stats));
    return EXIT.OK;
  });
}
