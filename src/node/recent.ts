/**
 * Recent request figures for people (`shoal stats`, `shoal status`, the status page): requests per
 * second over the last few seconds and the p99 latency over the last minute. Per-second buckets in
 * a ring of RECENT_WINDOW_S, each with a log-scale latency histogram, so memory is fixed. Time comes
 * from an injected clock.
 */
import assert from 'node:assert/strict';

/** Seconds of history kept (the p99 window). */
export const RECENT_WINDOW_S = 60;
/** Seconds the ops/s rate is averaged over. */
export const RECENT_RATE_S = 10;
/** Latency histogram: bucket i holds latencies below LATENCY_BASE_MS × 2^(i/2), i.e. ×1.41 per bucket. */
const LATENCY_BASE_MS = 0.05;
const LATENCY_BUCKETS = 40;

interface Second {
  at: number;
  count: number;
  latency: Uint32Array;
}

export class RecentOps {
  private readonly seconds: Second[] = Array.from({ length: RECENT_WINDOW_S }, () => ({ at: -1, count: 0, latency: new Uint32Array(LATENCY_BUCKETS) }));

  constructor(private readonly now: () => number = Date.now) {}

  private slot(second: number): Second {
    const s = this.seconds[second % RECENT_WINDOW_S];
    if (s.at !== second) {
      s.at = second;
      s.count = 0;
      s.latency.fill(0);
    }
    return s;
  }

  record(latencyMs: number): void {
    assert.ok(latencyMs >= 0, 'a latency is never negative');
    const s = this.slot(Math.floor(this.now() / 1000));
    s.count += 1;
    const bucket = latencyMs <= LATENCY_BASE_MS ? 0 : Math.min(LATENCY_BUCKETS - 1, Math.ceil(2 * Math.log2(latencyMs / LATENCY_BASE_MS)));
    s.latency[bucket] += 1;
  }

  /** Requests per second over the last RECENT_RATE_S complete seconds. */
  perSec(): number {
    const current = Math.floor(this.now() / 1000);
    let count = 0;
    for (const s of this.seconds) if (s.at < current && s.at >= current - RECENT_RATE_S) count += s.count;
    return count / RECENT_RATE_S;
  }

  /** The 99th percentile latency over the window (upper bound of its bucket), null without requests. */
  p99Ms(): number | null {
    const current = Math.floor(this.now() / 1000);
    const total = new Uint32Array(LATENCY_BUCKETS);
    let count = 0;
    for (const s of this.seconds) {
      if (s.at <= current - RECENT_WINDOW_S || s.at > current) continue;
      for (let i = 0; i < LATENCY_BUCKETS; i++) total[i] += s.latency[i];
      count += s.count;
    }
    if (count === 0) return null;
    const rank = Math.ceil(count * 0.99);
    let seen = 0;
    for (let i = 0; i < LATENCY_BUCKETS; i++) {
      seen += total[i];
      if (seen >= rank) return Math.round(LATENCY_BASE_MS * 2 ** (i / 2) * 1000) / 1000;
    }
    return null;
  }
}
