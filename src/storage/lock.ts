/**
 * The data-directory lock: a LOCK file holding the owner's pid. A second open of the same directory
 * fails with LOCKED naming the holder; a lock left by a process that is gone (crash, SIGKILL, or a
 * zombie its parent has not reaped yet) is taken over. A directory is also refused a second time in the
 * same process, since two stores appending to one WAL would corrupt it.
 *
 * Atomicity:
 * - The LOCK file only ever appears complete and only where none exists: it is written to a private
 *   temp file, fsynced, then hard-linked to LOCK (link fails with EEXIST if LOCK exists, like open wx,
 *   but a reader never sees an empty LOCK).
 * - Only a takeover removes a LOCK, and only while holding LOCK.takeover (created exclusively, holding
 *   the taker's pid), after re-reading under it that LOCK still names the same gone process. So of two
 *   agents starting at once on a crashed data dir, one takes over and the other finds a live holder.
 *   A LOCK.takeover left by a taker that died is removed when its pid is gone (the remaining risk needs
 *   a crash inside a takeover's few milliseconds and two starters at once).
 */
import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import { LOCK_FILE } from './layout.js';

export interface DirLock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** The pid written into LOCK (tests: several contenders in one process). Default process.pid. */
  pid?: number;
  /** Whether a pid names a running process (default: kill(pid, 0) and not a zombie). */
  isAlive?: (pid: number) => boolean;
}

const heldHere = new Set<string>();
/** Rounds of (create, find stale, take over) before giving up. */
const ATTEMPTS_MAX = 20;
/** Wait between rounds while another process holds the takeover guard. */
const GUARD_WAIT_MS = 10;

/** The state letter of /proc/PID/stat (R, S, D, Z, X, ...), or null where /proc is not available. */
export function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) || null;
  } catch {
    return null;
  }
}

/** True if `pid` is a running process: it exists (kill 0) and is not a zombie or dead (/proc). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false; // EPERM: exists, someone else's
  }
  const state = procState(pid);
  return state !== 'Z' && state !== 'X';
}

async function readPid(file: string): Promise<number | null> {
  try {
    const pid = Number.parseInt((await fs.readFile(file, 'utf8')).trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Creates `file` holding `pid` atomically: temp file, fsync, link. False if `file` exists. */
async function createLockFile(file: string, pid: number): Promise<boolean> {
  // Not *.tmp: recovery removes those, and it may run in the winner while a loser is still here.
  const tmp = `${file}.${pid}.${process.hrtime.bigint()}.new`;
  const handle = await fs.open(tmp, 'wx');
  try {
    await handle.writeFile(`${pid}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function acquireLock(dir: string, logger: Logger, options: LockOptions = {}): Promise<DirLock> {
  const pid = options.pid ?? process.pid;
  const isAlive = options.isAlive ?? isProcessAlive;
  const file = path.join(dir, LOCK_FILE);
  const guard = `${file}.takeover`;
  const resolved = path.resolve(file);
  const key = `${resolved}:${pid}`;
  if (options.pid === undefined && heldHere.has(resolved)) {
    throw new ShoalError('LOCKED', `data dir ${dir} is already open in this process (pid ${process.pid})`, {
      pid: process.pid,
    });
  }
  const locked = (holder: number): ShoalError =>
    new ShoalError(
      'LOCKED',
      `data dir ${dir} is locked by process ${holder}; stop it first (or remove ${file} if that pid is not a Shoal node)`,
      { pid: holder },
    );
  for (let attempt = 0; attempt < ATTEMPTS_MAX; attempt++) {
    if (await createLockFile(file, pid)) {
      await syncDir(dir);
      if (options.pid === undefined) heldHere.add(resolved);
      heldHere.add(key);
      return {
        release: async () => {
          if (options.pid === undefined) heldHere.delete(resolved);
          heldHere.delete(key);
          if ((await readPid(file)) === pid) await fs.rm(file, { force: true });
        },
      };
    }
    const holder = await readPid(file);
    if (holder !== null && holder !== pid && isAlive(holder)) throw locked(holder);
    if (holder === pid && options.pid === undefined && heldHere.has(key)) throw locked(holder);
    // Stale (or unreadable, or our own pid left by an earlier life of this pid): take it over under the guard.
    if (!(await createLockFile(guard, pid))) {
      const taker = await readPid(guard);
      if (taker !== null && taker !== pid && isAlive(taker)) {
        await new Promise((resolve) => setTimeout(resolve, GUARD_WAIT_MS)); // someone else is taking over
        continue;
      }
      logger.warn('store: removing a takeover guard left by a process that is gone', { file: guard, pid: taker });
      await fs.rm(guard, { force: true });
      continue;
    }
    try {
      // Under the guard, LOCK can only change by a fresh create (link), never by another removal.
      const now = await readPid(file);
      if (now === holder) {
        logger.warn('store: taking over stale lock', { file, pid: holder });
        await fs.rm(file, { force: true });
      }
    } finally {
      await fs.rm(guard, { force: true });
    }
  }
  throw new ShoalError('LOCKED', `data dir ${dir}: could not take the lock ${file}`);
}
