/**
 * The run's report: a plain-text summary table (printed and saved as summary.txt), the checker's
 * result as summary.json, and timeline.svg — throughput and errors per second with the fault windows
 * shaded and labelled. Pure functions of the history and the check result; run.ts writes the files.
 */
import type { CheckResult } from './checker.js';
import type { HistoryEvent, Op } from './history.js';
import { pairOps } from './history.js';

export interface RunInfo {
  seed: number;
  durationMs: number;
  nodes: number;
  command: string;
  runDir: string;
  skipped: string[];
  notes: string[];
}

const pct = (share: number) => `${(share * 100).toFixed(2)}%`;
const ms = (v: number | null) => (v === null ? 'n/a' : `${(v / 1000).toFixed(1)} s`);

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

export function summaryText(result: CheckResult, info: RunInfo): string {
  const c = result.counts;
  const lines: string[] = [];
  lines.push(`chaos run seed ${info.seed}, ${info.nodes} nodes, ${(info.durationMs / 1000).toFixed(0)} s: ${result.valid ? 'PASS' : 'FAIL'}`);
  lines.push('');
  lines.push(table([
    ['check', 'value'],
    ['operations (ok / fail / info)', `${result.ops.total} (${result.ops.ok} / ${result.ops.fail} / ${result.ops.info})`],
    ['keys (unique / seq / del / ttl)', `${result.keys.total} (${result.keys.byClass.unique} / ${result.keys.byClass.seq} / ${result.keys.byClass.del} / ${result.keys.byClass.ttl})`],
    ['lost acknowledged writes', String(c.lost)],
    ['unexpected values', String(c.unexpected)],
    ['resurrected deletes', String(c.resurrected)],
    ['expired values still present', String(c['expired-present'])],
    ['reordered client writes', String(c.reordered)],
    ['unverified keys', String(c.unverified)],
    ['replica divergence', String(c['replica-divergence'])],
    ['keys on non-owners after clean-up', result.placementChecked ? String(c.misplaced) : `${result.misplacedKeys} (not checked)`],
    ['stale reads (allowed, counted)', String(result.staleReads)],
    ['latency p50 / p99 / max', `${result.latency.all.p50Ms} / ${result.latency.all.p99Ms} / ${result.latency.all.maxMs} ms`],
    ['membership converged', ms(result.convergence?.membershipMs ?? null)],
    ['hints drained', ms(result.convergence?.hintsMs ?? null)],
    ['replicas converged', ms(result.convergence?.replicasMs ?? null)],
  ]));
  lines.push('');
  lines.push(table([
    ['availability', 'ops', 'ok', 'share'],
    ...result.availability.map((a) => [a.fault, String(a.ops), String(a.ok), pct(a.share)]),
  ]));
  if (info.skipped.length > 0) lines.push('', ...info.skipped.map((s) => `skipped: ${s}`));
  if (info.notes.length > 0) lines.push('', ...info.notes.map((s) => `note: ${s}`));
  if (!result.valid) {
    lines.push('', 'violations:');
    for (const v of result.violations) lines.push(`  ${v.type}${v.key === undefined ? '' : ` ${v.key}`}: ${v.detail}`);
    lines.push('', `replay: ${info.command}`);
  }
  lines.push('', `run folder: ${info.runDir}`);
  return lines.join('\n') + '\n';
}

const FAULT_COLORS: Record<string, string> = {
  'kill-one': '#f4a6a6', 'kill-all': '#e06666', 'pause-one': '#f9cb9c', 'wal-truncate': '#d5a6bd',
  'partition-one': '#a4c2f4', 'partition-split': '#9fc5e8', 'partition-oneway': '#b4a7d6', join: '#b6d7a8', leave: '#ffe599',
  'seed-restart': '#d5a6bd', 'leave-rejoin': '#f9cb9c', 'partition-long': '#6fa8dc',
};

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[ch] as string);
}

/** Per-second buckets of ok and not-ok completions of workload operations. */
export function throughputBuckets(ops: readonly Op[], startMs: number, bucketMs = 1000): Array<{ ok: number; errors: number }> {
  const buckets: Array<{ ok: number; errors: number }> = [];
  for (const op of ops) {
    if (op.phase !== 'workload') continue;
    const i = Math.max(0, Math.floor((op.completeMs - startMs) / bucketMs));
    while (buckets.length <= i) buckets.push({ ok: 0, errors: 0 });
    if (op.outcome === 'ok') buckets[i].ok += 1;
    else buckets[i].errors += 1;
  }
  return buckets;
}

export function timelineSvg(events: readonly HistoryEvent[], result: CheckResult, title: string): string {
  const ops = pairOps(events).filter((o) => o.phase === 'workload');
  const startMs = ops.length > 0 ? ops[0].invokeMs : (events[0]?.atMs ?? 0);
  const buckets = throughputBuckets(ops, startMs);
  const width = 1000;
  const height = 320;
  const left = 50;
  const top = 40;
  const plotW = width - left - 20;
  const plotH = height - top - 50;
  const faultsEndS = Math.max(0, ...result.faults.map((f) => (f.endMs - startMs) / 1000));
  const seconds = Math.max(1, buckets.length, Math.ceil(faultsEndS));
  const peak = Math.max(1, ...buckets.map((b) => b.ok + b.errors));
  const x = (s: number) => left + (s / seconds) * plotW;
  const y = (v: number) => top + plotH - (v / peak) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${left}" y="20" font-size="14">${escapeXml(title)}</text>`);
  result.faults.forEach((f, i) => {
    const x0 = x((f.startMs - startMs) / 1000);
    const x1 = Math.max(x0 + 2, x((f.endMs - startMs) / 1000));
    const color = FAULT_COLORS[f.fault] ?? '#dddddd';
    parts.push(`<rect x="${x0.toFixed(1)}" y="${top}" width="${(x1 - x0).toFixed(1)}" height="${plotH}" fill="${color}" opacity="0.6"><title>${escapeXml(`${f.fault} ${f.targets.join(',')}`)}</title></rect>`);
    parts.push(`<text x="${(x0 + 2).toFixed(1)}" y="${top + 12 + (i % 3) * 12}" font-size="10">${escapeXml(`${f.fault} ${f.targets.join(',')}`)}</text>`);
  });
  const line = (values: number[], color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${values.map((v, i) => `${x(i + 0.5).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`;
  parts.push(line(buckets.map((b) => b.ok), '#2e7d32'));
  parts.push(line(buckets.map((b) => b.errors), '#c62828'));
  parts.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="black"/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="black"/>`);
  for (let s = 0; s <= seconds; s += Math.max(1, Math.ceil(seconds / 20))) {
    parts.push(`<text x="${x(s).toFixed(1)}" y="${top + plotH + 14}" text-anchor="middle">${s}s</text>`);
  }
  parts.push(`<text x="${left - 5}" y="${top + 4}" text-anchor="end">${peak}</text>`);
  parts.push(`<text x="${left - 5}" y="${top + plotH}" text-anchor="end">0</text>`);
  parts.push(`<text x="${left}" y="${height - 12}"><tspan fill="#2e7d32">— ok ops/s</tspan>  <tspan fill="#c62828">— failed or unknown ops/s</tspan>  shaded: faults</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
