/**
 * The mutations applied to the map whose WAL records are not acknowledged yet, oldest first: what
 * each replaced, so that a WAL failure can undo them newest first. Every WAL append is tracked here
 * once, so the sequence numbers are contiguous and a mutation's position gives its sequence number.
 *
 * Held as parallel arrays rather than one object per write: this sits on every put's path, and the
 * arrays are emptied (not reallocated) whenever everything is acknowledged, which under group commit
 * is once per batch.
 */
import assert from 'node:assert/strict';
import type { Entry } from './types.js';

/** Drop the acknowledged prefix when at least this many acknowledged mutations lead the arrays. */
const COMPACT_MIN = 1024;

export class PendingLog {
  /** Sequence number of the mutation at index 0. */
  private seq0 = 0;
  /** Index of the oldest mutation not yet acknowledged. */
  private head = 0;
  private readonly keys: string[] = [];
  /** What the mutation replaced (undefined: the key was absent). */
  private readonly prevs: Array<Entry | undefined> = [];
  /** The replaced tombstone's local delete time (undefined unless `prev` is a tombstone). */
  private readonly prevDeletedAtMs: Array<number | undefined> = [];
  /** The entry the mutation installed (undefined for a dropped copy). */
  private readonly nexts: Array<Entry | undefined> = [];

  get size(): number {
    return this.keys.length - this.head;
  }

  /** Records the mutation whose WAL record got sequence number `seq` (the next after the last tracked). */
  track(seq: number, key: string, prev: Entry | undefined, prevDeletedAtMs: number | undefined, next: Entry | undefined): void {
    const n = this.keys.length;
    if (n === 0) {
      this.seq0 = seq;
      this.head = 0;
    }
    // One tracked mutation per WAL record, in order: the positions are the sequence numbers.
    assert.equal(seq, this.seq0 + n, `pending mutation seq ${seq} is not the next after ${this.seq0 + n - 1}`);
    this.keys.push(key);
    this.prevs.push(prev);
    this.prevDeletedAtMs.push(prevDeletedAtMs);
    this.nexts.push(next);
  }

  /** Every mutation up to `seq` is acknowledged: nothing to undo for them any more. */
  acked(seq: number): void {
    const n = this.keys.length;
    const head = Math.min(n, Math.max(this.head, seq - this.seq0 + 1));
    if (head === n) {
      this.clear();
    } else if (head >= COMPACT_MIN && head * 2 >= n) {
      for (const a of [this.keys, this.prevs, this.prevDeletedAtMs, this.nexts] as unknown[][]) a.splice(0, head);
      this.seq0 += head;
      this.head = 0;
    } else {
      this.head = head;
    }
  }

  /**
   * Calls `undo` for every mutation with a sequence number above `ackedSeq`, newest first, then
   * forgets everything.
   */
  undoAfter(ackedSeq: number, undo: (key: string, prev: Entry | undefined, prevDeletedAtMs: number | undefined, next: Entry | undefined) => void): void {
    for (let i = this.keys.length - 1; i >= this.head && this.seq0 + i > ackedSeq; i--) {
      undo(this.keys[i], this.prevs[i], this.prevDeletedAtMs[i], this.nexts[i]);
    }
    this.clear();
  }

  private clear(): void {
    this.keys.length = 0;
    this.prevs.length = 0;
    this.prevDeletedAtMs.length = 0;
    this.nexts.length = 0;
    this.head = 0;
  }
}
