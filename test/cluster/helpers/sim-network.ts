/**
 * An in-process network on simulated time (src/sim/scheduler.ts): a request reaches its target
 * `delay` simulated milliseconds after it is sent, and the reply comes back as long again, each leg
 * a scheduler event whose delay is drawn from the scheduler's seeded randomness. Arguments and results
 * go through the real msgpack codec. A node that is down (or not registered yet) answers UNAVAILABLE.
 * No real timer is involved: the scheduler decides when everything happens.
 */
import { pack, unpack } from '../../../src/codec.js';
import { ShoalError, toShoalError } from '../../../src/errors.js';
import type { Transport } from '../../../src/cluster/ports.js';
import type { SimScheduler } from '../../../src/sim/scheduler.js';

type Handler = (op: string, args: Record<string, unknown>) => Promise<unknown>;

export class SimNetwork {
  private readonly handlers = new Map<string, Handler>();
  private readonly downs = new Set<string>();
  /** Calls delivered (requests that reached a handler). */
  delivered = 0;

  constructor(
    private readonly scheduler: SimScheduler,
    /** One leg takes latencyMinMs..latencyMaxMs of simulated time. */
    private readonly latency: { minMs: number; maxMs: number } = { minMs: 1, maxMs: 5 },
  ) {}

  register(id: string, handler: Handler): void {
    this.handlers.set(id, handler);
  }

  down(id: string): void {
    this.downs.add(id);
  }

  up(id: string): void {
    this.downs.delete(id);
  }

  private legMs(): number {
    const { minMs, maxMs } = this.latency;
    return minMs + Math.floor(this.scheduler.random() * (maxMs - minMs + 1));
  }

  transport(from: string): Transport {
    return {
      call: (to, op, args) =>
        new Promise((resolve, reject) => {
          const request = pack(args);
          this.scheduler.at(this.legMs(), () => {
            const handler = this.handlers.get(to);
            if (!handler || this.downs.has(to) || this.downs.has(from)) {
              this.scheduler.at(this.legMs(), () => reject(new ShoalError('UNAVAILABLE', `${to} unreachable from ${from}`)));
              return;
            }
            this.delivered += 1;
            let answer: Promise<unknown>;
            try {
              answer = handler(op, unpack(request) as Record<string, unknown>);
            } catch (err) {
              answer = Promise.reject(err);
            }
            answer.then(
              (result) => {
                const reply = pack(result);
                this.scheduler.at(this.legMs(), () => resolve(unpack(reply)));
              },
              (err: unknown) => {
                const e = toShoalError(err);
                this.scheduler.at(this.legMs(), () => reject(new ShoalError(e.code, e.message)));
              },
            );
          });
        }),
    };
  }
}
