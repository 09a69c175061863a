/**
 * The data-directory lock: a LOCK file created exclusively, holding the owner's pid. A second open
 * of the same directory fails with LOCKED naming the holder; a lock left by a process that no longer
 * exists (crash, SIGKILL) is taken over. A directory is also refused a second time in the same
 * process, since two stores appending to one WAL would corrupt it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import { LOCK_FILE } from './layout.js';

export interface DirLock {
  release(): Promise<void>;
}

const heldHere = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

async function readHolder(file: string): Promise<number | null> {
  try {
    const pid = Number.parseInt((await fs.readFile(file, 'utf8')).trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function acquireLock(dir: string, logger: Logger): Promise<DirLock> {
  const file = path.join(dir, LOCK_FILE);
  const resolved = path.resolve(file);
  if (heldHere.has(resolved)) {
    throw new ShoalError('LOCKED', `data dir ${dir} is already open in this process (pid ${process.pid})`, {
      pid: process.pid,
    });
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await fs.open(file, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      heldHere.add(resolved);
      return {
        release: async () => {
          heldHere.delete(resolved);
          if ((await readHolder(file)) === process.pid) await fs.rm(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(file);
    if (holder !== null && holder !== process.pid && isAlive(holder)) {
      throw new ShoalError(
        'LOCKED',
        `data dir ${dir} is locked by process ${holder}; stop it first (or remove ${file} if that pid is not a Shoal node)`,
        { pid: holder },
      );
    }
    logger.warn('store: taking over stale lock', { file, pid: holder });
    await fs.rm(file, { force: true });
  }
  throw new ShoalError('LOCKED', `data dir ${dir}: could not take the lock ${file}`);
}
