import test from 'ava';
import { join } from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { startNode, type Node } from '../../src/node/node.js';
import { bufferIo, eventually, tempDir, testClient, testConfig } from './helpers.js';

test('three agents joined through a seed form one cluster: any node serves any key, members and ring agree', async (t) => {
  const tmp = tempDir('shoal-cluster-');
  t.teardown(tmp.remove);
  const nodes: Node[] = [];
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  const fast = { 'membership.probeIntervalMs': '200', 'membership.probeTimeoutMs': '100', 'membership.gossipIntervalMs': '50', 'cluster.ringSettleMs': '50' };
  nodes.push(await startNode(testConfig(join(tmp.dir, 'n1'), { 'node.id': 'n1', ...fast }), { processMetrics: false }));
  for (const id of ['n2', 'n3']) {
    // n3 is set up for a rolling restart: it stops without leaving.
    const restart: Record<string, string> = id === 'n3' ? { 'shutdown.leave': 'false' } : {};
    const config = testConfig(join(tmp.dir, id), { 'node.id': id, 'membership.seeds': nodes[0].addresses.gossip, ...fast, ...restart });
    nodes.push(await startNode(config, { processMetrics: false }));
  }
  const clients = nodes.map((n) => testClient(n.addresses.rpc));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));

  const converged = await eventually(10_000, async () => {
    const views = (await Promise.all(clients.map((c) => c.members()))) as Array<Array<{ id: string; state: string }>>;
    return views.every((v) => v.length === 3 && v.every((m) => m.state === 'alive'));
  });
  t.true(converged, 'every node sees three alive members');

  const rings = (await Promise.all(clients.map((c) => c.ring()))) as Array<{ checksum: string; members: Array<{ id: string; owns: number }> }>;
  t.is(new Set(rings.map((r) => r.checksum)).size, 1, 'same ring checksum everywhere');
  t.deepEqual(rings[0].members.map((m) => m.id).sort(), ['n1', 'n2', 'n3']);
  t.true(Math.abs(rings[0].members.reduce((s, m) => s + m.owns, 0) - 1) < 1e-9);

  for (let i = 0; i < 10; i++) await clients[i % 3].put(`k${i}`, `v${i}`);
  for (const client of clients) {
    for (let i = 0; i < 10; i++) t.is((await client.get(`k${i}`))?.value.toString(), `v${i}`);
  }

  const b = bufferIo();
  t.is(await runCli(['ring', '--addr', nodes[2].addresses.rpc], b.io), 0, b.stderr());
  t.regex(b.stdout(), /^checksum: \S+$/m);
  t.regex(b.stdout(), /^n2\s+alive\s+\d+\.\d%$/m);
  const m = bufferIo();
  t.is(await runCli(['members', '--addr', nodes[1].addresses.rpc], m.io), 0);
  t.is(m.stdout().trim().split('\n').length, 4);

  // A stop with shutdown.leave false is seen as a failure (suspect, then dead), not a leave; a
  // default stop is a leave.
  const stateOf = async (id: string) => ((await clients[0].members()) as Array<{ id: string; state: string }>).find((x) => x.id === id)?.state;
  await nodes[2].stop();
  t.true(await eventually(10_000, async () => ['suspect', 'dead'].includes((await stateOf('n3')) ?? '')), `n3 is ${await stateOf('n3')}`);
  t.not(await stateOf('n3'), 'left');
  await nodes[1].stop();
  t.true(await eventually(10_000, async () => (await stateOf('n2')) === 'left'), `n2 is ${await stateOf('n2')}`);
});
