/** Targeted reads: R replicas asked (this node first), more only on failure, syncing or slowness. */
import test from 'ava';
import { startCluster, str } from './helpers/harness.js';

const KEYS = Array.from({ length: 40 }, (_, i) => `key-${i}`);

async function seeded(config: Parameters<typeof startCluster>[1] = {}) {
  const c = await startCluster(5, config);
  for (const key of KEYS) await c.call('n1', 'put', { key, value: `v-${key}`, consistency: 'all' });
  await c.settle();
  c.net.logCalls = true;
  return c;
}

/** Remote internal.read calls `coordinator` made. */
const readsOf = (log: string[], coordinator: string) => log.filter((l) => l.startsWith(`${coordinator}→`) && l.endsWith(':internal.read')).length;

test('a quorum read asks R replicas: itself and one more when it owns the key, two others when not', async (t) => {
  const c = await seeded();
  const owned = KEYS.find((k) => c.get('n1').node.view.owners(k).includes('n1')) as string;
  const notOwned = KEYS.find((k) => !c.get('n1').node.view.owners(k).includes('n1')) as string;
  t.is(str(await c.call('n1', 'get', { key: owned })), `v-${owned}`);
  t.is(readsOf(c.net.callLog, 'n1'), 1, 'one remote read; the local one takes no network');
  c.net.callLog.length = 0;
  t.is(str(await c.call('n1', 'get', { key: notOwned })), `v-${notOwned}`);
  t.is(readsOf(c.net.callLog, 'n1'), 2);
  c.net.callLog.length = 0;
  await c.call('n1', 'get', { key: notOwned, consistency: 'all' });
  t.is(readsOf(c.net.callLog, 'n1'), 3);
  await c.close();
});

test('readAllReplicas asks every up replica', async (t) => {
  const c = await seeded({ readAllReplicas: true });
  const notOwned = KEYS.find((k) => !c.get('n1').node.view.owners(k).includes('n1')) as string;
  await c.call('n1', 'get', { key: notOwned });
  t.is(readsOf(c.net.callLog, 'n1'), 3);
  await c.close();
});

test('a replica that fails is replaced by the next one; a slow one is overtaken after readSpeculativeMs', async (t) => {
  const c = await seeded({ readSpeculativeMs: 50 });
  const key = KEYS.find((k) => !c.get('n1').node.view.owners(k).includes('n1')) as string;
  const [first, second, third] = c.get('n1').node.view.owners(key);
  // Unreachable but not (yet) marked down: the call fails, the third owner is asked.
  c.net.down(first);
  t.is(str(await c.call('n1', 'get', { key })), `v-${key}`);
  t.true(c.net.callLog.includes(`n1→${third}:internal.read`));
  c.net.up(first);
  c.net.callLog.length = 0;
  // Alive but slow: after 50 ms the remaining owner is asked too (without speculation the read would
  // wait for the slow one and never ask the third).
  c.net.slowMs.set(second, 2_000);
  t.is(str(await c.call('n1', 'get', { key })), `v-${key}`);
  t.deepEqual(c.net.callLog.filter((l) => l.endsWith(':internal.read')).sort(), [`n1→${first}:internal.read`, `n1→${second}:internal.read`, `n1→${third}:internal.read`].sort());
  c.net.slowMs.clear();
  await c.close();
});
