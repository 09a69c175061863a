/**
 * Disk faults: a real full file system (a 2 MiB tmpfs, when root may mount one) and injected write
 * and fdatasync errors. What a writer was told must hold in memory and after reopening: acknowledged
 * writes are there, rejected ones are not, and recovery finds nothing to repair.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import type { ShoalError } from '../../src/errors.js';
import { nodeFileIo, type FileIo } from '../../src/storage/fsio.js';
import { openStore } from '../../src/storage/store.js';
import type { Store } from '../../src/storage/types.js';
import { faultyIo, pathTrackingIo, snapFiles, tempDir, v, walFiles } from './helpers.js';
import { mountTmpfs, recordingLogger, tmpfsUnavailable } from './tmpfs.js';

const unavailable = tmpfsUnavailable();
if (unavailable !== null) console.log(`disk-faults: the tmpfs tests are skipped: ${unavailable}`);
const tmpfsTest = unavailable === null ? test : test.skip;

const TMPFS_BYTES = 2 * 1024 * 1024;
const NO_AUTO_SNAPSHOTS = { snapshotWalBytes: 0, snapshotIntervalMs: 0 };

/** A value that names its key and round, so a mixed-up or stale value cannot pass for the right one. */
function value(key: string, round: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes, round % 251);
  b.write(`${key}@${round}`);
  return b;
}

/** Reopens `dir` and asserts that recovery logged nothing (no torn tail, no corruption, no bad snapshot). */
async function reopenClean(t: import('ava').ExecutionContext, dir: string): Promise<Store> {
  const logger = recordingLogger();
  const store = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS, logger });
  t.teardown(() => store.close());
  t.deepEqual(logger.lines, [], 'recovery reports no torn tail, corruption or bad snapshot');
  return store;
}

for (const fsync of ['always', 'none'] as const) {
  tmpfsTest(`disk full (fsync ${fsync}): the put that hits ENOSPC is rejected and undone, later writes are READ_ONLY, reads go on, nothing is lost`, async (t) => {
    const mnt = mountTmpfs(t, TMPFS_BYTES);
    const dir = path.join(mnt, 'data');
    const ballast = path.join(mnt, 'ballast');
    fs.writeFileSync(ballast, Buffer.alloc(256 * 1024)); // deleted later to free space
    const store = await openStore(dir, { fsync, ...NO_AUTO_SNAPSHOTS });
    t.teardown(() => store.close());

    // Each round is one group commit: two new keys and an overwrite of "hot" (so the undo must put
    // the previous value back, not just remove the key).
    const acked = new Map<string, Buffer>();
    const rejected = new Map<string, Buffer>();
    let failure: ShoalError | null = null;
    for (let round = 0; round < 1000 && failure === null; round++) {
      const writes: Array<[string, Buffer]> = [`a${round}`, `b${round}`, 'hot'].map((k) => [k, value(k, round, 8 * 1024)]);
      const results = await Promise.allSettled(writes.map(([k, val]) => store.put(k, val, { version: v(round + 1) })));
      results.forEach((r, i) => {
        const [k, val] = writes[i];
        if (r.status === 'fulfilled') acked.set(k, val);
        else {
          rejected.set(k, val);
          failure = r.reason as ShoalError;
        }
      });
    }
    const err = failure as ShoalError | null;
    if (err === null) return t.fail('the disk never filled up');
    t.true(acked.size > 100, `${acked.size} writes fit before the disk was full`);
    t.is(err.code, 'READ_ONLY');
    t.regex(err.message, /disk full \(ENOSPC\)/);
    t.regex(err.message, /not stored/);

    // Not visible: no half-applied state in memory.
    for (const [k, val] of rejected) {
      const now = store.get(k)?.value;
      t.false(now != null && now.equals(val), `rejected ${k} is not readable`);
      if (k !== 'hot') t.is(store.getEntry(k), undefined);
    }
    t.deepEqual(store.get('hot')?.value, acked.get('hot'), 'the overwrite is undone to the last acknowledged value');

    // Later writes say why; reads of everything acknowledged go on.
    const later = (await t.throwsAsync(store.put('later', Buffer.from('x'), { version: v(5000) }))) as ShoalError;
    t.is(later.code, 'READ_ONLY');
    t.regex(later.message, /ENOSPC/);
    t.is(((await t.throwsAsync(store.delete('a0', { version: v(5001) }))) as ShoalError).code, 'READ_ONLY');
    const stats = store.stats();
    t.true(stats.readOnly);
    t.regex(stats.readOnlyReason ?? '', /disk full \(ENOSPC\)/);
    t.is(stats.keys, acked.size);
    for (const [k, val] of acked) t.deepEqual(store.get(k)?.value, val, `acknowledged ${k} still reads`);

    // Free space, reopen: exactly the acknowledged writes, and writable again.
    await store.close();
    fs.rmSync(ballast);
    const reopened = await reopenClean(t, dir);
    t.false(reopened.stats().readOnly);
    t.is(reopened.stats().keys, acked.size);
    for (const [k, val] of acked) t.deepEqual(reopened.get(k)?.value, val, `acknowledged ${k} survives`);
    for (const k of rejected.keys()) if (k !== 'hot') t.is(reopened.getEntry(k), undefined, `rejected ${k} stays gone`);
    t.true(await reopened.put('after', Buffer.from('space again'), { version: v(6000) }));
  });
}

tmpfsTest('disk full during a snapshot: temp file removed, previous snapshot and WAL intact, store stays writable', async (t) => {
  const mnt = mountTmpfs(t, TMPFS_BYTES);
  const dir = path.join(mnt, 'data');
  const store = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS });
  t.teardown(() => store.close());
  const keys = Array.from({ length: 64 }, (_, i) => `k${i}`);
  for (const k of keys) await store.put(k, value(k, 1, 4 * 1024), { version: v(1) });
  await store.snapshot();
  const [firstSnapshot] = snapFiles(dir);
  const snapshotBytes = fs.readFileSync(path.join(dir, firstSnapshot));
  // 64 × 14 KiB more WAL: about 1.4 MiB used, and the next snapshot needs about 0.9 MiB more.
  for (const k of keys) await store.put(k, value(k, 2, 14 * 1024), { version: v(2) });
  const walBefore = walFiles(dir);

  const err = await t.throwsAsync(store.snapshot());
  t.regex(err.message, /ENOSPC/);
  t.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'the temp file is removed');
  t.deepEqual(snapFiles(dir), [firstSnapshot]);
  t.true(fs.readFileSync(path.join(dir, firstSnapshot)).equals(snapshotBytes), 'the previous snapshot is untouched');
  t.true(walBefore.every((name) => walFiles(dir).includes(name)), 'no WAL segment was deleted');
  const stats = store.stats();
  t.false(stats.readOnly, 'a failed snapshot does not make the store read-only');
  t.is(stats.snapshotFailures, 1);
  t.regex(stats.lastSnapshotError ?? '', /ENOSPC/);
  t.true(await store.put('after', Buffer.from('still writable'), { version: v(3) }));

  await store.close();
  const reopened = await reopenClean(t, dir);
  for (const k of keys) t.deepEqual(reopened.get(k)?.value, value(k, 2, 14 * 1024));
  t.is(reopened.get('after')?.value?.toString(), 'still writable');
});

for (const failOn of ['fdatasync', 'short-write'] as const) {
  test(`an injected ${failOn === 'fdatasync' ? 'EIO on fdatasync' : 'short write then ENOSPC'}: the batch is cut off the WAL and undone, and stays gone after reopening`, async (t) => {
    const dir = tempDir(t);
    const io = faultyIo(failOn);
    const store = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS, io });
    t.teardown(() => store.close());
    t.true(await store.put('kept', Buffer.from('old'), { version: v(1) }));
    io.armed = true;
    // One batch of many records: half of it reaches the file in the short-write case.
    const batch = Array.from({ length: 20 }, (_, i) => store.put(`lost${i}`, Buffer.alloc(100, i), { version: v(2) }));
    batch.push(store.put('kept', Buffer.from('new'), { version: v(2) }));
    const errors = await Promise.all(batch.map((p) => t.throwsAsync(p)));
    t.true(errors.every((e) => (e as ShoalError).code === 'READ_ONLY'));
    t.regex(errors[0].message, failOn === 'fdatasync' ? /I\/O error \(EIO\)/ : /disk full \(ENOSPC\)/);
    // With every fdatasync failing, the second failed call is the one that makes the cut of the batch durable.
    t.is(io.calls, failOn === 'fdatasync' ? 2 : 1, 'the failed call is not retried');
    t.is(store.get('kept')?.value?.toString(), 'old');
    t.is(store.getEntry('lost0'), undefined);
    await store.close();
    const reopened = await reopenClean(t, dir);
    t.is(reopened.get('kept')?.value?.toString(), 'old');
    for (let i = 0; i < 20; i++) t.is(reopened.getEntry(`lost${i}`), undefined);
  });
}

/** File operations that hold a snapshot's first body write and fail the WAL's next fdatasync, on cue. */
function gatedIo() {
  const tracked = pathTrackingIo();
  const cue = <T>() => {
    let resolve!: (v: T) => void;
    const promise = new Promise<T>((r) => (resolve = r));
    return { promise, resolve };
  };
  const state = {
    holdSnapshot: false,
    failWalSync: false,
    snapshotHeld: cue<void>(),
    releaseSnapshot: cue<void>(),
    walSyncHeld: cue<void>(),
    releaseWalSync: cue<void>(),
  };
  const io: FileIo = {
    open: tracked.open,
    close: tracked.close,
    ftruncate: nodeFileIo.ftruncate,
    write: async (fd, b, o, l, p) => {
      if (state.holdSnapshot && tracked.pathOf(fd).endsWith('.tmp')) {
        state.holdSnapshot = false;
        state.snapshotHeld.resolve();
        await state.releaseSnapshot.promise;
      }
      return nodeFileIo.write(fd, b, o, l, p);
    },
    fdatasync: async (fd) => {
      if (state.failWalSync && path.basename(tracked.pathOf(fd)).startsWith('wal-')) {
        state.walSyncHeld.resolve();
        await state.releaseWalSync.promise;
        throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      }
      return nodeFileIo.fdatasync(fd);
    },
  };
  return { io, state };
}

test('a snapshot that serialized a write the WAL then rejected is deleted, so the write does not come back', async (t) => {
  const dir = tempDir(t);
  const { io, state } = gatedIo();
  const store = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS, snapshotChunkBytes: 64, io });
  t.teardown(() => store.close());
  for (let i = 0; i < 10; i++) await store.put(`k${i}`, Buffer.alloc(100, i), { version: v(1) });
  state.holdSnapshot = true;
  const snapshot = store.snapshot();
  await state.snapshotHeld.promise; // the snapshot is iterating the map
  state.failWalSync = true;
  const doomed = store.put('doomed', Buffer.from('rejected later'), { version: v(2) });
  await state.walSyncHeld.promise; // its record is written, its fdatasync pending
  state.releaseSnapshot.resolve();
  await snapshot; // the snapshot includes "doomed" (added to the map before iteration reached the end)
  t.is(snapFiles(dir).length, 1);
  state.releaseWalSync.resolve();
  t.is(((await t.throwsAsync(doomed)) as ShoalError).code, 'READ_ONLY');
  t.is(store.getEntry('doomed'), undefined);
  const deadline = Date.now() + 5000;
  while (snapFiles(dir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(snapFiles(dir), [], 'the snapshot holding the rejected write is removed');
  await store.close();
  const reopened = await reopenClean(t, dir);
  t.is(reopened.getEntry('doomed'), undefined);
  for (let i = 0; i < 10; i++) t.deepEqual(reopened.get(`k${i}`)?.value, Buffer.alloc(100, i));
});
