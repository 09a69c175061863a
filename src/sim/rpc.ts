/**
 * Node-to-node RPC in the simulator: an RpcPoolLike for the cluster layer and a server side that hands
 * requests to a node's real handler. Requests and results travel as msgpack bytes (the codec of the
 * real frames), so nothing is shared between simulated nodes and a frame over `frameBytesMax` fails as
 * it does over TCP: FRAME_TOO_LARGE for the caller's request, an error answer for a result too large.
 */
import { pack, unpack } from '../codec.js';
import { isErrorCode, ShoalError, toShoalError } from '../errors.js';
import type { RpcPoolLike } from '../cluster/ports.js';
import type { RpcHandler } from '../rpc/server.js';
import type { SimNetwork } from './network.js';
import type { SimProcessClock } from './scheduler.js';

interface WireAnswer {
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string; version?: { ts: number; node: string } };
}

function checkFrame(body: Buffer, frameBytesMax: number): void {
  if (body.length > frameBytesMax) {
    throw new ShoalError('FRAME_TOO_LARGE', `frame of ${body.length} bytes exceeds the limit of ${frameBytesMax}`);
  }
}

/** The client side: what a node's RpcPool (or a client's, with no peer id) does, over the simulated network. */
export class SimRpcPool implements RpcPoolLike {
  constructor(
    private readonly net: SimNetwork,
    private readonly owner: SimProcessClock,
    /** This process's own address (its rpc address: the source of its connections). */
    private readonly selfAddr: string,
    private readonly peerId: string | null,
    readonly frameBytesMax: number,
    private readonly defaultTimeoutMs: number,
  ) {}

  async call(addr: string, op: string, args: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<unknown> {
    const body = pack({ op, args, peer: this.peerId });
    checkFrame(body, this.frameBytesMax);
    const answerBytes = await this.net.request(this.selfAddr, this.owner, addr, body, options.timeoutMs ?? this.defaultTimeoutMs, op);
    const answer = unpack(answerBytes) as WireAnswer;
    if (answer.ok) return answer.result ?? null;
    const error = answer.error ?? { code: 'INTERNAL', message: 'malformed answer' };
    // As rpc/client.ts: a failed write's version (error.version) reaches the caller in details.
    const details = error.version === undefined ? { addr } : { addr, version: error.version };
    throw new ShoalError(isErrorCode(error.code) ? error.code : 'INTERNAL', error.message, details);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The server side: listens at `addr` and serves each request with `handler` (the node's gated one). */
export function serveRpc(net: SimNetwork, owner: SimProcessClock, addr: string, frameBytesMax: number, handler: RpcHandler): void {
  net.listen(addr, owner, async (request, from) => {
    const { op, args, peer } = unpack(request) as { op: string; args: Record<string, unknown>; peer: string | null };
    let answer: WireAnswer;
    try {
      answer = { ok: true, result: (await handler(op, args ?? {}, { remote: from, peer })) ?? null };
    } catch (err) {
      answer = { ok: false, error: toShoalError(err).toWire() };
    }
    try {
      const body = pack(answer);
      checkFrame(body, frameBytesMax);
      return body;
    } catch (err) {
      const error = err instanceof ShoalError ? err : new ShoalError('INTERNAL', `result could not be encoded: ${(err as Error).message}`);
      return pack({ ok: false, error: error.toWire() });
    }
  });
}
