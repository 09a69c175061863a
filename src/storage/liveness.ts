/**
 * Whether a process id names a running process: the default liveness check of the data-dir lock
 * (src/storage/lock.ts) and of `shoal local`. Kept apart from the lock because it reads /proc, which
 * is about processes, not the data dir: the data dir is only ever reached through an FsIo.
 */
import { readFileSync } from 'node:fs';

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
