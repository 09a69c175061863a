/**
 * Active expiry: a binary min-heap of (due time, key, entry) used for both TTL expiry and tombstone
 * collection. Overwriting a key does not touch the heap; the old item is recognised as stale when it
 * comes due (the map no longer holds that exact entry object) and dropped. No I/O, no clock: the
 * store passes `nowMs` in.
 */
import type { Entry } from './types.js';

export class ExpiryQueue {
  private due: number[] = [];
  private keys: string[] = [];
  private refs: Entry[] = [];

  get size(): number {
    return this.due.length;
  }

  push(dueMs: number, key: string, ref: Entry): void {
    const due = this.due;
    let i = due.length;
    due.push(dueMs);
    this.keys.push(key);
    this.refs.push(ref);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (due[parent] <= dueMs) break;
      this.move(parent, i);
      i = parent;
    }
    this.set(i, dueMs, key, ref);
  }

  /** The earliest due time, or Infinity when empty. */
  peekDueMs(): number {
    return this.due.length > 0 ? this.due[0] : Infinity;
  }

  /**
   * Pops at most `limit` items due at or before `nowMs`, calling `visit` for each (stale items
   * included: the visitor decides). Returns how many were popped; bounded work per call.
   */
  popDue(nowMs: number, limit: number, visit: (key: string, ref: Entry) => void): number {
    let popped = 0;
    while (popped < limit && this.due.length > 0 && this.due[0] <= nowMs) {
      const key = this.keys[0];
      const ref = this.refs[0];
      this.removeTop();
      popped += 1;
      visit(key, ref);
    }
    return popped;
  }

  clear(): void {
    this.due = [];
    this.keys = [];
    this.refs = [];
  }

  private set(i: number, dueMs: number, key: string, ref: Entry): void {
    this.due[i] = dueMs;
    this.keys[i] = key;
    this.refs[i] = ref;
  }

  private move(from: number, to: number): void {
    this.set(to, this.due[from], this.keys[from], this.refs[from]);
  }

  private removeTop(): void {
    const lastDue = this.due.pop() as number;
    const lastKey = this.keys.pop() as string;
    const lastRef = this.refs.pop() as Entry;
    const n = this.due.length;
    if (n === 0) return;
    let i = 0;
    while (true) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.due[right] < this.due[left] ? right : left;
      if (this.due[child] >= lastDue) break;
      this.move(child, i);
      i = child;
    }
    this.set(i, lastDue, lastKey, lastRef);
  }
}
