/**
 * A replica is down (no leave) while writes go on at quorum; once it returns its data is complete.
 * Each repair path is shown on its own, with the other two switched off.
 */
import { hlcPack } from '../../src/cluster/hlc.js';
import test from 'ava';
import type { ClusterConfig } from '../../src/cluster/config.js';
import { startCluster, str, type TestCluster } from './helpers/harness.js';

const KEYS = Array.from({ length: 120 }, (_, i) => `r-${i}`);
const ONLY_HINTS: Partial<ClusterConfig> = { readRepairEnabled: false };
const ONLY_READ_REPAIR: Partial<ClusterConfig> = { hintsEnabled: false };
const ONLY_ANTI_ENTROPY: Partial<ClusterConfig> = { hintsEnabled: false, readRepairEnabled: false, antiEntropyBuckets: 64 };

/** Kills n3, writes (and deletes some) at quorum through the others, revives n3. Returns n3's keys. */
async function outage(c: TestCluster): Promise<string[]> {
  await Promise.all(KEYS.map((key) => c.call('n1', 'put', { key, value: 'old' })));
  await c.settle();
  c.kill('n3');
  const writers = ['n1', 'n2', 'n4', 'n5'];
  await Promise.all(KEYS.map((key, i) => c.call(writers[i % 4], 'put', { key, value: `new-${key}` })));
  await Promise.all(KEYS.filter((_, i) => i % 10 === 0).map((key) => c.call('n2', 'del', { key })));
  await c.settle();
  const mine = KEYS.filter((key) => c.get('n1').node.view.owners(key).includes('n3'));
  for (const key of mine) t_assertStale(c, key);
  c.revive('n3');
  return mine;
}

function t_assertStale(c: TestCluster, key: string): void {
  const e = c.get('n3').store.getEntry(key);
  if (e?.value?.toString() !== 'old') throw new Error(`n3 should still hold the old ${key}`);
}

function expected(key: string): string | null {
  return KEYS.indexOf(key) % 10 === 0 ? null : `new-${key}`;
}

function n3Value(c: TestCluster, key: string): string | null | undefined {
  const e = c.get('n3').store.getEntry(key);
  return e === undefined ? undefined : e.value === null ? null : e.value.toString();
}

test('hints alone bring a returning replica up to date', async (t) => {
  const c = await startCluster(5, ONLY_HINTS);
  const mine = await outage(c);
  t.true(mine.length > 30);
  for (const id of c.ids()) await c.get(id).node.handoff.runOnce();
  for (const key of mine) t.is(n3Value(c, key), expected(key), key);
  await c.close();
});

test('read repair alone brings a returning replica up to date for keys that are read', async (t) => {
  const c = await startCluster(5, ONLY_READ_REPAIR);
  const mine = await outage(c);
  for (const key of mine) t.is(n3Value(c, key), 'old', 'no hints: still stale before the reads');
  for (const key of mine) {
    const got = await c.call('n1', 'get', { key, consistency: 'all' });
    t.is(got === null ? null : str(got), expected(key));
  }
  await c.settle();
  for (const key of mine) t.is(n3Value(c, key), expected(key), key);
  await c.close();
});

test('anti-entropy alone converges every replica, including keys nobody reads', async (t) => {
  const c = await startCluster(5, ONLY_ANTI_ENTROPY);
  const mine = await outage(c);
  for (const key of mine) t.is(n3Value(c, key), 'old', 'no hints, no reads: still stale');
  const results = await c.get('n3').node.antiEntropy.runWithAll();
  t.true(results.some((r) => r.pulled > 0), JSON.stringify(results));
  for (const key of mine) t.is(n3Value(c, key), expected(key), key);
  // A second sweep finds nothing to do: the digests now match.
  for (const r of await c.get('n3').node.antiEntropy.runWithAll()) t.is(r.differingBuckets, 0, r.peer ?? '');
  await c.close();
});

test('anti-entropy pushes as well as pulls: a key only the initiator has reaches its peers', async (t) => {
  const c = await startCluster(5, ONLY_ANTI_ENTROPY);
  const key = KEYS.find((k) => c.get('n1').node.view.owners(k).includes('n1')) as string;
  const owners = c.get('n1').node.view.owners(key);
  await c.get('n1').node.replica.applyEntry(key, { value: Buffer.from('lonely'), ts: hlcPack(Date.now(), 0), node: 'n1' });
  await c.get('n1').node.antiEntropy.runWithAll();
  for (const id of owners) t.is(c.get(id).store.getEntry(key)?.value?.toString(), 'lonely', id);
  await c.close();
});
