/**
 * The file operations the store's write paths use, as one injectable object: tests swap in failing
 * versions to prove that a write or fsync error turns the store read-only. Callback `node:fs` wrapped
 * in promises, which is cheaper per call than FileHandle.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';

export interface FileIo {
  open(path: string, flags: string): Promise<number>;
  /** Writes `length` bytes of `buf` from `offset` at file `position`; resolves with bytes written. */
  write(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  /** Cuts the file to `length` bytes (the WAL removes a failed batch's bytes this way). */
  ftruncate(fd: number, length: number): Promise<void>;
  close(fd: number): Promise<void>;
}

export const nodeFileIo: FileIo = {
  open: (path, flags) =>
    new Promise((resolve, reject) => fs.open(path, flags, 0o644, (err, fd) => (err ? reject(err) : resolve(fd)))),
  write: (fd, buf, offset, length, position) =>
    new Promise((resolve, reject) =>
      fs.write(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))),
    ),
  fdatasync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))),
  ftruncate: (fd, length) =>
    new Promise((resolve, reject) => fs.ftruncate(fd, length, (err) => (err ? reject(err) : resolve()))),
  close: (fd) => new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve()))),
};

/** Writes all of buf[offset, offset + length) at `position`, looping over short writes. */
export async function writeFully(io: FileIo, fd: number, buf: Buffer, offset: number, length: number, position: number) {
  let done = 0;
  while (done < length) {
    const n = await io.write(fd, buf, offset + done, length - done, position + done);
    if (n <= 0) throw new Error(`write returned ${n}`);
    done += n;
  }
}

/** Makes a directory's entries (new, renamed or removed files) durable. */
export async function fsyncDir(io: FileIo, dir: string): Promise<void> {
  const fd = await io.open(dir, 'r');
  try {
    await io.fdatasync(fd);
  } finally {
    await io.close(fd);
  }
}

/**
 * FileIo plus the directory operations of the durability order (write → fsync → rename → fsync dir →
 * delete): the hint store, recovery and compaction go through it so tests can record or fail each step.
 */
export interface DirIo extends FileIo {
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; a missing file is not an error. */
  unlink(path: string): Promise<void>;
}

export const nodeDirIo: DirIo = {
  ...nodeFileIo,
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.rm(path, { force: true }),
};

/** A FileIo seam used where a DirIo is needed: the directory operations default to node's. */
export function dirIo(io: FileIo | undefined): DirIo {
  if (io === undefined) return nodeDirIo;
  const maybe = io as Partial<DirIo>;
  return { ...io, rename: maybe.rename ?? nodeDirIo.rename, unlink: maybe.unlink ?? nodeDirIo.unlink };
}

/**
 * Writes a whole new file at `path` (created or replaced; `flags` 'wx': created, EEXIST if it exists)
 * and fdatasyncs it; the caller fsyncs the directory.
 */
export async function writeFileSynced(io: FileIo, path: string, data: Buffer, flags: 'w' | 'wx' = 'w'): Promise<void> {
  const fd = await io.open(path, flags);
  try {
    await writeFully(io, fd, data, 0, data.length, 0);
    await io.fdatasync(fd);
  } finally {
    await io.close(fd);
  }
}

/** Cuts `path` to `length` bytes and fdatasyncs it. */
export async function truncateSynced(io: FileIo, path: string, length: number): Promise<void> {
  const fd = await io.open(path, 'r+');
  try {
    await io.ftruncate(fd, length);
    await io.fdatasync(fd);
  } finally {
    await io.close(fd);
  }
}

/** What `FsIo.stat` reports. */
export interface FsStat {
  size: number;
  isDirectory: boolean;
}

/**
 * The whole file-system seam: DirIo plus the reads and directory listing that recovery, the hint store,
 * the data-dir lock and the membership files need. Every file access of a node's data dir goes through
 * one FsIo (default `nodeFsIo`), so the simulator (src/sim/) can give each node a disk of its own that
 * loses what was not fsynced on a crash, tears the last write, fills up or fails.
 * Errors carry node's `code` (ENOENT, ENOSPC, EIO, EEXIST, ...), as node:fs's do.
 */
export interface FsIo extends DirIo {
  /** Hard-links `existing` as `newPath`; fails with EEXIST if `newPath` exists (the lock's atomic create). */
  link(existing: string, newPath: string): Promise<void>;
  /** Reads up to `length` bytes at file `position` into buf[offset..]; resolves with bytes read (0 at the end). */
  read(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  readFile(path: string): Promise<Buffer>;
  /** Names (not paths) of the entries of `dir`. */
  readdir(dir: string): Promise<string[]>;
  /** Creates `dir` and its missing parents; an existing directory is not an error. */
  mkdir(dir: string): Promise<void>;
  stat(path: string): Promise<FsStat>;
  /** stat of an open descriptor (the size of a file being read). */
  fstat(fd: number): Promise<FsStat>;
  /** Removes a file or a directory tree; a missing path is not an error. */
  rmRecursive(path: string): Promise<void>;
}

export const nodeFsIo: FsIo = {
  ...nodeDirIo,
  link: (existing, newPath) => fsp.link(existing, newPath),
  read: (fd, buf, offset, length, position) =>
    new Promise((resolve, reject) => fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)))),
  readFile: (path) => fsp.readFile(path),
  readdir: (dir) => fsp.readdir(dir),
  mkdir: async (dir) => {
    await fsp.mkdir(dir, { recursive: true });
  },
  stat: async (path) => {
    const st = await fsp.stat(path);
    return { size: st.size, isDirectory: st.isDirectory() };
  },
  fstat: (fd) =>
    new Promise((resolve, reject) =>
      fs.fstat(fd, (err, st) => (err ? reject(err) : resolve({ size: st.size, isDirectory: st.isDirectory() }))),
    ),
  rmRecursive: (path) => fsp.rm(path, { recursive: true, force: true }),
};

/**
 * The FsIo a store or hint store uses: `fs` (default node's), with the file operations of the older
 * `io` test seam (a FileIo, or a DirIo) put over it when one is given, so tests that fail or record
 * writes keep working. The reads, listing and the rest stay `fs`'s.
 */
export function withFileIo(fs: FsIo | undefined, io: FileIo | undefined): FsIo {
  const base = fs ?? nodeFsIo;
  if (io === undefined) return base;
  const maybe = io as Partial<DirIo>;
  return {
    ...base,
    open: io.open,
    write: io.write,
    fdatasync: io.fdatasync,
    ftruncate: io.ftruncate,
    close: io.close,
    rename: maybe.rename ?? base.rename,
    unlink: maybe.unlink ?? base.unlink,
  };
}
