/**
 * Regression (found by the whole-cluster simulator, seed 25): a leave whose hand-off pushes failed went
 * ahead anyway. The leaving node announced the leave and stopped owning its keys while the member that
 * was to take them over had not got them, so writes acknowledged before the leave (whose only copies
 * beyond the leaver's were elsewhere, or lost later) went missing. Now handOffAndLeave refuses the leave
 * (UNAVAILABLE "leave refused: N keys and M hints could not be handed to their new owners") when
 * streaming.pushOut reported failures or hints remain; the node serves on as a member, and a later
 * leave, once the new owners are reachable, hands everything over.
 *
 * Four in-process ClusterNodes at N = 3 (helpers/harness.ts): when n1 leaves, each key it owns gets
 * exactly one new owner, the one of n2..n4 that did not own it. n1 is cut off from n4 (membership
 * still says everyone is alive), so the keys whose new owner is n4 cannot be pushed. The second test
 * holds only keys that never move to n4, so every push succeeds and the hint for n4 alone refuses it.
 */
import test from 'ava';
import { ShoalError } from '../../src/errors.js';
import { startCluster, str } from './helpers/harness.js';

const KEYS = 200;
const keyOf = (i: number) => `leave-key-${i}`;
const valueOf = (i: number) => `value-${i}`;

interface MemberRow {
  id: string;
  state: string;
  owner: boolean;
}

test('a leave whose hand-off cannot reach a new owner is refused and the node serves on; once it can, the leave hands every key over', async (t) => {
  const c = await startCluster(4, { replicationFactor: 3 });
  t.teardown(() => c.close());
  for (let i = 0; i < KEYS; i++) await c.call(`n${(i % 4) + 1}`, 'put', { key: keyOf(i), value: valueOf(i), consistency: 'all' });
  await c.settle();

  const leaver = c.get('n1');
  // The keys n1 owns whose one new owner after its leave is n4 (the member that does not own them now).
  const toN4 = [];
  for (let i = 0; i < KEYS; i++) {
    const owners = leaver.node.view.owners(keyOf(i));
    if (owners.includes('n1') && !owners.includes('n4')) toN4.push(keyOf(i));
  }
  t.true(toN4.length > 10, `some of n1's keys move to n4 (${toN4.length})`);
  const heldByN1 = Array.from({ length: KEYS }, (_, i) => keyOf(i)).filter((key) => leaver.store.getEntry(key));

  // n1 cannot reach n4; membership says all four are alive.
  c.net.partition('n1', 'n4');
  // A write through n1 at consistency all to a key n4 owns too: it fails, and n4's copy is a hint n1
  // keeps itself (at all, no stand-in counts).
  let hinted = -1;
  for (let i = KEYS; hinted < 0; i++) {
    const owners = leaver.node.view.owners(keyOf(i));
    if (owners.includes('n1') && owners.includes('n4')) hinted = i;
  }
  await t.throwsAsync(c.call('n1', 'put', { key: keyOf(hinted), value: valueOf(hinted), consistency: 'all' }));
  await c.settle();
  t.is(leaver.hints.pendingFor('n4'), 1, 'n1 holds a hint for n4');

  const err = await t.throwsAsync(c.call('n1', 'leave', {}), { instanceOf: ShoalError });
  t.is(err?.code, 'UNAVAILABLE');
  t.regex(err?.message ?? '', new RegExp(`leave refused: ${toN4.length} keys and 1 hints could not be handed to their new owners`));

  // Not left: n1 still holds every key it held, still counts as an alive owner in every view, and serves.
  t.deepEqual(heldByN1.filter((key) => !leaver.store.getEntry(key)), [], 'n1 kept its keys');
  t.true(heldByN1.length > 0);
  t.is(leaver.hints.pendingFor('n4'), 1, 'and its hint');
  t.false(leaver.node.isLeaving, 'the node is not leaving any more');
  for (const id of c.ids()) {
    const rows = (await c.call(id, 'members', {})) as MemberRow[];
    const n1 = rows.find((row) => row.id === 'n1');
    t.deepEqual({ state: n1?.state, owner: n1?.owner }, { state: 'alive', owner: true }, `${id} holds n1 as an alive owner`);
    t.true(c.get(id).node.view.ring().members().includes('n1'), `n1 is in ${id}'s ring`);
  }
  await c.call('n1', 'put', { key: 'after-refusal', value: 'served', consistency: 'quorum' });
  t.is(str(await c.call('n1', 'get', { key: 'after-refusal', consistency: 'quorum' })), 'served', 'n1 still coordinates');

  // n4 reachable again: the second leave succeeds and every key is on its new owners (all of n2..n4).
  c.net.heal();
  await c.call('n1', 'leave', {});
  await c.settle();
  const rows = (await c.call('n2', 'members', {})) as MemberRow[];
  t.is(rows.find((row) => row.id === 'n1')?.state, 'left', 'n1 left');
  const missing: string[] = [];
  for (const i of [...Array.from({ length: KEYS }, (_, j) => j), hinted]) {
    const owners = c.get('n2').node.view.owners(keyOf(i));
    t.deepEqual([...owners].sort(), ['n2', 'n3', 'n4']);
    for (const id of owners) if (c.holders(keyOf(i))[id] !== valueOf(i)) missing.push(`${keyOf(i)}@${id}`);
  }
  t.deepEqual(missing, [], 'every key is on its new owners');
  t.is(leaver.hints.pendingFor('n4'), 0, 'the hint was handed over');
});

test('a leave is refused for a hint it cannot hand over even when every key was pushed', async (t) => {
  const c = await startCluster(4, { replicationFactor: 3 });
  t.teardown(() => c.close());
  const leaver = c.get('n1');
  // Only keys that n1 and n4 both own: when n1 leaves, each moves to n2 or n3, never to n4.
  const keys: string[] = [];
  for (let i = 0; keys.length < 40; i++) {
    const owners = leaver.node.view.owners(keyOf(i));
    if (owners.includes('n1') && owners.includes('n4')) keys.push(keyOf(i));
  }
  for (const key of keys.slice(1)) await c.call('n2', 'put', { key, value: `v-${key}`, consistency: 'all' });
  c.net.partition('n1', 'n4');
  // The first key through n1 at all: it fails, and n1 keeps n4's copy as a hint.
  await t.throwsAsync(c.call('n1', 'put', { key: keys[0], value: `v-${keys[0]}`, consistency: 'all' }));
  await c.settle();
  t.is(leaver.hints.pendingFor('n4'), 1);

  const err = await t.throwsAsync(c.call('n1', 'leave', {}), { instanceOf: ShoalError });
  t.is(err?.code, 'UNAVAILABLE');
  t.regex(err?.message ?? '', /leave refused: 0 keys and 1 hints could not be handed to their new owners/);
  t.is(leaver.hints.pendingFor('n4'), 1);
  t.false(leaver.node.isLeaving);
  for (const id of c.ids()) {
    const n1 = ((await c.call(id, 'members', {})) as MemberRow[]).find((row) => row.id === 'n1');
    t.is(n1?.state, 'alive', `${id} holds n1 alive`);
  }

  c.net.heal();
  await c.call('n1', 'leave', {});
  await c.settle();
  t.is(leaver.hints.pendingFor('n4'), 0);
  for (const key of keys) {
    const holders = c.holders(key);
    t.deepEqual(['n2', 'n3', 'n4'].map((id) => holders[id]), ['n2', 'n3', 'n4'].map(() => `v-${key}`), key);
  }
});
