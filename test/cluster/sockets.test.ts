/**
 * Five real node processes on loopback (src/node/node.ts startNode, OS-chosen ports): writes through
 * every node read back from every node; a replica SIGKILLed (no leave) does not stop quorum reads and
 * writes, and after it restarts on its data dir it holds every write it missed.
 */
import test from 'ava';
import { Ring } from '../../src/ring/ring.js';
import { RpcPool } from '../../src/rpc/client.js';
import { ShoalClient } from '../../src/rpc/shoal-client.js';
import { eventually, ProcessCluster } from './helpers/processes.js';

const FAST = {
  'membership.probeIntervalMs': '200',
  'membership.probeTimeoutMs': '100',
  'membership.gossipIntervalMs': '50',
  'cluster.ringSettleMs': '100',
  'cluster.hintReplayIntervalMs': '200',
  'storage.fsync': 'none',
  'cluster.internalTimeoutMs': '10000', // a machine shared with other test processes can be slow
  'cluster.requestTimeoutMs': '30000',
};
const IDS = ['n1', 'n2', 'n3', 'n4', 'n5'];

function client(addr: string): ShoalClient {
  return new ShoalClient({ addresses: [addr], timeoutMs: 30_000, pool: { connectTimeoutMs: 10_000 } });
}

test('5 nodes on loopback: write anywhere, read anywhere; SIGKILL a replica, quorum goes on, it catches up', async (t) => {
  t.timeout(300_000); // five processes starting on a busy shared machine
  const pc = new ProcessCluster(FAST);
  t.teardown(() => pc.stopAll());
  await pc.start('n1');
  await Promise.all(IDS.slice(1).map((id) => pc.start(id)));
  const clients = new Map(IDS.map((id) => [id, client(pc.get(id).rpc)]));
  t.teardown(() => Promise.all([...clients.values()].map((c) => c.close())));

  type RingInfo = { checksum: string; vnodes: number; members: Array<{ id: string }> };
  const agreed = await eventually(20_000, async () => {
    const rings = (await Promise.all([...clients.values()].map((c) => c.ring()))) as RingInfo[];
    return rings.every((r) => r.members.length === 5) && new Set(rings.map((r) => r.checksum)).size === 1;
  });
  t.true(agreed, 'all five nodes agree on a five-member ring');

  const keys = Array.from({ length: 40 }, (_, i) => `sock-${i}`);
  await Promise.all(keys.map((key, i) => (clients.get(IDS[i % 5]) as ShoalClient).put(key, `v1-${key}`)));
  for (const c of clients.values()) {
    for (const key of keys) t.is((await c.get(key))?.value.toString(), `v1-${key}`);
  }

  // SIGKILL n3 and keep writing (overwrites and new keys) through the others at quorum.
  await pc.kill('n3');
  clients.get('n3')?.close();
  clients.delete('n3');
  const survivors = [...clients.values()];
  const more = Array.from({ length: 40 }, (_, i) => `sock-new-${i}`);
  await Promise.all([...keys, ...more].map((key, i) => survivors[i % 4].put(key, `v2-${key}`)));
  for (const key of [...keys, ...more]) t.is((await survivors[(key.length + 1) % 4].get(key))?.value.toString(), `v2-${key}`);

  // Restart n3 on its data dir: hints are replayed to it once membership sees it alive.
  await pc.start('n3');
  clients.set('n3', client(pc.get('n3').rpc));
  const drained = await eventually(30_000, async () => {
    const stats = (await Promise.all([...clients.values()].map((c) => c.stats()))) as Array<{ cluster?: { pendingHints?: number } }>;
    return stats.every((s) => s.cluster?.pendingHints === 0);
  });
  t.true(drained, 'hints for n3 drained');
  const ringInfo = (await (clients.get('n1') as ShoalClient).ring()) as RingInfo;
  const ring = Ring.build(ringInfo.members.map((m) => ({ id: m.id })), { vnodes: ringInfo.vnodes });
  const pool = new RpcPool({ clusterName: 'dev', timeoutMs: 10_000 });
  t.teardown(() => pool.close());
  let checked = 0;
  for (const key of [...keys, ...more]) {
    if (!ring.preferenceList(key, 3).includes('n3')) continue;
    const reply = (await pool.call(pc.get('n3').rpc, 'internal.read', { key })) as { entry: { value: Uint8Array } | null };
    t.is(reply.entry && Buffer.from(reply.entry.value).toString(), `v2-${key}`, `n3 caught up on ${key}`);
    checked += 1;
  }
  t.true(checked > 15, `n3 replicates ${checked} of the keys`);
});
