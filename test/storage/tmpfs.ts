/**
 * A small tmpfs for disk-full tests. Mounting needs root (and a kernel that allows it in this
 * container); `tmpfsUnavailable()` says why not, so test files can skip with a clear message.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Logger, LogFields } from '../../src/log.js';

function mount(dir: string, sizeBytes: number): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], { stdio: 'pipe', timeout: 10_000 });
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe', timeout: 10_000 });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe', timeout: 10_000 }); // still busy: detach lazily
  }
}

let probed: string | null | undefined;

/** Null when a tmpfs can be mounted here, else the reason it cannot (checked once per process). */
export function tmpfsUnavailable(): string | null {
  if (probed !== undefined) return probed;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    probed = 'not root: mounting a tmpfs needs root';
    return probed;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-tmpfs-probe-'));
  try {
    mount(dir, 64 * 1024);
    unmount(dir);
    probed = null;
  } catch (err) {
    probed = `mount -t tmpfs failed: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return probed;
}

/** Mounts a tmpfs of `sizeBytes` on a fresh temp dir, unmounted and removed at teardown. */
export function mountTmpfs(t: ExecutionContext, sizeBytes: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-tmpfs-'));
  // Teardowns run last-registered first: unmount, then remove the mount point.
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  mountTmpfsAt(t, dir, sizeBytes);
  return dir;
}

/** Mounts a tmpfs of `sizeBytes` on the existing empty dir `dir`, unmounted at teardown. */
export function mountTmpfsAt(t: ExecutionContext, dir: string, sizeBytes: number): void {
  mount(dir, sizeBytes);
  t.teardown(() => unmount(dir));
}

/** Fills `file` with zeros until the file system is full; returns the bytes written. */
export function fillDisk(file: string, bytesMax: number): number {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(4096);
  let written = 0;
  try {
    while (written < bytesMax) written += fs.writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

/** A logger that keeps warn and error lines, for asserting what recovery reported. */
export function recordingLogger(): Logger & { lines: Array<{ level: string; message: string; fields?: LogFields }> } {
  const lines: Array<{ level: string; message: string; fields?: LogFields }> = [];
  const logger = {
    lines,
    debug() {},
    info() {},
    warn: (message: string, fields?: LogFields) => void lines.push({ level: 'warn', message, fields }),
    error: (message: string, fields?: LogFields) => void lines.push({ level: 'error', message, fields }),
    child: () => logger,
  };
  return logger;
}
