import test from 'ava';
import { ShoalError } from '../../src/errors.js';
import { startCluster, str } from './helpers/harness.js';

const KEYS = Array.from({ length: 40 }, (_, i) => `key-${i}`);

test('writes through every node read back from every node, stored on exactly N owners', async (t) => {
  const c = await startCluster(5);
  const ids = c.ids();
  for (const [i, key] of KEYS.entries()) await c.call(ids[i % ids.length], 'put', { key, value: Buffer.from(`v-${key}`) });
  for (const id of ids) {
    for (const key of KEYS) t.is(str(await c.call(id, 'get', { key })), `v-${key}`, `${key} via ${id}`);
  }
  for (const key of KEYS) {
    const owners = c.get('n1').node.view.owners(key);
    t.is(owners.length, 3);
    t.deepEqual(Object.keys(c.holders(key)).sort(), [...owners].sort(), `${key} lives on its owners only`);
  }
  t.is(await c.call('n3', 'get', { key: 'missing' }), null);
  await c.close();
});

test('one replica down: quorum reads and writes work, consistency all is UNAVAILABLE', async (t) => {
  const c = await startCluster(5, { hintsEnabled: false });
  const key = 'k';
  const [a, b, down] = c.get('n1').node.view.owners(key);
  c.kill(down);
  const coordinator = c.ids().find((id) => id !== down) as string;
  await c.call(coordinator, 'put', { key, value: 'v1' });
  t.is(str(await c.call(coordinator, 'get', { key })), 'v1');
  t.deepEqual(c.holders(key), { [a]: 'v1', [b]: 'v1' });
  const err = await t.throwsAsync(c.call(coordinator, 'put', { key, value: 'v2', consistency: 'all' }));
  t.is((err as ShoalError).code, 'UNAVAILABLE');
  t.regex(err?.message ?? '', /only 2 of 3 replicas answered/);
  await c.close();
});

test('too few replicas: UNAVAILABLE with how many answered', async (t) => {
  const c = await startCluster(5, { hintsEnabled: false });
  const key = 'k2';
  const [up, d1, d2] = c.get('n1').node.view.owners(key);
  c.kill(d1);
  c.kill(d2);
  const put = await t.throwsAsync(c.call(up, 'put', { key, value: 'x' }));
  t.is((put as ShoalError).code, 'UNAVAILABLE');
  t.regex(put?.message ?? '', /only 1 of 2 replicas answered/);
  const get = await t.throwsAsync(c.call(up, 'get', { key }));
  t.is((get as ShoalError).code, 'UNAVAILABLE');
  t.truthy(await c.call(up, 'get', { key, consistency: 'one' }) !== undefined);
  await c.close();
});

for (const durableHints of [false, true]) {
test(`stand-ins hold hints so W is met with two owners down, and hand them over on return (${durableHints ? 'HintStore' : 'in memory'})`, async (t) => {
  const c = await startCluster(5, { readRepairEnabled: false }, { durableHints });
  const key = 'k3';
  const [up, d1, d2] = c.get('n1').node.view.owners(key);
  c.kill(d1);
  c.kill(d2);
  await c.call(up, 'put', { key, value: 'held' });
  const pending = c.ids().reduce((sum, id) => sum + c.get(id).hints.pendingFor(d1) + c.get(id).hints.pendingFor(d2), 0);
  t.true(pending >= 1, 'hints stored for the down owners');
  await c.settle();
  c.revive(d1);
  c.revive(d2);
  for (const id of c.ids()) await c.get(id).node.handoff.runOnce();
  t.deepEqual(c.holders(key), { [up]: 'held', [d1]: 'held', [d2]: 'held' });
  t.is(c.ids().reduce((sum, id) => sum + c.get(id).hints.targets().length, 0), 0, 'no hints left');
  await c.close();
});
}

test('client arguments are validated with BAD_REQUEST', async (t) => {
  const c = await startCluster(3);
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['get', {}, /args\.key must be a string/],
    ['put', { key: 'a' }, /args\.value must be bin/],
    ['put', { key: 'a', value: 42 }, /args\.value must be bin/],
    ['put', { key: 'a', value: Buffer.from('x'), ttlMs: -5 }, /args\.ttlMs must be ≥ 1/],
    ['put', { key: 'a', value: Buffer.from('x'), ttlMs: 1e15 }, /args\.ttlMs must be ≤/],
    ['put', { key: 'a', value: Buffer.from('x'), consistency: 'most' }, /args\.consistency must be one of/],
    ['del', { key: '' }, /args\.key must not be empty/],
    ['put', { key: 'a', value: Buffer.from('x'), seenTs: 'soon' }, /args\.seenTs must be a finite number/],
    ['remove', { id: 'nobody' }, /no member/],
    ['remove', { id: 'n2' }, /is alive/],
    ['frobnicate', {}, /unknown operation/],
  ];
  for (const [op, args, message] of cases) {
    const err = await t.throwsAsync(c.call('n1', op, args), undefined, op);
    t.is((err as ShoalError).code, 'BAD_REQUEST', op);
    t.regex(err?.message ?? '', message, op);
  }
  await c.close();
});

test('the coordinator refuses keys and values over the store limits before fanning out', async (t) => {
  const c = await startCluster(3);
  const bigKey = await t.throwsAsync(c.call('n1', 'put', { key: 'k'.repeat(1025), value: Buffer.from('x') }));
  t.is((bigKey as ShoalError).code, 'KEY_TOO_LARGE');
  const bigValue = await t.throwsAsync(c.call('n1', 'put', { key: 'k', value: Buffer.alloc(1024 * 1024 + 1) }));
  t.is((bigValue as ShoalError).code, 'VALUE_TOO_LARGE');
  for (const id of c.ids()) t.is(c.get(id).store.getEntry('k'), undefined, `nothing reached ${id}`);
  await c.close();
});

test('a delete stays deleted after a partitioned replica returns', async (t) => {
  const c = await startCluster(5, { readRepairEnabled: false });
  const key = 'doomed';
  const owners = c.get('n1').node.view.owners(key);
  const away = owners[2];
  const coordinator = owners[0];
  await c.call(coordinator, 'put', { key, value: 'alive' });
  c.net.down(away); // partitioned, membership has not noticed yet
  await c.call(coordinator, 'del', { key });
  t.is(c.get(away).store.getEntry(key)?.value?.toString(), 'alive', 'the away replica missed the delete');
  await c.settle();
  c.net.up(away);
  for (const id of c.ids()) await c.get(id).node.handoff.runOnce();
  t.is(c.get(away).store.getEntry(key)?.value, null, 'tombstone delivered');
  for (const id of c.ids()) t.is(await c.call(id, 'get', { key, consistency: 'all' }), null);
  await c.close();
});

test('TTL becomes one absolute expiry on every replica and expires everywhere', async (t) => {
  let nowMs = 1_700_000_000_000;
  const clock = () => nowMs;
  const c = await startCluster(0);
  for (let i = 1; i <= 5; i++) await c.add(`n${i}`, { clock });
  const key = 'ephemeral';
  await c.call('n2', 'put', { key, value: 'soon gone', ttlMs: 1_000, consistency: 'all' });
  const owners = c.get('n1').node.view.owners(key);
  for (const id of owners) t.is(c.get(id).store.getEntry(key)?.expiresAtMs, 1_700_000_001_000, id);
  const read = (await c.call('n4', 'get', { key })) as { expiresAtMs: number };
  t.is(read.expiresAtMs, 1_700_000_001_000);
  nowMs += 1_001;
  for (const id of c.ids()) t.is(await c.call(id, 'get', { key }), null, `expired via ${id}`);
  for (const id of owners) t.is(c.get(id).store.get(key), undefined, `expired on replica ${id}`);
  await c.close();
});

test("one client's writes stay ordered through nodes with skewed clocks (seenTs)", async (t) => {
  const base = Date.now();
  const c = await startCluster(0);
  await c.add('n1', { clock: () => base });
  await c.add('n2', { clock: () => base - 30_000 }); // 30 s behind
  await c.add('n3', { clock: () => base - 20_000 });
  const first = (await c.call('n1', 'put', { key: 'seq', value: 'first' })) as { version: { ts: number } };
  const second = (await c.call('n2', 'put', { key: 'seq', value: 'second', seenTs: first.version.ts })) as {
    version: { ts: number };
  };
  t.true(second.version.ts > first.version.ts);
  t.is(str(await c.call('n3', 'get', { key: 'seq' })), 'second');
  // Control: without seenTs, a lagging node that never saw the first write stamps an older version.
  await c.add('n4', { clock: () => base - 60_000 + 1 });
  const blind = (await c.call('n4', 'put', { key: 'other', value: 'x' })) as { version: { ts: number } };
  t.true(blind.version.ts < first.version.ts);
  await c.close();
});
