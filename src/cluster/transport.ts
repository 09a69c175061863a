/**
 * Node-to-node calls by node id. Calls to this node run the local handler directly (no socket);
 * calls to others go through the RPC pool to the member's rpc address.
 */
import { ShoalError } from '../errors.js';
import type { RpcPoolLike, Transport } from './ports.js';

export type LocalHandler = (op: string, args: Record<string, unknown>) => Promise<unknown>;

/** Maps node ids to rpc addresses and calls them through an RpcPool. */
export function poolTransport(pool: RpcPoolLike, addressOf: (nodeId: string) => string | undefined): Transport {
  return {
    call(nodeId, op, args, options) {
      const addr = addressOf(nodeId);
      if (addr === undefined) {
        return Promise.reject(new ShoalError('UNAVAILABLE', `no rpc address known for node ${nodeId}`));
      }
      return pool.call(addr, op, args, { timeoutMs: options.timeoutMs });
    },
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
