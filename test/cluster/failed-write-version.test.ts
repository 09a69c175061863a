/**
 * Regression (found by the whole-cluster simulator, seed 63): a put through a node whose clock runs
 * 5 s ahead failed (consistency all with a replica unreachable) but reached some replicas; the same
 * client's next put, through a node whose clock is right, was acknowledged with an older version and
 * lost to the failed write by last-writer-wins: the client read back the value whose write had failed.
 * Now the failed write's error carries the version it was stamped with (error.version on the wire) and
 * ShoalClient sends it as seenTs on the next write, which is then stamped after it.
 *
 * Four in-process ClusterNodes at N = 3 (helpers/harness.ts) behind a real RpcServer on loopback that
 * routes each client call to the node the test picks (a load balancer), and a real ShoalClient.
 */
import test from 'ava';
import type { ShoalError } from '../../src/errors.js';
import { hlcPhysicalMs } from '../../src/cluster/hlc.js';
import { ShoalClient } from '../../src/rpc/shoal-client.js';
import { RpcServer } from '../../src/rpc/server.js';
import { TestCluster, type TestNode } from './helpers/harness.js';

const AHEAD_MS = 5_000;
const CLUSTER_NAME = 'test';

test('a put that failed on a node 5 s ahead does not beat the same client\'s later acknowledged put through another node', async (t) => {
  const c = new TestCluster({ replicationFactor: 3 });
  await c.add('n1', { clock: () => Date.now() + AHEAD_MS });
  for (const id of ['n2', 'n3', 'n4']) await c.add(id);
  await c.settle();
  t.teardown(() => c.close());

  // A key n1, n2 and n3 own; n4 is no replica of it, so nothing of the failed write reaches n4's clock.
  let key = '';
  for (let i = 0; key === ''; i++) {
    if ([...c.get('n1').node.view.owners(`k${i}`)].sort().join() === 'n1,n2,n3') key = `k${i}`;
  }

  // The "load balancer": every client call goes to the node `route` names; puts' seenTs are recorded.
  let route: TestNode = c.get('n1');
  const sentSeenTs: unknown[] = [];
  const server = new RpcServer({
    host: '127.0.0.1',
    port: 0,
    nodeId: 'lb',
    clusterName: CLUSTER_NAME,
    handler: (op, args, ctx) => {
      if (op === 'put') sentSeenTs.push(args.seenTs);
      return route.node.rpcHandler(op, args, ctx);
    },
  });
  const { port } = await server.listen();
  t.teardown(() => server.close());
  const client = new ShoalClient({ addresses: [`127.0.0.1:${port}`], clusterName: CLUSTER_NAME, timeoutMs: 30_000 });
  t.teardown(() => client.close());

  // n3 unreachable (membership still says alive): the put through n1 at all fails but reaches n1, n2.
  c.net.down('n3');
  const startedMs = Date.now();
  const err = (await t.throwsAsync(client.put(key, 'failed', { consistency: 'all' }))) as ShoalError;
  const failed = (err.details?.version ?? { ts: -1, node: 'none' }) as { ts: number; node: string };
  t.is(failed.node, 'n1', `the error carries the failed write's version (${err.code}: ${err.message})`);
  t.true(hlcPhysicalMs(c.get('n1').store.getEntry(key)?.ts ?? 0) >= startedMs + AHEAD_MS - 100, 'the failed write was stamped by the clock 5 s ahead');
  await c.settle();
  t.deepEqual(c.holders(key), { n1: 'failed', n2: 'failed' }, 'the failed write reached two replicas');

  // The same client's next put, through n4 (clock right), at quorum: acknowledged, and stamped after it.
  route = c.get('n4');
  const acked = await client.put(key, 'acked', { consistency: 'quorum' });
  t.true(acked.version.ts > failed.ts, `acknowledged at ${acked.version.ts}, after the failed ${failed.ts}`);
  t.deepEqual(sentSeenTs, [undefined, failed.ts], 'the second put sent the failed version as seenTs');
  await c.settle();

  // n3 back; the hints (the failed write's, the acknowledged write's) are replayed: the acknowledged
  // value is the one every replica keeps and every read returns.
  c.net.up('n3');
  for (const id of c.ids()) await c.get(id).node.handoff.runOnce();
  await c.settle();
  const holders = c.holders(key);
  t.deepEqual({ n1: holders.n1, n2: holders.n2, n3: holders.n3 }, { n1: 'acked', n2: 'acked', n3: 'acked' });
  for (const id of c.ids()) {
    route = c.get(id);
    t.is((await client.get(key, { consistency: 'all' }))?.value.toString(), 'acked', `read at all through ${id}`);
  }
});
