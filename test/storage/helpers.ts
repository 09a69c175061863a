/** Shared helpers for the storage tests: temp dirs, an injectable clock, small value builders. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { openStore, type OpenStoreOptions } from '../../src/storage/store.js';
import type { Store, Version } from '../../src/storage/types.js';

export function tempDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-store-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A manual clock for TTL and tombstone tests. */
export class FakeClock {
  constructor(public ms = 1_700_000_000_000) {}
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

export function v(ts: number, node = 'n1'): Version {
  return { ts, node };
}

export function buf(text: string): Buffer {
  return Buffer.from(text);
}

/** Opens a store with test-friendly defaults (no fsync unless asked) and closes it at teardown. */
export async function open(t: ExecutionContext, dir: string, options: OpenStoreOptions = {}): Promise<Store> {
  const store = await openStore(dir, { fsync: 'none', ...options });
  t.teardown(() => store.close());
  return store;
}

export function walFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => /^wal-\d+\.log$/.test(n)).sort();
}

export function snapFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => /^snap-\d+\.snap$/.test(n)).sort();
}
