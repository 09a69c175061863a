/**
 * core.forceLeave (the operator's `shoal remove` of a dead member, serf's force-leave): the member is
 * marked left at its incarnation and the leave is gossiped on its behalf, so members that were cut
 * off when the operator acted learn it too once they are reachable again (found by the whole-cluster
 * simulator, seed 79: before, only the members an internal.remove RPC reached stopped counting it, and
 * one cut off at the time kept it in its ring for deadOwnerGraceMs).
 *
 * Hand-cranked cores (harness.ts), push-pull and reconnect at their defaults (30 s each).
 */
import test from 'ava';
import { MembershipCore } from '../../src/membership/core.js';
import { DEFAULT_MEMBERSHIP_CONFIG } from '../../src/membership/config.js';
import { mulberry32 } from '../../src/membership/sim/random.js';
import { Net } from './harness.js';

const CONFIG = { probeIntervalMs: 1000, probeTimeoutMs: 500 };
const IDS = ['a', 'b', 'c', 'd'];
/**
 * A member cut off when the leave was gossiped learns it within this long of the heal: at the latest
 * on the next push-pull or reconnect (30 s each), with a margin for the rounds that follow.
 */
const LEARN_AFTER_HEAL_MS_MAX = DEFAULT_MEMBERSHIP_CONFIG.pushPullIntervalMs + DEFAULT_MEMBERSHIP_CONFIG.reconnectIntervalMs;

/** Four cores; d has crashed and every other member has declared it dead. */
function withDeadMember(seed: number): Net {
  const net = new Net(CONFIG, seed);
  for (const id of IDS) net.add(id);
  net.joinAll();
  net.advance(3_000);
  net.down.add('d');
  net.advance(30_000);
  return net;
}

function states(net: Net, subject: string, observers = ['a', 'b', 'c']): Record<string, string | undefined> {
  return Object.fromEntries(observers.map((o) => [o, net.stateAt(o, subject)]));
}

/** Advances in steps until done() or limitMs; returns the ms it took, or null. */
function advanceUntil(net: Net, done: () => boolean, limitMs: number, stepMs = 100): number | null {
  const start = net.now;
  while (net.now - start < limitMs) {
    if (done()) return net.now - start;
    net.advance(stepMs);
  }
  return done() ? net.now - start : null;
}

for (const seed of [1, 2, 3, 4, 5, 6]) {
  for (const cutMs of [3_000, 20_000]) {
    test(`seed ${seed}, cut ${cutMs / 1000} s: a member cut off when the operator removed a dead member sees it left after the heal`, (t) => {
      const net = withDeadMember(seed);
      t.deepEqual(states(net, 'd'), { a: 'dead', b: 'dead', c: 'dead' }, 'd is dead everywhere');
      const incarnation = net.core('a').member('d')?.incarnation;

      net.cut.add('c'); // c still runs, but nothing passes between it and a, b
      net.advance(500);
      const a = net.core('a');
      t.true(a.forceLeave(net.now, 'd'), 'a dead member is force-left');
      t.is(a.stateOf('d'), 'left', 'at once on the member the operator asked');
      t.is(a.member('d')?.incarnation, incarnation, 'at its incarnation (it outbids that if it comes back)');
      net.take(a, a.tick(net.now));
      net.flush();
      // b hears it by gossip within a few gossip rounds (no push-pull in so short a time).
      const bLearned = advanceUntil(net, () => net.stateAt('b', 'd') === 'left', 2_000, 10);
      t.not(bLearned, null, 'b learned the leave by gossip');
      net.advance(cutMs);
      t.is(net.stateAt('c', 'd'), 'dead', 'c, cut off, has not heard');

      net.cut.delete('c');
      const took = advanceUntil(net, () => net.stateAt('c', 'd') === 'left', LEARN_AFTER_HEAL_MS_MAX);
      t.not(took, null, `c still sees d ${net.stateAt('c', 'd')} ${LEARN_AFTER_HEAL_MS_MAX / 1000} s after the heal`);
      t.log(`c learned d left ${took} ms after the heal`);
      // One view again: c is alive to all, d left everywhere (c's old 'dead' did not win back).
      advanceUntil(net, () => IDS.slice(0, 3).every((o) => IDS.slice(0, 3).every((s) => net.stateAt(o, s) === 'alive')), 30_000);
      net.advance(5_000);
      t.deepEqual(states(net, 'd'), { a: 'left', b: 'left', c: 'left' });
      for (const o of ['a', 'b', 'c']) t.is(net.core(o).member('d')?.incarnation, incarnation, `${o}: d left at its incarnation`);
      for (const s of ['a', 'b', 'c']) t.deepEqual(states(net, s), { a: 'alive', b: 'alive', c: 'alive' }, `${s} alive to all`);
      t.is(new Set(['a', 'b', 'c'].map((o) => net.core(o).checksum())).size, 1, 'equal checksums');
    });
  }
}

test('a member that was down when the operator removed a dead member sees it left once it is back', (t) => {
  const net = withDeadMember(7);
  net.down.add('c'); // c's process is paused (it neither ticks nor hears)
  net.advance(500);
  const a = net.core('a');
  t.true(a.forceLeave(net.now, 'd'));
  net.take(a, a.tick(net.now));
  net.flush();
  net.advance(20_000);
  t.deepEqual(states(net, 'd', ['a', 'b']), { a: 'left', b: 'left' });
  t.is(net.stateAt('c', 'd'), 'dead');
  net.down.delete('c');
  t.not(advanceUntil(net, () => net.stateAt('c', 'd') === 'left', LEARN_AFTER_HEAL_MS_MAX), null, 'c learned the leave after it came back');
});

test('forceLeave of a live, suspect, unknown or already-left member, or of itself, changes nothing', (t) => {
  const net = withDeadMember(8);
  const a = net.core('a');
  const before = a.checksum();
  const eventsBefore = net.events.length;
  t.false(a.forceLeave(net.now, 'b'), 'alive: it would refute; not touched');
  t.false(a.forceLeave(net.now, 'a'), 'itself');
  t.false(a.forceLeave(net.now, 'nobody'), 'unknown');
  t.is(a.checksum(), before, 'nothing changed');
  t.is(a.tick(net.now).packets.flatMap((p) => p.packet.m).filter((m) => m.t === 'left').length, 0, 'no leave queued');
  // A suspect member is not dead yet: it may still refute.
  a.receive(net.now, { v: 1, m: [{ t: 'suspect', id: 'c', i: a.member('c')?.incarnation ?? 1, f: 'b' }] }, 'b:7000');
  t.is(a.stateOf('c'), 'suspect');
  const suspectSum = a.checksum();
  t.false(a.forceLeave(net.now, 'c'), 'suspect: not touched');
  t.is(a.checksum(), suspectSum);
  t.is(a.stateOf('c'), 'suspect');
  t.not(suspectSum, before);
  // Let c refute; then nothing but the refutation happened.
  net.advance(5_000);
  t.deepEqual(states(net, 'b'), { a: 'alive', b: 'alive', c: 'alive' });
  t.deepEqual(states(net, 'c'), { a: 'alive', b: 'alive', c: 'alive' });
  t.false(net.events.slice(eventsBefore).some((e) => e.type === 'left'), 'no leave announced');
  t.true(a.forceLeave(net.now, 'd'));
  t.false(a.forceLeave(net.now, 'd'), 'already left');
});

for (const restart of ['persisted incarnation + 1', 'wiped (incarnation 1)'] as const) {
  test(`a force-left member that comes back (${restart}) is alive again everywhere`, (t) => {
    const net = withDeadMember(9);
    const a = net.core('a');
    const leftAt = a.member('d')?.incarnation ?? 1;
    t.true(a.forceLeave(net.now, 'd'));
    net.take(a, a.tick(net.now));
    net.flush();
    net.advance(10_000);
    t.deepEqual(states(net, 'd'), { a: 'left', b: 'left', c: 'left' });

    // d restarts on its address and joins through a.
    const d = new MembershipCore({
      self: { id: 'd', gossip: 'd:7000', rpc: 'd:8000', incarnation: restart === 'wiped (incarnation 1)' ? 1 : leftAt + 1 },
      config: CONFIG,
      random: mulberry32(99),
    });
    net.cores.set('d:7000', d);
    net.down.delete('d');
    net.take(d, d.join(net.now, ['a:7000']));
    net.flush();
    const took = advanceUntil(net, () => IDS.every((o) => net.stateAt(o, 'd') === 'alive'), 10_000);
    t.not(took, null, `d is ${JSON.stringify(states(net, 'd', IDS))}`);
    t.true((a.member('d')?.incarnation ?? 0) > leftAt, 'at an incarnation above the one it was force-left at');
    net.advance(5_000);
    t.deepEqual(states(net, 'd', IDS), { a: 'alive', b: 'alive', c: 'alive', d: 'alive' });
  });
}

for (const seed of [11, 12, 13]) {
  test(`seed ${seed}: a remove from a member that missed the removed one's last life still converges on left (simulator seed 683)`, (t) => {
    const net = withDeadMember(seed);
    const known = net.core('a').member('d')?.incarnation ?? 1;
    // d came back at a newer incarnation and died again while a was cut off: b and c hold it dead at
    // known + 1, a still at known. The operator then runs `shoal remove d` on a.
    net.cut.add('a');
    for (const o of ['b', 'c']) {
      const core = net.core(o);
      net.take(core, core.receive(net.now, { v: 1, m: [{ t: 'alive', id: 'd', i: known + 1, a: 'd:7000', r: 'd:8000' }] }, 'd:7000'));
      net.take(core, core.receive(net.now, { v: 1, m: [{ t: 'dead', id: 'd', i: known + 1, f: o }] }, `${o}:7000`));
    }
    net.advance(2_000);
    t.deepEqual(states(net, 'd', ['b', 'c']), { b: 'dead', c: 'dead' });
    t.is(net.core('b').member('d')?.incarnation, known + 1);
    const a = net.core('a');
    t.is(a.member('d')?.incarnation, known, 'a missed the newer life');
    t.true(a.forceLeave(net.now, 'd'));
    net.cut.delete('a');
    const took = advanceUntil(net, () => ['b', 'c'].every((o) => net.stateAt(o, 'd') === 'left'), LEARN_AFTER_HEAL_MS_MAX);
    t.not(took, null, `b, c still see d ${net.stateAt('b', 'd')}, ${net.stateAt('c', 'd')}: two views for good`);
    net.advance(5_000);
    t.deepEqual(states(net, 'd'), { a: 'left', b: 'left', c: 'left' }, 'left everywhere; the older dead did not win back');
    t.is(net.core('b').member('d')?.incarnation, known + 1, 'b keeps the newer incarnation it knew');

    // The newer life is not forgotten: d coming back outbids it and is alive everywhere.
    for (const o of ['a', 'b', 'c']) {
      const core = net.core(o);
      net.take(core, core.receive(net.now, { v: 1, m: [{ t: 'alive', id: 'd', i: known + 2, a: 'd:7000', r: 'd:8000' }] }, 'd:7000'));
    }
    t.deepEqual(states(net, 'd'), { a: 'alive', b: 'alive', c: 'alive' });
  });
}

test('a left about an older incarnation does not touch a member alive or suspect at a newer one', (t) => {
  const net = withDeadMember(14);
  const b = net.core('b');
  const known = b.member('d')?.incarnation ?? 1;
  b.receive(net.now, { v: 1, m: [{ t: 'alive', id: 'd', i: known + 1, a: 'd:7000', r: 'd:8000' }] }, 'd:7000');
  b.receive(net.now, { v: 1, m: [{ t: 'left', id: 'd', i: known }] }, 'a:7000');
  t.is(b.stateOf('d'), 'alive');
  b.receive(net.now, { v: 1, m: [{ t: 'suspect', id: 'd', i: known + 1, f: 'c' }] }, 'c:7000');
  b.receive(net.now, { v: 1, m: [{ t: 'left', id: 'd', i: known }] }, 'a:7000');
  t.is(b.stateOf('d'), 'suspect');
});
