/**
 * The chaos history: every operation the workload sends is logged as an `invoke` event and then
 * exactly one completion — `ok`, `fail` (known not to have happened) or `info` (outcome unknown,
 * e.g. a timeout) — plus the nemesis' fault windows and harness milestones. One JSON object per line,
 * so a run can be replayed through the checker (`checkHistory`) without the cluster.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

export type OpName = 'put' | 'get' | 'del';
export type Outcome = 'ok' | 'fail' | 'info';
/**
 * What the workload promised about a key: `unique` keys are written once, `seq` keys are written in
 * sequence by one client, `del` keys are written then deleted by one client, `ttl` keys are written
 * once with a TTL. The checker applies the same rules to all classes; the class is kept for reports.
 */
export type KeyClass = 'unique' | 'seq' | 'del' | 'ttl';
export type Phase = 'workload' | 'final';

/** A version as returned by the cluster (HLC ts + stamping node). */
export interface HistoryVersion {
  ts: number;
  node: string;
}

/** What identifies an operation, on its events and on the joined `Op`. */
export interface OpIdentity {
  /** Operation id: the invoke and its completion share it. */
  id: number;
  client: string;
  /** The node the request was addressed to. */
  node: string;
  op: OpName;
  key: string;
  cls: KeyClass;
  phase: Phase;
  /** The consistency level requested, when not the default (quorum). */
  consistency?: 'one' | 'quorum' | 'all';
}

export interface OpEvent extends OpIdentity {
  kind: 'op';
  type: 'invoke' | Outcome;
  /** Wall clock, epoch ms (the cluster's TTLs use the same clock). */
  atMs: number;
  /** put: the value written (on invoke). get ok: the value read, null when absent. */
  value?: string | null;
  /** put: TTL requested (on invoke). */
  ttlMs?: number;
  /** put/del ok: the version assigned. get ok with a value: the version read. */
  version?: HistoryVersion;
  /** get ok: the expiry carried with the value, if any. */
  expiresAtMs?: number;
  /** fail/info: the error code (or a short reason). */
  error?: string;
  /** fail/info: the error message, for the reader of the history. */
  message?: string;
}

export type FaultKind =
  | 'kill-one'
  | 'kill-all'
  | 'pause-one'
  | 'partition-one'
  | 'partition-split'
  | 'partition-oneway'
  | 'join'
  | 'leave'
  | 'wal-truncate'
  | 'seed-restart'
  | 'leave-rejoin'
  | 'partition-long'
  | 'disk-full';

export interface FaultEvent {
  kind: 'fault';
  type: 'start' | 'end';
  atMs: number;
  fault: FaultKind;
  targets: string[];
  detail?: string;
}

/** Harness milestones: workload start/end, heal, convergence steps. */
export interface MarkEvent {
  kind: 'mark';
  atMs: number;
  name: string;
  detail?: Record<string, unknown>;
}

export type HistoryEvent = OpEvent | FaultEvent | MarkEvent;

/** One operation with its completion joined to its invoke. */
export interface Op extends OpIdentity {
  invokeMs: number;
  /** Completion time; for an op that never completed, the time the history ended. */
  completeMs: number;
  outcome: Outcome;
  /** put: value written. */
  writeValue?: string;
  ttlMs?: number;
  /** get ok: value read (null = absent). */
  readValue?: string | null;
  version?: HistoryVersion;
  expiresAtMs?: number;
  error?: string;
}

export interface FaultWindow {
  fault: FaultKind;
  targets: string[];
  startMs: number;
  endMs: number;
}

/** Buffered JSON-lines writer that also keeps the events in memory for the checker. */
export class HistoryWriter {
  readonly events: HistoryEvent[] = [];
  private readonly fd: number | null;
  private pending: string[] = [];
  private nextId = 1;
  /** Flush to the file after this many buffered lines. */
  private readonly flushLines: number;

  constructor(options: { file?: string; flushLines?: number } = {}) {
    this.fd = options.file === undefined ? null : openSync(options.file, 'a');
    this.flushLines = options.flushLines ?? 200;
  }

  /** A fresh operation id. */
  opId(): number {
    return this.nextId++;
  }

  append(event: HistoryEvent): void {
    this.events.push(event);
    if (this.fd === null) return;
    this.pending.push(JSON.stringify(event));
    if (this.pending.length >= this.flushLines) this.flush();
  }

  flush(): void {
    if (this.fd === null || this.pending.length === 0) return;
    writeSync(this.fd, this.pending.join('\n') + '\n');
    this.pending = [];
  }

  close(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
  }
}

export function parseHistory(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    events.push(JSON.parse(line) as HistoryEvent);
  }
  return events;
}

export function readHistory(file: string): HistoryEvent[] {
  return parseHistory(readFileSync(file, 'utf8'));
}

/**
 * Joins invokes with their completions. An invoke without a completion (the harness was interrupted)
 * becomes `info`, as Jepsen does: it may or may not have happened. A completion without an invoke or
 * a second completion is a harness bug and throws.
 */
export function pairOps(events: readonly HistoryEvent[]): Op[] {
  const open = new Map<number, Op>();
  const done: Op[] = [];
  let lastMs = 0;
  for (const e of events) {
    lastMs = Math.max(lastMs, e.atMs);
    if (e.kind !== 'op') continue;
    if (e.type === 'invoke') {
      if (open.has(e.id)) throw new Error(`history: op ${e.id} invoked twice`);
      const op: Op = {
        id: e.id, client: e.client, node: e.node, op: e.op, key: e.key, cls: e.cls, phase: e.phase,
        invokeMs: e.atMs, completeMs: e.atMs, outcome: 'info',
      };
      if (e.consistency !== undefined) op.consistency = e.consistency;
      if (e.op === 'put' && typeof e.value === 'string') op.writeValue = e.value;
      if (e.ttlMs !== undefined) op.ttlMs = e.ttlMs;
      open.set(e.id, op);
      continue;
    }
    const op = open.get(e.id);
    if (op === undefined) throw new Error(`history: completion of op ${e.id} without an open invoke`);
    open.delete(e.id);
    op.completeMs = e.atMs;
    op.outcome = e.type;
    if (e.error !== undefined) op.error = e.error;
    if (e.type === 'ok') {
      if (e.version !== undefined) op.version = e.version;
      if (op.op === 'get') op.readValue = e.value ?? null;
      if (e.expiresAtMs !== undefined) op.expiresAtMs = e.expiresAtMs;
    }
    done.push(op);
  }
  for (const op of open.values()) {
    op.completeMs = lastMs;
    op.error = 'no completion recorded';
    done.push(op);
  }
  return done.sort((a, b) => a.invokeMs - b.invokeMs || a.id - b.id);
}

/** Fault windows from start/end events; a fault still open at the end of the history ends there. */
export function faultWindows(events: readonly HistoryEvent[]): FaultWindow[] {
  const open = new Map<string, FaultWindow>();
  const windows: FaultWindow[] = [];
  let lastMs = 0;
  for (const e of events) {
    lastMs = Math.max(lastMs, e.atMs);
    if (e.kind !== 'fault') continue;
    const id = `${e.fault}:${e.targets.join(',')}`;
    if (e.type === 'start') {
      open.set(id, { fault: e.fault, targets: e.targets, startMs: e.atMs, endMs: e.atMs });
    } else {
      const w = open.get(id);
      if (w === undefined) continue;
      open.delete(id);
      w.endMs = e.atMs;
      windows.push(w);
    }
  }
  for (const w of open.values()) {
    w.endMs = lastMs;
    windows.push(w);
  }
  return windows.sort((a, b) => a.startMs - b.startMs);
}
