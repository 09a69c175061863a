/**
 * The simulator's clients and their history, as the chaos harness keeps it: each client sends one
 * request at a time to a node of its choice over the simulated network, and every attempt is recorded
 * with its outcome (acknowledged with a version, or unknown: it may or may not have happened).
 *
 * Keys: unique keys written once (`u/<client>/<n>`), keys overwritten by one client in sequence
 * (`o/<client>/<slot>`, each write carrying the highest timestamp the client saw, so the HLC must order
 * them), deletes of both, TTLs short (expired by the end) and long, values of mixed sizes up to the
 * largest the store takes, and reads at one, quorum and all. A value names its key and sequence number
 * and its filler is derived from them, so a read can tell exactly which write it returns.
 */
import type { ShoalError } from '../errors.js';
import type { SimProcessClock } from './scheduler.js';

export type Consistency = 'one' | 'quorum' | 'all';

export interface Attempt {
  key: string;
  seq: number;
  kind: 'put' | 'del';
  client: number;
  /** Simulated ms when sent and when the answer came (or the client gave up). */
  sentMs: number;
  doneMs: number;
  /** Absolute expiry the client asked for (put with ttl), on the simulated wall clock. */
  ttlMs?: number;
  valueBytes?: number;
  acked: boolean;
  consistency: Consistency;
  /** A failed write's version, when the error carried it (the client then orders its next write after it). */
  failedVersion?: { ts: number; node: string };
  /** The version the cluster acknowledged. */
  version?: { ts: number; node: string };
  error?: string;
}

export interface ReadViolation {
  key: string;
  atMs: number;
  problem: string;
}

export interface WorkloadOptions {
  clients: number;
  /** Mean pause between a client's requests (simulated ms). */
  thinkMsMean: number;
  /** Overwritten keys per client. */
  slotsPerClient: number;
  /** Largest value (the store's valueBytesMax). */
  valueBytesMax: number;
  /** The client's request timeout (ms). */
  timeoutMs: number;
  /** Fraction of values that are large (a quarter to all of valueBytesMax). */
  largeFraction: number;
}

export const DEFAULT_WORKLOAD: WorkloadOptions = {
  clients: 4,
  thinkMsMean: 150,
  slotsPerClient: 4,
  valueBytesMax: 1024 * 1024,
  timeoutMs: 8000, // longer than the cluster's requestTimeoutMs (5 s), as ShoalClient's callers should: the error (and the version of a failed write) arrives
  largeFraction: 0.02,
};

const HEADER_SEP = 0x7c; // '|'

/** Filler bytes, drawn once: a value's filler is a slice of it chosen by the key and sequence number. */
const FILLER = (() => {
  const pool = Buffer.alloc(2 * 1024 * 1024 + 4096);
  let x = 0x2545f491;
  for (let i = 0; i < pool.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    pool.writeInt32LE(x | 0, i);
  }
  return pool;
})();

function fillerOffset(key: string, seq: number): number {
  let h = seq * 2654435761;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return (h >>> 0) % 4096;
}

/** The bytes of write `seq` of `key`: "key|seq|" then filler derived from both. */
export function valueFor(key: string, seq: number, bytes: number): Buffer {
  const head = Buffer.from(`${key}|${seq}|`);
  const value = Buffer.allocUnsafe(Math.max(bytes, head.length));
  head.copy(value);
  const from = fillerOffset(key, seq);
  FILLER.copy(value, head.length, from, from + value.length - head.length);
  return value;
}

/** Which write of which key `value` is, or null when it is not a value any client wrote. */
export function identify(value: Buffer): { key: string; seq: number } | null {
  const first = value.indexOf(HEADER_SEP);
  const second = first < 0 ? -1 : value.indexOf(HEADER_SEP, first + 1);
  if (second < 0) return null;
  const key = value.subarray(0, first).toString();
  const seq = Number(value.subarray(first + 1, second).toString());
  if (!Number.isInteger(seq)) return null;
  const from = fillerOffset(key, seq);
  const headBytes = second + 1;
  return value.length <= FILLER.length && FILLER.compare(value, headBytes, value.length, from, from + value.length - headBytes) === 0 ? { key, seq } : null;
}

/** How the workload reaches a node: a request to its rpc address, answered with the decoded result. */
export type ClientCall = (addr: string, op: string, args: Record<string, unknown>) => Promise<unknown>;

export class Workload {
  readonly attempts: Attempt[] = [];
  readonly readViolations: ReadViolation[] = [];
  readonly reads = { ok: 0, failed: 0, found: 0 };
  /** Next sequence number per key (one writer per key). */
  private readonly nextSeq = new Map<string, number>();
  private readonly uniqueCount: number[];
  /** Highest version timestamp each client saw (sent as seenTs: the HLC must order its writes). */
  private readonly seenTs: number[];
  private running = true;

  constructor(
    private readonly options: WorkloadOptions,
    private readonly clock: SimProcessClock,
    private readonly call: ClientCall,
    /** The rpc addresses a client may send to right now (every node the operator knows). */
    private readonly targets: () => string[],
    /** Told of every acknowledged write the moment the client has the answer (the ack-copies oracle). */
    private readonly onAck: (attempt: Attempt) => void = () => undefined,
  ) {
    this.uniqueCount = new Array<number>(options.clients).fill(0);
    this.seenTs = new Array<number>(options.clients).fill(0);
  }

  start(): void {
    for (let c = 0; c < this.options.clients; c++) this.schedule(c);
  }

  /** Clients stop sending (requests in flight still finish). */
  stop(): void {
    this.running = false;
  }

  /** Keys any attempt wrote, with their attempts in sequence order. */
  byKey(): Map<string, Attempt[]> {
    const out = new Map<string, Attempt[]>();
    for (const a of this.attempts) {
      const list = out.get(a.key) ?? [];
      list.push(a);
      out.set(a.key, list);
    }
    for (const list of out.values()) list.sort((x, y) => x.seq - y.seq);
    return out;
  }

  private schedule(client: number): void {
    if (!this.running) return;
    const pause = -Math.log(1 - this.clock.random()) * this.options.thinkMsMean;
    this.clock.setTimeout(() => {
      this.step(client).then(
        () => this.schedule(client),
        () => this.schedule(client),
      );
    }, pause);
  }

  private valueBytes(): number {
    const r = this.clock.random();
    const max = this.options.valueBytesMax;
    if (r < this.options.largeFraction) return Math.floor(max / 4 + this.clock.random() * (max * 3) / 4);
    if (r < 0.2) return 1000 + Math.floor(this.clock.random() * 20_000);
    return 20 + Math.floor(this.clock.random() * 200);
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.clock.random() * items.length)];
  }

  private consistency(): Consistency {
    return this.pick(['one', 'quorum', 'quorum', 'all'] as const);
  }

  private async step(client: number): Promise<void> {
    const targets = this.targets();
    if (targets.length === 0) return;
    const addr = this.pick(targets);
    const r = this.clock.random();
    const slot = Math.floor(this.clock.random() * this.options.slotsPerClient);
    const overwriteKey = `o/${client}/${slot}`;
    if (r < 0.3) {
      await this.write(client, addr, `u/${client}/${this.uniqueCount[client]++}`, 'put');
    } else if (r < 0.55) {
      await this.write(client, addr, overwriteKey, 'put');
    } else if (r < 0.62) {
      await this.write(client, addr, overwriteKey, 'del');
    } else if (r < 0.66 && this.uniqueCount[client] > 0) {
      await this.write(client, addr, `u/${client}/${Math.floor(this.clock.random() * this.uniqueCount[client])}`, 'del');
    } else if (r < 0.72) {
      await this.write(client, addr, `u/${client}/${this.uniqueCount[client]++}`, 'put', this.clock.random() < 0.5 ? 2000 + Math.floor(this.clock.random() * 8000) : 3_600_000);
    } else {
      const key = this.clock.random() < 0.5 || this.uniqueCount[client] === 0 ? overwriteKey : `u/${client}/${Math.floor(this.clock.random() * this.uniqueCount[client])}`;
      await this.read(addr, key);
    }
  }

  private async write(client: number, addr: string, key: string, kind: 'put' | 'del', ttlMs?: number): Promise<void> {
    const seq = (this.nextSeq.get(key) ?? 0) + 1;
    this.nextSeq.set(key, seq);
    const consistency = this.consistency();
    const attempt: Attempt = { key, seq, kind, client, sentMs: this.clock.monotonicMs(), doneMs: -1, acked: false, consistency };
    this.attempts.push(attempt);
    const args: Record<string, unknown> = { key, consistency };
    if (this.seenTs[client] > 0) args.seenTs = this.seenTs[client];
    if (kind === 'put') {
      const bytes = this.valueBytes();
      attempt.valueBytes = bytes;
      args.value = valueFor(key, seq, bytes);
      if (ttlMs !== undefined) {
        args.ttlMs = ttlMs;
        attempt.ttlMs = ttlMs;
      }
    }
    try {
      const result = (await this.call(addr, kind, args)) as { version?: { ts: number; node: string } } | null;
      attempt.acked = true;
      if (result?.version) {
        attempt.version = result.version;
        this.seenTs[client] = Math.max(this.seenTs[client], result.version.ts);
      }
      attempt.doneMs = this.clock.monotonicMs();
      this.onAck(attempt);
    } catch (err) {
      attempt.error = (err as ShoalError).code ?? 'ERROR';
      // As ShoalClient does: a failed write's version (it may have reached replicas) orders the next.
      const version = (err as ShoalError).details?.version as { ts: number; node: string } | undefined;
      if (version !== undefined) {
        attempt.failedVersion = version;
        this.seenTs[client] = Math.max(this.seenTs[client], version.ts);
      }
    }
    attempt.doneMs = this.clock.monotonicMs();
  }

  private async read(addr: string, key: string): Promise<void> {
    const consistency = this.consistency();
    let result: { value?: Buffer; version?: { ts: number; node: string } } | null;
    try {
      result = (await this.call(addr, 'get', { key, consistency })) as typeof result;
      this.reads.ok++;
    } catch {
      this.reads.failed++;
      return;
    }
    if (result === null || result.value === undefined) return;
    this.reads.found++;
    const which = identify(Buffer.from(result.value));
    const atMs = this.clock.monotonicMs();
    if (which === null || which.key !== key) {
      this.readViolations.push({ key, atMs, problem: `read returned a value no client wrote for this key (${which === null ? 'unrecognised bytes' : `it is ${which.key}#${which.seq}`})` });
      return;
    }
    const attempt = this.attempts.find((a) => a.key === key && a.seq === which.seq);
    if (attempt === undefined || attempt.kind !== 'put') {
      this.readViolations.push({ key, atMs, problem: `read returned write #${which.seq}, which was never sent` });
    } else if (attempt.sentMs > atMs) {
      this.readViolations.push({ key, atMs, problem: `read returned write #${which.seq} before it was sent` });
    }
  }
}
