/**
 * A node that ran alone (its own data, a ring of itself) and then joins a cluster with that data dir:
 * nothing can be streamed from a ring of one, so it catches up by anti-entropy with every peer, in
 * both directions, without waiting for the periodic rounds (off in these tests).
 */
import test from 'ava';
import { hlcPack } from '../../src/cluster/hlc.js';
import { startCluster, type TestCluster } from './helpers/harness.js';
import { MemoryStore } from './helpers/memory-store.js';

async function until(check: () => boolean, waitMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return check();
}

function missing(c: TestCluster, id: string, keys: string[]): string[] {
  const n = c.get(id);
  return keys.filter((k) => n.node.view.owners(k).includes(id) && n.store.getEntry(k) === undefined);
}

test('a node joining with a data dir from running alone converges: it gets what it owns and hands out what it had', async (t) => {
  const c = await startCluster(3);
  const keys = Array.from({ length: 60 }, (_, i) => `k-${i}`);
  for (const key of keys) await c.call('n1', 'put', { key, value: `v-${key}`, consistency: 'all' });
  const old = new MemoryStore();
  await old.apply('solo', { value: Buffer.from('from the lone days'), ts: hlcPack(Date.now() - 60_000, 0), node: 'n4' });
  const n4 = await c.add('n4', { isolated: true, store: old });
  t.deepEqual(n4.node.view.ring().members(), ['n4'], 'n4 starts alone');
  c.world.connect('n4');
  t.is(n4.node.view.ring().members().length, 4);
  t.true(missing(c, 'n4', keys).length > 10, 'n4 owns keys it does not have yet');
  t.true(await until(() => missing(c, 'n4', keys).length === 0), `n4 still lacks ${missing(c, 'n4', keys).length} keys`);
  // Owned by n4: the catch-up pushed it to the other owners; not owned: clean-up hands it to them.
  const owners = n4.node.view.owners('solo');
  if (!owners.includes('n4')) await n4.node.cleanup.runOnce();
  t.true(await until(() => owners.every((id) => c.get(id).store.getEntry('solo') !== undefined)), 'the lone key reached its owners');
  t.is((n4.node.stats().background as { failed: Record<string, number> }).failed['catch-up'], 0);
  await c.close();
});
