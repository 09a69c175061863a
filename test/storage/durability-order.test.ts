/**
 * The durability order (write → fsync → rename → fsync dir → delete) of recovery's repairs and of
 * the persisted incarnation, recorded through the file-I/O seam.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { writeIncarnation } from '../../src/membership/membership.js';
import { checkFrame } from '../../src/storage/record.js';
import { openStore } from '../../src/storage/store.js';
import { opIndex, recordingIo, tempDir, v, walFiles } from './helpers.js';

test('repair of mid-log corruption: the set-aside copy is durable before the cut, and the cut is fsynced', async (t) => {
  const dir = tempDir(t);
  const store = await openStore(dir, { fsync: 'none' });
  for (let i = 0; i < 50; i++) await store.put(`k${i}`, Buffer.alloc(100, i), { version: v(i + 1) });
  await store.close();
  const name = walFiles(dir)[0];
  const file = path.join(dir, name);
  const bytes = fs.readFileSync(file);
  let off = 0;
  for (let i = 0; i < 10; i++) off += checkFrame(bytes, off, bytes.length, 1 << 30) as number;
  bytes[off + 20] ^= 0xff; // inside record #10
  fs.writeFileSync(file, bytes);

  const io = recordingIo(dir);
  const repaired = await openStore(dir, { fsync: 'none', repair: true, io });
  const ops = io.ops;
  const aside = `${name}.corrupt-${off}`;
  const asideSync = opIndex(ops, new RegExp(`^fdatasync ${aside}$`));
  const dirSync = opIndex(ops, /^fdatasync DIR$/, asideSync);
  const cut = opIndex(ops, new RegExp(`^ftruncate ${name}$`));
  const cutSync = opIndex(ops, new RegExp(`^fdatasync ${name}$`), cut);
  t.true(asideSync >= 0 && dirSync > asideSync, `the copy and its directory entry are synced:\n${ops.join('\n')}`);
  t.true(cut > dirSync, `the original is cut only after the copy is durable:\n${ops.join('\n')}`);
  t.true(cutSync > cut, `the cut is fsynced:\n${ops.join('\n')}`);
  t.is(repaired.stats().keys, 10);
  await repaired.close();
});

test('repair that sets later segments aside renames them and fsyncs the directory', async (t) => {
  const dir = tempDir(t);
  const store = await openStore(dir, { fsync: 'none', walSegmentBytesMax: 2048 });
  for (let i = 0; i < 40; i++) await store.put(`k${i}`, Buffer.alloc(200, i), { version: v(i + 1) });
  await store.close();
  const segs = walFiles(dir);
  t.true(segs.length >= 3);
  const first = path.join(dir, segs[0]);
  const bytes = fs.readFileSync(first);
  bytes[bytes.length - 5] ^= 0x55;
  fs.writeFileSync(first, bytes);
  const io = recordingIo(dir);
  const repaired = await openStore(dir, { fsync: 'none', repair: true, io });
  const ops = io.ops;
  const lastRename = ops.map((op, i) => (op.startsWith('rename ') ? i : -1)).reduce((a, b) => Math.max(a, b), -1);
  t.true(lastRename >= 0, ops.join('\n'));
  t.true(ops.includes(`rename ${segs[1]} ${segs[1]}.corrupt`));
  t.true(opIndex(ops, /^fdatasync DIR$/, lastRename) > lastRename, `the renames are made durable:\n${ops.join('\n')}`);
  await repaired.close();
});

test('the persisted incarnation: temp file fsynced, renamed, then the directory fsynced', async (t) => {
  const dir = tempDir(t);
  const io = recordingIo(dir);
  await writeIncarnation(dir, 7, io);
  const ops = io.ops;
  const fileSync = opIndex(ops, /^fdatasync membership\.json\..*\.tmp$/);
  const renamed = opIndex(ops, /^rename membership\.json\..*\.tmp membership\.json$/, fileSync);
  const dirSync = opIndex(ops, /^fdatasync DIR$/, renamed);
  t.true(fileSync >= 0 && renamed > fileSync && dirSync > renamed, ops.join('\n'));
  t.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'membership.json'), 'utf8')), { incarnation: 7 });
});
