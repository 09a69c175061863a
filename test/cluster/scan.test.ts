/**
 * The cluster-wide key scan (src/cluster/cluster-scan.ts) over five in-process nodes: every key once,
 * a newer delete on some replicas hides the key, members down up to W−1 are tolerated and beyond that
 * the scan refuses, unless the consistency is `one`.
 */
import test from 'ava';
import type { ClusterNode } from '../../src/cluster/cluster-node.js';
import type { Consistency } from '../../src/cluster/config.js';
import { startCluster } from './helpers/harness.js';

async function scanAll(node: ClusterNode, count: number, consistency?: Consistency, match?: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = 0n;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await node.scanPage(cursor, { count, consistency, match });
    keys.push(...page.keys);
    cursor = page.cursor;
    if (cursor === 0n) return keys;
  }
  throw new Error('the scan did not end');
}

test('every live key exactly once from any node; deletes and expired values hidden; MATCH pushed to the nodes', async (t) => {
  const c = await startCluster(5);
  t.teardown(() => c.close());
  for (let i = 0; i < 300; i++) await c.call(`n${(i % 5) + 1}`, 'put', { key: `k${i}`, value: `v${i}` });
  await c.call('n1', 'put', { key: 'short', value: 'x', ttlMs: 1 });
  for (let i = 0; i < 20; i++) await c.call('n2', 'del', { key: `k${i}` });
  await c.settle();
  await new Promise((r) => setTimeout(r, 5));
  for (const id of ['n1', 'n4']) {
    for (const count of [3, 50, 10_000]) {
      const keys = await scanAll(c.get(id).node, count);
      t.is(keys.length, 280, `${id} COUNT ${count}`);
      t.is(new Set(keys).size, 280);
      t.false(keys.includes('k3'));
      t.false(keys.includes('short'));
    }
  }
  const deleted = await scanAll(c.get('n3').node, 10, undefined, 'k1?');
  t.deepEqual(deleted, [], 'k10..k19 were deleted');
  const matched2 = await scanAll(c.get('n3').node, 10, undefined, 'k2?');
  t.deepEqual(matched2.sort(), Array.from({ length: 10 }, (_, i) => `k2${i}`).sort());
});

test('a delete that reached only W replicas still hides the key (newest version wins over a stale copy)', async (t) => {
  const c = await startCluster(3, { hintsEnabled: false, readRepairEnabled: false });
  t.teardown(() => c.close());
  await c.call('n1', 'put', { key: 'gone', value: 'v' });
  await c.settle();
  c.net.down('n3'); // misses the delete, keeps its copy of the value
  await c.call('n1', 'del', { key: 'gone' });
  c.net.up('n3');
  t.is(c.holders('gone').n3, 'v', 'n3 still holds the old value');
  t.false((await scanAll(c.get('n2').node, 10)).includes('gone'));
});

test('with W−1 ring members down every key is still found; with W down the scan refuses, except at consistency one', async (t) => {
  const c = await startCluster(5, { hintsEnabled: false });
  t.teardown(() => c.close());
  for (let i = 0; i < 200; i++) await c.call('n1', 'put', { key: `k${i}`, value: `v${i}` });
  await c.settle();
  c.kill('n5');
  t.is((await scanAll(c.get('n1').node, 25)).length, 200, 'one member down (W=2): complete');
  c.kill('n4');
  const err = await t.throwsAsync(scanAll(c.get('n1').node, 25));
  t.is((err as { code?: string }).code, 'UNAVAILABLE');
  t.regex(err!.message, /scan needs 4 of 5 ring members, 3 answered/);
  const some = await scanAll(c.get('n1').node, 25, 'one');
  t.true(some.length > 0 && some.length <= 200);
  await t.throwsAsync(scanAll(c.get('n1').node, 25, 'all'), { message: /scan needs 5 of 5/ });
});
