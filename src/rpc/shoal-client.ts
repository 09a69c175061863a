/**
 * ShoalClient: the typed client library the CLI and the benchmarks use. Talks to any node of a
 * cluster through an RpcPool, fails over to the next address when one is unreachable, and carries
 * the highest version timestamp it has seen on writes (args.seenTs) so that a coordinator with a
 * slower clock still orders this client's writes after the ones it has read.
 */
import { ShoalError } from '../errors.js';
import type { Version } from '../storage/types.js';
import { RpcPool, isTransportError, parseAddr, type RpcPoolOptions } from './client.js';
import { isPlainMap, type Consistency, type RpcArgs } from './protocol.js';
import type { RpcTlsClientOptions } from './tls.js';

export interface ShoalClientOptions {
  /** host:port of one or more nodes; the first reachable one is used, in order. */
  addresses: string[];
  /** Must match the cluster's name (handshake). Default "dev" (cluster.example.json). */
  clusterName?: string;
  /** Per-request timeout. Default 5 s. */
  timeoutMs?: number;
  /** Passed to the pool (connectionsPerAddr, connectTimeoutMs, frameBytesMax). */
  pool?: Omit<RpcPoolOptions, 'clusterName' | 'timeoutMs' | 'tls'>;
  /** TLS to the nodes (src/rpc/tls.ts loadClientTls reads the PEM files). Default: plaintext. */
  tls?: RpcTlsClientOptions;
}

export interface GetResult {
  value: Buffer;
  version: Version;
  expiresAtMs?: number;
}

export interface ReadOptions {
  consistency?: Consistency;
  timeoutMs?: number;
}

export interface PutOptions extends ReadOptions {
  ttlMs?: number;
}

export const DEFAULT_CLUSTER_NAME = 'dev';

export interface ScanEntry {
  key: string;
  /** Absent when the scan asked for keys only. */
  value?: Buffer;
  /** Absent when the scan asked for keys only. */
  version?: Version;
  expiresAtMs?: number;
}

export interface ScanPage {
  entries: ScanEntry[];
  /** Pass back for the next page; null when the scan is done. */
  cursor: string | null;
  /** Owners that did not answer (keys only they hold may be missing). */
  unreachable: string[];
}

function malformed(op: string, what: string): ShoalError {
  return new ShoalError('INTERNAL', `malformed ${op} result from the server: ${what}`);
}

function decodeVersion(op: string, value: unknown): Version {
  if (!isPlainMap(value) || typeof value.ts !== 'number' || typeof value.node !== 'string') {
    throw malformed(op, 'version must be { ts: number, node: string }');
  }
  return { ts: value.ts, node: value.node };
}

export class ShoalClient {
  private readonly pool: RpcPool;
  private readonly addresses: string[];
  private current = 0;
  private seenTs = 0;
  private closed = false;

  constructor(options: ShoalClientOptions) {
    if (options.addresses.length === 0) throw new ShoalError('CONFIG', 'ShoalClient needs at least one address');
    for (const addr of options.addresses) parseAddr(addr);
    this.addresses = [...options.addresses];
    this.pool = new RpcPool({
      ...options.pool,
      clusterName: options.clusterName ?? DEFAULT_CLUSTER_NAME,
      timeoutMs: options.timeoutMs,
      tls: options.tls,
    });
  }

  /** The highest version timestamp seen in any result so far (0 before the first). */
  get highestSeenTs(): number {
    return this.seenTs;
  }

  async get(key: string, options: ReadOptions = {}): Promise<GetResult | null> {
    const args: RpcArgs = { key };
    if (options.consistency !== undefined) args.consistency = options.consistency;
    const result = await this.call('get', args, options);
    if (result === null) return null;
    if (!isPlainMap(result) || !(result.value instanceof Uint8Array)) throw malformed('get', 'value must be bin');
    const version = this.observe(decodeVersion('get', result.version));
    const value = Buffer.isBuffer(result.value) ? result.value : Buffer.from(result.value);
    const out: GetResult = { value, version };
    if (typeof result.expiresAtMs === 'number') out.expiresAtMs = result.expiresAtMs;
    return out;
  }

  async put(key: string, value: Buffer | string, options: PutOptions = {}): Promise<{ version: Version }> {
    const args: RpcArgs = { key, value: typeof value === 'string' ? Buffer.from(value, 'utf8') : value };
    if (options.ttlMs !== undefined) args.ttlMs = options.ttlMs;
    return this.write('put', args, options);
  }

  async del(key: string, options: ReadOptions = {}): Promise<{ version: Version }> {
    return this.write('del', { key }, options);
  }

  stats(): Promise<unknown> {
    return this.call('stats', {});
  }

  health(): Promise<unknown> {
    return this.call('health', {});
  }

  members(): Promise<unknown> {
    return this.call('members', {});
  }

  ring(): Promise<unknown> {
    return this.call('ring', {});
  }

  /**
   * One page of the cluster-wide key listing (docs/PROTOCOL.md, `scan`), in ring (hash) order from
   * `cursor`; pass the returned cursor back for the next page; null when done.
   */
  async scan(options: { cursor?: string; prefix?: string; limit?: number; keysOnly?: boolean } = {}): Promise<ScanPage> {
    const args: RpcArgs = {};
    if (options.cursor !== undefined && options.cursor !== '') args.cursor = options.cursor;
    if (options.prefix !== undefined && options.prefix !== '') args.prefix = options.prefix;
    if (options.limit !== undefined) args.limit = options.limit;
    if (options.keysOnly === true) args.keysOnly = true;
    const result = await this.call('scan', args);
    if (!isPlainMap(result) || !Array.isArray(result.entries)) throw malformed('scan', 'expected { entries, cursor }');
    const entries = result.entries.map((raw): ScanEntry => {
      if (!isPlainMap(raw) || typeof raw.key !== 'string') throw malformed('scan', 'entries must be { key, version, value? }');
      const entry: ScanEntry = { key: raw.key };
      if (raw.version !== undefined && raw.version !== null) entry.version = this.observe(decodeVersion('scan', raw.version));
      if (raw.value instanceof Uint8Array) entry.value = Buffer.isBuffer(raw.value) ? raw.value : Buffer.from(raw.value);
      if (typeof raw.expiresAtMs === 'number') entry.expiresAtMs = raw.expiresAtMs;
      return entry;
    });
    const unreachable = Array.isArray(result.unreachable) ? result.unreachable.filter((x): x is string => typeof x === 'string') : [];
    return { entries, cursor: typeof result.cursor === 'string' ? result.cursor : null, unreachable };
  }

  leave(): Promise<unknown> {
    return this.call('leave', {});
  }

  /**
   * Any op. Tries the addresses in order starting from the last one that worked; moves on only when
   * an address is unreachable or answers CLOSED (starting or shutting down: the request was not
   * processed). Any other error the server returns, even UNAVAILABLE, is returned as is.
   */
  async call(op: string, args: RpcArgs, options: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.closed) throw new ShoalError('CLOSED', 'the client is closed');
    let lastError: unknown;
    for (let attempt = 0; attempt < this.addresses.length; attempt++) {
      const index = (this.current + attempt) % this.addresses.length;
      try {
        const result = await this.pool.call(this.addresses[index], op, args, { timeoutMs: options.timeoutMs });
        this.current = index;
        return result;
      } catch (err) {
        const notServing = err instanceof ShoalError && err.code === 'CLOSED' && !this.closed;
        if (!isTransportError(err) && !notServing) throw err;
        lastError = err;
      }
    }
    const tried = this.addresses.join(', ');
    throw new ShoalError('UNAVAILABLE', `no node reachable (tried ${tried}): ${(lastError as Error).message}`, {
      addresses: this.addresses,
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return this.pool.close();
  }

  private async write(op: 'put' | 'del', args: RpcArgs, options: ReadOptions): Promise<{ version: Version }> {
    if (options.consistency !== undefined) args.consistency = options.consistency;
    if (this.seenTs > 0) args.seenTs = this.seenTs;
    let result: unknown;
    try {
      result = await this.call(op, args, options);
    } catch (err) {
      // A failed write may still have reached replicas: the next write must be stamped after it.
      const version = (err as ShoalError).details?.version as Version | undefined;
      if (version !== undefined && typeof version.ts === 'number') this.observe(version);
      throw err;
    }
    if (!isPlainMap(result)) throw malformed(op, 'expected { version }');
    return { version: this.observe(decodeVersion(op, result.version)) };
  }

  private observe(version: Version): Version {
    if (version.ts > this.seenTs) this.seenTs = version.ts;
    return version;
  }
}
