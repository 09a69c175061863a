/**
 * An in-process network of ClusterNodes with fault injection: a node can be down (calls to and from
 * it fail with UNAVAILABLE), two nodes can be partitioned, and every call can be delayed. Arguments and
 * results go through the real msgpack codec, as they would on the wire, and a request or reply larger
 * than `frameBytesMax` fails with FRAME_TOO_LARGE as the RPC framing would.
 */
import { pack, unpack } from '../../../src/codec.js';
import { ShoalError, toShoalError } from '../../../src/errors.js';
import type { Transport } from '../../../src/cluster/ports.js';
import { DEFAULT_RPC_LIMITS } from '../../../src/rpc/limits.js';

type Handler = (op: string, args: Record<string, unknown>) => Promise<unknown>;

export class InMemoryNetwork {
  private readonly handlers = new Map<string, Handler>();
  private readonly downs = new Set<string>();
  private readonly cuts = new Set<string>();
  delayMs = 0;
  calls = 0;
  /** The frame limit every request and reply body is held to (the rpc default unless a test lowers it). */
  frameBytesMax: number = DEFAULT_RPC_LIMITS.frameBytesMax;
  /** Largest request or reply body seen so far (tests check batches use the room they have). */
  largestFrameBytes = 0;
  /** Every call as from→to:op, when `logCalls` is on. */
  logCalls = false;
  readonly callLog: string[] = [];
  /** Extra delay for calls to one node (a slow replica that membership still sees alive). */
  readonly slowMs = new Map<string, number>();

  register(id: string, handler: Handler): void {
    this.handlers.set(id, handler);
  }

  down(id: string): void {
    this.downs.add(id);
  }

  isDown(id: string): boolean {
    return this.downs.has(id);
  }

  up(id: string): void {
    this.downs.delete(id);
  }

  partition(a: string, b: string): void {
    this.cuts.add(`${a}|${b}`).add(`${b}|${a}`);
  }

  heal(): void {
    this.cuts.clear();
    this.downs.clear();
  }

  transport(from: string): Transport {
    return {
      call: async (to, op, args) => {
        this.calls += 1;
        if (this.logCalls) this.callLog.push(`${from}→${to}:${op}`);
        const handler = this.handlers.get(to);
        if (!handler || this.downs.has(to) || this.downs.has(from) || this.cuts.has(`${from}|${to}`)) {
          await new Promise((r) => setImmediate(r));
          throw new ShoalError('UNAVAILABLE', `${to} unreachable from ${from}`);
        }
        const wireArgs = unpack(this.frame(pack(args), `${op} request`)) as Record<string, unknown>;
        const delayMs = this.delayMs + (this.slowMs.get(to) ?? 0);
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        else await new Promise((r) => setImmediate(r));
        let result: unknown;
        try {
          result = await handler(op, wireArgs);
        } catch (err) {
          const e = toShoalError(err);
          throw new ShoalError(e.code, e.message);
        }
        // A reply over the limit reaches the caller as an error reply, as the rpc server sends it.
        return unpack(this.frame(pack(result), `${op} reply`));
      },
    };
  }

  private frame(body: Buffer, what: string): Buffer {
    if (body.length > this.frameBytesMax) {
      throw new ShoalError('FRAME_TOO_LARGE', `${what}: frame of ${body.length} bytes exceeds the limit of ${this.frameBytesMax}`);
    }
    this.largestFrameBytes = Math.max(this.largestFrameBytes, body.length);
    return body;
  }
}
