/**
 * The pipelined group commit of fsync `always` (src/storage/wal.ts): the next batch is written while
 * the previous one's fdatasync runs, every put is acknowledged only after an fdatasync that started
 * after its bytes were written, acknowledgements keep sequence order, and a failing write or
 * fdatasync fails exactly the puts it covers and every later one.
 */
import path from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import type { ShoalError } from '../../src/errors.js';
import { type FileIo, nodeFileIo } from '../../src/storage/fsio.js';
import { openStore } from '../../src/storage/store.js';
import { pathTrackingIo, tempDir, v } from './helpers.js';

const NO_AUTO_SNAPSHOTS = { snapshotWalBytes: 0, snapshotIntervalMs: 0 };

interface Held {
  release: () => void;
  fail: (code: string) => void;
}

/**
 * File operations whose WAL fdatasyncs wait until the test releases (or fails) them, and whose WAL
 * writes can be failed on cue. `events` logs 'write' (when a write completed) and 'sync-start' /
 * 'sync-done' in order.
 */
function heldIo() {
  const tracked = pathTrackingIo();
  const isWal = (fd: number) => path.basename(tracked.pathOf(fd)).startsWith('wal-');
  const state = {
    events: [] as string[],
    held: [] as Held[],
    hold: false,
    failNextWrite: false,
  };
  const io: FileIo = {
    open: tracked.open,
    close: tracked.close,
    ftruncate: nodeFileIo.ftruncate,
    write: async (fd, b, o, l, p) => {
      if (isWal(fd) && state.failNextWrite) {
        state.failNextWrite = false;
        state.events.push('write-failed');
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }
      const n = await nodeFileIo.write(fd, b, o, l, p);
      if (isWal(fd)) state.events.push('write');
      return n;
    },
    fdatasync: async (fd) => {
      if (!isWal(fd) || !state.hold) return nodeFileIo.fdatasync(fd);
      state.events.push('sync-start');
      let outcome: string | null = null;
      await new Promise<void>((resolve) => {
        state.held.push({
          release: () => resolve(),
          fail: (code) => {
            outcome = code;
            resolve();
          },
        });
      });
      if (outcome !== null) {
        state.events.push('sync-failed');
        throw Object.assign(new Error(`${outcome}: i/o error, fdatasync`), { code: outcome });
      }
      await nodeFileIo.fdatasync(fd);
      state.events.push('sync-done');
    },
  };
  return { io, state };
}

/** Waits (turn by turn, bounded) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A promise's settlement as it happens, so a test can assert it has not settled yet. */
function track<T>(p: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } {
  const s: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  p.then(
    (value) => Object.assign(s, { state: 'resolved', value }),
    (error: unknown) => Object.assign(s, { state: 'rejected', error }),
  );
  return s;
}

test('the next batch is written while the previous fdatasync runs, and acknowledged only after its own', async (t) => {
  const dir = tempDir(t);
  const { io, state } = heldIo();
  const store = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS, io });
  t.teardown(() => store.close());
  state.hold = true;
  const order: string[] = [];
  const a = [0, 1, 2].map((i) => track(store.put(`a${i}`, Buffer.from('A'), { version: v(1) }).finally(() => order.push(`a${i}`))));
  await until(() => state.held.length === 1, 'the fdatasync of batch A');
  const b = [0, 1].map((i) => track(store.put(`b${i}`, Buffer.from('B'), { version: v(1) }).finally(() => order.push(`b${i}`))));
  // Batch B reaches the file while A's fdatasync is still held.
  await until(() => state.events.filter((e) => e === 'write').length === 2, 'the write of batch B');
  t.deepEqual(state.events, ['write', 'sync-start', 'write']);
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  t.true([...a, ...b].every((p) => p.state === 'pending'), 'nothing is acknowledged before its fdatasync');
  t.is(state.held.length, 1, 'one fdatasync in flight at a time');
  state.held.shift()?.release();
  await until(() => a.every((p) => p.state === 'resolved'), 'batch A acknowledged');
  t.true(b.every((p) => p.state === 'pending'), 'B waits for an fdatasync that started after its write');
  await until(() => state.held.length === 1, 'the fdatasync of batch B');
  t.deepEqual(state.events, ['write', 'sync-start', 'write', 'sync-done', 'sync-start']);
  state.held.shift()?.release();
  await until(() => b.every((p) => p.state === 'resolved'), 'batch B acknowledged');
  t.deepEqual(order, ['a0', 'a1', 'a2', 'b0', 'b1'], 'acknowledgements keep sequence order');
  state.hold = false;
});

test('a failing fdatasync fails its batch and the one written behind it; earlier puts stay acknowledged and durable', async (t) => {
  const dir = tempDir(t);
  const { io, state } = heldIo();
  const store = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS, io });
  t.true(await store.put('kept', Buffer.from('old'), { version: v(1) }));
  state.hold = true;
  const a = [track(store.put('kept', Buffer.from('new'), { version: v(2) })), track(store.put('a1', Buffer.from('A'), { version: v(2) }))];
  await until(() => state.held.length === 1, 'the fdatasync of batch A');
  const b = [track(store.put('b0', Buffer.from('B'), { version: v(2) }))];
  await until(() => state.events.filter((e) => e === 'write').length === 2, 'the write of batch B');
  state.held.shift()?.fail('EIO');
  // The cut of the failed bytes is fdatasynced too (held as well): let it through.
  await until(() => state.held.length === 1, 'the fdatasync of the cut');
  state.hold = false;
  state.held.shift()?.release();
  await until(() => [...a, ...b].every((p) => p.state === 'rejected'), 'A and B rejected');
  for (const p of [...a, ...b]) t.is((p.error as ShoalError).code, 'READ_ONLY');
  t.is(store.get('kept')?.value?.toString(), 'old', 'the rejected overwrite is undone');
  t.is(store.getEntry('a1'), undefined);
  t.is(store.getEntry('b0'), undefined);
  const later = await t.throwsAsync(store.put('c', Buffer.from('C'), { version: v(3) }));
  t.is((later as ShoalError).code, 'READ_ONLY');
  await store.close();
  const reopened = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS });
  t.teardown(() => reopened.close());
  t.is(reopened.get('kept')?.value?.toString(), 'old');
  t.is(reopened.getEntry('a1'), undefined);
  t.is(reopened.getEntry('b0'), undefined);
});

test('a failing write behind a batch being synced: that batch is acknowledged once its fdatasync succeeds, the failed one and later ones are rejected', async (t) => {
  const dir = tempDir(t);
  const { io, state } = heldIo();
  const store = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS, io });
  state.hold = true;
  const a = [track(store.put('a0', Buffer.from('A'), { version: v(1) }))];
  await until(() => state.held.length === 1, 'the fdatasync of batch A');
  state.failNextWrite = true;
  const b = [track(store.put('b0', Buffer.from('B'), { version: v(1) }))];
  await until(() => state.events.includes('write-failed'), 'the failed write of batch B');
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  t.is(a[0].state, 'pending', 'A is still waiting for its fdatasync');
  t.is(b[0].state, 'pending', 'B is told only after A is settled and B is cut');
  state.hold = false;
  state.held.shift()?.release();
  await until(() => a[0].state !== 'pending' && b[0].state !== 'pending', 'both settled');
  t.is(a[0].state, 'resolved');
  t.is(a[0].value, true);
  t.is(b[0].state, 'rejected');
  t.is((b[0].error as ShoalError).code, 'READ_ONLY');
  t.is(store.get('a0')?.value?.toString(), 'A');
  t.is(store.getEntry('b0'), undefined);
  await store.close();
  const reopened = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS });
  t.teardown(() => reopened.close());
  t.is(reopened.get('a0')?.value?.toString(), 'A');
  t.is(reopened.getEntry('b0'), undefined);
});

/**
 * A stricter fdatasync than the real one may be: it covers only the WAL bytes whose write had
 * completed when it started. Every acknowledged put must have been covered by such an fdatasync.
 */
test('property: under random write and fdatasync latencies every acknowledged put was covered by an fdatasync started after its write, in order', async (t) => {
  await t.notThrowsAsync(fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 16 }),
      async (groups, delays) => {
        const dir = tempDir(t);
        let turn = 0;
        const delay = async () => {
          const n = delays[turn++ % delays.length];
          for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
        };
        let writtenBytes = 0;
        let coveredBytes = 0;
        const tracked = pathTrackingIo();
        const isWal = (fd: number) => path.basename(tracked.pathOf(fd)).startsWith('wal-');
        const io: FileIo = {
          open: tracked.open,
          close: tracked.close,
          ftruncate: nodeFileIo.ftruncate,
          write: async (fd, b, o, l, p) => {
            await delay();
            const n = await nodeFileIo.write(fd, b, o, l, p);
            if (isWal(fd)) writtenBytes += n;
            return n;
          },
          fdatasync: async (fd) => {
            const covers = writtenBytes;
            await delay();
            await nodeFileIo.fdatasync(fd);
            if (isWal(fd)) coveredBytes = Math.max(coveredBytes, covers);
          },
        };
        const store = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS, io, walSegmentBytesMax: 4096 });
        const acks: number[] = [];
        const all: Promise<void>[] = [];
        let seq = 0;
        let violations = 0;
        /** End of put n's record in the byte stream of the whole log (header 16 + payload 89 + key). */
        let logEnd = 0;
        for (const size of groups) {
          for (let i = 0; i < size; i++) {
            const n = seq++;
            const key = `k${n}`;
            logEnd += 16 + 89 + key.length;
            const end = logEnd;
            all.push(
              store.put(key, Buffer.alloc(64, n), { version: v(n + 1) }).then(() => {
                if (coveredBytes < end) violations += 1;
                acks.push(n);
              }),
            );
          }
          await delay();
        }
        await Promise.all(all);
        await store.close();
        return violations === 0 && acks.every((n, i) => n === i);
      },
    ),
    { numRuns: 40 },
  ));
});

test('a snapshot (a WAL rotation) while an fdatasync is in flight with a batch written behind it, then close: every batch is acknowledged, nothing is lost', async (t) => {
  const dir = tempDir(t);
  const { io, state } = heldIo();
  const store = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS, io });
  state.hold = true;
  const a = [0, 1].map((i) => track(store.put(`a${i}`, Buffer.from('A'), { version: v(1) })));
  await until(() => state.held.length === 1, 'the fdatasync of batch A');
  const b = [0, 1].map((i) => track(store.put(`b${i}`, Buffer.from('B'), { version: v(1) })));
  await until(() => state.events.filter((e) => e === 'write').length === 2, 'the write of batch B');
  // A snapshot rotates the WAL: the rotation waits for the sync in flight before opening a segment.
  const snapshot = store.snapshot();
  state.hold = false;
  state.held.shift()?.release();
  await snapshot;
  t.true([...a, ...b].every((p) => p.state === 'resolved'));
  // Close right after a put whose batch is being written or synced.
  const c = [track(store.put('c0', Buffer.from('C'), { version: v(1) }))];
  await store.close();
  t.true([...a, ...b, ...c].every((p) => p.state === 'resolved' && p.value === true));
  const reopened = await openStore(dir, { fsync: 'always', ...NO_AUTO_SNAPSHOTS });
  t.teardown(() => reopened.close());
  for (const k of ['a0', 'a1', 'b0', 'b1', 'c0']) t.truthy(reopened.get(k), `${k} survives`);
});
