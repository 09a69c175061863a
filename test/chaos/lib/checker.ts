/**
 * The chaos checker: pure, no I/O. It reads a history (see history.ts) and decides whether the cluster
 * kept its promises. Rules, for every key:
 *
 * - Values are unique per write, so a value read identifies the write that produced it. A value no
 *   write to that key produced, or one only a definitely-failed write produced, is `unexpected`.
 * - Last-writer-wins on versions: after convergence the value read must carry a version at least as
 *   new as every acknowledged write's version. An older value visible over a newer acknowledged put
 *   is `lost`; over a newer acknowledged delete (or a newer TTL write that expired) it is `resurrected`.
 * - Absent at the end while the newest acknowledged write is a live put is `lost`, unless an
 *   indeterminate (`info`) delete or TTL write may explain it: an `info` write may take effect at any
 *   time after its invoke (Jepsen's rule), so it can also beat a later acknowledged write — but only
 *   with a newer version, which the read shows.
 * - One client's acknowledged writes to a key, one after the other in real time, must get increasing
 *   versions (the client carries `seenTs`); otherwise the later write is silently overwritten:
 *   `reordered`.
 * - A value whose TTL has certainly passed is never returned: `expired-present`.
 * - Every key with an acknowledged write must be read back at the end (`unverified` otherwise), and
 *   final reads of one key through different nodes agree (`replica-divergence`). A final read at
 *   consistency `one` is judged only by that agreement (and for unexpected or expired values).
 * - A node that exits without being told to (a `crash` mark in the history) is `crashed`.
 *
 * Stale reads during the workload are counted, not flagged: with sloppy quorums and hinted handoff
 * (N=3, W=2, R=2) Shoal promises durability and convergence, not linearizability.
 */
import { faultWindows, pairOps } from './history.js';
import type { FaultKind, FaultWindow, HistoryEvent, HistoryVersion, KeyClass, Op } from './history.js';

export type ViolationType =
  | 'lost'
  | 'unexpected'
  | 'resurrected'
  | 'expired-present'
  | 'reordered'
  | 'unverified'
  | 'replica-divergence'
  | 'misplaced'
  | 'unconverged'
  | 'availability'
  | 'crashed';

export interface Violation {
  type: ViolationType;
  key?: string;
  detail: string;
}

/** What the harness measured after healing every fault (see convergence.ts). */
export interface ConvergenceResult {
  converged: boolean;
  /** Ms after the heal until membership checksums agreed on every node (null = never). */
  membershipMs: number | null;
  /** Ms after the heal until no node had pending hints (null = never, or not measurable). */
  hintsMs: number | null;
  /** Ms after the heal until replica digests / ring checksums matched (null = never). */
  replicasMs: number | null;
  detail?: string;
}

/** One replica's local copy of a key, for the replica check (when the cluster exposes it). */
export interface ReplicaCopy {
  key: string;
  node: string;
  /** null = the node holds nothing for the key. */
  entry: { ts: number; node: string; tombstone: boolean } | null;
}

export interface ReplicaInput {
  /** key → its preference list after the run. */
  owners: Record<string, string[]>;
  copies: ReplicaCopy[];
  /**
   * Whether copies outside the preference list are violations. False when the cluster says it cannot
   * clean up (stats `cleanup.supported: false`): they are then only counted. Default true.
   */
  placementChecked?: boolean;
}

export interface CheckOptions {
  convergence?: ConvergenceResult;
  /** Goal: membership agrees within this long after the heal. Default 10 s (issue 6). */
  membershipConvergeMsMax?: number;
  /** Goal: replicas agree within this long after the heal. Default 60 s (issue 6). */
  replicasConvergeMsMax?: number;
  /** Minimum share of ok operations while a fault of `availabilityFaults` is active. Default 0.99. */
  availabilityMin?: number;
  /** Faults the availability goal applies to. Default: single-node kills (with or without a torn WAL). */
  availabilityFaults?: FaultKind[];
  /** Fewer operations than this under a fault: too few to judge availability. Default 20. */
  availabilityOpsMin?: number;
  /**
   * After this time no indeterminate write can still take effect (the harness passes the moment the
   * cluster was seen converged). Bounds when an `info` TTL write's clock started. Default: the first
   * final read.
   */
  applyDeadlineMs?: number;
  /** Tolerance for TTL boundaries (clock granularity between processes on one host). Default 25 ms. */
  clockSlackMs?: number;
  replicas?: ReplicaInput;
  /** Cap on violations listed per type (all are counted). Default 50. */
  violationsListedMax?: number;
}

/** Share of workload operations that succeeded, per fault overlapping them (`none`: no fault). */
export interface AvailabilityRow {
  fault: FaultKind | 'none';
  ops: number;
  ok: number;
  share: number;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface CheckResult {
  valid: boolean;
  counts: Record<ViolationType, number>;
  violations: Violation[];
  ops: { total: number; ok: number; fail: number; info: number; finalReads: number };
  keys: { total: number; byClass: Record<KeyClass, number> };
  /** Workload reads that returned an older value than one already acknowledged (allowed, counted). */
  staleReads: number;
  /** Keys with live copies outside their preference list (a violation only when placement is checked). */
  misplacedKeys: number;
  placementChecked: boolean;
  availability: AvailabilityRow[];
  latency: { all: LatencySummary; byOp: Record<string, LatencySummary> };
  convergence: ConvergenceResult | null;
  faults: FaultWindow[];
}

const VIOLATION_TYPES: ViolationType[] = [
  'lost', 'unexpected', 'resurrected', 'expired-present', 'reordered', 'unverified',
  'replica-divergence', 'misplaced', 'unconverged', 'availability', 'crashed',
];

export function compareHistoryVersion(a: HistoryVersion, b: HistoryVersion): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  if (a.node === b.node) return 0;
  return a.node < b.node ? -1 : 1;
}

/** Nearest-rank percentile of an unsorted list; 0 for an empty one. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function summarizeLatency(values: readonly number[]): LatencySummary {
  return {
    count: values.length,
    p50Ms: percentile(values, 50),
    p99Ms: percentile(values, 99),
    maxMs: values.length === 0 ? 0 : Math.max(...values),
  };
}

interface KeyState {
  key: string;
  cls: KeyClass;
  writes: Op[];
  okWrites: Op[];
  byValue: Map<string, Op>;
  finalReads: Op[];
  workloadReads: Op[];
}

class Collector {
  readonly violations: Violation[] = [];
  readonly counts = Object.fromEntries(VIOLATION_TYPES.map((t) => [t, 0])) as Record<ViolationType, number>;
  constructor(private readonly listedMax: number) {}

  add(type: ViolationType, detail: string, key?: string): void {
    this.counts[type] += 1;
    if (this.counts[type] > this.listedMax) return;
    this.violations.push(key === undefined ? { type, detail } : { type, key, detail });
  }
}

function describe(op: Op): string {
  const what = op.op === 'put' ? `put ${JSON.stringify(op.writeValue)}${op.ttlMs === undefined ? '' : ` ttl ${op.ttlMs}ms`}` : op.op;
  const version = op.version === undefined ? '' : ` v${op.version.ts}@${op.version.node}`;
  return `op ${op.id} ${what} by ${op.client} via ${op.node} (${op.outcome}${version}, ${op.invokeMs}..${op.completeMs})`;
}

/** Is write `a` known to be newer than write `b`? Versions when both have them, else real time. */
function newer(a: Op, b: Op): boolean {
  if (a.version !== undefined && b.version !== undefined) return compareHistoryVersion(a.version, b.version) > 0;
  return a.invokeMs > b.completeMs;
}

class KeyChecker {
  constructor(
    private readonly out: Collector,
    private readonly slackMs: number,
    private readonly applyDeadlineMs: number,
  ) {}

  /** Could the TTL of write w have passed by the time read r was served? */
  mayHaveExpired(w: Op, r: Op): boolean {
    return w.ttlMs !== undefined && r.completeMs + this.slackMs >= w.invokeMs + w.ttlMs;
  }

  /** Has the TTL of write w certainly passed before read r began? */
  certainlyExpired(w: Op, r: Op): boolean {
    if (w.ttlMs === undefined) return false;
    const appliedByMs = w.outcome === 'ok' ? w.completeMs : Math.max(w.completeMs, this.applyDeadlineMs);
    return r.invokeMs > appliedByMs + w.ttlMs + this.slackMs;
  }

  newestOk(s: KeyState): Op | undefined {
    let best: Op | undefined;
    for (const w of s.okWrites) if (best === undefined || newer(w, best)) best = w;
    return best;
  }

  /** The write that produced the value read, or a violation. */
  source(s: KeyState, r: Op, value: string): Op | undefined {
    const w = s.byValue.get(value);
    if (w === undefined) {
      this.out.add('unexpected', `read ${JSON.stringify(value)} that no write to this key produced (${describe(r)})`, s.key);
      return undefined;
    }
    if (w.outcome === 'fail') {
      this.out.add('unexpected', `read the value of a failed write ${describe(w)} (${describe(r)})`, s.key);
      return undefined;
    }
    if (w.version !== undefined && r.version !== undefined && compareHistoryVersion(w.version, r.version) !== 0) {
      this.out.add('unexpected', `read ${JSON.stringify(value)} with version ${r.version.ts}@${r.version.node} but the write was acknowledged as ${w.version.ts}@${w.version.node}`, s.key);
      return undefined;
    }
    if (this.certainlyExpired(w, r)) {
      this.out.add('expired-present', `read ${JSON.stringify(value)} after its TTL passed: ${describe(w)}; ${describe(r)}`, s.key);
    }
    return w;
  }

  /** Returns true when the read is stale (only meaningful for workload reads). */
  checkRead(s: KeyState, r: Op, final: boolean): boolean {
    const value = r.readValue ?? null;
    if (value !== null) {
      const w = this.source(s, r, value);
      if (w === undefined) return false;
      // An indeterminate write may take effect at any time after its invoke; without the version
      // read there is no telling when, so it cannot be judged superseded.
      if (r.version === undefined && w.outcome === 'info') return false;
      const readAs: Op = r.version === undefined ? w : { ...w, version: r.version };
      for (const w2 of s.okWrites) {
        if (w2 === w || !newer(w2, readAs)) continue;
        // A final read at consistency 'one' shows one replica: its staleness is replica divergence
        // (checked against the other final reads), not a verdict on the key.
        if (final && r.consistency === 'one') return false;
        // A workload read may overlap or precede w2's effect: only reads after w2 completed are stale.
        if (!final) {
          if (r.invokeMs > w2.completeMs) return true;
          continue;
        }
        if (w2.op === 'del') {
          this.out.add('resurrected', `${describe(w)} visible at the end although ${describe(w2)} deleted it (${describe(r)})`, s.key);
        } else if (w2.ttlMs !== undefined && this.mayHaveExpired(w2, r)) {
          this.out.add('resurrected', `${describe(w)} came back after the newer TTL write ${describe(w2)} expired (${describe(r)})`, s.key);
        } else {
          this.out.add('lost', `${describe(w2)} was overwritten by the older ${describe(w)} (${describe(r)})`, s.key);
        }
        return false;
      }
      return false;
    }
    // Absent.
    const m = this.newestOk(s);
    if (m === undefined || m.op === 'del' || this.mayHaveExpired(m, r)) return false;
    if (!final) return r.invokeMs > m.completeMs;
    if (r.consistency === 'one') return false;
    const explained = s.writes.some(
      (w) => w.outcome === 'info' && (w.op === 'del' || this.mayHaveExpired(w, r)),
    );
    if (!explained) this.out.add('lost', `absent at the end; the newest acknowledged write is ${describe(m)} (${describe(r)})`, s.key);
    return false;
  }

  checkOrder(s: KeyState): void {
    const byClient = new Map<string, Op[]>();
    for (const w of s.okWrites) {
      const list = byClient.get(w.client) ?? [];
      list.push(w);
      byClient.set(w.client, list);
    }
    for (const list of byClient.values()) {
      list.sort((a, b) => a.invokeMs - b.invokeMs);
      for (let i = 1; i < list.length; i++) {
        const a = list[i - 1];
        const b = list[i];
        if (a.completeMs > b.invokeMs || a.version === undefined || b.version === undefined) continue;
        if (compareHistoryVersion(a.version, b.version) >= 0) {
          this.out.add('reordered', `${describe(b)} followed ${describe(a)} from the same client but got an older version; last-writer-wins drops it`, s.key);
        }
      }
    }
  }

  /**
   * Final reads that saw one TTL value on some nodes and nothing on others agree if every read that
   * saw nothing may have been served after that value's TTL passed: the key expired between reads.
   */
  expiredBetween(s: KeyState, ok: readonly Op[]): boolean {
    const present = ok.find((r) => r.readValue !== undefined && r.readValue !== null);
    const w = present?.readValue == null ? undefined : s.byValue.get(present.readValue);
    if (w === undefined || w.ttlMs === undefined) return false;
    return ok.every((r) => (r.readValue ?? null) !== null || this.mayHaveExpired(w, r));
  }

  checkFinal(s: KeyState): void {
    const ok = s.finalReads.filter((r) => r.outcome === 'ok');
    for (const r of s.finalReads) {
      if (r.outcome !== 'ok') this.out.add('unverified', `final read failed: ${describe(r)}${r.error ? ` ${r.error}` : ''}`, s.key);
    }
    if (ok.length === 0) {
      if (s.okWrites.length > 0 && s.finalReads.length === 0) {
        this.out.add('unverified', `acknowledged writes but no final read (${describe(s.okWrites[0])})`, s.key);
      }
      return;
    }
    const seen = new Set(ok.map((r) => `${r.readValue ?? '<absent>'}`));
    if (seen.size === 2 && seen.has('<absent>') && this.expiredBetween(s, ok)) return;
    if (seen.size > 1) {
      this.out.add('replica-divergence', `final reads disagree: ${ok.map((r) => `${r.node}=${JSON.stringify(r.readValue ?? null)}`).join(', ')}`, s.key);
    }
  }
}

function keyStates(ops: readonly Op[]): Map<string, KeyState> {
  const keys = new Map<string, KeyState>();
  for (const op of ops) {
    let s = keys.get(op.key);
    if (s === undefined) {
      s = { key: op.key, cls: op.cls, writes: [], okWrites: [], byValue: new Map(), finalReads: [], workloadReads: [] };
      keys.set(op.key, s);
    }
    if (op.op === 'get') {
      if (op.phase === 'final') s.finalReads.push(op);
      else if (op.outcome === 'ok') s.workloadReads.push(op);
      continue;
    }
    if (op.phase !== 'workload') continue;
    s.writes.push(op);
    if (op.outcome === 'ok') s.okWrites.push(op);
    if (op.writeValue !== undefined) {
      if (s.byValue.has(op.writeValue)) throw new Error(`history: value ${op.writeValue} written twice to ${op.key}`);
      s.byValue.set(op.writeValue, op);
    }
  }
  return keys;
}

function availabilityRows(ops: readonly Op[], faults: readonly FaultWindow[]): AvailabilityRow[] {
  const rows = new Map<FaultKind | 'none', AvailabilityRow>();
  const bump = (fault: FaultKind | 'none', ok: boolean) => {
    const row = rows.get(fault) ?? { fault, ops: 0, ok: 0, share: 0 };
    row.ops += 1;
    if (ok) row.ok += 1;
    rows.set(fault, row);
  };
  for (const op of ops) {
    if (op.phase !== 'workload') continue;
    // Every fault whose window overlaps the operation: one in flight when a node is killed counts there.
    const active = new Set(faults.filter((f) => op.invokeMs < f.endMs && op.completeMs >= f.startMs).map((f) => f.fault));
    if (active.size === 0) bump('none', op.outcome === 'ok');
    for (const f of active) bump(f, op.outcome === 'ok');
  }
  for (const row of rows.values()) row.share = row.ops === 0 ? 1 : row.ok / row.ops;
  return [...rows.values()].sort((a, b) => (a.fault === 'none' ? -1 : b.fault === 'none' ? 1 : a.fault.localeCompare(b.fault)));
}

export interface ReplicaFindings {
  /** Keys whose copies on the preference list differ. */
  divergent: Violation[];
  /** Keys with a live copy on a node outside the preference list. */
  misplaced: Violation[];
}

/** Compares every key's copies: owners must agree; other nodes must hold no live copy. */
export function replicaFindings(input: ReplicaInput): ReplicaFindings {
  const byKey = new Map<string, ReplicaCopy[]>();
  for (const c of input.copies) {
    const list = byKey.get(c.key) ?? [];
    list.push(c);
    byKey.set(c.key, list);
  }
  const shape = (c: ReplicaCopy) => (c.entry === null ? 'none' : `${c.entry.ts}@${c.entry.node}${c.entry.tombstone ? ' tombstone' : ''}`);
  const findings: ReplicaFindings = { divergent: [], misplaced: [] };
  for (const [key, copies] of byKey) {
    const owners = new Set(input.owners[key] ?? []);
    const ownerCopies = copies.filter((c) => owners.has(c.node));
    if (new Set(ownerCopies.map(shape)).size > 1) {
      findings.divergent.push({ type: 'replica-divergence', key, detail: `replicas differ: ${ownerCopies.map((c) => `${c.node}=${shape(c)}`).join(', ')}` });
    }
    const strays = copies.filter((c) => !owners.has(c.node) && c.entry !== null && !c.entry.tombstone);
    if (strays.length > 0) {
      findings.misplaced.push({ type: 'misplaced', key, detail: `${strays.map((c) => c.node).join(',')} still hold a copy but the preference list is ${[...owners].join(',')}` });
    }
  }
  return findings;
}

function checkReplicas(input: ReplicaInput, out: Collector): number {
  const findings = replicaFindings(input);
  for (const v of findings.divergent) out.add(v.type, v.detail, v.key);
  if (input.placementChecked ?? true) for (const v of findings.misplaced) out.add(v.type, v.detail, v.key);
  return findings.misplaced.length;
}

function checkConvergence(c: ConvergenceResult, options: CheckOptions, out: Collector): void {
  const membershipMax = options.membershipConvergeMsMax ?? 10_000;
  const replicasMax = options.replicasConvergeMsMax ?? 60_000;
  if (!c.converged) out.add('unconverged', `the cluster did not converge after the heal${c.detail ? `: ${c.detail}` : ''}`);
  if (c.membershipMs !== null && c.membershipMs > membershipMax) {
    out.add('unconverged', `membership took ${c.membershipMs} ms to agree (goal ≤ ${membershipMax} ms)`);
  }
  if (c.replicasMs !== null && c.replicasMs > replicasMax) {
    out.add('unconverged', `replicas took ${c.replicasMs} ms to agree (goal ≤ ${replicasMax} ms)`);
  }
}

export function checkHistory(events: readonly HistoryEvent[], options: CheckOptions = {}): CheckResult {
  const out = new Collector(options.violationsListedMax ?? 50);
  const ops = pairOps(events);
  const faults = faultWindows(events);
  const firstFinal = ops.find((o) => o.phase === 'final');
  const lastMs = events.reduce((m, e) => Math.max(m, e.atMs), 0);
  const applyDeadlineMs = options.applyDeadlineMs ?? firstFinal?.invokeMs ?? lastMs;
  const keyChecker = new KeyChecker(out, options.clockSlackMs ?? 25, applyDeadlineMs);

  const keys = keyStates(ops);
  let staleReads = 0;
  const byClass: Record<KeyClass, number> = { unique: 0, seq: 0, del: 0, ttl: 0 };
  for (const s of keys.values()) {
    byClass[s.cls] += 1;
    keyChecker.checkOrder(s);
    for (const r of s.workloadReads) if (keyChecker.checkRead(s, r, false)) staleReads += 1;
    for (const r of s.finalReads) if (r.outcome === 'ok') keyChecker.checkRead(s, r, true);
    keyChecker.checkFinal(s);
  }

  const availability = availabilityRows(ops, faults);
  const goalFaults = new Set(options.availabilityFaults ?? ['kill-one', 'wal-truncate']);
  const availabilityMin = options.availabilityMin ?? 0.99;
  for (const row of availability) {
    if (row.fault === 'none' || !goalFaults.has(row.fault) || row.ops < (options.availabilityOpsMin ?? 20)) continue;
    if (row.share < availabilityMin) {
      out.add('availability', `${row.fault}: ${(row.share * 100).toFixed(2)}% of ${row.ops} operations succeeded (goal ≥ ${(availabilityMin * 100).toFixed(0)}%)`);
    }
  }
  for (const e of events) {
    if (e.kind === 'mark' && e.name === 'crash') out.add('crashed', `node exited unexpectedly: ${JSON.stringify(e.detail ?? {})}`);
  }
  const misplacedKeys = options.replicas === undefined ? 0 : checkReplicas(options.replicas, out);
  if (options.convergence !== undefined) checkConvergence(options.convergence, options, out);

  const workload = ops.filter((o) => o.phase === 'workload');
  const okLatency = workload.filter((o) => o.outcome === 'ok');
  const byOp: Record<string, LatencySummary> = {};
  for (const name of ['put', 'get', 'del']) {
    byOp[name] = summarizeLatency(okLatency.filter((o) => o.op === name).map((o) => o.completeMs - o.invokeMs));
  }
  return {
    valid: Object.values(out.counts).every((n) => n === 0),
    counts: out.counts,
    violations: out.violations,
    ops: {
      total: workload.length,
      ok: workload.filter((o) => o.outcome === 'ok').length,
      fail: workload.filter((o) => o.outcome === 'fail').length,
      info: workload.filter((o) => o.outcome === 'info').length,
      finalReads: ops.length - workload.length,
    },
    keys: { total: keys.size, byClass },
    staleReads,
    misplacedKeys,
    placementChecked: options.replicas?.placementChecked ?? options.replicas !== undefined,
    availability,
    latency: { all: summarizeLatency(okLatency.map((o) => o.completeMs - o.invokeMs)), byOp },
    convergence: options.convergence ?? null,
    faults,
  };
}
