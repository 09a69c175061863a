/**
 * Quorums come from the configured N (issue 10): N is clamped to the members the cluster has (in
 * the ring or known, not left or removed), never to the members a node sees alive. A node cut off
 * from the others refuses writes with UNAVAILABLE instead of acting as a cluster of one.
 */
import test from 'ava';
import { join } from 'node:path';
import { ShoalError } from '../../src/errors.js';
import { startNode, type Node } from '../../src/node/node.js';
import { eventually, tempDir, testClient, testConfig } from './helpers.js';

const FAST = {
  'membership.probeIntervalMs': '200', 'membership.probeTimeoutMs': '100', 'membership.gossipIntervalMs': '50',
  'cluster.ringSettleMs': '50', 'cluster.deadOwnerGraceMs': '500', 'shutdown.leave': 'false',
};

test('a node whose peers are dead past their grace keeps N = 3 and refuses writes; removals shrink N, a single node serves', async (t) => {
  const tmp = tempDir('shoal-quorum-');
  t.teardown(tmp.remove);
  const nodes: Node[] = [];
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  nodes.push(await startNode(testConfig(join(tmp.dir, 'n1'), { 'node.id': 'n1', ...FAST }), { processMetrics: false }));
  for (const id of ['n2', 'n3']) {
    nodes.push(await startNode(testConfig(join(tmp.dir, id), { 'node.id': id, 'membership.seeds': nodes[0].addresses.gossip, ...FAST }), { processMetrics: false }));
  }
  const client = testClient(nodes[0].addresses.rpc);
  t.teardown(() => client.close());
  const states = async () => ((await client.members()) as Array<{ id: string; state: string }>).map((m) => `${m.id}:${m.state}`).sort().join(' ');
  t.true(await eventually(15_000, async () => (await states()) === 'n1:alive n2:alive n3:alive'), await states());
  await client.put('before', 'v');

  // Both peers crash (stop without leaving): n1 sees them dead, and after deadOwnerGraceMs its ring
  // holds only itself. N stays 3 (W = 2): the write cannot reach a quorum.
  await nodes[1].stop();
  await nodes[2].stop();
  t.true(await eventually(20_000, async () => (await states()) === 'n1:alive n2:dead n3:dead'), await states());
  const ring = async () => ((await client.ring()) as { members: unknown[] }).members.length;
  t.true(await eventually(10_000, async () => (await ring()) === 1), 'the ring shrank to n1 after the grace');
  const replication = async () => ((await client.stats()) as { cluster: { replication: { n: number } } }).cluster.replication.n;
  t.is(await replication(), 3);
  const err = await t.throwsAsync(client.put('alone', 'v'));
  t.true(err instanceof ShoalError && err.code === 'UNAVAILABLE', `${err?.message}`);
  t.regex(err?.message ?? '', /only 0 of 2 replicas answered the write \(3 replicas; 2 of 3 replicas are not in the ring/);
  const read = await t.throwsAsync(client.get('before'));
  t.is((read as ShoalError | undefined)?.code, 'UNAVAILABLE');
  // consistency one needs one replica: it is there.
  await client.put('one', 'v', { consistency: 'one' });

  // The operator removes the dead members: the cluster is now one node, and N = 1.
  await client.call('remove', { id: 'n2' });
  t.is(await replication(), 2);
  t.is(((await t.throwsAsync(client.put('still', 'v'))) as ShoalError | undefined)?.code, 'UNAVAILABLE');
  await client.call('remove', { id: 'n3' });
  t.is(await replication(), 1);
  await client.put('single', 'v');
  t.is((await client.get('single'))?.value.toString(), 'v');
});
