import test from 'ava';
import fc from 'fast-check';
import { buildSchedule, finalMembers, PARTITION_FAULTS, prng } from './lib/schedule.js';
import type { ScheduleOptions } from './lib/schedule.js';

const NODES = ['n1', 'n2', 'n3', 'n4', 'n5'];
const base: ScheduleOptions = { seed: 1, durationMs: 120_000, nodes: NODES, spare: 'n6', keep: ['n1', 'n2', 'n3'], partitions: true };

test('the same seed gives the same schedule; another seed another', (t) => {
  t.deepEqual(buildSchedule(base), buildSchedule({ ...base }));
  t.notDeepEqual(buildSchedule(base), buildSchedule({ ...base, seed: 2 }));
  const a = prng(7);
  const b = prng(7);
  for (let i = 0; i < 10; i++) t.is(a(), b());
});

test('property: one fault at a time, inside the run, on nodes that are members at that moment', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 20_000, max: 180_000 }), fc.boolean(), (seed, durationMs, partitions) => {
      const steps = buildSchedule({ ...base, seed, durationMs, partitions });
      let members = new Set(NODES);
      let end = 0;
      for (const s of steps) {
        t.true(s.atMs >= end, 'faults do not overlap');
        end = s.atMs + s.durationMs;
        t.true(end <= durationMs, 'every fault heals before the workload ends');
        if (s.fault === 'join') {
          t.false(members.has(s.targets[0]));
          members.add(s.targets[0]);
          continue;
        }
        for (const id of s.targets) t.true(members.has(id), `${s.fault} targets member ${id}`);
        if (s.fault === 'leave') {
          t.false(['n1', 'n2', 'n3'].includes(s.targets[0]), 'seeds never leave');
          members.delete(s.targets[0]);
        }
        if (s.fault === 'partition-split' || s.fault === 'partition-long') t.true(s.targets.length * 2 < members.size, 'a split isolates a minority');
        if (s.fault === 'partition-long') t.true(s.durationMs > 4000, 'a long partition outlasts the suspicion timeout');
        if (s.fault === 'seed-restart') t.true(['n1', 'n2', 'n3'].includes(s.targets[0]), 'a seed restarts');
        if (s.fault === 'leave-rejoin') t.false(['n1', 'n2', 'n3'].includes(s.targets[0]), 'seeds never leave');
        if (!partitions) t.false(PARTITION_FAULTS.includes(s.fault));
        if (s.fault === 'pause-one') t.true(s.durationMs > 4000, 'pauses outlast the suspicion timeout');
      }
      members = new Set(finalMembers(NODES, steps));
      t.true(members.size >= 4);
    }),
    { numRuns: 200 },
  );
});

test('a long run covers every fault kind once, join before leave, the all-nodes kill last', (t) => {
  const steps = buildSchedule({ ...base, durationMs: 300_000 });
  const kinds = steps.map((s) => s.fault);
  for (const k of [
    'kill-one', 'pause-one', 'wal-truncate', 'partition-one', 'partition-split', 'partition-oneway', 'join', 'leave', 'kill-all',
    'seed-restart', 'leave-rejoin', 'partition-long',
  ] as const) {
    t.true(kinds.includes(k), k);
  }
  t.true(kinds.indexOf('join') < kinds.indexOf('leave'));
  t.is(kinds.indexOf('kill-all'), kinds.length - 1);
  t.is(kinds.filter((k) => k === 'kill-all').length, 1);
  t.deepEqual(steps[steps.length - 1].targets, [...finalMembers(NODES, steps)].sort());
});

test('the operator actions come early: the CI runs (45 s, seeds 1 and 2) have each of them', (t) => {
  const kinds = new Set<string>();
  for (const seed of [1, 2]) {
    for (const s of buildSchedule({ ...base, seed, durationMs: 45_000, killAll: seed === 1 })) kinds.add(s.fault);
  }
  for (const k of ['seed-restart', 'leave-rejoin', 'partition-long']) t.true(kinds.has(k), k);
  const first = buildSchedule({ ...base, durationMs: 300_000 }).slice(0, 5).map((s) => s.fault);
  t.deepEqual([first[0], first[2], first[4]].sort(), ['leave-rejoin', 'partition-long', 'seed-restart']);
});

test('without a spare or with three nodes there is no join or leave', (t) => {
  const kinds = buildSchedule({ ...base, nodes: ['n1', 'n2', 'n3'], spare: undefined, durationMs: 300_000 }).map((s) => s.fault);
  t.false(kinds.includes('join'));
  t.false(kinds.includes('leave'));
  t.false(kinds.includes('leave-rejoin'));
  t.false(buildSchedule({ ...base, killAll: false }).some((s) => s.fault === 'kill-all'));
});
