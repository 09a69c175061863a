/** Parsing of human durations and sizes used by config and the CLI ("30s", "5m", "64MiB"). */
import { ShoalError } from './errors.js';

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_BYTES: Record<string, number> = {
  b: 1, kb: 1000, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, k: 1024, m: 1024 ** 2, g: 1024 ** 3,
};

/** "1500" → 1500 ms, "30s" → 30000, "1.5m" → 90000. */
export function parseDurationMs(text: string | number): number {
  if (typeof text === 'number') return text;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(text);
  if (!match) throw new ShoalError('BAD_REQUEST', `invalid duration "${text}" (use e.g. 500ms, 30s, 5m, 1h)`);
  return Math.round(Number(match[1]) * DURATION_MS[(match[2] ?? 'ms').toLowerCase()]);
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
