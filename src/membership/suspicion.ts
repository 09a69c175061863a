/**
 * Lifeguard's dynamic suspicion timeout. A suspicion starts at the maximum timeout and shrinks towards
 * the minimum as independent members confirm it: with c of k expected confirmations the timeout is
 * max − (max − min) · log(c + 1) / log(k + 1). The minimum is SWIM's suspicionMult × max(1, log10 n)
 * × probeIntervalMs; a lone accuser (a slow or partitioned node) must wait suspicionMaxTimeoutMult
 * times longer, which gives the suspect time to hear about it and refute.
 */
import assert from 'node:assert/strict';

export interface SuspicionTimeouts {
  minMs: number;
  maxMs: number;
}

export function suspicionTimeouts(
  config: { suspicionMult: number; suspicionMaxTimeoutMult: number; probeIntervalMs: number },
  members: number,
): SuspicionTimeouts {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, members)));
  const minMs = Math.round(config.suspicionMult * nodeScale * config.probeIntervalMs);
  return { minMs, maxMs: minMs * config.suspicionMaxTimeoutMult };
}

/** Confirmations expected before the timeout reaches its minimum (memberlist: suspicionMult − 2). */
export function expectedConfirmations(suspicionMult: number, members: number): number {
  const k = suspicionMult - 2;
  // Members other than the suspect and the accuser who could confirm.
  return members - 2 < k ? 0 : Math.max(0, k);
}

export class Suspicion {
  private readonly confirmers = new Set<string>();

  constructor(
    readonly startMs: number,
    /** The first accuser; its repeated accusations do not count as confirmations. */
    readonly accuser: string,
    private readonly k: number,
    private readonly timeouts: SuspicionTimeouts,
  ) {
    assert.ok(timeouts.minMs <= timeouts.maxMs);
  }

  /** Counts `from` as an independent confirmation; true when it is new (worth re-gossiping). */
  confirm(from: string): boolean {
    if (this.confirmers.size >= this.k || from === this.accuser || this.confirmers.has(from)) return false;
    this.confirmers.add(from);
    return true;
  }

  get confirmations(): number {
    return this.confirmers.size;
  }

  timeoutMs(): number {
    const { minMs, maxMs } = this.timeouts;
    if (this.k < 1) return minMs;
    const fraction = Math.log(this.confirmers.size + 1) / Math.log(this.k + 1);
    return Math.max(minMs, Math.floor(maxMs - fraction * (maxMs - minMs)));
  }

  deadlineMs(): number {
    return this.startMs + this.timeoutMs();
  }
}
