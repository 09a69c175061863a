/** The ring view: who owns what as membership changes, dead-owner grace, removal, stand-ins. */
import test from 'ava';
import { hashKey, Ring } from '../../src/ring/ring.js';
import type { RingLike } from '../../src/cluster/ports.js';
import { ClusterView } from '../../src/cluster/view.js';
import { nullLogger } from '../../src/log.js';
import { fakeTimeClock } from './helpers/clock.js';
import { MembershipWorld } from './helpers/membership.js';

function setup(ids: string[], graceMs = 60_000) {
  const world = new MembershipWorld();
  for (const id of ids) world.add(id);
  let now = 1_000_000;
  const view = new ClusterView({
    membership: world.source(ids[0]),
    ringFactory: { build: (members, opts) => Ring.build(members, opts), hashKey },
    replicationFactor: 3,
    vnodes: 64,
    deadOwnerGraceMs: graceMs,
    clock: fakeTimeClock(() => now),
    logger: nullLogger,
  });
  const changes: Array<[RingLike, RingLike]> = [];
  view.onRingChange((a, b) => changes.push([a, b]));
  return { world, view, changes, advance: (ms: number) => (now += ms) };
}

const KEYS = Array.from({ length: 200 }, (_, i) => `key-${i}`);

test('owners are the ring\'s preference list of N distinct members', (t) => {
  const { view } = setup(['n1', 'n2', 'n3', 'n4', 'n5']);
  for (const key of KEYS) {
    const owners = view.owners(key);
    t.is(new Set(owners).size, 3);
    t.deepEqual(owners, view.ring().preferenceList(key, 3));
  }
  view.close();
});

test('a dead member keeps owning for deadOwnerGraceMs, then its ranges move; it owns again when alive', (t) => {
  const { world, view, changes, advance } = setup(['n1', 'n2', 'n3', 'n4', 'n5'], 60_000);
  const before = view.ring().checksum();
  world.set('n4', 'dead');
  t.is(view.ring().checksum(), before, 'within grace: same ring');
  t.false(view.isUp('n4'));
  t.true(view.ring().members().includes('n4'));
  advance(60_001);
  view.refresh();
  t.false(view.ring().members().includes('n4'), 'past grace: not an owner');
  t.is(changes.length, 1);
  for (const key of KEYS) t.false(view.owners(key).includes('n4'));
  world.set('n4', 'alive');
  t.true(view.ring().members().includes('n4'));
  t.is(view.ring().checksum(), before, 'back to the same ring');
  view.close();
});

test('a member that left stops owning at once; suspect members still own and count as up', (t) => {
  const { world, view } = setup(['n1', 'n2', 'n3', 'n4']);
  world.set('n2', 'suspect');
  t.true(view.isUp('n2'));
  t.false(view.isAlive('n2'));
  t.true(view.ring().members().includes('n2'));
  world.set('n3', 'left');
  t.false(view.ring().members().includes('n3'));
  view.close();
});

test('remove: a dead member stops owning before its grace ends; it is a member again when alive', (t) => {
  const { world, view } = setup(['n1', 'n2', 'n3', 'n4', 'n5'], 600_000);
  world.set('n5', 'dead');
  t.true(view.ring().members().includes('n5'));
  t.true(view.remove('n5'));
  t.false(view.ring().members().includes('n5'));
  t.false(view.remove('n1'), 'a node cannot remove itself');
  world.set('n5', 'alive');
  t.true(view.ring().members().includes('n5'));
  view.close();
});

test('stand-ins are the alive members after the owners, clockwise, never an excluded one', (t) => {
  const { world, view } = setup(['n1', 'n2', 'n3', 'n4', 'n5', 'n6']);
  for (const key of KEYS.slice(0, 50)) {
    const owners = view.owners(key);
    const order = view.ring().preferenceList(key, 6);
    t.deepEqual(view.standIns(key, 2, owners), order.slice(3, 5));
    t.deepEqual(view.standIns(key, 3, [...owners, order[3]]), order.slice(4, 6));
  }
  const key = KEYS[0];
  const next = view.ring().preferenceList(key, 6)[3];
  world.set(next, 'suspect');
  t.false(view.standIns(key, 3, view.owners(key)).includes(next), 'a suspect is not a stand-in');
  view.close();
});
