import test from 'ava';
import { ShoalError } from '../../src/errors.js';
import { DEFAULT_STORE_OPTIONS, openStore } from '../../src/storage/store.js';
import { buf, faultyIo, open, tempDir, v } from './helpers.js';

test('put then get returns the value; a read right after put sees it before it is durable', async (t) => {
  const store = await open(t, tempDir(t), { fsync: 'always' });
  const p = store.put('k', buf('v1'), { version: v(1) });
  t.is(store.get('k')?.value?.toString(), 'v1');
  t.true(await p);
  t.deepEqual(store.get('k'), { ts: 1, node: 'n1', value: buf('v1') });
  t.is(store.get('missing'), undefined);
});

test('last writer wins on ts, then node; older or equal versions are no-ops resolving false', async (t) => {
  const store = await open(t, tempDir(t));
  t.true(await store.put('k', buf('a'), { version: v(10, 'n1') }));
  t.false(await store.put('k', buf('older'), { version: v(9, 'n9') }));
  t.false(await store.put('k', buf('same'), { version: v(10, 'n1') }));
  t.is(store.get('k')?.value?.toString(), 'a');
  t.true(await store.put('k', buf('tie-higher-node'), { version: v(10, 'n2') }));
  t.is(store.get('k')?.value?.toString(), 'tie-higher-node');
  // Out-of-order arrival: the newest version stays whatever the order.
  t.true(await store.apply('j', { ts: 5, node: 'n1', value: buf('new') }));
  t.false(await store.apply('j', { ts: 4, node: 'n1', value: buf('old') }));
  t.is(store.get('j')?.value?.toString(), 'new');
});

test('deletes are tombstones: hidden from get, visible to getEntry, and they shadow older writes', async (t) => {
  const store = await open(t, tempDir(t));
  await store.put('k', buf('a'), { version: v(1) });
  t.true(await store.delete('k', { version: v(2) }));
  t.is(store.get('k'), undefined);
  t.deepEqual(store.getEntry('k'), { ts: 2, node: 'n1', value: null });
  t.false(await store.put('k', buf('late'), { version: v(1, 'n9') }));
  t.is(store.get('k'), undefined);
  t.true(await store.delete('never-written', { version: v(3) }), 'a delete of an absent key is still recorded');
  t.is(store.stats().tombstones, 2);
  t.is(store.stats().keys, 0);
  t.true(await store.put('k', buf('again'), { version: v(3) }));
  t.is(store.get('k')?.value?.toString(), 'again');
  t.is(store.stats().tombstones, 1);
});

test('the store keeps its own copy of a value', async (t) => {
  const store = await open(t, tempDir(t));
  const value = buf('abc');
  await store.put('k', value, { version: v(1) });
  value[0] = 0x7a;
  t.is(store.get('k')?.value?.toString(), 'abc');
});

test('entries() lists values and tombstones', async (t) => {
  const store = await open(t, tempDir(t));
  await store.put('a', buf('1'), { version: v(1) });
  await store.delete('b', { version: v(2) });
  const all = new Map(store.entries());
  t.deepEqual([...all.keys()].sort(), ['a', 'b']);
  t.is(all.get('b')?.value, null);
});

test('limits: keys and values over the limit are refused with clear errors and change nothing', async (t) => {
  const store = await open(t, tempDir(t), { keyBytesMax: 8, valueBytesMax: 4 });
  const keyErr = await t.throwsAsync(store.put('123456789', buf('x'), { version: v(1) }));
  t.is((keyErr as ShoalError).code, 'KEY_TOO_LARGE');
  t.regex(keyErr?.message ?? '', /9 bytes; the limit is 8 \(keyBytesMax\)/);
  // Multi-byte: 3 characters, 9 UTF-8 bytes.
  t.is(((await t.throwsAsync(store.put('€€€', buf('x'), { version: v(1) }))) as ShoalError).code, 'KEY_TOO_LARGE');
  const valErr = await t.throwsAsync(store.put('k', buf('12345'), { version: v(1) }));
  t.is((valErr as ShoalError).code, 'VALUE_TOO_LARGE');
  t.regex(valErr?.message ?? '', /5 bytes; the limit is 4 \(valueBytesMax\)/);
  t.is(((await t.throwsAsync(store.apply('k', { ts: 1, node: 'n', value: buf('12345') }))) as ShoalError).code, 'VALUE_TOO_LARGE');
  t.true(await store.put('12345678', buf('1234'), { version: v(1) }), 'exactly at the limits is fine');
  t.is(store.stats().keys, 1);
});

test('bad versions and arguments are BAD_REQUEST', async (t) => {
  const store = await open(t, tempDir(t));
  const code = async (p: Promise<unknown>) => ((await t.throwsAsync(p)) as ShoalError).code;
  t.is(await code(store.put('k', buf('x'), { version: { ts: -1, node: 'n' } })), 'BAD_REQUEST');
  t.is(await code(store.put('k', buf('x'), { version: { ts: 1.5, node: 'n' } })), 'BAD_REQUEST');
  t.is(await code(store.put('k', buf('x'), { version: { ts: 1, node: '' } })), 'BAD_REQUEST');
  t.is(await code(store.put('k', 'str' as unknown as Buffer, { version: v(1) })), 'BAD_REQUEST');
  t.is(await code(store.put('k', buf('x'), { version: v(1), ttlMs: 0 })), 'BAD_REQUEST');
  t.is(store.stats().keys, 0);
});

test('defaults live in one object and invalid options are CONFIG errors', async (t) => {
  t.is(DEFAULT_STORE_OPTIONS.fsync, 'always');
  t.is(DEFAULT_STORE_OPTIONS.valueBytesMax, 1024 * 1024);
  const err = await t.throwsAsync(openStore(tempDir(t), { walSegmentBytesMax: 0 }));
  t.is((err as ShoalError).code, 'CONFIG');
  const err2 = await t.throwsAsync(openStore(tempDir(t), { fsync: 'sometimes' as 'always' }));
  t.is((err2 as ShoalError).code, 'CONFIG');
});

test('close flushes pending writes; afterwards every operation says CLOSED', async (t) => {
  const dir = tempDir(t);
  const store = await openStore(dir, { fsync: 'none' });
  const pending = store.put('k', buf('v'), { version: v(1) });
  await store.close();
  t.true(await pending);
  t.is(((await t.throwsAsync(store.put('x', buf('v'), { version: v(2) }))) as ShoalError).code, 'CLOSED');
  t.is((t.throws(() => store.get('k')) as ShoalError).code, 'CLOSED');
  await store.close(); // idempotent
  const again = await open(t, dir);
  t.is(again.get('k')?.value?.toString(), 'v');
});

for (const policy of ['always', 'interval', 'none'] as const) {
  test(`fsync ${policy}: acknowledged writes survive close and reopen`, async (t) => {
    const dir = tempDir(t);
    const store = await openStore(dir, { fsync: policy, fsyncIntervalMs: 5 });
    const writes = [];
    for (let i = 0; i < 300; i++) writes.push(store.put(`k${i}`, buf(`v${i}`), { version: v(i + 1) }));
    t.true((await Promise.all(writes)).every(Boolean));
    await store.close();
    const reopened = await open(t, dir);
    for (let i = 0; i < 300; i++) t.is(reopened.get(`k${i}`)?.value?.toString(), `v${i}`);
  });
}

test('group commit: writes of one event-loop turn share one fdatasync', async (t) => {
  const store = await open(t, tempDir(t), { fsync: 'always' });
  const before = store.stats().fsyncs;
  const writes = [];
  for (let i = 0; i < 100; i++) writes.push(store.put(`k${i}`, buf('x'), { version: v(1) }));
  await Promise.all(writes);
  t.is(store.stats().fsyncs - before, 1);
});

for (const failOn of ['fdatasync', 'write'] as const) {
  test(`a ${failOn} error rejects the affected writes with READ_ONLY, is never retried, and the store says why`, async (t) => {
    const io = faultyIo(failOn);
    const store = await open(t, tempDir(t), { fsync: 'always', io });
    t.true(await store.put('ok', buf('1'), { version: v(1) }));
    io.armed = true;
    const affected = [store.put('a', buf('2'), { version: v(2) }), store.put('b', buf('3'), { version: v(3) })];
    for (const p of affected) {
      const err = await t.throwsAsync(p);
      t.is((err as ShoalError).code, 'READ_ONLY');
    }
    // With every fdatasync failing, the second failed call is the one that makes the cut of the batch durable.
    t.is(io.calls, failOn === 'fdatasync' ? 2 : 1, 'the failed call is not retried');
    const stats = store.stats();
    t.true(stats.readOnly);
    t.regex(stats.readOnlyReason ?? '', failOn === 'write' ? /ENOSPC/ : /EIO/);
    const later = await t.throwsAsync(store.put('c', buf('4'), { version: v(4) }));
    t.is((later as ShoalError).code, 'READ_ONLY');
    t.is(((await t.throwsAsync(store.snapshot())) as ShoalError).code, 'READ_ONLY');
    t.is(store.get('ok')?.value?.toString(), '1', 'reads keep working');
    t.is(store.get('a'), undefined, 'a rejected write is undone, not left readable');
    t.is(store.getEntry('b'), undefined);
    t.is(io.calls, failOn === 'fdatasync' ? 2 : 1, 'nothing more was tried since');
  });
}

test('the WAL rotates into new segments at walSegmentBytesMax', async (t) => {
  const dir = tempDir(t);
  const store = await open(t, dir, { walSegmentBytesMax: 4096 });
  for (let i = 0; i < 20; i++) await store.put(`k${i}`, Buffer.alloc(1000, i), { version: v(i + 1) });
  t.true(store.stats().walSegments >= 4);
  await store.close();
  const reopened = await open(t, dir, { walSegmentBytesMax: 4096 });
  for (let i = 0; i < 20; i++) t.deepEqual(reopened.get(`k${i}`)?.value, Buffer.alloc(1000, i));
});

test('dropCopy removes exactly the given version without a tombstone, durably', async (t) => {
  const dir = tempDir(t);
  const store = await openStore(dir, { fsync: 'always' });
  await store.put('k', buf('v'), { version: v(5, 'n1') });
  await store.put('other', buf('v'), { version: v(5, 'n1') });
  t.false(await store.dropCopy!('k', v(4, 'n1')), 'an older version is not dropped');
  t.false(await store.dropCopy!('k', v(5, 'n2')), 'nor a different node');
  t.false(await store.dropCopy!('missing', v(5, 'n1')));
  t.true(await store.dropCopy!('k', v(5, 'n1')));
  t.is(store.getEntry('k'), undefined, 'no tombstone is left');
  t.is(store.stats().keys, 1);
  t.true(await store.put('k', buf('older-than-dropped'), { version: v(1) }), 'the key is free again');
  t.true(await store.dropCopy!('k', v(1)));
  await store.close();
  const again = await open(t, dir);
  t.is(again.getEntry('k'), undefined, 'the drop survives replay');
  t.is(again.get('other')?.value?.toString(), 'v');
});
