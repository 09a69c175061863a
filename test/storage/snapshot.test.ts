import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { ShoalError } from '../../src/errors.js';
import { decodeHeader, SNAPSHOT_HEADER_BYTES } from '../../src/storage/snapshot.js';
import { openStore } from '../../src/storage/store.js';
import { buf, open, snapFiles, tempDir, v, walFiles } from './helpers.js';

test('a snapshot has a verified header and restores values and tombstones', async (t) => {
  const dir = tempDir(t);
  const store = await openStore(dir, { fsync: 'always' });
  for (let i = 0; i < 50; i++) await store.put(`k${i}`, buf(`v${i}`), { version: v(i + 1) });
  await store.delete('k0', { version: v(100) });
  await store.snapshot();
  t.is(store.stats().snapshots, 1);
  t.not(store.stats().lastSnapshotAtMs, null);
  await store.close();
  const [snap] = snapFiles(dir);
  const header = decodeHeader(fs.readFileSync(path.join(dir, snap)).subarray(0, SNAPSHOT_HEADER_BYTES), snap);
  t.is(header.count, 50);
  t.is(header.seq, 51);
  const again = await open(t, dir);
  t.deepEqual(again.getEntry('k0'), { ts: 100, node: 'n1', value: null });
  t.is(again.get('k49')?.value?.toString(), 'v49');
  t.is(again.stats().keys, 49);
});

test('keeps the previous snapshot and deletes the WAL segments both snapshots cover', async (t) => {
  const dir = tempDir(t);
  const store = await open(t, dir, { walSegmentBytesMax: 1024 });
  let ts = 1;
  const fill = async () => {
    for (let i = 0; i < 20; i++) await store.put(`k${i}`, Buffer.alloc(100, ts), { version: v(ts++) });
  };
  await fill();
  await store.snapshot();
  const walAfterFirst = walFiles(dir);
  await fill();
  await store.snapshot();
  await fill();
  await store.snapshot();
  t.is(snapFiles(dir).length, 2, 'two snapshots kept');
  const oldest = walFiles(dir)[0];
  t.false(walAfterFirst.includes(oldest), 'segments covered by the fallback snapshot are gone');
  await store.close();
  const again = await open(t, dir, { walSegmentBytesMax: 1024 });
  for (let i = 0; i < 20; i++) t.deepEqual(again.get(`k${i}`)?.value, Buffer.alloc(100, ts - 20 + i));
});

test('a corrupt newest snapshot falls back to the previous one plus the WAL', async (t) => {
  const dir = tempDir(t);
  const store = await openStore(dir, { fsync: 'none' });
  await store.put('a', buf('1'), { version: v(1) });
  await store.snapshot();
  await store.put('b', buf('2'), { version: v(2) });
  await store.snapshot();
  await store.put('c', buf('3'), { version: v(3) });
  await store.close();
  const newest = path.join(dir, snapFiles(dir)[1]);
  const bytes = fs.readFileSync(newest);
  bytes[bytes.length - 3] ^= 0x40;
  fs.writeFileSync(newest, bytes);
  const again = await open(t, dir);
  t.deepEqual(['a', 'b', 'c'].map((k) => again.get(k)?.value?.toString()), ['1', '2', '3']);
});

test('writes continue during a snapshot and all of them survive a restart', async (t) => {
  const dir = tempDir(t);
  const store = await openStore(dir, { fsync: 'none', snapshotChunkBytes: 4096, snapshotSliceMs: 1 });
  for (let i = 0; i < 3000; i++) void store.put(`k${i}`, Buffer.alloc(64, i % 256), { version: v(1) });
  const snap = store.snapshot();
  const during = [];
  for (let i = 0; i < 3000; i++) {
    during.push(store.put(`k${i}`, buf(`new${i}`), { version: v(2) }));
    if (i % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  await Promise.all([snap, ...during]);
  await store.delete('k5', { version: v(3) });
  await store.close();
  const again = await open(t, dir);
  t.is(again.get('k5'), undefined);
  for (let i = 0; i < 3000; i++) if (i !== 5) t.is(again.get(`k${i}`)?.value?.toString(), `new${i}`);
});

test('snapshots start by themselves after snapshotWalBytes of WAL; leftover temp files are removed', async (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'snap-0000000000000099.snap.tmp'), 'half a snapshot');
  const store = await open(t, dir, { snapshotWalBytes: 10_000 });
  t.false(fs.existsSync(path.join(dir, 'snap-0000000000000099.snap.tmp')));
  for (let i = 0; i < 200; i++) await store.put(`k${i}`, Buffer.alloc(100), { version: v(1) });
  for (let i = 0; i < 100 && store.stats().snapshots === 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.true(store.stats().snapshots >= 1);
  t.true(snapFiles(dir).length >= 1);
});

test('a snapshot file with a bad header is skipped, and with no usable snapshot a trimmed WAL is CORRUPT', async (t) => {
  const dir = tempDir(t);
  const store = await openStore(dir, { fsync: 'none', walSegmentBytesMax: 512 });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 10; i++) await store.put(`k${i}`, Buffer.alloc(100), { version: v(round * 10 + i + 1) });
    await store.snapshot();
  }
  await store.close();
  for (const s of snapFiles(dir)) fs.writeFileSync(path.join(dir, s), 'garbage');
  const err = (await t.throwsAsync(openStore(dir, { fsync: 'none' }))) as ShoalError;
  t.is(err.code, 'CORRUPT');
  t.regex(err.message, /missing/);
});

test('a snapshot finishes while a writer never pauses (no waiting for an idle log)', async (t) => {
  const dir = tempDir(t);
  const store = await open(t, dir, { fsync: 'always' });
  for (let i = 0; i < 500; i++) void store.put(`k${i}`, buf('v'), { version: v(1) });
  let done = false;
  let writes = 0;
  const writer = (async () => {
    while (!done && writes < 5000) await store.put(`w${writes % 50}`, buf(`${writes}`), { version: v(10 + writes++) });
  })();
  await store.snapshot();
  done = true;
  await writer;
  t.true(writes < 5000, 'the snapshot resolved while the writer was still going');
  t.is(store.stats().snapshots, 1);
});
