/**
 * Node-to-node calls by node id. Calls to this node run the local handler directly (no socket);
 * calls to others go through the RPC pool to the member's rpc address. The per-key ops
 * (internal.apply, internal.read, internal.hint) made to one peer within one event-loop turn are
 * sent as one internal.batch frame (peer-batch.ts), bounded in bytes by `batchBytesMax` (batch.ts).
 */
import { type Clock, systemClock } from '../clock.js';
import { ShoalError } from '../errors.js';
import { PeerBatcher, type PeerBatcherStats } from './peer-batch.js';
import type { RpcPoolLike, Transport } from './ports.js';

export type LocalHandler = (op: string, args: Record<string, unknown>) => Promise<unknown>;

export interface PoolTransport extends Transport {
  /** How the per-key calls were sent (in batches or alone). */
  batchStats(): PeerBatcherStats;
}

/** Maps node ids to rpc addresses and calls them through an RpcPool, batching per-key ops per turn. */
export function poolTransport(
  pool: RpcPoolLike,
  addressOf: (nodeId: string) => string | undefined,
  batchBytesMax: number,
  clock: Clock = systemClock,
): PoolTransport {
  const batcher = new PeerBatcher((addr, op, args, timeoutMs) => pool.call(addr, op, args, { timeoutMs }), batchBytesMax, undefined, clock);
  return {
    call(nodeId, op, args, options) {
      const addr = addressOf(nodeId);
      if (addr === undefined) {
        return Promise.reject(new ShoalError('UNAVAILABLE', `no rpc address known for node ${nodeId}`));
      }
      return batcher.call(addr, op, args, options.timeoutMs);
    },
    batchStats: () => ({ ...batcher.counters }),
  };
}

/** Short-circuits calls to self; everything else goes to `remote`. */
export function withLocal(selfId: string, local: LocalHandler, remote: Transport): Transport {
  return {
    call(nodeId, op, args, options) {
      if (nodeId === selfId) return local(op, args);
      return remote.call(nodeId, op, args, options);
    },
  };
}
