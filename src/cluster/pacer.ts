/**
 * A rate limit for background transfers (streaming, anti-entropy, clean-up): `take(amount)` waits
 * until taking `amount` units keeps the long-run rate at or below `perSec`, allowing a short burst.
 * Time is monotonic and the wait is a timer of the injected clock (src/clock.ts).
 */
import { type Clock, sleep, systemClock } from '../clock.js';

export class Pacer {
  private nextFreeMs = -Infinity;
  private readonly perSec: number;
  private readonly burstMs: number;
  private readonly clock: Clock;

  constructor(perSec: number, options: { burstMs?: number; clock?: Clock } = {}) {
    this.perSec = perSec;
    this.burstMs = options.burstMs ?? 100;
    this.clock = options.clock ?? systemClock;
  }

  /** Resolves once `amount` units may be sent. */
  async take(amount: number): Promise<void> {
    const now = this.clock.monotonicMs();
    this.nextFreeMs = Math.max(this.nextFreeMs, now) + (amount * 1000) / this.perSec;
    const waitMs = this.nextFreeMs - now - this.burstMs;
    if (waitMs > 0) await sleep(this.clock, waitMs);
  }
}
