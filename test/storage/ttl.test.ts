import test from 'ava';
import { buf, FakeClock, open, tempDir, v } from './helpers.js';

test('ttlMs becomes an absolute expiresAtMs; get hides the key once it is due (lazy check)', async (t) => {
  const clock = new FakeClock();
  const store = await open(t, tempDir(t), { clock, expiryIntervalMs: 3_600_000 });
  await store.put('k', buf('v'), { version: v(1), ttlMs: 1000 });
  t.is(store.get('k')?.expiresAtMs, clock.ms + 1000);
  clock.advance(999);
  t.is(store.get('k')?.value?.toString(), 'v');
  clock.advance(1);
  t.is(store.get('k'), undefined, 'hidden exactly at expiresAtMs even before active expiry ran');
  t.truthy(store.getEntry('k'), 'the raw entry stays until collected');
});

test('expiresAtMs wins over ttlMs; apply keeps the expiry of a replicated entry', async (t) => {
  const clock = new FakeClock();
  const store = await open(t, tempDir(t), { clock });
  await store.put('a', buf('v'), { version: v(1), ttlMs: 10, expiresAtMs: clock.ms + 5000 });
  t.is(store.get('a')?.expiresAtMs, clock.ms + 5000);
  await store.apply('b', { ts: 1, node: 'n2', value: buf('v'), expiresAtMs: clock.ms + 7 });
  clock.advance(7);
  t.is(store.get('b'), undefined);
});

test('active expiry removes due keys nobody reads, at most expiryBatchMax per tick', async (t) => {
  const clock = new FakeClock();
  const store = await open(t, tempDir(t), { clock, expiryBatchMax: 10, expiryIntervalMs: 3_600_000 });
  for (let i = 0; i < 25; i++) await store.put(`k${i}`, buf('v'), { version: v(1), ttlMs: 100 + i });
  await store.put('forever', buf('v'), { version: v(1) });
  const s = store as unknown as { expireDue(): number };
  t.is(s.expireDue(), 0, 'nothing is due yet');
  clock.advance(1000);
  t.is(s.expireDue(), 10);
  t.is(s.expireDue(), 10);
  t.is(s.expireDue(), 5);
  t.is(s.expireDue(), 0);
  const stats = store.stats();
  t.is(stats.keys, 1);
  t.is(stats.expired, 25);
  t.is(stats.valueBytes, 1);
  t.is(store.getEntry('k3'), undefined);
});

test('overwriting a key with a later TTL or none keeps it past the old expiry', async (t) => {
  const clock = new FakeClock();
  const store = await open(t, tempDir(t), { clock, expiryIntervalMs: 3_600_000 });
  const s = store as unknown as { expireDue(): number };
  await store.put('a', buf('1'), { version: v(1), ttlMs: 100 });
  await store.put('a', buf('2'), { version: v(2) });
  await store.put('b', buf('1'), { version: v(1), ttlMs: 100 });
  await store.put('b', buf('2'), { version: v(2), ttlMs: 10_000 });
  clock.advance(500);
  t.is(s.expireDue(), 0, 'stale heap items are dropped without removing anything');
  t.is(store.get('a')?.value?.toString(), '2');
  t.is(store.get('b')?.value?.toString(), '2');
  clock.advance(10_000);
  t.is(s.expireDue(), 1);
  t.is(store.get('b'), undefined);
});

test('the timer runs active expiry on its own', async (t) => {
  const clock = new FakeClock();
  const store = await open(t, tempDir(t), { clock, expiryIntervalMs: 5 });
  await store.put('k', buf('v'), { version: v(1), ttlMs: 10 });
  clock.advance(20);
  for (let i = 0; i < 200 && store.getEntry('k') !== undefined; i++) await new Promise((r) => setTimeout(r, 5));
  t.is(store.getEntry('k'), undefined);
  t.is(store.stats().expired, 1);
});

test('tombstones are collected after tombstoneGraceMs, not before', async (t) => {
  const clock = new FakeClock();
  const store = await open(t, tempDir(t), { clock, tombstoneGraceMs: 1000, expiryIntervalMs: 3_600_000 });
  const s = store as unknown as { expireDue(): number };
  await store.put('k', buf('v'), { version: v(1) });
  await store.delete('k', { version: v(2) });
  clock.advance(999);
  s.expireDue();
  t.deepEqual(store.getEntry('k'), { ts: 2, node: 'n1', value: null });
  clock.advance(1);
  t.is(s.expireDue(), 1);
  t.is(store.getEntry('k'), undefined);
  t.is(store.stats().tombstones, 0);
  t.is(store.stats().expired, 0, 'collected tombstones are not counted as expired keys');
});

test('expiry and tombstone grace survive a restart (absolute times are persisted)', async (t) => {
  const clock = new FakeClock();
  const dir = tempDir(t);
  const opts = { clock, tombstoneGraceMs: 1000, expiryIntervalMs: 3_600_000 };
  let store = await open(t, dir, opts);
  await store.put('ttl', buf('v'), { version: v(1), ttlMs: 500 });
  await store.put('gone', buf('v'), { version: v(1) });
  await store.delete('gone', { version: v(2) });
  await store.close();
  clock.advance(600);
  store = await open(t, dir, opts);
  t.is(store.getEntry('ttl'), undefined, 'expired while down: not loaded');
  t.truthy(store.getEntry('gone'), 'tombstone still within its grace');
  clock.advance(400);
  t.is((store as unknown as { expireDue(): number }).expireDue(), 1);
  t.is(store.getEntry('gone'), undefined);
  // Same through a snapshot.
  await store.put('ttl2', buf('v'), { version: v(3), ttlMs: 500 });
  await store.delete('gone2', { version: v(3) });
  await store.snapshot();
  await store.close();
  clock.advance(200);
  store = await open(t, dir, opts);
  t.is(store.get('ttl2')?.expiresAtMs, clock.ms + 300);
  clock.advance(1000);
  t.is((store as unknown as { expireDue(): number }).expireDue(), 2);
});
