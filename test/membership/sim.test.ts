import test from 'ava';
import { Simulator, type SimOptions } from '../../src/membership/sim/simulator.js';
import { suspicionTimeouts } from '../../src/membership/suspicion.js';
import { resolveMembershipConfig } from '../../src/membership/config.js';
import type { MembershipEvent } from '../../src/membership/types.js';

const PERIOD_MS = 1000;

function simulate(options: SimOptions): { sim: Simulator; events: Array<{ node: number; event: MembershipEvent; timeMs: number }>; tag: string } {
  const sim = new Simulator(options);
  const events: Array<{ node: number; event: MembershipEvent; timeMs: number }> = [];
  sim.onEvent((node, event, timeMs) => events.push({ node, event, timeMs }));
  return { sim, events, tag: `seed ${options.seed}, n ${options.n}, loss ${options.lossRate ?? 0}` };
}

test('joins through one seed converge, and the same seed replays exactly', (t) => {
  const run = (): { took: number | null; totals: string; sum: string } => {
    const { sim } = simulate({ n: 30, seed: 11 });
    sim.start(0, []);
    for (let i = 1; i < 30; i += 1) {
      sim.runFor(100);
      sim.start(i, [0]);
    }
    const took = sim.runUntilTrue(() => sim.converged(), 60_000);
    return { took, totals: JSON.stringify(sim.totals), sum: sim.nodes[7].core.checksum() };
  };
  const first = run();
  t.not(first.took, null, 'seed 11: join did not converge');
  t.deepEqual(run(), first, 'seed 11: a rerun differs');
});

test('a crash is detected by everyone within the suspicion timeout + 5 periods', (t) => {
  for (const seed of [21, 22, 23]) {
    const n = 40;
    const { sim, events, tag } = simulate({ n, seed });
    sim.bootstrap();
    sim.runFor(10_000);
    const crashAt = sim.now;
    sim.crash(5);
    const took = sim.runUntilTrue(() => sim.countSeeing(5, 'dead') === n - 1, 60_000, 50);
    const { minMs } = suspicionTimeouts(resolveMembershipConfig(), n);
    t.not(took, null, `${tag}: not everyone marked the crashed node dead`);
    t.true((took ?? Infinity) <= minMs + 5 * PERIOD_MS, `${tag}: took ${took} ms`);
    const firstSuspect = events.find((e) => e.event.type === 'suspect' && e.event.member.id === 'n5');
    t.true(firstSuspect !== undefined && firstSuspect.timeMs - crashAt <= 4 * PERIOD_MS, `${tag}: first suspicion late`);
    t.false(events.some((e) => e.event.type === 'dead' && e.event.member.id !== 'n5'), `${tag}: a false positive`);
  }
});

test('no false positives at 10% loss over 10 simulated minutes', (t) => {
  const { sim, events, tag } = simulate({ n: 30, seed: 31, lossRate: 0.1 });
  sim.bootstrap();
  sim.runFor(600_000);
  const dead = events.filter((e) => e.event.type === 'dead' || e.event.type === 'left');
  t.is(dead.length, 0, `${tag}: ${dead.map((e) => `${e.event.member.id}@${e.node}`).join(' ')}`);
  t.true(events.some((e) => e.event.type === 'suspect'), `${tag}: the loss never even caused a suspicion`);
  t.true(sim.converged(), tag);
});

test('a half/half partition is detected on both sides and heals', (t) => {
  const n = 20;
  const { sim, tag } = simulate({ n, seed: 41, config: { reconnectIntervalMs: 10_000 } });
  sim.bootstrap();
  sim.runFor(5000);
  for (let i = n / 2; i < n; i += 1) sim.setGroup(i, 1);
  sim.runFor(90_000);
  t.is(sim.nodes[0].core.stateOf('n15'), 'dead', tag);
  t.is(sim.nodes[15].core.stateOf('n0'), 'dead', tag);
  sim.heal();
  const took = sim.runUntilTrue(() => sim.converged(), 120_000);
  t.not(took, null, `${tag}: no reconvergence after the partition healed`);
});

test('a crashed member that restarts is alive again at a higher incarnation; a leave is a leave', (t) => {
  const n = 25;
  const { sim, events, tag } = simulate({ n, seed: 51, lossRate: 0.05 });
  sim.bootstrap();
  sim.runFor(5000);
  sim.crash(3);
  t.not(sim.runUntilTrue(() => sim.countSeeing(3, 'dead') === n - 1, 60_000), null, tag);
  sim.restart(3, [0]);
  t.not(sim.runUntilTrue(() => sim.converged(), 60_000), null, `${tag}: restart did not converge`);
  t.true(sim.nodes[10].core.member('n3')!.incarnation >= 2, tag);
  sim.leave(4);
  t.not(sim.runUntilTrue(() => sim.countSeeing(4, 'left') === n - 1, 30_000), null, `${tag}: leave did not spread`);
  t.false(events.some((e) => e.event.type === 'dead' && e.event.member.id === 'n4'), tag);
});
