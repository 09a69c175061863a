/** Shared helpers for the storage tests: temp dirs, an injectable clock, small value builders. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { type Clock, systemClock } from '../../src/clock.js';
import { type DirIo, nodeDirIo, nodeFileIo, type FileIo } from '../../src/storage/fsio.js';
import { openStore, type OpenStoreOptions } from '../../src/storage/store.js';
import type { Store, Version } from '../../src/storage/types.js';

export function tempDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-store-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A manual wall clock for TTL and tombstone tests; its timers are the real ones. */
export class FakeClock implements Clock {
  constructor(public ms = 1_700_000_000_000) {}
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
  monotonicMs = systemClock.monotonicMs;
  setTimeout = systemClock.setTimeout;
  clearTimeout = systemClock.clearTimeout;
  setInterval = systemClock.setInterval;
  clearInterval = systemClock.clearInterval;
  setImmediate = systemClock.setImmediate;
  clearImmediate = systemClock.clearImmediate;
  random = systemClock.random;
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
 * nodeFileIo's open and close, remembering the path of each open file descriptor: for tests that
 * inject faults into the writes or syncs of one kind of file (`pathOf(fd)`, '' when unknown).
 */
export function pathTrackingIo(): Pick<FileIo, 'open' | 'close'> & { pathOf(fd: number): string } {
  const paths = new Map<number, string>();
  return {
    open: async (p, flags) => {
      const fd = await nodeFileIo.open(p, flags);
      paths.set(fd, p);
      return fd;
    },
    close: (fd) => {
      paths.delete(fd);
      return nodeFileIo.close(fd);
    },
    pathOf: (fd) => paths.get(fd) ?? '',
  };
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

/**
 * A DirIo that does the real operations and records each one as a line: `open NAME`, `write NAME`,
 * `fdatasync NAME`, `ftruncate NAME`, `rename FROM TO`, `unlink NAME`, where NAME is the base name
 * ('DIR' for `dir` itself). Tests assert the durability order on `ops`. With `failWrites` set, writes
 * fail with ENOSPC (a full disk).
 */
export function recordingIo(dir: string): DirIo & { ops: string[]; failWrites: boolean } {
  const names = new Map<number, string>();
  const name = (p: string): string => (path.resolve(p) === path.resolve(dir) ? 'DIR' : path.basename(p));
  const io = {
    ops: [] as string[],
    failWrites: false,
    open: async (p: string, flags: string) => {
      const fd = await nodeDirIo.open(p, flags);
      names.set(fd, name(p));
      io.ops.push(`open ${name(p)}`);
      return fd;
    },
    write: (fd: number, b: Buffer, o: number, l: number, p: number) => {
      if (io.failWrites) return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      io.ops.push(`write ${names.get(fd)}`);
      return nodeDirIo.write(fd, b, o, l, p);
    },
    fdatasync: (fd: number) => {
      io.ops.push(`fdatasync ${names.get(fd)}`);
      return nodeDirIo.fdatasync(fd);
    },
    ftruncate: (fd: number, length: number) => {
      io.ops.push(`ftruncate ${names.get(fd)}`);
      return nodeDirIo.ftruncate(fd, length);
    },
    close: (fd: number) => {
      names.delete(fd);
      return nodeDirIo.close(fd);
    },
    rename: (from: string, to: string) => {
      io.ops.push(`rename ${name(from)} ${name(to)}`);
      return nodeDirIo.rename(from, to);
    },
    unlink: (p: string) => {
      io.ops.push(`unlink ${name(p)}`);
      return nodeDirIo.unlink(p);
    },
  };
  return io;
}

/** Index of the first op matching `re` at or after `from` (-1 if none). */
export function opIndex(ops: string[], re: RegExp, from = 0): number {
  for (let i = from; i < ops.length; i++) if (re.test(ops[i])) return i;
  return -1;
}
