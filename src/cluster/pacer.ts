/**
 * A rate limit for background transfers (streaming, anti-entropy, clean-up): `take(amount)` waits
 * until taking `amount` units keeps the long-run rate at or below `perSec`, allowing a short burst.
 */
export class Pacer {
  private nextFreeMs = 0;
  private readonly perSec: number;
  private readonly burstMs: number;
  private readonly now: () => number;

  constructor(perSec: number, options: { burstMs?: number; now?: () => number } = {}) {
    this.perSec = perSec;
    this.burstMs = options.burstMs ?? 100;
    this.now = options.now ?? Date.now;
  }

  /** Resolves once `amount` units may be sent. */
  async take(amount: number): Promise<void> {
    const now = this.now();
    this.nextFreeMs = Math.max(this.nextFreeMs, now) + (amount * 1000) / this.perSec;
    const waitMs = this.nextFreeMs - now - this.burstMs;
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}
