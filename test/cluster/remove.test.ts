/**
 * `shoal remove` of a dead member reaches the members the operator's node cannot call (found by the
 * whole-cluster simulator, seed 79). Before, the removal was only told to the members an
 * internal.remove RPC reached at that moment; one that was cut off kept the dead member in its ring
 * for deadOwnerGraceMs (10 min), and the cluster had two rings. Now ClusterView.remove also asks
 * membership to force-leave the member, and membership's 'left' reaches every member (here at once:
 * the in-process world has perfect gossip; test/membership/force-leave.test.ts covers the real
 * gossip, test/sim/regressions.test.ts the whole agent on simulated time).
 */
import test from 'ava';
import { startCluster } from './helpers/harness.js';

test('a member the internal.remove RPC did not reach still drops the removed member from its ring once membership says left', async (t) => {
  const c = await startCluster(4);
  t.teardown(() => c.close());
  c.world.forceLeaveGossiped = true;
  for (let i = 0; i < 50; i++) await c.call('n1', 'put', { key: `k${i}`, value: `v${i}`, consistency: 'all' });
  const ringOf = (id: string): string[] => c.get(id).node.view.ring().members();
  for (const id of ['n1', 'n2', 'n3']) t.deepEqual(ringOf(id), ['n1', 'n2', 'n3', 'n4']);

  c.kill('n4'); // crashed; membership says dead everywhere
  await c.settle();
  for (const id of ['n1', 'n2', 'n3']) t.true(ringOf(id).includes('n4'), `${id} keeps the dead n4 in its ring within deadOwnerGraceMs`);

  c.net.partition('n1', 'n3'); // n1 cannot call n3 (membership still sees n3 alive)
  c.net.logCalls = true;
  await c.call('n1', 'remove', { id: 'n4' });
  // Not c.settle(): n1's streaming of its new ranges from n3 cannot finish while they are cut.
  const deadline = Date.now() + 5_000;
  while (ringOf('n3').includes('n4') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.true(c.net.callLog.includes('n1→n3:internal.remove'), 'n1 tried to tell n3');
  t.true(c.net.callLog.includes('n1→n2:internal.remove'), 'and told n2');

  // n3 first: n1 and n2 dropped n4 from their rings through the RPC path before the fix too.
  for (const id of ['n3', 'n1', 'n2']) t.deepEqual(ringOf(id), ['n1', 'n2', 'n3'], `${id}'s ring no longer has n4`);
  for (const id of ['n3', 'n1', 'n2']) t.is(c.get(id).node.view.member('n4')?.state, 'left', `${id}: membership says n4 left`);
  t.is(new Set(['n1', 'n2', 'n3'].map((id) => c.get(id).node.view.ring().checksum())).size, 1, 'one ring');
  // Three owners for every key again, none of them n4.
  for (let i = 0; i < 50; i++) t.deepEqual([...c.get('n3').node.view.owners(`k${i}`)].sort(), ['n1', 'n2', 'n3']);
});

test('remove of a member that is alive is refused and membership is not touched', async (t) => {
  const c = await startCluster(4);
  t.teardown(() => c.close());
  c.world.forceLeaveGossiped = true;
  await t.throwsAsync(c.call('n1', 'remove', { id: 'n4' }), { message: /is alive/ });
  for (const id of ['n1', 'n2', 'n3', 'n4']) {
    t.is(c.get(id).node.view.member('n4')?.state, 'alive', `${id}: n4 alive`);
    t.true(c.get(id).node.view.ring().members().includes('n4'));
  }
});
