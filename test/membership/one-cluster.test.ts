/**
 * One cluster after restarts, leaves, partitions and address changes, in the simulator (issue 10):
 * a member that left comes back at a higher incarnation, a restarted node joins through the members
 * it knew when its seeds are gone, left and dead members are reconnected so a long partition merges,
 * a node on a new address is the same member, and many nodes joining at once converge in about a second.
 */
import test from 'ava';
import { Simulator } from '../../src/membership/sim/simulator.js';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

test('a member that left restarts and is alive again everywhere, at a higher incarnation', (t) => {
  const n = 20;
  const sim = new Simulator({ n, seed: 101, lossRate: 0.02 });
  sim.bootstrap();
  sim.runFor(3000);
  sim.leave(3);
  t.not(sim.runUntilTrue(() => sim.countSeeing(3, 'left') === n - 1, 30_000), null, 'the leave spread');
  const leftAt = sim.nodes[0].core.member('n3')!.incarnation;
  sim.crash(3);
  sim.runFor(5000);
  sim.restart(3, [0]);
  t.not(sim.runUntilTrue(() => sim.converged(), 30_000), null, 'not converged after the rejoin');
  for (const node of sim.nodes) t.true(node.core.member('n3')!.incarnation > leftAt, `${node.id} holds n3 at a higher incarnation`);
});

test('the seed leaves and restarts without seeds: it rejoins through the members it knew', (t) => {
  const n = 12;
  const sim = new Simulator({ n, seed: 102 });
  sim.bootstrap();
  sim.runFor(3000);
  sim.leave(0);
  t.not(sim.runUntilTrue(() => sim.countSeeing(0, 'left') === n - 1, 30_000), null);
  sim.crash(0);
  // Some of the members it knew are gone too: the others are enough.
  sim.crash(1);
  sim.crash(2);
  sim.runFor(10_000);
  sim.restart(0, [], { known: range(1, n) });
  t.true(sim.nodes[0].core.isJoining, 'it waits for a known member instead of starting a new cluster');
  t.not(sim.runUntilTrue(() => sim.converged(), 30_000), null, 'the seed did not rejoin');
  t.is(sim.nodes[5].core.stateOf('n0'), 'alive');
});

test('a node whose seeds and known members are all unreachable keeps joining, and joins once one is back', (t) => {
  const n = 6;
  const sim = new Simulator({ n, seed: 103 });
  sim.bootstrap();
  sim.runFor(2000);
  sim.crash(5);
  for (let i = 0; i < 5; i += 1) sim.setGroup(i, 1);
  sim.runFor(1000);
  sim.restart(5, [0], { known: [1, 2, 3, 4] });
  sim.runFor(60_000);
  t.true(sim.nodes[5].core.isJoining, 'still joining after a minute alone');
  t.is(sim.nodes[5].core.liveMembers, 1);
  sim.heal();
  t.not(sim.runUntilTrue(() => sim.converged(), 10_000), null, 'no join within 10 s of the network coming back');
});

test('a long partition merges through reconnect (left and dead members are retried), not only push-pull', (t) => {
  const n = 16;
  const sim = new Simulator({ n, seed: 104, config: { reconnectIntervalMs: 5000, pushPullIntervalMs: 3_600_000 } });
  sim.bootstrap();
  sim.runFor(3000);
  for (let i = n / 2; i < n; i += 1) sim.setGroup(i, 1);
  sim.runFor(120_000);
  t.is(sim.nodes[0].core.stateOf('n12'), 'dead');
  t.is(sim.nodes[12].core.stateOf('n0'), 'dead');
  sim.heal();
  t.not(sim.runUntilTrue(() => sim.converged(), 30_000), null, 'the halves did not merge');
});

test('a member that left and came back as a new cluster of one is found again by the others (reconnect to left members)', (t) => {
  const n = 8;
  const sim = new Simulator({ n, seed: 105, config: { reconnectIntervalMs: 5000 } });
  sim.bootstrap();
  sim.runFor(2000);
  sim.leave(7);
  t.not(sim.runUntilTrue(() => sim.countSeeing(7, 'left') === n - 1, 30_000), null);
  sim.crash(7);
  // It comes back with nothing to join through (an operator's --bootstrap, say).
  sim.restart(7, []);
  t.false(sim.nodes[7].core.isJoining);
  t.not(sim.runUntilTrue(() => sim.converged(), 30_000), null, 'the others never reconnected to the member that left');
});

test('a node restarted on a new address is the same member: accepted, the old address forgotten', (t) => {
  const n = 10;
  const sim = new Simulator({ n, seed: 106 });
  sim.bootstrap();
  sim.runFor(2000);
  const old = sim.nodes[4].addr;
  sim.crash(4);
  t.not(sim.runUntilTrue(() => sim.countSeeing(4, 'dead') === n - 1, 60_000), null);
  sim.restart(4, [0], { addr: '10.9.9.9:7946' });
  t.not(sim.runUntilTrue(() => sim.converged(), 30_000), null);
  for (const node of sim.nodes) {
    if (node.index === 4) continue;
    t.is(node.core.member('n4')!.gossip, '10.9.9.9:7946', `${node.id} knows the new address`);
    t.false(node.core.members().some((m) => m.gossip === old), `${node.id} still lists the old address`);
  }
  // Also while it was still listed alive (a quick reschedule, before anyone noticed).
  sim.crash(4);
  sim.restart(4, [1], { addr: '10.9.9.10:7946' });
  t.not(sim.runUntilTrue(() => sim.converged() && sim.nodes[0].core.member('n4')!.gossip === '10.9.9.10:7946', 30_000), null);
});

test('30 and 50 nodes started at the same moment: everyone sees everyone within 2 s (no waiting for the 30 s push-pull)', (t) => {
  for (const n of [30, 50]) {
    for (const seed of [1, 2, 3, 4]) {
      const sim = new Simulator({ n, seed });
      for (let i = 0; i < n; i += 1) sim.start(i, i === 0 ? [] : [0]);
      const took = sim.runUntilTrue(() => sim.converged(), 60_000, 50);
      t.true(took !== null && took <= 2000, `n ${n}, seed ${seed}: converged after ${took} ms`);
    }
  }
});

test('a leaving node knows it left: a left event about itself, its own state left, no probes after', (t) => {
  const sim = new Simulator({ n: 5, seed: 107 });
  const events: string[] = [];
  sim.onEvent((node, event) => {
    if (node === 2) events.push(`${event.type}:${event.member.id}`);
  });
  sim.bootstrap();
  sim.runFor(2000);
  const probes = () => sim.nodes[2].core.stats().probes;
  sim.leave(2);
  t.true(events.includes('left:n2'));
  t.is(sim.nodes[2].core.self().state, 'left');
  const before = probes();
  sim.runFor(5000);
  t.is(probes(), before, 'it stopped probing');
});
