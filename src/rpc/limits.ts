/**
 * Every limit of the RPC server in one place, each with its default and the reason for it.
 */
import { ShoalError } from '../errors.js';

export interface RpcLimits {
  /** Largest frame body accepted (either direction). */
  frameBytesMax: number;
  /** Requests one connection may have outstanding; more get TOO_MANY_REQUESTS. */
  inFlightPerConnectionMax: number;
  /** Open connections per server; more are refused with TOO_MANY_REQUESTS. */
  connectionsMax: number;
  /** A connection with no traffic and nothing in flight for this long is closed. */
  idleTimeoutMs: number;
  /** A connection that has not completed the hello by then is closed. */
  handshakeTimeoutMs: number;
  /** Stop reading a connection while its unsent output is above this many bytes; resume on drain. */
  writeBufferBytesHigh: number;
}

export const DEFAULT_RPC_LIMITS: Readonly<RpcLimits> = Object.freeze({
  // 8 MiB: room for the largest value (1 MiB default) plus streaming batches, small enough that one
  // frame cannot exhaust memory.
  frameBytesMax: 8 * 1024 * 1024,
  // 1024: far deeper than any useful pipeline (throughput flattens by ~64), bounds per-connection work.
  inFlightPerConnectionMax: 1024,
  // 1024: stays under the usual 1024-descriptor soft limit minus the store's and gossip's own files.
  connectionsMax: 1024,
  // 5 min: pooled clients keep connections warm between bursts; abandoned ones are reclaimed.
  idleTimeoutMs: 5 * 60_000,
  // 5 s: a well-behaved client sends hello at once; this bounds half-open and port-scanner sockets.
  handshakeTimeoutMs: 5_000,
  // 1 MiB: a few round trips of output at LAN speed; beyond that the reader is slow and must wait.
  writeBufferBytesHigh: 1024 * 1024,
});

/** Defaults overlaid with `overrides`; each value must be a positive integer (CONFIG otherwise). */
export function resolveRpcLimits(overrides: Partial<RpcLimits> = {}): RpcLimits {
  const limits: RpcLimits = { ...DEFAULT_RPC_LIMITS };
  for (const name of Object.keys(DEFAULT_RPC_LIMITS) as (keyof RpcLimits)[]) {
    const value = overrides[name];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value <= 0) {
      throw new ShoalError('CONFIG', `rpc limit ${name} must be a positive integer, got ${String(value)}`);
    }
    limits[name] = value;
  }
  return limits;
}
