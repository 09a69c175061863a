/** Shared helpers for the storage tests: temp dirs, an injectable clock, small value builders. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { nodeFileIo, type FileIo } from '../../src/storage/fsio.js';
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

/**
 * File operations that fail on demand: once `armed`, every `write` fails with ENOSPC, or every
 * `fdatasync` with EIO, or ('short-write') the next write stores only half its bytes before the
 * following one fails with ENOSPC, like a disk filling up in the middle of a batch. `calls` counts
 * the failed calls.
 */
export function faultyIo(failOn: 'write' | 'fdatasync' | 'short-write'): FileIo & { armed: boolean; calls: number } {
  let halfWritten = false;
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const io = {
    armed: false,
    calls: 0,
    open: nodeFileIo.open,
    close: nodeFileIo.close,
    ftruncate: nodeFileIo.ftruncate,
    write: (fd: number, b: Buffer, o: number, l: number, p: number) => {
      if (io.armed && failOn === 'short-write' && !halfWritten && l > 1) {
        halfWritten = true;
        return nodeFileIo.write(fd, b, o, Math.floor(l / 2), p);
      }
      if (io.armed && failOn !== 'fdatasync') {
        io.calls += 1;
        return Promise.reject(enospc());
      }
      return nodeFileIo.write(fd, b, o, l, p);
    },
    fdatasync: (fd: number) => {
      if (io.armed && failOn === 'fdatasync') {
        io.calls += 1;
        return Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      }
      return nodeFileIo.fdatasync(fd);
    },
  };
  return io;
}
