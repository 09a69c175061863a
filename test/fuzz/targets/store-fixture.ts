/**
 * A small data directory written by the real store, and the model of what it holds after each WAL
 * record, so a fuzzer can tell "data before the damage intact" from "data lost or changed".
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { nullLogger } from '../../../src/log.js';
import { checkFrame } from '../../../src/storage/record.js';
import { openStore } from '../../../src/storage/store.js';
import type { Entry, Store, StoreOptions } from '../../../src/storage/types.js';
import type { Rng } from '../lib/rng.js';

/** Store options for fuzzing: no fsync (tmp files), no background snapshots or expiry during a case. */
export const FUZZ_STORE_OPTIONS: StoreOptions = {
  fsync: 'none',
  snapshotWalBytes: 0,
  snapshotIntervalMs: 0,
  expiryIntervalMs: 3_600_000,
  logger: nullLogger,
};

export function entrySignature(entries: Iterable<[string, Entry]>): string {
  const lines: string[] = [];
  for (const [key, e] of entries) {
    lines.push(`${JSON.stringify(key)} ${e.ts} ${e.node} ${e.value === null ? '-' : e.value.toString('hex')} ${e.expiresAtMs ?? ''}`);
  }
  return lines.sort().join('\n');
}

export async function storeSignature(store: Store): Promise<string> {
  return entrySignature(store.entries());
}

export interface StoreFixture {
  dir: string;
  /** Name and bytes of each file the store left (WAL segments, snapshots). */
  files: Map<string, Buffer>;
  /** signatures[k] = the store's contents after the first k WAL records of the first segment. */
  signatures: string[];
  /** End offset of each record in the first WAL segment. */
  recordEnds: number[];
  walName: string;
  finalSignature: string;
}

/** Writes `records` operations (puts, deletes, TTLs far in the future) through a real store. */
export async function buildStoreFixture(rng: Rng, records: number, options: { snapshot: boolean }): Promise<StoreFixture> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-fuzz-fixture-'));
  const store = await openStore(dir, FUZZ_STORE_OPTIONS);
  const model = new Map<string, Entry>();
  const signatures = [entrySignature(model)];
  const farMs = Date.now() + 365 * 86_400_000;
  for (let i = 0; i < records; i++) {
    const key = `k${rng.int(12)}${rng.chance(0.1) ? '€' : ''}`;
    const version = { ts: 1000 + i, node: rng.pick(['n1', 'n2']) };
    if (rng.chance(0.2)) {
      await store.delete(key, { version });
      model.set(key, { ...version, value: null });
    } else {
      const value = rng.bytes(rng.int(64));
      const expiresAtMs = rng.chance(0.2) ? farMs + i : undefined;
      await store.put(key, value, expiresAtMs === undefined ? { version } : { version, expiresAtMs });
      model.set(key, expiresAtMs === undefined ? { ...version, value } : { ...version, value, expiresAtMs });
    }
    signatures.push(entrySignature(model));
  }
  if (options.snapshot) await store.snapshot();
  await store.close();
  const files = new Map<string, Buffer>();
  for (const name of await fs.readdir(dir)) if (name !== 'LOCK') files.set(name, await fs.readFile(path.join(dir, name)));
  const walName = [...files.keys()].filter((n) => n.startsWith('wal-')).sort()[0] ?? '';
  const recordEnds: number[] = [];
  const wal = files.get(walName) ?? Buffer.alloc(0);
  for (let off = 0; off < wal.length; ) {
    const total = checkFrame(wal, off, wal.length, 0x7fffffff);
    if (typeof total !== 'number') throw new Error(`fixture WAL unreadable at ${off}: ${total}`);
    off += total;
    recordEnds.push(off);
  }
  return { dir, files, signatures, recordEnds, walName, finalSignature: signatures[signatures.length - 1] };
}

/** Empties `dir` and writes `files` into it. */
export async function writeDir(dir: string, files: Map<string, Buffer>): Promise<void> {
  for (const name of await fs.readdir(dir)) await fs.rm(path.join(dir, name), { recursive: true, force: true });
  for (const [name, bytes] of files) await fs.writeFile(path.join(dir, name), bytes);
}
