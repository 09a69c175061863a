/**
 * Regression (found by the whole-cluster simulator, seed 86 after session 5's membership change): writes
 * that reached a leaving node during its hand-off were never handed over. The second pass
 * (streaming.pushOut(late)) ran after the leave announcement, when the node's own view no longer held
 * it in the ring: every late key looked "not owned by this node" and was skipped (the log said
 * "pushing late writes ... 17 keys" and pushed 0). A write acknowledged at `one` whose only copy was
 * a hint replayed to the leaver during the hand-off was lost. Now the late pass compares against the
 * ring of the moment the leave began.
 *
 * Four in-process ClusterNodes at N = 3: n1 leaves; while its hand-off runs, a key that n1 owns is
 * written to n1 alone (internal.apply, as a hint replay does). Once the leave is done, the key must be
 * on every owner of the ring without n1.
 */
import test from 'ava';
import { ShoalError } from '../../src/errors.js';
import { startCluster } from './helpers/harness.js';

const KEYS = 300;

test('a write that reaches a leaving node during its hand-off is handed over after the announcement', async (t) => {
  const c = await startCluster(4, { replicationFactor: 3 });
  t.teardown(() => c.close());
  for (let i = 0; i < KEYS; i++) await c.call(`n${(i % 4) + 1}`, 'put', { key: `k${i}`, value: `v${i}`, consistency: 'all' });
  await c.settle();
  const leaver = c.get('n1');
  const late: string[] = [];
  for (let i = 0; late.length < 5; i++) if (leaver.node.view.owners(`late-${i}`).includes('n1')) late.push(`late-${i}`);

  const recentTs = Math.max(...c.ids().map((id) => c.get(id).store.getEntry(`k${KEYS - 1}`)?.ts ?? 0));
  t.true(recentTs > 0);
  const leaving = c.call('n1', 'leave', {});
  // The hand-off is under way (its pushes are in flight): the late writes reach n1 alone.
  await new Promise((resolve) => setImmediate(resolve));
  t.true(leaver.node.isLeaving, 'the hand-off runs');
  const writes = await Promise.allSettled(late.map((key) =>
    c.call('n1', 'internal.apply', { key, entry: { value: Buffer.from(`late value of ${key}`), ts: recentTs + 1 + late.indexOf(key), node: 'n2' } })));
  await leaving;
  // A write may only be refused once the last hand-off pass is done, and then with UNAVAILABLE.
  const accepted = late.filter((_, i) => writes[i]?.status === 'fulfilled');
  for (const w of writes) if (w.status === 'rejected') t.is((w.reason as ShoalError).code, 'UNAVAILABLE');
  t.true(accepted.length > 0, 'some late writes reached n1 during its hand-off');

  const missing: string[] = [];
  for (const key of accepted) {
    const owners = c.get('n2').node.view.owners(key);
    t.false(owners.includes('n1'));
    for (const id of owners) if (c.holders(key)[id] !== `late value of ${key}`) missing.push(`${key}@${id}`);
  }
  t.deepEqual(missing, [], 'every late write is on every new owner');
});

test('a node that has left refuses writes from peers, so that their sender keeps them', async (t) => {
  const c = await startCluster(4, { replicationFactor: 3 });
  t.teardown(() => c.close());
  await c.call('n2', 'put', { key: 'before', value: 'v', consistency: 'all' });
  await c.call('n1', 'leave', {});
  const ts = c.get('n2').store.getEntry('before')?.ts ?? 0;
  const err = await t.throwsAsync(c.call('n1', 'internal.apply', { key: 'after', entry: { value: Buffer.from('x'), ts: ts + 1, node: 'n2' } }), { instanceOf: ShoalError });
  t.is(err?.code, 'UNAVAILABLE');
  t.regex(err?.message ?? '', /n1 has left the cluster/);
  t.is(c.get('n1').store.getEntry('after'), undefined, 'not stored');
});
