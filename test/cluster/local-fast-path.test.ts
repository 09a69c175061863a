/**
 * The coordinator's fast paths (src/cluster/coordinator.ts): a read needing one reply of a key this
 * node owns is answered from the local store at once (readLiveNow), and an N = 1 write whose owner is
 * this node goes straight to its store. Each must give the round's answer, including its errors and
 * hints when the local store refuses, without applying the write twice.
 */
import test from 'ava';
import { ShoalError } from '../../src/errors.js';
import type { Entry } from '../../src/storage/types.js';
import { startCluster, str, type TestCluster } from './helpers/harness.js';

/** Counts the owner's store applies and makes them fail while `failing` is set. */
function instrument(c: TestCluster, id: string): { applies: () => number; fail: (e: ShoalError | null) => void } {
  const store = c.get(id).store;
  const apply = store.apply.bind(store);
  let applies = 0;
  let failing: ShoalError | null = null;
  store.apply = (key: string, entry: Entry): Promise<boolean> => {
    applies += 1;
    if (failing !== null) return Promise.reject(failing);
    return apply(key, entry);
  };
  return { applies: () => applies, fail: (e) => (failing = e) };
}

function ownerOf(c: TestCluster, key: string): string {
  const owners = c.get('n1').node.view.owners(key);
  return owners[0];
}

test('N = 1: a write through the owner is applied once, on the owner only; the owner answers reads at once, others do not', async (t) => {
  const c = await startCluster(3, { replicationFactor: 1, writeQuorum: 1, readQuorum: 1 });
  t.teardown(() => c.close());
  const key = 'fast-1';
  const owner = ownerOf(c, key);
  const other = c.ids().find((id) => id !== owner) as string;
  const spy = instrument(c, owner);
  await c.call(owner, 'put', { key, value: 'v1' });
  t.is(spy.applies(), 1);
  t.deepEqual(c.holders(key), { [owner]: 'v1' });
  t.is(c.get(owner).node.readLiveNow(key)?.value?.toString(), 'v1');
  t.is(c.get(other).node.readLiveNow(key), undefined, 'a node that does not own the key needs a round');
  t.is(str(await c.call(other, 'get', { key })), 'v1');
  const unwritten = Array.from({ length: 200 }, (_, i) => `unwritten-${i}`).find((k) => ownerOf(c, k) === owner) as string;
  t.is(c.get(owner).node.readLiveNow(unwritten), null, 'a key the owner never saw: nothing, at once');
  // A delete through the owner: a tombstone, read as nothing at once.
  await c.call(owner, 'del', { key });
  t.is(spy.applies(), 2);
  t.is(c.get(owner).node.readLiveNow(key), null);
  t.is(await c.call(owner, 'get', { key }), null);
});

test('N = 1, hints off: the owner\'s store refusing makes the write UNAVAILABLE as the round reports it, applied once', async (t) => {
  const c = await startCluster(3, { replicationFactor: 1, writeQuorum: 1, readQuorum: 1, hintsEnabled: false });
  t.teardown(() => c.close());
  const key = 'fast-2';
  const owner = ownerOf(c, key);
  const spy = instrument(c, owner);
  spy.fail(new ShoalError('READ_ONLY', 'disk full (ENOSPC)'));
  const err = await t.throwsAsync(c.call(owner, 'put', { key, value: 'v' }));
  t.is((err as ShoalError).code, 'UNAVAILABLE');
  t.regex(err?.message ?? '', /only 0 of 1 replicas answered the write/);
  t.regex(err?.message ?? '', /READ_ONLY/);
  t.is(spy.applies(), 1, 'the refused write is not applied a second time by the round');
  spy.fail(null);
  await c.call(owner, 'put', { key, value: 'v2' });
  t.deepEqual(c.holders(key), { [owner]: 'v2' });
});

test('N = 1, hints on: the owner\'s store refusing is covered by a stand-in\'s hint, as in the round', async (t) => {
  const c = await startCluster(3, { replicationFactor: 1, writeQuorum: 1, readQuorum: 1, hintsEnabled: true });
  t.teardown(() => c.close());
  const key = 'fast-3';
  const owner = ownerOf(c, key);
  const spy = instrument(c, owner);
  spy.fail(new ShoalError('READ_ONLY', 'disk full (ENOSPC)'));
  await c.call(owner, 'put', { key, value: 'hinted' });
  t.is(spy.applies(), 1);
  const held = c.ids().filter((id) => id !== owner).map((id) => c.get(id).hints.pendingFor(owner));
  t.is(held.reduce((a, b) => a + b, 0), 1, `one stand-in holds a hint for the owner (${JSON.stringify(held)})`);
  t.deepEqual(c.holders(key), {}, 'no store took it: the owner refused, a stand-in keeps a hint');
});

test('N = 1: a local store that never makes the write durable gives TIMEOUT after requestTimeoutMs, as the round would, with no hint', async (t) => {
  const c = await startCluster(3, { replicationFactor: 1, writeQuorum: 1, readQuorum: 1, hintsEnabled: true, requestTimeoutMs: 300 });
  t.teardown(() => c.close());
  const key = 'fast-5';
  const owner = ownerOf(c, key);
  const store = c.get(owner).store;
  const apply = store.apply.bind(store);
  let stalled = 0;
  store.apply = (k: string, entry: Entry): Promise<boolean> => {
    stalled += 1;
    void apply(k, entry);
    return new Promise<boolean>(() => {}); // the WAL batch never finishes
  };
  const keepAlive = setInterval(() => {}, 50); // the in-memory network holds no handle; the timeout timer is unref'd
  t.teardown(() => clearInterval(keepAlive));
  const started = Date.now();
  const err = await t.throwsAsync(c.call(owner, 'put', { key, value: 'v' }));
  t.is((err as ShoalError).code, 'TIMEOUT');
  t.true(Date.now() - started >= 250, 'not before requestTimeoutMs');
  t.is(stalled, 1);
  const held = c.ids().filter((id) => id !== owner).map((id) => c.get(id).hints.pendingFor(owner));
  t.deepEqual(held, [0, 0], 'a timeout is not a refusal: no stand-in was asked');
});

test('N = 3, R = 1: every owner answers at once, a non-owner and a quorum read need a round', async (t) => {
  const c = await startCluster(4, { readQuorum: 1 });
  t.teardown(() => c.close());
  const key = 'fast-4';
  const owners = c.get('n1').node.view.owners(key);
  const outsider = c.ids().find((id) => !owners.includes(id)) as string;
  await c.call(owners[0], 'put', { key, value: 'x' });
  await c.settle();
  for (const id of owners) t.is(c.get(id).node.readLiveNow(key)?.value?.toString(), 'x', `owner ${id}`);
  t.is(c.get(outsider).node.readLiveNow(key), undefined);
  t.is(c.get(owners[0]).node.readLiveNow(key, 'quorum'), undefined, 'a quorum read needs a round');
  t.is(str(await c.call(outsider, 'get', { key })), 'x');
});

test('ownsKey agrees with owners() on every node, with more members than N and with N members', async (t) => {
  for (const [size, n] of [[4, 3], [3, 3], [2, 1]] as const) {
    const c = await startCluster(size, { replicationFactor: n, writeQuorum: 1, readQuorum: 1 });
    try {
      for (const id of c.ids()) {
        const view = c.get(id).node.view;
        for (let i = 0; i < 300; i++) {
          const key = `owns-${i}`;
          t.is(view.ownsKey(key), view.owners(key).includes(id), `${size} members, N = ${n}, ${id}, ${key}`);
        }
      }
    } finally {
      await c.close();
    }
  }
});

test('N = 1, writeValueNow (the RESP SET path): applied at once by the owner only; a refusal goes on through writeValueAfter as writeValue would, applied once', async (t) => {
  const c = await startCluster(3, { replicationFactor: 1, writeQuorum: 1, readQuorum: 1, hintsEnabled: false });
  t.teardown(() => c.close());
  const keys = Array.from({ length: 300 }, (_, i) => `now-${i}`);
  const owner = ownerOf(c, keys[0]);
  const mine = keys.filter((k) => ownerOf(c, k) === owner).slice(0, 3);
  const theirs = keys.find((k) => ownerOf(c, k) !== owner) as string;
  const node = c.get(owner).node;
  t.is(node.writeValueNow(theirs, Buffer.from('x'), undefined), null, 'a key this node does not own: nothing done');
  t.deepEqual(c.holders(theirs), {});
  const spy = instrument(c, owner);
  const a = node.writeValueNow(mine[0], Buffer.from('a'), undefined);
  const b = node.writeValueNow(mine[1], Buffer.from('b'), undefined);
  t.truthy(a);
  t.truthy(b);
  // (This harness's store answers each write with its own promise; the real store's WAL batch shares one.)
  await Promise.all([a?.durable, b?.durable]);
  t.deepEqual(c.holders(mine[0]), { [owner]: 'a' });
  t.deepEqual(c.holders(mine[1]), { [owner]: 'b' });
  t.is(spy.applies(), 2);
  // The store refuses: writeValueAfter gives writeValue's answer (the round, UNAVAILABLE with hints off), not a second apply.
  spy.fail(new ShoalError('READ_ONLY', 'disk full (ENOSPC)'));
  const view = Buffer.alloc(8192, 0x72).subarray(2, 9); // a view of a receive buffer (not from the pool)
  const w = node.writeValueNow(mine[2], view, undefined);
  if (w === null) return t.fail('the owner takes the write');
  const failure = await w.durable.then(
    () => null,
    (e: unknown) => e,
  );
  t.is((failure as ShoalError).code, 'READ_ONLY');
  const err = await t.throwsAsync(node.writeValueAfter(mine[2], w, failure));
  t.is((err as ShoalError).code, 'UNAVAILABLE');
  t.regex(err?.message ?? '', /READ_ONLY/);
  t.is(spy.applies(), 3, 'the refused write is not applied a second time by the round');
  t.not(w.entry.value?.buffer, view.buffer, 'the round got a copy of the value, not the view');
  t.is(w.entry.value?.toString(), 'rrrrrrr');
});

test('a lone first node answers reads at once after its first streaming round (its ranges are not "syncing" for good)', async (t) => {
  // Found by the session-5 quiet benchmark: with the syncing ranges worked out lazily, the first read
  // after the lone node's first round worked them out again against an empty base ring (a lone node's
  // synced ring stays unset), so every key counted as syncing and every GET took the slow path.
  const c = await startCluster(1, { replicationFactor: 3 });
  t.teardown(() => c.close());
  const node = c.get('n1').node;
  await c.call('n1', 'put', { key: 'lone', value: 'v' });
  await c.settle();
  await new Promise((resolve) => setTimeout(resolve, 50));
  await c.settle();
  t.is(node.readLiveNow('lone')?.value?.toString(), 'v', 'answered from the store at once');
  t.is(node.readLiveNow('never-written'), null, 'a miss is final at once');
});
