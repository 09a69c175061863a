/**
 * An in-process network of ClusterNodes with fault injection: a node can be down (calls to and from
 * it fail with UNAVAILABLE), two nodes can be partitioned, and every call can be delayed. Arguments and
 * results go through the real msgpack codec, as they would on the wire.
 */
import { pack, unpack } from '../../../src/codec.js';
import { ShoalError, toShoalError } from '../../../src/errors.js';
import type { Transport } from '../../../src/cluster/ports.js';

type Handler = (op: string, args: Record<string, unknown>) => Promise<unknown>;

export class InMemoryNetwork {
  private readonly handlers = new Map<string, Handler>();
  private readonly downs = new Set<string>();
  private readonly cuts = new Set<string>();
  delayMs = 0;
  calls = 0;
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
        const wireArgs = unpack(pack(args)) as Record<string, unknown>;
        const delayMs = this.delayMs + (this.slowMs.get(to) ?? 0);
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        else await new Promise((r) => setImmediate(r));
        try {
          return unpack(pack(await handler(op, wireArgs)));
        } catch (err) {
          const e = toShoalError(err);
          throw new ShoalError(e.code, e.message);
        }
      },
    };
  }
}
