import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import type { ShoalError } from '../../src/errors.js';
import { nullLogger } from '../../src/log.js';
import { acquireLock, type DirLock, isProcessAlive, procState } from '../../src/storage/lock.js';
import { openStore } from '../../src/storage/store.js';
import { buf, open, tempDir, v } from './helpers.js';

test('a second open of the same dir in this process is LOCKED', async (t) => {
  const dir = tempDir(t);
  await open(t, dir);
  const err = await t.throwsAsync(openStore(dir, { fsync: 'none' }));
  t.is((err as ShoalError).code, 'LOCKED');
});

test('a dir held by another live process is LOCKED naming its pid', async (t) => {
  const dir = tempDir(t);
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  fs.writeFileSync(path.join(dir, 'LOCK'), `${child.pid}\n`);
  const err = await t.throwsAsync(openStore(dir, { fsync: 'none' }));
  t.is((err as ShoalError).code, 'LOCKED');
  t.regex(err?.message ?? '', new RegExp(`process ${child.pid}`));
  t.is((err as ShoalError).details?.pid, child.pid);
});

test('a stale lock of a dead process is taken over; close releases the lock', async (t) => {
  const dir = tempDir(t);
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  fs.writeFileSync(path.join(dir, 'LOCK'), `${child.pid}\n`);
  const store = await openStore(dir, { fsync: 'none' });
  t.is(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8').trim(), String(process.pid));
  await store.put('k', buf('v'), { version: v(1) });
  await store.close();
  t.false(fs.existsSync(path.join(dir, 'LOCK')));
  const again = await open(t, dir);
  t.is(again.get('k')?.value?.toString(), 'v');
});

const hasProc = procState(process.pid) !== null;
if (!hasProc) console.log('lock.test: no /proc here, the zombie test is skipped (detection falls back to kill(pid, 0))');
(hasProc ? test : test.skip)('a lock held by a zombie (killed, not yet reaped by its parent) is taken over', async (t) => {
  const dir = tempDir(t);
  // sh starts a short sleep in the background, prints its pid, then becomes a long sleep that never
  // reaps it: the short sleep stays a zombie until the long one ends.
  const parent = spawn('/bin/sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.teardown(() => parent.kill('SIGKILL'));
  const [line] = (await once(parent.stdout, 'data')) as [Buffer];
  const zombie = Number.parseInt(line.toString().trim(), 10);
  const deadline = Date.now() + 5_000;
  while (procState(zombie) !== 'Z' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.is(procState(zombie), 'Z', 'the child is a zombie');
  t.notThrows(() => process.kill(zombie, 0), 'kill(pid, 0) still succeeds for a zombie');
  t.false(isProcessAlive(zombie));
  fs.writeFileSync(path.join(dir, 'LOCK'), `${zombie}\n`);
  const store = await open(t, dir);
  t.is(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8').trim(), String(process.pid));
  await store.close();
});

test('contenders racing to take over a stale lock: exactly one wins, every round', async (t) => {
  const dir = tempDir(t);
  const lockFile = path.join(dir, 'LOCK');
  for (let round = 0; round < 40; round++) {
    fs.writeFileSync(lockFile, '999999\n'); // a crashed holder
    const contenders = [101, 102, 103, 104, 105];
    const alive = new Set(contenders);
    const results = await Promise.allSettled(contenders.map((pid) => acquireLock(dir, nullLogger, { pid, isAlive: (p) => alive.has(p) })));
    const won = results.filter((r) => r.status === 'fulfilled');
    t.is(won.length, 1, `round ${round}: ${won.length} contenders hold the lock`);
    for (const r of results) if (r.status === 'rejected') t.is((r.reason as ShoalError).code, 'LOCKED');
    const holder = Number(fs.readFileSync(lockFile, 'utf8'));
    t.true(alive.has(holder));
    await (won[0] as PromiseFulfilledResult<DirLock>).value.release();
    t.false(fs.existsSync(lockFile));
    t.deepEqual(fs.readdirSync(dir), [], 'no temp or guard file is left');
  }
});
