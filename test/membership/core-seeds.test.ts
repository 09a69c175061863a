/** The core's two inputs for DNS seeds: setJoinSeeds (re-resolved addresses) and pushPull (a seed no member has). */
import test from 'ava';
import { MembershipCore } from '../../src/membership/core.js';
import { mulberry32 } from '../../src/membership/sim/random.js';

function core(): MembershipCore {
  return new MembershipCore({
    self: { id: 'a', gossip: '127.0.0.1:7101', rpc: '127.0.0.1:7201' },
    config: { joinRetryInitialMs: 500, joinRetryMaxMs: 500 },
    random: mulberry32(7),
  });
}

const joinTargets = (out: { syncs: Array<{ to: string; join: boolean }> }) => out.syncs.filter((s) => s.join).map((s) => s.to).sort();

test('setJoinSeeds: the next join attempt goes to the new addresses (without ourselves); empty keeps the old ones', (t) => {
  const c = core();
  t.deepEqual(joinTargets(c.join(0, ['127.0.0.2:7101'])), ['127.0.0.2:7101']);
  c.setJoinSeeds(['127.0.0.3:7101', '127.0.0.1:7101', '127.0.0.4:7101', '127.0.0.3:7101']);
  t.deepEqual(joinTargets(c.tick(1000)), ['127.0.0.3:7101', '127.0.0.4:7101']);
  c.setJoinSeeds([]);
  t.deepEqual(joinTargets(c.tick(2000)), ['127.0.0.3:7101', '127.0.0.4:7101'], 'a name that resolved to nothing does not stop the join');
  t.true(c.isJoining);
});

test('setJoinSeeds after the join is done, or on a first node, starts nothing', (t) => {
  const c = core();
  c.join(0, []);
  t.false(c.isJoining);
  c.setJoinSeeds(['127.0.0.2:7101']);
  t.false(c.isJoining);
  t.deepEqual(joinTargets(c.tick(5000)), []);
});

test('pushPull sends one push-pull (not a join) to the address, never to ourselves nor while leaving', (t) => {
  const c = core();
  c.join(0, []);
  const out = c.pushPull(10, '127.0.0.9:7101');
  t.deepEqual(out.syncs.map((s) => [s.to, s.join]), [['127.0.0.9:7101', false]]);
  t.deepEqual(c.pushPull(20, '127.0.0.1:7101').syncs, []);
  c.leave(30);
  t.deepEqual(c.pushPull(40, '127.0.0.9:7101').syncs, []);
});
