/**
 * The view's replication factor (issue 10): N is clamped to the cluster's size (members that have not
 * left, persisted known members included, minus removals), never to the members alive or in the ring;
 * a node that left is no owner in its own view.
 */
import test from 'ava';
import { ClusterView } from '../../src/cluster/view.js';
import { nullLogger } from '../../src/log.js';
import { Ring, hashKey } from '../../src/ring/ring.js';
import { fakeTimeClock } from './helpers/clock.js';
import { MembershipWorld } from './helpers/membership.js';

const ringFactory = { build: (members: Array<{ id: string; zone?: string }>, opts?: { vnodes?: number }) => Ring.build(members, opts), hashKey };

function view(world: MembershipWorld, self: string, known: string[] = [], now = () => 0): ClusterView {
  const source = { ...world.source(self), knownMemberIds: () => known };
  return new ClusterView({ membership: source, ringFactory, replicationFactor: 3, vnodes: 16, deadOwnerGraceMs: 1000, clock: fakeTimeClock(now), logger: nullLogger });
}

test('N stays 3 when the other members are dead past their grace and out of the ring', (t) => {
  const world = new MembershipWorld();
  for (const id of ['n1', 'n2', 'n3']) world.add(id);
  let nowMs = 0;
  const v = view(world, 'n1', [], () => nowMs);
  t.teardown(() => v.close());
  t.is(v.replicas(), 3);
  world.set('n2', 'dead');
  world.set('n3', 'dead');
  nowMs = 5000;
  v.refresh();
  t.deepEqual(v.ring().members(), ['n1'], 'the ring shrank');
  t.is(v.replicas(), 3, 'N did not');
  t.deepEqual(v.owners('k'), ['n1']);
  t.true(v.remove('n2'));
  t.is(v.replicas(), 2, 'a removal shrinks the cluster');
});

test('persisted known members count before they are seen again; members that left do not', (t) => {
  const world = new MembershipWorld();
  world.add('n1');
  const restarted = view(world, 'n1', ['n2', 'n3']);
  t.teardown(() => restarted.close());
  t.is(restarted.replicas(), 3, 'a restarted node that knew two others does not act as a cluster of one');
  const alone = view(world, 'n1', []);
  t.teardown(() => alone.close());
  t.is(alone.replicas(), 1, 'the first node of a new cluster: N = 1');
  world.add('n2');
  t.is(alone.replicas(), 2);
  world.set('n2', 'left');
  t.is(alone.replicas(), 1, 'a leave shrinks the cluster');
});

test('a node that left is no owner in its own view', (t) => {
  const world = new MembershipWorld();
  for (const id of ['n1', 'n2', 'n3', 'n4']) world.add(id);
  const v = view(world, 'n4');
  t.teardown(() => v.close());
  t.true(v.ring().members().includes('n4'));
  world.set('n4', 'left');
  t.deepEqual(v.ring().members(), ['n1', 'n2', 'n3']);
  for (let i = 0; i < 50; i++) t.false(v.owners(`k${i}`).includes('n4'));
});

test('ring changes are coalesced: 50 joins in one task make one rebuild and one notification; reads are never stale', async (t) => {
  const world = new MembershipWorld();
  world.add('n0');
  let builds = 0;
  const counting = { ...ringFactory, build: (members: Array<{ id: string; zone?: string }>, opts?: { vnodes?: number }) => { builds += 1; return Ring.build(members, opts); } };
  const v = new ClusterView({ membership: world.source('n0'), ringFactory: counting, replicationFactor: 3, vnodes: 16, deadOwnerGraceMs: 1000, logger: nullLogger, ringQuietMs: 5, ringWaitMsMax: 20 });
  t.teardown(() => v.close());
  const changes: number[] = [];
  v.onRingChange((oldRing, newRing) => changes.push(newRing.members().length - oldRing.members().length));
  builds = 0;
  for (let i = 1; i <= 50; i += 1) world.add(`n${i}`);
  t.is(builds, 0, 'no rebuild per event');
  await new Promise((resolve) => setImmediate(resolve));
  t.is(builds, 0, 'nor on the next turn: the burst may go on');
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.is(builds, 1, 'one rebuild for the burst once it is quiet');
  t.deepEqual(changes, [50], 'one notification, from the old ring to the new one');
  // A read right after an event sees it at once (settled synchronously), and the timer adds nothing.
  world.add('n51');
  t.true(v.ring().members().includes('n51'));
  t.is(v.replicas(), 3);
  t.deepEqual(changes, [50, 1]);
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.deepEqual(changes, [50, 1]);
  t.is(builds, 2);
  t.is(v.ringRebuildCount, 2);
});

test('steady churn (one join every few ms, never quiet) still rebuilds at most every ringWaitMsMax, not once per join', async (t) => {
  const world = new MembershipWorld();
  world.add('n0');
  const v = new ClusterView({ membership: world.source('n0'), ringFactory, replicationFactor: 3, vnodes: 16, deadOwnerGraceMs: 1000, logger: nullLogger, ringQuietMs: 30, ringWaitMsMax: 60 });
  t.teardown(() => v.close());
  const sizes: number[] = [];
  v.onRingChange((_, newRing) => sizes.push(newRing.members().length));
  const startedMs = performance.now();
  // 40 joins 5 ms apart (~200 ms, more with timer slack): quieter than ringQuietMs never happens.
  for (let i = 1; i <= 40; i += 1) {
    world.add(`n${i}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const elapsedMs = performance.now() - startedMs;
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(sizes.at(-1), 41, 'the last ring has every member');
  t.true(sizes.length >= 2, `the wait is bounded: rebuilt during the churn too (${sizes.length} rebuilds)`);
  // One rebuild per ringWaitMsMax of churn (+1 for the end, +1 for timer slack), far fewer than 40.
  t.true(sizes.length <= Math.ceil(elapsedMs / 60) + 2, `${sizes.length} rebuilds in ${Math.round(elapsedMs)} ms`);
  t.true(sizes.length < 20);
  t.is(v.ringRebuildCount, sizes.length);
});
