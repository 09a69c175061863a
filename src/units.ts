/** Parsing of human durations and sizes used by config and the CLI ("30s", "5m", "64MiB"). */
import { ShoalError } from './errors.js';

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const SIZE_BYTES: Record<string, number> = {
  b: 1, kb: 1000, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, k: 1024, m: 1024 ** 2, g: 1024 ** 3,
};

/** One "<number><unit>" part of a duration; a compound duration is several ("2h30m", "1m 30s"). */
const DURATION_PART = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?/giy;

/**
 * A human duration in ms: "30s", "1.5m", "2h30m", "1w 2d", "500ms". A bare number ("1500") is in
 * `bareUnit`: milliseconds for the configuration's `...Ms` fields (their name says so), seconds on
 * the command line (--ttl 10 is ten seconds, as Redis EX and etcd leases count). Units: ms, s, m, h,
 * d, w; in a compound duration only the last part may leave its unit out.
 */
export function parseDurationMs(text: string | number, bareUnit: 'ms' | 's' = 'ms'): number {
  if (typeof text === 'number') return bareUnit === 's' ? text * 1000 : text;
  const source = text.trim();
  const bad = () => new ShoalError('BAD_REQUEST', `invalid duration "${text}" (use e.g. 500ms, 30s, 5m, 2h30m, 1w)`);
  if (source === '') throw bad();
  let totalMs = 0;
  let at = 0;
  let parts = 0;
  let unitless = false;
  DURATION_PART.lastIndex = 0;
  while (at < source.length) {
    if (unitless) throw bad(); // "10 5s": a bare number must be the whole duration
    while (source[at] === ' ') at += 1;
    DURATION_PART.lastIndex = at;
    const match = DURATION_PART.exec(source);
    if (!match || match[0] === '') throw bad();
    const unit = (match[2] ?? bareUnit).toLowerCase();
    if (match[2] === undefined) {
      unitless = true;
      if (parts > 0) throw bad(); // "1h30" is ambiguous
    }
    totalMs += Number(match[1]) * DURATION_MS[unit];
    at = DURATION_PART.lastIndex;
    while (source[at] === ' ') at += 1;
    parts += 1;
  }
  return Math.round(totalMs);
}

/** "4096" → 4096, "64KiB" → 65536, "1MB" → 1e6. */
export function parseBytes(text: string | number): number {
  if (typeof text === 'number') return text;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)?\s*$/i.exec(text);
  const unit = (match?.[2] ?? 'b').toLowerCase();
  if (!match || SIZE_BYTES[unit] === undefined) {
    throw new ShoalError('BAD_REQUEST', `invalid size "${text}" (use e.g. 4096, 64KiB, 1MiB)`);
  }
  return Math.round(Number(match[1]) * SIZE_BYTES[unit]);
}
