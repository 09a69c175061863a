/** Seeded randomness for the fuzzers: every case gets its own generator, so a failing case replays from its seed. */
import { mulberry32 } from '../../../src/membership/sim/random.js';

export class Rng {
  private readonly next: () => number;

  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }

  /** The generator of case `index` of a run seeded with `runSeed`. */
  static forCase(runSeed: number, index: number): Rng {
    return new Rng(caseSeed(runSeed, index));
  }

  float(): number {
    return this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A short string, mostly ASCII, sometimes multi-byte. */
  text(lengthMax: number): string {
    const n = this.int(lengthMax + 1);
    let s = '';
    for (let i = 0; i < n; i++) s += this.chance(0.9) ? String.fromCharCode(0x61 + this.int(26)) : this.pick(['é', '€', '😀', '\u0000', '/', ':']);
    return s;
  }
}

/** Mixes run seed and case index (splitmix-style) into one 32-bit seed. */
export function caseSeed(runSeed: number, index: number): number {
  let z = (runSeed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
