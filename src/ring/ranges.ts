/**
 * Token ranges. A range `{ start, end }` is the half-open interval (start, end] on the ring of 2^64
 * tokens, walking clockwise (upwards, wrapping from 2^64-1 to 0):
 *  - start < end: the tokens start+1 … end;
 *  - start > end: it wraps: start+1 … 2^64-1 and 0 … end;
 *  - start === end: the whole ring (a ring with one token owns everything).
 * Ranges travel on the wire as decimal strings (msgpack in Shoal decodes 64-bit integers as numbers,
 * which would lose precision); use rangeToWire / rangeFromWire.
 */
import { ShoalError } from '../errors.js';
import { TOKEN_MAX } from './hash.js';

export interface TokenRange {
  start: bigint;
  end: bigint;
}

export interface WireRange {
  start: string;
  end: string;
}

export function rangeContains(range: TokenRange, token: bigint): boolean {
  const { start, end } = range;
  if (start === end) return true;
  if (start < end) return token > start && token <= end;
  return token > start || token <= end;
}

/** Fraction of the ring a range covers, in [0, 1]. */
export function rangeFraction(range: TokenRange): number {
  if (range.start === range.end) return 1;
  const span = range.start < range.end ? range.end - range.start : TOKEN_MAX - range.start + range.end + 1n;
  return Number(span) / 2 ** 64;
}

export function rangeToWire(range: TokenRange): WireRange {
  return { start: range.start.toString(), end: range.end.toString() };
}

function parseToken(text: unknown, what: string): bigint {
  if (typeof text !== 'string' || !/^\d{1,20}$/.test(text)) {
    throw new ShoalError('BAD_REQUEST', `token range ${what} must be a decimal string, got ${String(text)}`);
  }
  const value = BigInt(text);
  if (value > TOKEN_MAX) throw new ShoalError('BAD_REQUEST', `token range ${what} ${text} is over 2^64-1`);
  return value;
}

export function rangeFromWire(wire: unknown): TokenRange {
  if (typeof wire !== 'object' || wire === null) throw new ShoalError('BAD_REQUEST', 'token range must be an object');
  const { start, end } = wire as Record<string, unknown>;
  return { start: parseToken(start, 'start'), end: parseToken(end, 'end') };
}

/**
 * A set of ranges normalised to sorted, disjoint, inclusive intervals [lo, hi], for fast membership
 * tests of many tokens (binary search) and for intersections.
 */
export class RangeSet {
  /** Sorted, disjoint, non-adjacent inclusive intervals. */
  readonly intervals: ReadonlyArray<readonly [bigint, bigint]>;

  constructor(ranges: Iterable<TokenRange>) {
    const raw: Array<[bigint, bigint]> = [];
    for (const r of ranges) {
      if (r.start === r.end) raw.push([0n, TOKEN_MAX]);
      else if (r.start < r.end) raw.push([r.start + 1n, r.end]);
      else {
        if (r.start < TOKEN_MAX) raw.push([r.start + 1n, TOKEN_MAX]);
        raw.push([0n, r.end]);
      }
    }
    raw.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const merged: Array<[bigint, bigint]> = [];
    for (const iv of raw) {
      const last = merged[merged.length - 1];
      if (last !== undefined && iv[0] <= last[1] + 1n) {
        if (iv[1] > last[1]) last[1] = iv[1];
      } else merged.push([iv[0], iv[1]]);
    }
    this.intervals = merged;
  }

  has(token: bigint): boolean {
    const ivs = this.intervals;
    let lo = 0;
    let hi = ivs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const [a, b] = ivs[mid];
      if (token < a) hi = mid - 1;
      else if (token > b) lo = mid + 1;
      else return true;
    }
    return false;
  }

  isEmpty(): boolean {
    return this.intervals.length === 0;
  }

  /** Fraction of the ring covered. */
  fraction(): number {
    let sum = 0n;
    for (const [a, b] of this.intervals) sum += b - a + 1n;
    return Number(sum) / 2 ** 64;
  }

  intersect(other: RangeSet): RangeSet {
    const out: TokenRange[] = [];
    const a = this.intervals;
    const b = other.intervals;
    let i = 0;
    let j = 0;
    while (i < a.length && j < b.length) {
      const lo = a[i][0] > b[j][0] ? a[i][0] : b[j][0];
      const hi = a[i][1] < b[j][1] ? a[i][1] : b[j][1];
      if (lo <= hi) out.push(intervalToRange(lo, hi));
      if (a[i][1] < b[j][1]) i++;
      else j++;
    }
    return new RangeSet(out);
  }

  /** Back to (start, end] ranges; a set covering everything becomes one whole-ring range. */
  toRanges(): TokenRange[] {
    if (this.intervals.length === 1 && this.intervals[0][0] === 0n && this.intervals[0][1] === TOKEN_MAX) {
      return [{ start: TOKEN_MAX, end: TOKEN_MAX }];
    }
    return this.intervals.map(([lo, hi]) => intervalToRange(lo, hi));
  }
}

/** Inclusive [lo, hi] → (lo-1, hi], wrapping lo = 0 to start = 2^64-1. */
function intervalToRange(lo: bigint, hi: bigint): TokenRange {
  return { start: lo === 0n ? TOKEN_MAX : lo - 1n, end: hi };
}
