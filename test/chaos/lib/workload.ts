/**
 * The chaos workload: several concurrent clients, each doing one operation at a time against a
 * random node (so forwarding and coordination are exercised), bounded in rate, count and time.
 * Every operation is logged before it is sent (invoke) and when it completes (ok / fail / info).
 *
 * Keys (see KeyClass in history.ts), values unique per write (`<key>#<op id>`, the label the history
 * records) and of sizes from a few bytes to valueBytesMax (VALUE_MIX): on the wire a value is the label,
 * its size and a filler derived from both (encodeValue), and a value read back is checked whole
 * (decodeValue): a truncated or corrupted one is recorded as a value no write produced.
 *
 *   u/<client>/<n>  written once                 s/<client>/<k>  written in sequence by one client
 *   d/<client>/<n>  written, later deleted       t/<client>/<n>  written once with a TTL
 * plus reads of random keys already written by anyone.
 *
 * Each logical client carries the highest version it has seen (`seenTs`) across all nodes, like
 * ShoalClient does, so its successive writes must come out ordered even through different nodes.
 */
import { ShoalError } from '../../../src/errors.js';
import { ShoalClient } from '../../../src/rpc/shoal-client.js';
import type { HistoryVersion, HistoryWriter, KeyClass, OpEvent, OpIdentity, OpName, Outcome } from './history.js';
import { prng } from './schedule.js';

export interface WorkloadOptions {
  seed: number;
  /** Node id → rpc address, for every node that may take traffic. */
  addresses: Map<string, string>;
  clusterName: string;
  history: HistoryWriter;
  /** Ids of nodes the clients may address right now (started members, including stopped ones). */
  targets: () => string[];
  clients?: number;
  /** Total operations per second across clients. Default 100. */
  ratePerSec?: number;
  /** Stop after this many operations. Default unbounded by count (durationMs bounds it). */
  opsMax?: number;
  durationMs: number;
  /** Per-request timeout; an op that times out is `info`. Default 6000 ms: longer than the cluster's own request timeout (5 s), so a slow quorum is not cut short by the client. */
  timeoutMs?: number;
  /** Sequential keys per client. Default 4. */
  seqKeysPerClient?: number;
  /** TTLs for TTL writes; mostly short so they expire during the run, one long. */
  ttlsMs?: number[];
  /** Largest value written (the nodes' storage.valueBytesMax). Default 1 MiB. */
  valueBytesMax?: number;
  /** 'mixed' (default): VALUE_MIX; 'small': labels only (the workload before values had sizes). */
  values?: 'mixed' | 'small';
}

/**
 * Value sizes written, with their weights: mostly small, a quarter of a few KiB, some tens and
 * hundreds of KiB, and 1 % at valueBytesMax (where batches meet the frame limit).
 */
export const VALUE_MIX: ReadonlyArray<{ weight: number; bytesMin: number; bytesMax: number | 'max' }> = [
  { weight: 0.6, bytesMin: 0, bytesMax: 100 },
  { weight: 0.25, bytesMin: 1024, bytesMax: 8 * 1024 },
  { weight: 0.1, bytesMin: 16 * 1024, bytesMax: 64 * 1024 },
  { weight: 0.04, bytesMin: 128 * 1024, bytesMax: 256 * 1024 },
  { weight: 0.01, bytesMin: 0, bytesMax: 'max' },
];

/** A value size drawn from VALUE_MIX. */
export function valueSizeFor(rand: () => number, valueBytesMax: number): number {
  let roll = rand();
  for (const band of VALUE_MIX) {
    roll -= band.weight;
    if (roll < 0 || band === VALUE_MIX[VALUE_MIX.length - 1]) {
      if (band.bytesMax === 'max') return valueBytesMax;
      return Math.min(valueBytesMax, band.bytesMin + Math.floor(rand() * (band.bytesMax - band.bytesMin + 1)));
    }
  }
  return 0;
}

/** `label|size|` then filler up to `size` bytes (a value is never shorter than its header). */
export function encodeValue(label: string, size: number): Buffer {
  const header = Buffer.from(`${label}|${size}|`, 'utf8');
  if (size <= header.length) return Buffer.from(label, 'utf8');
  const value = Buffer.allocUnsafe(size);
  header.copy(value, 0);
  const seed = header.length & 0xff;
  for (let i = header.length; i < size; i++) value[i] = (seed + i * 31) & 0xff;
  return value;
}

/** The label of a value read back; a value whose size or filler is wrong gets a label no write has. */
export function decodeValue(value: Buffer): string {
  const first = value.indexOf(0x7c); // '|'
  if (first < 0) return value.toString('utf8');
  const second = value.indexOf(0x7c, first + 1);
  const label = value.subarray(0, first).toString('utf8');
  const size = second < 0 ? NaN : Number(value.subarray(first + 1, second).toString('utf8'));
  if (!Number.isInteger(size) || size !== value.length) return `${label}!size ${value.length} of ${String(size)}`;
  const seed = (second + 1) & 0xff;
  for (let i = second + 1; i < value.length; i++) {
    if (value[i] !== ((seed + i * 31) & 0xff)) return `${label}!corrupt at ${i}`;
  }
  return label;
}

/** Error codes that prove a write was not applied (refused while validating the request). */
const DEFINITE_FAILURES = new Set(['BAD_REQUEST', 'KEY_TOO_LARGE', 'VALUE_TOO_LARGE', 'FRAME_TOO_LARGE', 'BAD_HANDSHAKE']);

export function errorCode(err: unknown): string {
  if (err instanceof ShoalError) return err.code;
  return err instanceof Error ? err.message.slice(0, 80) : String(err);
}

/**
 * A write's outcome from its error: only validation errors are definite; anything else (timeouts,
 * UNAVAILABLE after a partial quorum, a dropped connection) may have been applied. A read with an
 * error simply failed.
 */
export function outcomeOf(op: OpName, err: unknown): Outcome {
  if (op === 'get') return 'fail';
  return DEFINITE_FAILURES.has(errorCode(err)) ? 'fail' : 'info';
}

function isMap(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

function versionOf(x: unknown): HistoryVersion | undefined {
  if (!isMap(x) || typeof x.ts !== 'number' || typeof x.node !== 'string') return undefined;
  return { ts: x.ts, node: x.node };
}

/** An operation to run: what identifies it in the history (its id is assigned when it runs) and its input. */
export interface RunOpRequest extends Omit<OpIdentity, 'id'> {
  value?: string;
  /** Bytes of the value on the wire (encodeValue); default: the label alone. */
  valueBytes?: number;
  ttlMs?: number;
}

/**
 * Whether an operation that failed at one node may be sent to another, as ShoalClient does with
 * several addresses. Reads: whenever the node was unreachable (a read changes nothing). Writes: only
 * when the request was certainly never sent (no connection, or the pooled connection was already
 * closed, or the node answered CLOSED because it was starting or draining); a connection lost
 * mid-request may have delivered the write, so its outcome is unknown.
 */
export function mayTryNextNode(op: OpName, err: unknown): boolean {
  if (!(err instanceof ShoalError) || err.code !== 'UNAVAILABLE' || !err.message.startsWith('no node reachable')) return false;
  if (op === 'get') return true;
  return (
    err.message.includes('cannot connect') ||
    err.message.includes('connect and handshake timed out') ||
    /: connection closed$/.test(err.message) ||
    // CLOSED answers (the node was starting or draining): the request was not processed.
    err.message.includes('not serving yet') ||
    err.message.includes('the node is shutting down')
  );
}

/**
 * Sends one operation and logs its invoke and completion. `clients` are single-node clients, the
 * addressed node first: the next is tried when `mayTryNextNode` allows, and every operation starts
 * again at its own node. `seen` is the logical client's
 * highest seen version timestamp, updated in place.
 */
export async function runOp(
  history: HistoryWriter,
  clients: readonly ShoalClient[],
  req: RunOpRequest,
  seen: { ts: number },
  timeoutMs: number,
): Promise<OpEvent> {
  const id = history.opId();
  const base = {
    kind: 'op' as const, id, client: req.client, node: req.node, op: req.op, key: req.key, cls: req.cls, phase: req.phase,
    ...(req.consistency === undefined ? {} : { consistency: req.consistency }),
  };
  history.append({
    ...base, type: 'invoke', atMs: Date.now(),
    ...(req.value === undefined ? {} : { value: req.value }),
    ...(req.ttlMs === undefined ? {} : { ttlMs: req.ttlMs }),
  });
  const args: Record<string, unknown> = { key: req.key };
  if (req.consistency !== undefined) args.consistency = req.consistency;
  if (req.op === 'put') args.value = encodeValue(req.value ?? '', req.valueBytes ?? 0);
  if (req.ttlMs !== undefined) args.ttlMs = req.ttlMs;
  if (req.op !== 'get' && seen.ts > 0) args.seenTs = seen.ts;
  let done: OpEvent;
  try {
    let result: unknown;
    for (let i = 0; ; i++) {
      try {
        result = await clients[i].call(req.op, args, { timeoutMs });
        break;
      } catch (err) {
        if (i + 1 >= clients.length || !mayTryNextNode(req.op, err)) throw err;
      }
    }
    done = { ...base, type: 'ok', atMs: Date.now() };
    if (req.op === 'get') {
      if (isMap(result) && result.value instanceof Uint8Array) {
        done.value = decodeValue(Buffer.from(result.value.buffer, result.value.byteOffset, result.value.byteLength));
        const version = versionOf(result.version);
        if (version !== undefined) done.version = version;
        if (typeof result.expiresAtMs === 'number') done.expiresAtMs = result.expiresAtMs;
      } else {
        done.value = null;
      }
    } else if (isMap(result)) {
      const version = versionOf(result.version);
      if (version !== undefined) done.version = version;
    }
    if (done.version !== undefined && done.version.ts > seen.ts) seen.ts = done.version.ts;
  } catch (err) {
    done = { ...base, type: outcomeOf(req.op, err), atMs: Date.now(), error: errorCode(err) };
    if (err instanceof Error) done.message = err.message.slice(0, 300);
  }
  history.append(done);
  return done;
}

export interface WorkloadStats {
  ops: number;
  keys: string[];
}

/** One single-address client per node. */
export function clientsByNode(addresses: Map<string, string>, clusterName: string, timeoutMs: number): Map<string, ShoalClient> {
  const out = new Map<string, ShoalClient>();
  for (const [id, addr] of addresses) {
    out.set(id, new ShoalClient({ addresses: [addr], clusterName, timeoutMs, pool: { connectionsPerAddr: 1 } }));
  }
  return out;
}

/** The addressed node's client first, then the other targets' in a seeded order (fall-backs). */
export function routeFor(byNode: Map<string, ShoalClient>, node: string, targets: readonly string[], rand: () => number): ShoalClient[] {
  const rest = targets.filter((t) => t !== node);
  const start = Math.floor(rand() * Math.max(1, rest.length));
  const order = [node, ...rest.slice(start), ...rest.slice(0, start)];
  return order.map((id) => byNode.get(id)).filter((c): c is ShoalClient => c !== undefined);
}

/**
 * Runs the workload until `durationMs` passed, `opsMax` operations were sent, or `signal` aborts.
 * Returns every key written (for the final reads).
 */
export async function runWorkload(options: WorkloadOptions, signal?: AbortSignal): Promise<WorkloadStats> {
  const clientCount = options.clients ?? 6;
  const ratePerSec = options.ratePerSec ?? 100;
  const opsMax = options.opsMax ?? Number.MAX_SAFE_INTEGER;
  const timeoutMs = options.timeoutMs ?? 6000;
  const seqKeys = options.seqKeysPerClient ?? 4;
  const ttls = options.ttlsMs ?? [1000, 2000, 3000, 600_000];
  const endMs = Date.now() + options.durationMs;
  const intervalMs = (1000 * clientCount) / ratePerSec;
  const byNode = clientsByNode(options.addresses, options.clusterName, timeoutMs);
  const keys = new Set<string>();
  const readable: string[] = [];
  let ops = 0;

  const runClient = async (index: number): Promise<void> => {
    const rand = prng(options.seed * 1000 + index);
    const name = `c${index + 1}`;
    const seen = { ts: 0 };
    let unique = 0;
    let ttlCount = 0;
    let delCount = 0;
    const toDelete: string[] = [];
    let next = Date.now() + rand() * intervalMs;
    while (Date.now() < endMs && ops < opsMax && !(signal?.aborted ?? false)) {
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      next = Math.max(next + intervalMs, Date.now() - intervalMs);
      if (Date.now() >= endMs || (signal?.aborted ?? false)) break;
      const targets = options.targets();
      if (targets.length === 0) continue;
      const node = targets[Math.floor(rand() * targets.length)];
      const route = routeFor(byNode, node, targets, rand);
      ops += 1;
      const roll = rand();
      let req: RunOpRequest;
      const base = { client: name, node, phase: 'workload' as const };
      if (roll < 0.25) {
        const key = `u/${name}/${unique++}`;
        req = { ...base, op: 'put', key, cls: 'unique' };
      } else if (roll < 0.5) {
        const key = `s/${name}/${Math.floor(rand() * seqKeys)}`;
        req = { ...base, op: 'put', key, cls: 'seq' };
      } else if (roll < 0.58 || (roll < 0.65 && toDelete.length === 0)) {
        const key = `d/${name}/${delCount++}`;
        toDelete.push(key);
        req = { ...base, op: 'put', key, cls: 'del' };
      } else if (roll < 0.65) {
        const key = toDelete.splice(Math.floor(rand() * toDelete.length), 1)[0];
        req = { ...base, op: 'del', key, cls: 'del' };
      } else if (roll < 0.75) {
        const key = `t/${name}/${ttlCount++}`;
        req = { ...base, op: 'put', key, cls: 'ttl', ttlMs: ttls[Math.floor(rand() * ttls.length)] };
      } else {
        if (readable.length === 0) continue;
        const key = readable[Math.floor(rand() * readable.length)];
        req = { ...base, op: 'get', key, cls: classOfKey(key) };
      }
      if (req.op === 'put') {
        req.value = `${req.key}#${options.history.opId()}`;
        if (options.values !== 'small') req.valueBytes = valueSizeFor(rand, options.valueBytesMax ?? 1024 * 1024);
      }
      if (req.op !== 'get' && !keys.has(req.key)) {
        keys.add(req.key);
        readable.push(req.key);
      }
      await runOp(options.history, route, req, seen, timeoutMs);
    }
  };

  try {
    await Promise.all(Array.from({ length: clientCount }, (_, i) => runClient(i)));
  } finally {
    await Promise.all([...byNode.values()].map((c) => c.close()));
  }
  return { ops, keys: [...keys] };
}

export function classOfKey(key: string): KeyClass {
  switch (key[0]) {
    case 'u':
      return 'unique';
    case 's':
      return 'seq';
    case 'd':
      return 'del';
    default:
      return 'ttl';
  }
}
