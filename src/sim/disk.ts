/**
 * A simulated disk for the whole-cluster simulator: an in-memory file system per simulated machine,
 * deterministic, that behaves like a real disk under a page cache (POSIX semantics, no more):
 *
 * - Every file has volatile content (what reads see: the page cache) and durable content (what is on
 *   the platter). fdatasync of a file makes its content durable. Every directory has volatile and
 *   durable entries: create, rename, link and unlink change the volatile ones and become durable only
 *   when the directory itself is fsynced (fdatasync on a descriptor of the directory opened with 'r').
 *   A file's fdatasync does not make its name durable, nor does a directory's fsync its files' data.
 * - `mkdir` is durable at once (option `mkdirDurable`, default on): Shoal creates its data dirs at the
 *   first start and never fsyncs their parents, which journaled file systems (ext4, xfs) make durable with
 *   the next commit in practice; strict POSIX would lose the whole data dir in a crash after the first start.
 * - `crash()` is a power loss: every process on the machine dies, every directory reverts to its durable
 *   entries, every file to its durable content. With `tornWrites` (default on), the writes to a file since
 *   its last fdatasync are written back in the order they were made up to a random point: a seeded number
 *   of them survive whole, and the next one survives as a prefix (possibly empty) — the last unsynced write
 *   of a file is torn or survives whole, and an append-only file never gets a hole. Each write survives
 *   with the bytes it wrote (a write cut off later by a truncate that did not survive comes back).
 * - A process incarnation is `disk.process(clock)`: an FsIo with its own descriptors whose operations
 *   complete through its clock (fdatasync after `fsyncLatencyMs` on clock.setTimeout, everything else on
 *   the next turn, clock.setImmediate, after `opLatencyMs` if set). Once the incarnation is dead (its
 *   `kill()`, a process crash that keeps the page cache; or the machine's `crash()`), every call it makes
 *   and every operation it has in flight never settles: a dead process can never write again.
 * - `capacityBytes`: a write that would take the file data on the disk past it writes what fits (a short
 *   write) or, if nothing fits, fails with ENOSPC. Faults: `failNext(op, pathPrefix, code)` fails the next
 *   matching operation once; the `fault` predicate is asked before every operation.
 * - Paths are posix strings (relative ones are taken from '/'), descriptors numbers, and errors carry
 *   node's `code` (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, ENOSPC, EIO, EBADF, EINVAL), `syscall`
 *   and `path`, like node:fs's. readdir lists names sorted, so every run sees the same order.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Clock } from '../clock.js';
import { mulberry32 } from '../membership/sim/random.js';
import type { FsIo, FsStat } from '../storage/fsio.js';

export type DiskOp =
  | 'open'
  | 'read'
  | 'write'
  | 'fdatasync'
  | 'ftruncate'
  | 'close'
  | 'fstat'
  | 'rename'
  | 'unlink'
  | 'link'
  | 'readFile'
  | 'readdir'
  | 'mkdir'
  | 'stat'
  | 'rmRecursive';

export type DiskErrorCode = 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'ENOTEMPTY' | 'ENOSPC' | 'EIO' | 'EBADF' | 'EINVAL';

const ERRNO: Record<DiskErrorCode, [number, string]> = {
  ENOENT: [-2, 'no such file or directory'],
  EIO: [-5, 'i/o error'],
  EBADF: [-9, 'bad file descriptor'],
  EEXIST: [-17, 'file already exists'],
  ENOTDIR: [-20, 'not a directory'],
  EISDIR: [-21, 'illegal operation on a directory'],
  EINVAL: [-22, 'invalid argument'],
  ENOSPC: [-28, 'no space left on device'],
  ENOTEMPTY: [-39, 'directory not empty'],
};

/** An error shaped like node:fs's: `ENOENT: no such file or directory, open '/x'`, with code, errno, syscall, path. */
export function diskError(code: DiskErrorCode, syscall: string, p: string): NodeJS.ErrnoException {
  const [errno, text] = ERRNO[code];
  const err = new Error(`${code}: ${text}, ${syscall} '${p}'`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = errno;
  err.syscall = syscall;
  err.path = p;
  return err;
}

export interface SimDiskOptions {
  /** File data the disk holds at most (default: unbounded). Can be changed later (`disk.capacityBytes`). */
  capacityBytes?: number;
  /** Seeded randomness for torn writes (default: a fixed seed). Give it the simulator's. */
  random?: () => number;
  /** On a crash, a seeded prefix of each file's unsynced writes survives, the last one possibly torn (default true). */
  tornWrites?: boolean;
  /** Simulated time an fdatasync takes (default 1 ms). */
  fsyncLatencyMs?: number;
  /** Simulated time every other operation takes (default 0: it completes on the next turn of the clock). */
  opLatencyMs?: number;
  /** mkdir is durable at once (default true; see the header). */
  mkdirDurable?: boolean;
  /** Asked before every operation: a code fails it with that error. */
  fault?: FaultPredicate;
  /** Told after every operation (its error code, or null): traces, and tests that crash at an exact point. */
  onOp?: (op: DiskOp, path: string, error: string | null) => void;
}

export type FaultPredicate = (op: DiskOp, path: string) => DiskErrorCode | null;

/** Unsynced writes remembered per file for the crash model; older ones are written back (made durable) first. */
const UNSYNCED_EVENTS_MAX = 256;
const EMPTY = Buffer.alloc(0);

/** A growable byte array: the content of a file. */
class Bytes {
  buf: Buffer = EMPTY;
  size = 0;

  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    const grown = Buffer.alloc(Math.max(n, this.buf.length * 2, 64));
    this.buf.copy(grown, 0, 0, this.size);
    this.buf = grown;
  }

  /** Sets the size; bytes past the old size read as zeros. */
  resize(n: number): void {
    if (n > this.size) {
      this.ensure(n);
      this.buf.fill(0, this.size, n);
    }
    this.size = n;
  }

  /** Writes src at pos, zero-filling a gap after the current end. */
  writeAt(pos: number, src: Uint8Array): void {
    const end = pos + src.length;
    if (pos > this.size) this.resize(pos);
    this.ensure(end);
    this.buf.set(src, pos);
    if (end > this.size) this.size = end;
  }

  view(from = 0, to = this.size): Buffer {
    return this.buf.subarray(from, Math.min(to, this.size));
  }

  copy(): Buffer {
    return Buffer.from(this.view());
  }
}

/** A change to a file since its last fdatasync, in the order made (the crash model replays a prefix). */
type Unsynced = { kind: 'write'; position: number; length: number; chunks: Buffer[] } | { kind: 'truncate'; length: number };

class Inode {
  readonly kind: 'file' | 'dir';
  /** file: what reads see, and what is on the platter. */
  readonly data = new Bytes();
  readonly durable = new Bytes();
  /** file: lowest offset that may differ between data and durable (Infinity: none). */
  dirtyFrom = Infinity;
  unsynced: Unsynced[] = [];
  /** dir: volatile and durable entries. */
  entries = new Map<string, Inode>();
  durableEntries = new Map<string, Inode>();

  constructor(kind: 'file' | 'dir') {
    this.kind = kind;
  }

  isDir(): boolean {
    return this.kind === 'dir';
  }

  /** fdatasync of a file: everything in the page cache is now durable. */
  syncData(): void {
    if (this.dirtyFrom !== Infinity) {
      this.durable.resize(this.data.size);
      if (this.dirtyFrom < this.data.size) this.durable.writeAt(this.dirtyFrom, this.data.view(this.dirtyFrom));
    }
    this.dirtyFrom = Infinity;
    this.unsynced = [];
  }

  /** fsync of a directory: its entries as they are now are durable. */
  syncEntries(): void {
    this.durableEntries = new Map(this.entries);
  }

  noteWrite(position: number, bytes: Buffer, oldSize: number): void {
    this.dirtyFrom = Math.min(this.dirtyFrom, position, oldSize);
    const copy = Buffer.from(bytes);
    const last = this.unsynced[this.unsynced.length - 1];
    if (last !== undefined && last.kind === 'write' && last.position + last.length === position) {
      last.length += copy.length; // an append right after the last one: one extent
      last.chunks.push(copy);
    } else {
      this.unsynced.push({ kind: 'write', position, length: copy.length, chunks: [copy] });
      this.writeBackOverflow();
    }
  }

  noteTruncate(length: number, oldSize: number): void {
    this.dirtyFrom = Math.min(this.dirtyFrom, length, oldSize);
    this.unsynced.push({ kind: 'truncate', length });
    this.writeBackOverflow();
  }

  /** Too many unsynced changes remembered: the oldest is written back, as the kernel's flusher would. */
  private writeBackOverflow(): void {
    while (this.unsynced.length > UNSYNCED_EVENTS_MAX) this.applyToDurable(this.unsynced.shift() as Unsynced, Infinity);
  }

  /** Puts (the first `bytes` of) an unsynced change on the platter. */
  applyToDurable(event: Unsynced, bytes: number): void {
    if (event.kind === 'truncate') {
      this.durable.resize(event.length);
      return;
    }
    let left = Math.min(event.length, bytes);
    let at = event.position;
    for (const chunk of event.chunks) {
      if (left <= 0) break;
      const part = chunk.subarray(0, Math.min(chunk.length, left));
      this.durable.writeAt(at, part);
      at += part.length;
      left -= part.length;
    }
  }

  /** Power loss: the page cache is gone; what survives is the durable content plus a prefix of the unsynced changes. */
  revert(random: () => number, torn: boolean): void {
    if (this.kind === 'dir') {
      this.entries = new Map(this.durableEntries);
      return;
    }
    const events = this.unsynced;
    if (torn && events.length > 0) {
      const whole = Math.floor(random() * (events.length + 1));
      for (let i = 0; i < whole; i++) this.applyToDurable(events[i], Infinity);
      if (whole < events.length) {
        const next = events[whole];
        if (next.kind === 'write') this.applyToDurable(next, Math.floor(random() * next.length));
        else if (random() < 0.5) this.applyToDurable(next, 0);
      }
    }
    this.data.size = 0;
    this.data.writeAt(0, this.durable.view());
    this.dirtyFrom = Infinity;
    this.unsynced = [];
  }
}

interface Descriptor {
  inode: Inode;
  path: string;
  readable: boolean;
  writable: boolean;
}

const OPEN_FLAGS: Record<string, { create: boolean; exclusive: boolean; truncate: boolean; readable: boolean; writable: boolean }> = {
  r: { create: false, exclusive: false, truncate: false, readable: true, writable: false },
  'r+': { create: false, exclusive: false, truncate: false, readable: true, writable: true },
  w: { create: true, exclusive: false, truncate: true, readable: false, writable: true },
  wx: { create: true, exclusive: true, truncate: true, readable: false, writable: true },
  'w+': { create: true, exclusive: false, truncate: true, readable: true, writable: true },
  'wx+': { create: true, exclusive: true, truncate: true, readable: true, writable: true },
};

function normalize(p: string): string {
  return path.posix.resolve('/', p);
}

function components(p: string): string[] {
  return normalize(p).split('/').filter((c) => c.length > 0);
}

/** Never settles: what a dead process's calls return. */
function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

export class SimDisk {
  capacityBytes: number;
  fault: FaultPredicate | null;
  onOp: ((op: DiskOp, path: string, error: string | null) => void) | null;
  /** Counters, for traces and tests. */
  readonly stats = { crashes: 0, fsyncs: 0, writes: 0, bytesWritten: 0, faults: 0 };
  private readonly random: () => number;
  private readonly tornWrites: boolean;
  readonly fsyncLatencyMs: number;
  readonly opLatencyMs: number;
  private readonly mkdirDurable: boolean;
  private readonly root = new Inode('dir');
  private readonly processes = new Set<SimFs>();
  private readonly failures: { op: DiskOp; prefix: string; code: DiskErrorCode }[] = [];
  private used = 0;

  constructor(options: SimDiskOptions = {}) {
    this.capacityBytes = options.capacityBytes ?? Infinity;
    this.random = options.random ?? mulberry32(0x5d15c);
    this.tornWrites = options.tornWrites ?? true;
    this.fsyncLatencyMs = options.fsyncLatencyMs ?? 1;
    this.opLatencyMs = options.opLatencyMs ?? 0;
    this.mkdirDurable = options.mkdirDurable ?? true;
    this.fault = options.fault ?? null;
    this.onOp = options.onOp ?? null;
  }

  /** The file system of one process incarnation on this machine; its operations complete on `clock`. */
  process(clock: Clock): SimFs {
    const fs = new SimFs(this, clock);
    this.processes.add(fs);
    return fs;
  }

  /** Power loss: every process dies; files and directories revert to what was durable (see the header). */
  crash(): void {
    this.stats.crashes += 1;
    for (const p of [...this.processes]) p.kill();
    const seen = new Set<Inode>();
    const walk = (dir: Inode): void => {
      dir.revert(this.random, this.tornWrites);
      for (const name of [...dir.entries.keys()].sort()) {
        const child = dir.entries.get(name) as Inode;
        if (seen.has(child)) continue;
        seen.add(child);
        if (child.isDir()) walk(child);
        else child.revert(this.random, this.tornWrites);
      }
    };
    walk(this.root);
    this.recount();
  }

  /** Fails the next `op` on a path starting with `pathPrefix` with `code`, once. */
  failNext(op: DiskOp, pathPrefix: string, code: DiskErrorCode): void {
    this.failures.push({ op, prefix: normalize(pathPrefix), code });
  }

  /** Drops every failure armed by failNext that has not happened yet. */
  clearFailures(): void {
    this.failures.length = 0;
  }

  /** Bytes of file data on the disk (files reachable by a name, or held open). */
  get usedBytes(): number {
    return this.used;
  }

  /**
   * Every file under `dir` with its content: 'volatile' as reads see it now, 'durable' as a crash
   * without torn writes would leave it. For tests and traces; costs a copy of everything.
   */
  files(which: 'volatile' | 'durable', dir = '/'): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    const start = this.lookup(normalize(dir), which === 'durable');
    if (start === null) return out;
    const walk = (inode: Inode, at: string): void => {
      if (!inode.isDir()) {
        out.set(at, which === 'durable' ? inode.durable.copy() : inode.data.copy());
        return;
      }
      const entries = which === 'durable' ? inode.durableEntries : inode.entries;
      for (const name of [...entries.keys()].sort()) walk(entries.get(name) as Inode, path.posix.join(at, name));
    };
    walk(start, normalize(dir));
    return out;
  }

  /** The operator wipes a path (a data dir) while no process uses it: gone, durably. */
  wipe(p: string): void {
    const parts = components(p);
    const name = parts.pop();
    if (name === undefined) {
      this.root.entries.clear();
      this.root.durableEntries.clear();
    } else {
      const parent = this.lookup('/' + parts.join('/'), false);
      if (parent !== null && parent.isDir()) {
        parent.entries.delete(name);
        parent.durableEntries.delete(name);
      }
    }
    this.recount();
  }

  // ---- internals used by SimFs ------------------------------------------------------------------

  forget(fs: SimFs): void {
    this.processes.delete(fs);
    this.recount();
  }

  /** Throws the injected fault for (op, path), if any. */
  checkFault(op: DiskOp, p: string): void {
    const i = this.failures.findIndex((f) => f.op === op && p.startsWith(f.prefix));
    let code: DiskErrorCode | null = null;
    if (i >= 0) {
      code = this.failures[i].code;
      this.failures.splice(i, 1);
    } else if (this.fault !== null) {
      code = this.fault(op, p);
    }
    if (code !== null) {
      this.stats.faults += 1;
      throw diskError(code, op, p);
    }
  }

  lookup(p: string, durable: boolean): Inode | null {
    let inode = this.root;
    for (const c of components(p)) {
      if (!inode.isDir()) return null;
      const next = (durable ? inode.durableEntries : inode.entries).get(c);
      if (next === undefined) return null;
      inode = next;
    }
    return inode;
  }

  /** The inode at `p`; ENOENT / ENOTDIR like the kernel's path walk (the error names `report`). */
  resolve(p: string, syscall: string, report = p): Inode {
    let inode = this.root;
    for (const c of components(p)) {
      if (!inode.isDir()) throw diskError('ENOTDIR', syscall, report);
      const next = inode.entries.get(c);
      if (next === undefined) throw diskError('ENOENT', syscall, report);
      inode = next;
    }
    return inode;
  }

  /** The directory that holds `p`, and p's last component. */
  resolveParent(p: string, syscall: string): { dir: Inode; name: string } {
    const parts = components(p);
    const name = parts.pop();
    if (name === undefined) throw diskError('EISDIR', syscall, p);
    const dir = this.resolve('/' + parts.join('/'), syscall, p);
    if (!dir.isDir()) throw diskError('ENOTDIR', syscall, p);
    return { dir, name };
  }

  makeDir(p: string): void {
    let inode = this.root;
    for (const c of components(p)) {
      if (!inode.isDir()) throw diskError('ENOTDIR', 'mkdir', p);
      let next = inode.entries.get(c);
      if (next === undefined) {
        next = new Inode('dir');
        inode.entries.set(c, next);
        if (this.mkdirDurable) inode.durableEntries.set(c, next);
      }
      inode = next;
    }
    if (!inode.isDir()) throw diskError('EEXIST', 'mkdir', p);
  }

  /** Room for `growth` more bytes of file data: how many of them fit. */
  room(growth: number): number {
    return Math.max(0, Math.min(growth, this.capacityBytes - this.used));
  }

  grew(delta: number): void {
    this.used += delta;
  }

  /** Recomputes the bytes in use after names or descriptors went away. */
  recount(): void {
    const seen = new Set<Inode>();
    let used = 0;
    const count = (inode: Inode): void => {
      if (seen.has(inode)) return;
      seen.add(inode);
      if (inode.isDir()) for (const child of inode.entries.values()) count(child);
      else used += inode.data.size;
    };
    count(this.root);
    for (const p of this.processes) for (const d of p.openInodes()) count(d);
    this.used = used;
  }

  noteOp(op: DiskOp, p: string, error: string | null): void {
    this.onOp?.(op, p, error);
  }
}

/**
 * The FsIo of one process incarnation on a SimDisk. Its methods are own properties (arrow functions),
 * so `{ ...fs }` and passing `fs.open` around work as with nodeFsIo.
 */
export class SimFs implements FsIo {
  dead = false;
  private readonly fds = new Map<number, Descriptor>();
  private nextFd = 3;

  constructor(
    readonly disk: SimDisk,
    private readonly clock: Clock,
  ) {}

  /** The process dies (kill -9): its descriptors close, its calls never settle; the page cache stays. */
  kill(): void {
    if (this.dead) return;
    this.dead = true;
    this.fds.clear();
    this.disk.forget(this);
  }

  openInodes(): Inode[] {
    return [...this.fds.values()].map((d) => d.inode);
  }

  /** Runs `fn` as operation `op` on `p` after `delayMs` of the clock (0: next turn); never settles once dead. */
  private run<T>(op: DiskOp, p: string, delayMs: number, fn: () => T): Promise<T> {
    if (this.dead) return never<T>();
    return new Promise<T>((resolve, reject) => {
      const complete = (): void => {
        if (this.dead) return;
        let result: T;
        try {
          this.disk.checkFault(op, p);
          result = fn();
        } catch (err) {
          this.disk.noteOp(op, p, (err as NodeJS.ErrnoException).code ?? 'ERROR');
          if (!this.dead) reject(err as Error);
          return;
        }
        this.disk.noteOp(op, p, null);
        if (!this.dead) resolve(result);
      };
      if (delayMs > 0) this.clock.setTimeout(complete, delayMs);
      else this.clock.setImmediate(complete);
    });
  }

  private descriptor(fd: number, syscall: string): Descriptor {
    const d = this.fds.get(fd);
    if (d === undefined) throw diskError('EBADF', syscall, String(fd));
    return d;
  }

  private pathOf(fd: number): string {
    return this.fds.get(fd)?.path ?? `fd:${fd}`;
  }

  readonly open = (p: string, flags: string): Promise<number> => {
    const at = normalize(p);
    return this.run('open', at, this.disk.opLatencyMs, () => {
      const mode = OPEN_FLAGS[flags];
      if (mode === undefined) throw diskError('EINVAL', 'open', at);
      const { dir, name } = this.disk.resolveParent(at, 'open');
      let inode = dir.entries.get(name);
      if (inode !== undefined && mode.exclusive) throw diskError('EEXIST', 'open', at);
      if (inode === undefined) {
        if (!mode.create) throw diskError('ENOENT', 'open', at);
        inode = new Inode('file');
        dir.entries.set(name, inode);
      } else if (inode.isDir()) {
        if (mode.writable) throw diskError('EISDIR', 'open', at);
      } else if (mode.truncate && inode.data.size > 0) {
        const old = inode.data.size;
        inode.data.resize(0);
        inode.noteTruncate(0, old);
        this.disk.grew(-old);
      }
      const fd = this.nextFd++;
      this.fds.set(fd, { inode, path: at, readable: mode.readable, writable: mode.writable });
      return fd;
    });
  };

  readonly read = (fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> =>
    this.run('read', this.pathOf(fd), this.disk.opLatencyMs, () => {
      const d = this.descriptor(fd, 'read');
      if (d.inode.isDir()) throw diskError('EISDIR', 'read', d.path);
      if (!d.readable) throw diskError('EBADF', 'read', d.path);
      const data = d.inode.data;
      const n = Math.max(0, Math.min(length, data.size - position));
      if (n > 0) data.view(position, position + n).copy(buf, offset);
      return n;
    });

  readonly write = (fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> =>
    this.run('write', this.pathOf(fd), this.disk.opLatencyMs, () => {
      const d = this.descriptor(fd, 'write');
      if (!d.writable || d.inode.isDir()) throw diskError('EBADF', 'write', d.path);
      assert.ok(Number.isSafeInteger(position) && position >= 0, `SimFs.write needs an explicit position, got ${position}`);
      const inode = d.inode;
      const old = inode.data.size;
      const growth = Math.max(0, position + length - old);
      const fits = this.disk.room(growth);
      // A write that does not fit writes what does (a short write); if nothing does, ENOSPC.
      const n = fits === growth ? length : Math.max(0, old + fits - position);
      if (n <= 0 && length > 0) throw diskError('ENOSPC', 'write', d.path);
      if (n === 0) return 0;
      inode.data.writeAt(position, buf.subarray(offset, offset + n));
      inode.noteWrite(position, buf.subarray(offset, offset + n), old);
      this.disk.grew(inode.data.size - old);
      this.disk.stats.writes += 1;
      this.disk.stats.bytesWritten += n;
      return n;
    });

  readonly fdatasync = (fd: number): Promise<void> =>
    this.run('fdatasync', this.pathOf(fd), this.disk.fsyncLatencyMs, () => {
      const d = this.descriptor(fd, 'fdatasync');
      if (d.inode.isDir()) d.inode.syncEntries();
      else d.inode.syncData();
      this.disk.stats.fsyncs += 1;
    });

  readonly ftruncate = (fd: number, length: number): Promise<void> =>
    this.run('ftruncate', this.pathOf(fd), this.disk.opLatencyMs, () => {
      const d = this.descriptor(fd, 'ftruncate');
      if (!d.writable || d.inode.isDir()) throw diskError('EINVAL', 'ftruncate', d.path);
      const inode = d.inode;
      const old = inode.data.size;
      if (length > old && this.disk.room(length - old) < length - old) throw diskError('ENOSPC', 'ftruncate', d.path);
      inode.data.resize(length);
      inode.noteTruncate(length, old);
      this.disk.grew(length - old);
    });

  readonly close = (fd: number): Promise<void> =>
    this.run('close', this.pathOf(fd), this.disk.opLatencyMs, () => {
      this.descriptor(fd, 'close');
      this.fds.delete(fd);
      this.disk.recount();
    });

  readonly fstat = (fd: number): Promise<FsStat> =>
    this.run('fstat', this.pathOf(fd), this.disk.opLatencyMs, () => {
      const inode = this.descriptor(fd, 'fstat').inode;
      return { size: inode.isDir() ? 0 : inode.data.size, isDirectory: inode.isDir() };
    });

  readonly rename = (from: string, to: string): Promise<void> => {
    const src = normalize(from);
    const dst = normalize(to);
    return this.run('rename', src, this.disk.opLatencyMs, () => {
      const a = this.disk.resolveParent(src, 'rename');
      const inode = a.dir.entries.get(a.name);
      if (inode === undefined) throw diskError('ENOENT', 'rename', src);
      const b = this.disk.resolveParent(dst, 'rename');
      const existing = b.dir.entries.get(b.name);
      if (existing === inode) return;
      if (existing !== undefined) {
        if (existing.isDir() && !inode.isDir()) throw diskError('EISDIR', 'rename', dst);
        if (!existing.isDir() && inode.isDir()) throw diskError('ENOTDIR', 'rename', dst);
        if (existing.isDir() && existing.entries.size > 0) throw diskError('ENOTEMPTY', 'rename', dst);
      }
      a.dir.entries.delete(a.name);
      b.dir.entries.set(b.name, inode);
      this.disk.recount();
    });
  };

  readonly unlink = (p: string): Promise<void> => {
    const at = normalize(p);
    return this.run('unlink', at, this.disk.opLatencyMs, () => {
      let parent: { dir: Inode; name: string };
      try {
        parent = this.disk.resolveParent(at, 'unlink');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // missing: not an error (rm -f)
        throw err;
      }
      const inode = parent.dir.entries.get(parent.name);
      if (inode === undefined) return;
      if (inode.isDir()) throw diskError('EISDIR', 'unlink', at);
      parent.dir.entries.delete(parent.name);
      this.disk.recount();
    });
  };

  readonly link = (existing: string, newPath: string): Promise<void> => {
    const src = normalize(existing);
    const dst = normalize(newPath);
    return this.run('link', dst, this.disk.opLatencyMs, () => {
      const inode = this.disk.resolve(src, 'link');
      if (inode.isDir()) throw diskError('EISDIR', 'link', src);
      const b = this.disk.resolveParent(dst, 'link');
      if (b.dir.entries.has(b.name)) throw diskError('EEXIST', 'link', dst);
      b.dir.entries.set(b.name, inode);
    });
  };

  readonly readFile = (p: string): Promise<Buffer> => {
    const at = normalize(p);
    return this.run('readFile', at, this.disk.opLatencyMs, () => {
      const inode = this.disk.resolve(at, 'open');
      if (inode.isDir()) throw diskError('EISDIR', 'read', at);
      return inode.data.copy();
    });
  };

  readonly readdir = (p: string): Promise<string[]> => {
    const at = normalize(p);
    return this.run('readdir', at, this.disk.opLatencyMs, () => {
      const inode = this.disk.resolve(at, 'scandir');
      if (!inode.isDir()) throw diskError('ENOTDIR', 'scandir', at);
      return [...inode.entries.keys()].sort();
    });
  };

  readonly mkdir = (p: string): Promise<void> => {
    const at = normalize(p);
    return this.run('mkdir', at, this.disk.opLatencyMs, () => this.disk.makeDir(at));
  };

  readonly stat = (p: string): Promise<FsStat> => {
    const at = normalize(p);
    return this.run('stat', at, this.disk.opLatencyMs, () => {
      const inode = this.disk.resolve(at, 'stat');
      return { size: inode.isDir() ? 0 : inode.data.size, isDirectory: inode.isDir() };
    });
  };

  readonly rmRecursive = (p: string): Promise<void> => {
    const at = normalize(p);
    return this.run('rmRecursive', at, this.disk.opLatencyMs, () => {
      let parent: { dir: Inode; name: string };
      try {
        parent = this.disk.resolveParent(at, 'rm');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      parent.dir.entries.delete(parent.name);
      this.disk.recount();
    });
  };
}
