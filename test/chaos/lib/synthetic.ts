/**
 * A small builder of synthetic histories for the checker's tests: each call appends an invoke and
 * its completion at explicit times, so a test reads like the timeline it describes.
 */
import type { FaultKind, HistoryEvent, HistoryVersion, KeyClass, Outcome } from './history.js';

export interface SyntheticWrite {
  client?: string;
  node?: string;
  key: string;
  cls?: KeyClass;
  /** Omit for a delete. */
  value?: string;
  ttlMs?: number;
  at: number;
  /** Duration; default 5 ms. */
  took?: number;
  outcome?: Outcome;
  version?: HistoryVersion;
}

export interface SyntheticRead {
  client?: string;
  node?: string;
  key: string;
  cls?: KeyClass;
  at: number;
  took?: number;
  outcome?: Outcome;
  value: string | null;
  version?: HistoryVersion;
  final?: boolean;
  consistency?: 'one' | 'quorum' | 'all';
}

export class HistoryBuilder {
  readonly events: HistoryEvent[] = [];
  private id = 1;

  write(w: SyntheticWrite): this {
    const id = this.id++;
    const base = {
      kind: 'op' as const, id, client: w.client ?? 'c1', node: w.node ?? 'n1', key: w.key,
      cls: w.cls ?? 'seq', phase: 'workload' as const, op: w.value === undefined ? ('del' as const) : ('put' as const),
    };
    this.events.push({
      ...base, type: 'invoke', atMs: w.at,
      ...(w.value === undefined ? {} : { value: w.value }),
      ...(w.ttlMs === undefined ? {} : { ttlMs: w.ttlMs }),
    });
    const outcome = w.outcome ?? 'ok';
    this.events.push({
      ...base, type: outcome, atMs: w.at + (w.took ?? 5),
      ...(outcome === 'ok' && w.version !== undefined ? { version: w.version } : {}),
      ...(outcome === 'ok' ? {} : { error: outcome === 'fail' ? 'BAD_REQUEST' : 'TIMEOUT' }),
    });
    return this;
  }

  read(r: SyntheticRead): this {
    const id = this.id++;
    const base = {
      kind: 'op' as const, id, client: r.client ?? 'checker', node: r.node ?? 'n1', key: r.key,
      cls: r.cls ?? 'seq', phase: r.final === false ? ('workload' as const) : ('final' as const), op: 'get' as const,
      ...(r.consistency === undefined ? {} : { consistency: r.consistency }),
    };
    this.events.push({ ...base, type: 'invoke', atMs: r.at });
    const outcome = r.outcome ?? 'ok';
    this.events.push({
      ...base, type: outcome, atMs: r.at + (r.took ?? 5),
      ...(outcome === 'ok' ? { value: r.value } : { error: 'UNAVAILABLE' }),
      ...(outcome === 'ok' && r.version !== undefined ? { version: r.version } : {}),
    });
    return this;
  }

  fault(fault: FaultKind, startMs: number, endMs: number, targets: string[] = ['n1']): this {
    this.events.push({ kind: 'fault', type: 'start', atMs: startMs, fault, targets });
    this.events.push({ kind: 'fault', type: 'end', atMs: endMs, fault, targets });
    this.events.sort((a, b) => a.atMs - b.atMs);
    return this;
  }

  /** Events sorted by time, as a real history is written. */
  build(): HistoryEvent[] {
    return [...this.events].sort((a, b) => a.atMs - b.atMs);
  }
}

export const v = (ts: number, node = 'n1'): HistoryVersion => ({ ts, node });
