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
 *
 * Seams (for the whole-cluster simulator, src/sim/): every file access goes through `options.fs`
 * (default node's) and the wait between rounds through `options.clock`. Who holds the lock is a pid and
 * whether it still runs is `options.isAlive`: the simulator gives each process incarnation a pid of its
 * own and answers isAlive from its own table, so a LOCK left on a simulated disk by a crashed
 * incarnation is taken over by the next one exactly as a real restart takes over a dead pid's LOCK.
 * "Already open in this process" is tracked per FsIo object (a simulated disk's FsIo is one process
 * incarnation), so nodes sharing this Node.js process but not a disk never see each other's locks.
 */
import path from 'node:path';
import { type Clock, sleep, systemClock } from '../clock.js';
import { ShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import { type FsIo, fsyncDir, nodeFsIo, writeFileSynced } from './fsio.js';
import { LOCK_FILE } from './layout.js';
import { isProcessAlive } from './liveness.js';

export { isProcessAlive, procState } from './liveness.js';

export interface DirLock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** The pid written into LOCK (tests: several contenders in one process; the simulator: one per incarnation). Default process.pid. */
  pid?: number;
  /** Whether a pid names a running process (default: kill(pid, 0) and not a zombie). */
  isAlive?: (pid: number) => boolean;
  /** The file system of the data dir (default node's). */
  fs?: FsIo;
  /** Waits between rounds and names the temp files (default systemClock). */
  clock?: Clock;
}

/** Lock files held in this process, per file system (node's, or one simulated process incarnation's). */
const heldHere = new WeakMap<FsIo, Set<string>>();
/** Rounds of (create, find stale, take over) before giving up. */
const ATTEMPTS_MAX = 20;
/** Wait between rounds while another process holds the takeover guard. */
const GUARD_WAIT_MS = 10;

function held(fs: FsIo): Set<string> {
  let set = heldHere.get(fs);
  if (set === undefined) {
    set = new Set();
    heldHere.set(fs, set);
  }
  return set;
}

async function readPid(fs: FsIo, file: string): Promise<number | null> {
  try {
    const pid = Number.parseInt((await fs.readFile(file)).toString('utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Creates `file` holding `pid` atomically: temp file, fsync, link. False if `file` exists. */
async function createLockFile(fs: FsIo, clock: Clock, file: string, pid: number): Promise<boolean> {
  // Not *.tmp: recovery removes those, and it may run in the winner while a loser is still here.
  const nonce = Math.floor(clock.random() * 0x1_0000_0000).toString(16);
  const tmp = `${file}.${pid}.${nonce}.new`;
  try {
    await writeFileSynced(fs, tmp, Buffer.from(`${pid}\n`), 'wx');
    await fs.link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.unlink(tmp);
  }
}

export async function acquireLock(dir: string, logger: Logger, options: LockOptions = {}): Promise<DirLock> {
  const pid = options.pid ?? process.pid;
  const isAlive = options.isAlive ?? isProcessAlive;
  const fs = options.fs ?? nodeFsIo;
  const clock = options.clock ?? systemClock;
  const heldHere = held(fs);
  const file = path.join(dir, LOCK_FILE);
  const guard = `${file}.takeover`;
  const resolved = fs === nodeFsIo ? path.resolve(file) : path.posix.resolve('/', file);
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
    if (await createLockFile(fs, clock, file, pid)) {
      await fsyncDir(fs, dir);
      if (options.pid === undefined) heldHere.add(resolved);
      heldHere.add(key);
      return {
        release: async () => {
          if (options.pid === undefined) heldHere.delete(resolved);
          heldHere.delete(key);
          if ((await readPid(fs, file)) === pid) await fs.unlink(file);
        },
      };
    }
    const holder = await readPid(fs, file);
    if (holder !== null && holder !== pid && isAlive(holder)) throw locked(holder);
    if (holder === pid && options.pid === undefined && heldHere.has(key)) throw locked(holder);
    // Stale (or unreadable, or our own pid left by an earlier life of this pid): take it over under the guard.
    if (!(await createLockFile(fs, clock, guard, pid))) {
      const taker = await readPid(fs, guard);
      if (taker !== null && taker !== pid && isAlive(taker)) {
        await sleep(clock, GUARD_WAIT_MS); // someone else is taking over
        continue;
      }
      logger.warn('store: removing a takeover guard left by a process that is gone', { file: guard, pid: taker });
      await fs.unlink(guard);
      continue;
    }
    try {
      // Under the guard, LOCK can only change by a fresh create (link), never by another removal.
      const now = await readPid(fs, file);
      if (now === holder) {
        logger.warn('store: taking over stale lock', { file, pid: holder });
        await fs.unlink(file);
      }
    } finally {
      await fs.unlink(guard);
    }
  }
  throw new ShoalError('LOCKED', `data dir ${dir}: could not take the lock ${file}`);
}
