/**
 * Dead members in push-pull state carry the age of their death (`d`): a node that joins while a
 * member is down learns it as dead, buried at the same moment as everyone else's copy, counts it,
 * and reaps it when the others do; a member reaped everywhere is never taught again.
 */
import test from 'ava';
import { MembershipCore } from '../../src/membership/core.js';
import { type SyncState, validateSyncState } from '../../src/membership/messages.js';
import { mulberry32 } from '../../src/membership/sim/random.js';
import { setMutations } from '../../src/mutations.js';
import { ClusterView } from '../../src/cluster/view.js';
import type { MembershipEventInfo } from '../../src/cluster/ports.js';
import { nullLogger } from '../../src/log.js';
import { Ring, hashKey } from '../../src/ring/ring.js';
import { fakeTimeClock } from '../cluster/helpers/clock.js';
import { Net } from './harness.js';

const REAP_MS = 120_000;
const REAP_CHECK_MS = 1000; // probeIntervalMs: the reaper runs that often
const fast = { probeIntervalMs: REAP_CHECK_MS, probeTimeoutMs: 500, pushPullIntervalMs: 5000, reconnectIntervalMs: 600_000, deadReapMs: REAP_MS };

/** a, b, c, d joined; d crashes and is dead everywhere. */
function withDeadMember(): Net {
  const net = new Net(fast);
  for (const id of ['a', 'b', 'c', 'd']) net.add(id);
  net.joinAll();
  net.advance(3000);
  net.down.add('d');
  net.advance(40_000);
  for (const id of ['a', 'b', 'c']) if (net.stateAt(id, 'd') !== 'dead') throw new Error(`d not dead at ${id}`);
  return net;
}

function joinLate(net: Net, id: string, seed = 'a'): MembershipCore {
  const core = net.add(id);
  net.take(core, core.join(net.now, [`${seed}:7000`]));
  net.flush();
  return core;
}

test('a node joining after a member died learns it as dead (same incarnation, same checksum), with no suspicion and no dead gossip', (t) => {
  const net = withDeadMember();
  const sentBefore = net.sent.length;
  const eventsBefore = net.events.length;
  const e = joinLate(net, 'e');
  t.is(e.stateOf('d'), 'dead');
  t.is(e.member('d')?.incarnation, net.core('a').member('d')?.incarnation);
  t.is(e.member('d')?.gossip, 'd:7000');
  t.is(e.knownMembers, 5);
  t.is(e.liveMembers, 4, 'd is not live');
  const atE = net.events.slice(eventsBefore).filter((ev) => ev.at === 'e' && ev.member.id === 'd');
  t.deepEqual(atE.map((ev) => ev.type), ['dead'], 'one dead event, not joined then dead');
  t.true(atE[0].deadForMs !== undefined && atE[0].deadForMs > 0 && atE[0].deadForMs < 40_000);
  t.is(e.suspectCount, 0);
  net.advance(5000);
  t.is(e.stats().suspicionsRaised, 0);
  t.false(net.sent.slice(sentBefore).some((s) => s.from === 'e' && s.types.includes('dead')), 'e gossips no accusation');
  t.false(net.events.slice(eventsBefore).some((ev) => ev.at !== 'e' && ev.member.id === 'd'), 'the others hear nothing new about d');
  const sums = new Set(['a', 'b', 'c', 'e'].map((id) => net.core(id).checksum()));
  t.is(sums.size, 1, 'same checksum everywhere');
});

test.serial('the dead-not-synced mutation (the simulator\'s known bug) restores the old behaviour: the joiner knows only the live members', (t) => {
  const net = withDeadMember();
  setMutations(['dead-not-synced']);
  try {
    const e = joinLate(net, 'e');
    t.is(e.stateOf('d'), undefined);
    t.is(e.knownMembers, 4);
  } finally {
    setMutations([]);
  }
});

test('the late joiner reaps the dead member when the others do (± one reap check), and nobody learns it again', (t) => {
  const net = withDeadMember();
  const e = joinLate(net, 'e');
  t.is(e.stateOf('d'), 'dead');
  const eventsBefore = net.events.length;
  // Up to deadReapMs past the burial, with push-pulls every 5 s all along (each could re-teach d).
  const reapedAt = new Map<string, number>();
  for (let ms = 0; ms < REAP_MS; ms += 10) {
    const before = net.events.length;
    net.advance(10);
    for (const ev of net.events.slice(before)) if (ev.type === 'reaped' && ev.member.id === 'd') reapedAt.set(ev.at, net.now);
  }
  t.deepEqual([...reapedAt.keys()].sort(), ['a', 'b', 'c', 'e']);
  const times = [...reapedAt.values()];
  t.true(Math.max(...times) - Math.min(...times) <= REAP_CHECK_MS + 10, `reap times ${JSON.stringify(Object.fromEntries(reapedAt))}`);
  for (const id of ['a', 'b', 'c', 'e']) t.is(net.stateAt(id, 'd'), undefined, id);
  t.is(net.events.slice(eventsBefore).filter((ev) => ev.member.id === 'd' && ev.type !== 'reaped').length, 0, 'd was never re-learned');
  const f = joinLate(net, 'f');
  net.advance(10_000);
  t.is(f.stateOf('d'), undefined, 'a member reaped everywhere is not taught to a new node');
  t.is(f.knownMembers, 5);
  for (const id of ['a', 'b', 'c', 'e']) t.is(net.stateAt(id, 'd'), undefined, id);
});

test('old-format state (no d) or too old a death: unknown members stay unknown; an unknown suspect is learned suspect; known ones keep the usual rules', (t) => {
  const core = new MembershipCore({ self: { id: 'me', gossip: 'me:1', rpc: 'me:2' }, config: { deadReapMs: 100_000, probeIntervalMs: 1000 }, random: mulberry32(3) });
  core.join(0, []);
  const state = (members: SyncState['m']): SyncState => ({ v: 1, f: 'p', j: false, m: [{ id: 'p', a: 'p:1', r: 'p:2', s: 'alive', i: 1 }, ...members] });
  let out = core.handleSyncResponse(100, state([
    { id: 'old', a: 'old:1', r: 'old:2', s: 'dead', i: 3 },
    { id: 'sus', a: 'sus:1', r: 'sus:2', s: 'suspect', i: 3 },
    { id: 'aged', a: 'aged:1', r: 'aged:2', s: 'dead', i: 3, d: 100_000 },
    { id: 'new', a: 'new:1', r: 'new:2', s: 'dead', i: 4, d: 50_000 },
  ]));
  t.is(core.stateOf('old'), undefined, 'no d: ignored as before');
  t.is(core.stateOf('sus'), 'suspect', 'an unknown suspect is taken as the sender knows it: suspect, at its incarnation');
  t.is(core.member('sus')?.incarnation, 3);
  t.is(core.stateOf('aged'), undefined, 'dead for deadReapMs: about to be reaped everywhere, not learned');
  t.is(core.stateOf('new'), 'dead');
  t.is(core.member('new')?.incarnation, 4);
  t.deepEqual(out.events.map((e) => `${e.type}:${e.member.id}`), ['joined:p', 'joined:sus', 'suspect:sus', 'dead:new']);
  // A known alive member reported dead with an age: suspected first, as memberlist does.
  out = core.handleSync(200, state([{ id: 'p', a: 'p:1', r: 'p:2', s: 'dead', i: 1, d: 50 }])).output;
  t.is(core.stateOf('p'), 'suspect');
  t.deepEqual(out.events.map((e) => e.type), ['suspect']);
  // Our own state names 'new' dead with its age on the sender plus the time since.
  const wire = core.localState(1100, false).m.find((m) => m.id === 'new');
  t.is(wire?.d, 50_000 + 1000);
  t.is(core.localState(1100, false).m.find((m) => m.id === 'p')?.d, undefined, 'only dead members carry d');
  // Reaped when the sender would: buried at 100 − 50 000, so reaped from 50 100 on.
  core.tick(50_000);
  t.is(core.stateOf('new'), 'dead');
  core.tick(51_200);
  t.is(core.stateOf('new'), undefined);
});

test('learned deaths are reaped in burial order even when older than members buried here before', (t) => {
  const core = new MembershipCore({ self: { id: 'me', gossip: 'me:1', rpc: 'me:2' }, config: { deadReapMs: 100_000, probeIntervalMs: 1000 }, random: mulberry32(5) });
  core.join(0, []);
  core.receive(50_000, { v: 1, m: [{ t: 'alive', id: 'x', i: 1, a: 'x:1', r: 'x:2' }, { t: 'dead', id: 'x', i: 1, f: 'me' }] }, 'x:1');
  t.is(core.stateOf('x'), 'dead');
  core.handleSync(60_000, { v: 1, f: 'p', j: false, m: [
    { id: 'p', a: 'p:1', r: 'p:2', s: 'alive', i: 1 },
    { id: 'y', a: 'y:1', r: 'y:2', s: 'dead', i: 1, d: 30_000 }, // buried at 30 000
    { id: 'z', a: 'z:1', r: 'z:2', s: 'dead', i: 1, d: 55_000 }, // buried at 5 000
  ] });
  const reapedAt = new Map<string, number>();
  for (let now = 60_000; now <= 160_000; now += 500) {
    for (const e of core.tick(now).events) if (e.type === 'reaped') reapedAt.set(e.member.id, now);
  }
  t.true(Math.abs((reapedAt.get('z') ?? -1) - 105_000) <= 1000, `z at ${reapedAt.get('z')}`);
  t.true(Math.abs((reapedAt.get('y') ?? -1) - 130_000) <= 1000, `y at ${reapedAt.get('y')}`);
  t.true(Math.abs((reapedAt.get('x') ?? -1) - 150_000) <= 1000, `x at ${reapedAt.get('x')}`);
});

test('validateSyncState: d kept on dead members, dropped on others, refused when not a non-negative integer', (t) => {
  const limits = { syncMembersMax: 10, metaBytesMax: 512 };
  const raw = (d: unknown, s = 'dead'): unknown => ({ v: 1, f: 'p', j: false, m: [{ id: 'x', a: 'x:1', r: 'x:2', s, i: 2, d }] });
  const ok = validateSyncState(raw(1234), limits);
  t.true(ok.ok && ok.value.m[0].d === 1234);
  const alive = validateSyncState(raw(1234, 'alive'), limits);
  t.true(alive.ok && alive.value.m[0].d === undefined);
  const absent = validateSyncState({ v: 1, f: 'p', j: false, m: [{ id: 'x', a: 'x:1', r: 'x:2', s: 'dead', i: 2 }] }, limits);
  t.true(absent.ok && !('d' in absent.value.m[0]));
  for (const bad of [-1, 1.5, 'x']) {
    const result = validateSyncState(raw(bad), limits);
    t.false(result.ok, String(bad));
  }
});

test('cluster view of the late joiner: N = 3 and the same ring as the others (4 members, 2 dead)', (t) => {
  const net = new Net(fast);
  for (const id of ['a', 'b', 'c', 'd']) net.add(id);
  net.joinAll();
  net.advance(3000);
  net.down.add('c');
  net.down.add('d');
  net.advance(40_000);
  const e = net.add('e');
  let nowMs = net.now;
  const ringFactory = { build: (members: Array<{ id: string; zone?: string }>, opts?: { vnodes?: number }) => Ring.build(members, opts), hashKey };
  const makeView = (core: MembershipCore, listeners: Array<(ev: MembershipEventInfo) => void>): ClusterView => new ClusterView({
    membership: {
      members: () => core.members(), self: () => core.self(), deadForMs: (id: string) => core.deadForMs(nowMs, id),
      on: (_: 'event', l: (ev: MembershipEventInfo) => void) => listeners.push(l),
    },
    ringFactory, replicationFactor: 3, vnodes: 16, deadOwnerGraceMs: 60_000, clock: fakeTimeClock(() => nowMs), logger: nullLogger,
  });
  const eListeners: Array<(ev: MembershipEventInfo) => void> = [];
  const eView = makeView(e, eListeners);
  t.teardown(() => eView.close());
  // The others' views have tracked c and d since their burial (built now with the age they have).
  const aListeners: Array<(ev: MembershipEventInfo) => void> = [];
  const before = net.events.length;
  net.take(e, e.join(net.now, ['a:7000']));
  net.flush();
  for (const ev of net.events.slice(before)) if (ev.at === 'e') for (const l of eListeners) l(ev);
  t.is(e.stateOf('c'), 'dead');
  t.is(e.stateOf('d'), 'dead');
  t.is(eView.clusterSize(), 5);
  t.is(eView.replicas(), 3, 'N = 3, not 2');
  // a's view, built now: it knows c and d dead since their burial (deadForMs), as does a view of e built now.
  const a = net.core('a');
  const aView = makeView(a, aListeners);
  t.teardown(() => aView.close());
  const eLateView = makeView(e, []);
  t.teardown(() => eLateView.close());
  t.deepEqual(eView.ring().members(), aView.ring().members(), 'same owners');
  t.is(eView.ring().checksum(), aView.ring().checksum());
  t.deepEqual(eView.ring().members(), ['a', 'b', 'c', 'd', 'e']);
  // Past the grace counted from the burial (not from e's join), e drops c and d like the others.
  const deadFor = Math.min(...net.events.filter((ev) => ev.at === 'e' && ev.deadForMs !== undefined).map((ev) => ev.deadForMs as number));
  nowMs += 60_000 - deadFor + 1;
  for (const v of [eView, aView, eLateView]) {
    v.refresh();
    t.deepEqual(v.ring().members(), ['a', 'b', 'e']);
    t.is(v.replicas(), 3);
  }
});
