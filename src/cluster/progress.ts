/**
 * Progress lines for long work (range streaming on join, the hand-off on leave): every
 * PROGRESS_LOG_MS a line with the keys and MiB moved so far, the rate and the share done, and one line
 * when it is done. Time comes from the injected clock; nothing is logged for work shorter than one
 * interval except the done line.
 */
import assert from 'node:assert/strict';
import type { Logger } from '../log.js';

/** How often a line is logged while the work goes on. */
export const PROGRESS_LOG_MS = 5_000;

const MIB = 1024 * 1024;

export interface ProgressFigures {
  keys: number;
  bytes: number;
  /** Keys expected in all (0 = unknown). */
  keysTotal: number;
  elapsedMs: number;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** "24.7% of 50000 keys: 12345 keys, 12.3 MiB, 4.1 MiB/s". */
export function progressText(f: ProgressFigures): string {
  const mib = f.bytes / MIB;
  const rate = f.elapsedMs > 0 ? mib / (f.elapsedMs / 1000) : 0;
  const share = f.keysTotal > 0 ? `${round1(Math.min(100, (100 * f.keys) / f.keysTotal))}% of ${f.keysTotal} keys: ` : '';
  return `${share}${f.keys} keys, ${round1(mib)} MiB, ${round1(rate)} MiB/s`;
}

export class Progress {
  private keys = 0;
  private bytes = 0;
  private keysTotal = 0;
  private readonly startedAtMs: number;
  private lastLogAtMs: number;

  constructor(
    private readonly what: string,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly fields: Record<string, unknown> = {},
  ) {
    this.startedAtMs = now();
    this.lastLogAtMs = this.startedAtMs;
  }

  expect(keys: number): void {
    assert.ok(keys >= 0, 'an expected key count is never negative');
    this.keysTotal += keys;
  }

  /** Counts work done and logs a progress line when one is due. */
  add(keys: number, bytes: number): void {
    assert.ok(keys >= 0 && bytes >= 0, 'progress only moves forward');
    this.keys += keys;
    this.bytes += bytes;
    const now = this.now();
    if (now - this.lastLogAtMs >= PROGRESS_LOG_MS) {
      this.lastLogAtMs = now;
      this.logger.info(`${this.what}: ${progressText(this.figures())}`, { ...this.fields, ...this.logFields() });
    }
  }

  figures(): ProgressFigures {
    return { keys: this.keys, bytes: this.bytes, keysTotal: this.keysTotal, elapsedMs: this.now() - this.startedAtMs };
  }

  /** The share done, 0..1 (1 when the total is unknown or reached). */
  ratio(): number {
    return this.keysTotal > 0 ? Math.min(1, this.keys / this.keysTotal) : 1;
  }

  done(outcome = 'done'): void {
    const f = this.figures();
    this.logger.info(`${this.what} ${outcome} in ${round1(f.elapsedMs / 1000)} s: ${progressText({ ...f, keysTotal: 0 })}`, { ...this.fields, ...this.logFields() });
  }

  private logFields(): Record<string, unknown> {
    const f = this.figures();
    return { keys: f.keys, keysTotal: f.keysTotal, mib: round1(f.bytes / MIB), seconds: round1(f.elapsedMs / 1000) };
  }
}
