/**
 * A latency histogram by op for the request path: one array of bucket counts per op, updated with a
 * bucket search and two additions (prom-client's Histogram validates and hashes its labels on every
 * observation, a visible share of a node's CPU per request). It is registered in the node's
 * prom-client Registry as a metric of its own and renders the standard histogram exposition
 * (`_bucket{le}` cumulative, `_sum`, `_count`) at scrape time.
 */
import assert from 'node:assert/strict';
import type { Metric, Registry } from 'prom-client';

interface Series {
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

export class OpHistogram {
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds in seconds, ascending. */
    private readonly bounds: readonly number[],
  ) {
    assert.ok(bounds.length > 0 && bounds.every((b, i) => i === 0 || b > bounds[i - 1]), 'bucket bounds must ascend');
  }

  /** Makes `op`'s series exist (at 0) before its first observation. */
  zero(op: string): void {
    if (!this.series.has(op)) this.series.set(op, { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 });
  }

  /** Records one observation of `seconds` for `op` (a label the caller has already bounded). */
  observe(op: string, seconds: number): void {
    let s = this.series.get(op);
    if (s === undefined) {
      s = { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.series.set(op, s);
    }
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]) i += 1;
    s.buckets[i] += 1;
    s.sum += seconds;
    s.count += 1;
  }

  /** Registers this histogram in `registry` (rendered with the registry's default labels). */
  register(registry: Registry): void {
    registry.registerMetric(this.asMetric() as unknown as Metric);
  }

  /** The object prom-client's Registry renders: name, help, type and get() with the values. */
  private asMetric(): { name: string; help: string; type: string; aggregator: string; get(): Promise<object>; reset(): void } {
    return {
      name: this.name,
      help: this.help,
      type: 'histogram',
      aggregator: 'sum',
      get: () => Promise.resolve({ name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values: this.values() }),
      reset: () => this.series.clear(),
    };
  }

  private values(): MetricValue[] {
    const out: MetricValue[] = [];
    for (const [op, s] of this.series) {
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += s.buckets[i];
        const le = i < this.bounds.length ? this.bounds[i] : '+Inf';
        out.push({ labels: { le, op }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      assert.equal(cumulative, s.count, 'the +Inf bucket holds every observation');
      out.push({ labels: { op }, value: s.sum, metricName: `${this.name}_sum` });
      out.push({ labels: { op }, value: s.count, metricName: `${this.name}_count` });
    }
    return out;
  }
}
