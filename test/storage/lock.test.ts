import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import type { ShoalError } from '../../src/errors.js';
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
