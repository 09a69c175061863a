/**
 * The RPC handler of a node that serves only its own store: get, put, del, stats and health. The
 * cluster layer's ClusterNode.rpcHandler replaces it once membership and the ring run; until then
 * this is what `shoal agent` answers with. Argument checks here mirror docs/PROTOCOL.md.
 */
import { ShoalError } from '../errors.js';
import type { Store, Version } from '../storage/types.js';

/** Stamps writes: src/cluster/hlc.ts's Hlc. */
export interface WriteClock {
  now(): Version;
  observe(ts: number): void;
}

export interface SingleHandlerOptions {
  store: Store;
  clock: WriteClock;
  /** The body of `stats` and `health` (the node adds its own figures). */
  stats: () => Record<string, unknown>;
  health: () => Record<string, unknown>;
}

const CONSISTENCY = new Set(['one', 'quorum', 'all']);
const CLUSTER_OPS = new Set(['members', 'ring', 'leave', 'remove']);

function badRequest(message: string): never {
  throw new ShoalError('BAD_REQUEST', message);
}

export function argKey(args: Record<string, unknown>): string {
  const key = args.key;
  if (typeof key !== 'string' || key.length === 0) badRequest('"key" must be a non-empty string');
  return key;
}

export function argValue(args: Record<string, unknown>): Buffer {
  const value = args.value;
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  return badRequest('"value" must be binary (msgpack bin) or a string');
}

function argTtlMs(args: Record<string, unknown>): number | undefined {
  const ttlMs = args.ttlMs;
  if (ttlMs === undefined || ttlMs === null) return undefined;
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0) badRequest('"ttlMs" must be a positive integer');
  return ttlMs;
}

function checkCommon(args: Record<string, unknown>, clock: WriteClock): void {
  const consistency = args.consistency;
  if (consistency !== undefined && consistency !== null && !CONSISTENCY.has(consistency as string)) {
    badRequest('"consistency" must be one of one, quorum, all');
  }
  const seenTs = args.seenTs;
  if (seenTs !== undefined && seenTs !== null) {
    if (typeof seenTs !== 'number' || !Number.isSafeInteger(seenTs) || seenTs < 0) badRequest('"seenTs" must be a non-negative integer');
    clock.observe(seenTs);
  }
}

export type SingleHandler = (op: string, args: Record<string, unknown>) => Promise<unknown>;

export function singleNodeHandler(options: SingleHandlerOptions): SingleHandler {
  const { store, clock } = options;
  return async (op, args) => {
    switch (op) {
      case 'get': {
        const key = argKey(args);
        checkCommon(args, clock);
        const entry = store.get(key);
        if (!entry || entry.value === null) return null;
        const result: Record<string, unknown> = { value: entry.value, version: { ts: entry.ts, node: entry.node } };
        if (entry.expiresAtMs !== undefined) result.expiresAtMs = entry.expiresAtMs;
        return result;
      }
      case 'put': {
        const key = argKey(args);
        const value = argValue(args);
        const ttlMs = argTtlMs(args);
        checkCommon(args, clock);
        const version = clock.now();
        await store.put(key, value, ttlMs === undefined ? { version } : { version, ttlMs });
        return { version };
      }
      case 'del': {
        const key = argKey(args);
        checkCommon(args, clock);
        const version = clock.now();
        await store.delete(key, { version });
        return { version };
      }
      case 'stats':
        return options.stats();
      case 'health':
        return options.health();
      default:
        if (CLUSTER_OPS.has(op)) {
          throw new ShoalError('BAD_REQUEST', `"${op}" needs the cluster layer, which this node does not run`);
        }
        throw new ShoalError('BAD_REQUEST', `unknown operation "${op}"`);
    }
  };
}
