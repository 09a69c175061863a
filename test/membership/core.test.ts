import test from 'ava';
import { MembershipCore } from '../../src/membership/core.js';
import { Net } from './harness.js';
import { mulberry32 } from '../../src/membership/sim/random.js';
import { type Packet, encodePacket } from '../../src/membership/messages.js';

const fast = { probeIntervalMs: 1000, probeTimeoutMs: 500, pushPullIntervalMs: 600_000, reconnectIntervalMs: 600_000 };

function cluster(ids: string[], extra = {}): Net {
  const net = new Net({ ...fast, ...extra });
  for (const id of ids) net.add(id);
  net.joinAll();
  return net;
}

test('join through one seed: everyone learns everyone with equal checksums', (t) => {
  const net = cluster(['a', 'b', 'c', 'd', 'e']);
  net.advance(3000);
  for (const core of net.cores.values()) {
    t.is(core.members().filter((m) => m.state === 'alive').length, 5, core.id);
  }
  const sums = new Set([...net.cores.values()].map((c) => c.checksum()));
  t.is(sums.size, 1);
  t.regex([...sums][0], /^[0-9a-f]{16}$/);
});

test('probe is answered by an ack and nobody is suspected', (t) => {
  const net = cluster(['a', 'b', 'c']);
  net.advance(10_000);
  t.true(net.sent.some((s) => s.from === 'a' && s.types[0] === 'ping'));
  t.true(net.sent.some((s) => s.to === 'a' && s.types[0] === 'ack'));
  for (const core of net.cores.values()) {
    t.is(core.stats().probesFailed, 0);
    t.true(core.stats().probes >= 8);
  }
  t.false(net.events.some((e) => e.type === 'suspect' || e.type === 'dead'));
});

test('a silent member: ping, ping-req through others, nacks, suspect, then dead', (t) => {
  const net = cluster(['a', 'b', 'c', 'd', 'e']);
  net.advance(2000);
  net.sent.length = 0;
  net.down.add('e');
  net.advance(3000);
  // someone probed e directly, got nothing, and asked others to try
  const pingReq = net.sent.find((s) => s.types.includes('ping-req'));
  t.truthy(pingReq);
  t.true(net.sent.some((s) => s.to === 'e' && s.types[0] === 'ping' && s.from !== pingReq?.from), 'helper relays the ping');
  t.true(net.sent.some((s) => s.to === pingReq?.from && s.types[0] === 'nack'), 'helper answers with a nack');
  t.true(net.events.some((e) => e.type === 'suspect' && e.member.id === 'e'));
  // min suspicion timeout at n=5 is 4 s, max 24 s; confirmations shrink it
  net.advance(30_000);
  for (const id of ['a', 'b', 'c', 'd']) t.is(net.stateAt(id, 'e'), 'dead', id);
  t.false(net.events.some((e) => e.type === 'dead' && e.member.id !== 'e'));
});

test('a suspected member refutes by raising its incarnation', (t) => {
  const net = cluster(['a', 'b', 'c']);
  const c = net.core('c');
  const before = c.incarnation;
  const out = c.receive(net.now, { v: 1, m: [{ t: 'suspect', id: 'c', i: before, f: 'a' }] }, 'a:7000');
  t.is(c.incarnation, before + 1);
  t.is(c.stats().refutations, 1);
  net.take(c, out);
  // the refutation rides on the next datagrams; b and a end up alive at the new incarnation
  net.take(net.core('a'), net.core('a').receive(net.now, { v: 1, m: [{ t: 'suspect', id: 'c', i: before, f: 'b' }] }, 'b:7000'));
  t.is(net.stateAt('a', 'c'), 'suspect');
  net.advance(3000);
  t.is(net.stateAt('a', 'c'), 'alive');
  t.is(net.core('a').member('c')?.incarnation, before + 1);
  t.is(net.stateAt('b', 'c'), 'alive');
});

test('announced leave: others mark the member left, not dead, and it stops probing', (t) => {
  const net = cluster(['a', 'b', 'c', 'd']);
  net.advance(2000);
  const d = net.core('d');
  net.take(d, d.leave(net.now));
  t.is(d.self().state, 'left');
  net.advance(3000);
  t.true(d.leaveSpread());
  for (const id of ['a', 'b', 'c']) t.is(net.stateAt(id, 'd'), 'left', id);
  const probesAfter = d.stats().probes;
  net.advance(5000);
  t.is(d.stats().probes, probesAfter);
  t.false(net.events.some((e) => e.type === 'dead'));
});

function single(): { core: MembershipCore; feed: (m: Packet['m'][number]) => void; state: () => string | undefined; inc: () => number | undefined } {
  const core = new MembershipCore({ self: { id: 'me', gossip: 'me:1', rpc: 'me:2' }, random: mulberry32(3) });
  const feed = (m: Packet['m'][number]): void => void core.receive(0, { v: 1, m: [m] }, 'x:1');
  feed({ t: 'alive', id: 'x', i: 1, a: 'x:1', r: 'x:2' });
  return { core, feed, state: () => core.stateOf('x'), inc: () => core.member('x')?.incarnation };
}

test('incarnation precedence: alive, suspect, dead, left', (t) => {
  const s = single();
  t.is(s.state(), 'alive');
  s.feed({ t: 'suspect', id: 'x', i: 0, f: 'y' });
  t.is(s.state(), 'alive', 'older suspicion ignored');
  s.feed({ t: 'suspect', id: 'x', i: 1, f: 'y' });
  t.is(s.state(), 'suspect', 'suspect(i) beats alive(i)');
  s.feed({ t: 'alive', id: 'x', i: 1, a: 'x:1', r: 'x:2' });
  t.is(s.state(), 'suspect', 'alive(i) does not beat suspect(i)');
  s.feed({ t: 'alive', id: 'x', i: 2, a: 'x:1', r: 'x:2' });
  t.is(s.state(), 'alive', 'alive(i+1) beats suspect(i)');
  s.feed({ t: 'dead', id: 'x', i: 1, f: 'y' });
  t.is(s.state(), 'alive', 'older dead ignored');
  s.feed({ t: 'dead', id: 'x', i: 2, f: 'y' });
  t.is(s.state(), 'dead', 'dead(i) beats alive(i)');
  s.feed({ t: 'alive', id: 'x', i: 2, a: 'x:1', r: 'x:2' });
  t.is(s.state(), 'dead', 'alive(i) cannot resurrect dead(i)');
  s.feed({ t: 'suspect', id: 'x', i: 5, f: 'y' });
  t.is(s.state(), 'dead', 'suspect never revives the dead');
  s.feed({ t: 'left', id: 'x', i: 2 });
  t.is(s.state(), 'left', 'left(i) beats dead(i)');
  s.feed({ t: 'dead', id: 'x', i: 3, f: 'y' });
  t.is(s.state(), 'left', 'dead does not override left');
  s.feed({ t: 'alive', id: 'x', i: 3, a: 'x:1', r: 'x:9' });
  t.is(s.state(), 'alive', 'a restarted member with a higher incarnation is alive again');
  t.is(s.core.member('x')?.rpc, 'x:9');
  t.is(s.inc(), 3);
});

test('news about ourselves is refuted; a leaving node does not refute', (t) => {
  const s = single();
  s.feed({ t: 'dead', id: 'me', i: 1, f: 'x' });
  t.is(s.core.incarnation, 2);
  s.feed({ t: 'alive', id: 'me', i: 7, a: 'me:1', r: 'me:2' });
  t.is(s.core.incarnation, 8, 'someone else claims a newer us');
  s.core.leave(0);
  s.feed({ t: 'suspect', id: 'me', i: 8, f: 'x' });
  t.is(s.core.incarnation, 8);
  t.is(s.core.self().state, 'left');
});

test('dead and left members are reaped after deadReapMs, and events say so', (t) => {
  const core = new MembershipCore({ self: { id: 'me', gossip: 'me:1', rpc: 'me:2' }, config: { deadReapMs: 5000 }, random: mulberry32(4) });
  core.receive(0, { v: 1, m: [{ t: 'alive', id: 'x', i: 1, a: 'x:1', r: 'x:2' }, { t: 'left', id: 'x', i: 1 }] }, 'x:1');
  t.is(core.stateOf('x'), 'left');
  core.tick(4000);
  t.is(core.stateOf('x'), 'left');
  const out = core.tick(6100);
  t.is(core.stateOf('x'), undefined);
  t.deepEqual(out.events.map((e) => e.type), ['reaped']);
});

test('metadata over metaBytesMax is refused', (t) => {
  const err = t.throws(() => new MembershipCore({
    self: { id: 'me', gossip: 'me:1', rpc: 'me:2', tags: { big: 'x'.repeat(120), b2: 'y'.repeat(120), b3: 'z'.repeat(120), b4: 'w'.repeat(120), b5: 'v'.repeat(120) } },
    random: mulberry32(1),
  }));
  t.is((err as { code?: string }).code, 'CONFIG');
});

test('every datagram fits the byte budget, even with many queued updates', (t) => {
  const core = new MembershipCore({ self: { id: 'me', gossip: 'me:1', rpc: 'me:2' }, config: { datagramBytesMax: 600 }, random: mulberry32(5) });
  const m: Packet['m'] = [];
  for (let i = 0; i < 60; i += 1) m.push({ t: 'alive', id: `member-${i}`, i: 1, a: `10.0.0.${i}:7000`, r: `10.0.0.${i}:8000`, z: 'zone-a' });
  core.receive(0, { v: 1, m }, 'x:1');
  let sent = 0;
  for (let now = 0; now < 5000; now += 50) {
    for (const p of core.tick(now).packets) {
      sent += 1;
      t.true(p.bytes <= 600, `${p.bytes} bytes`);
      t.true(encodePacket(p.packet).length <= p.bytes);
    }
  }
  t.true(sent > 10);
});

test('a suspicion about a newer incarnation restarts the timer (a missed refutation is not held against it)', (t) => {
  const core = new MembershipCore({ self: { id: 'me', gossip: 'me:1', rpc: 'me:2' }, config: { lifeguard: false }, random: mulberry32(6) });
  core.receive(0, { v: 1, m: [{ t: 'alive', id: 'x', i: 1, a: 'x:1', r: 'x:2' }, { t: 'suspect', id: 'x', i: 1, f: 'y' }] }, 'y:1');
  // n = 2: the fixed (non-Lifeguard) timeout is suspicionMult × 1 × 1 s = 4 s
  core.tick(3000);
  core.receive(3000, { v: 1, m: [{ t: 'suspect', id: 'x', i: 2, f: 'y' }] }, 'y:1');
  core.tick(4500);
  t.is(core.stateOf('x'), 'suspect');
  t.is(core.member('x')?.incarnation, 2);
  core.tick(7100);
  t.is(core.stateOf('x'), 'dead');
  t.is(core.member('x')?.incarnation, 2);
});

test('after a one-way partition, a member declared dead while its refutation was lost comes back without waiting for push-pull', (t) => {
  // Push-pull is off (600 s): only gossip can bring e back.
  const net = cluster(['a', 'b', 'c', 'd', 'e']);
  net.advance(3000);
  net.muted.add('e'); // e hears everyone, nobody hears e
  net.advance(12_000);
  for (const id of ['a', 'b', 'c', 'd']) t.is(net.stateAt(id, 'e'), 'dead', `${id} buried e`);
  const e = net.core('e');
  t.true(e.incarnation > 1, 'e refuted while muted (the refutation was lost)');
  net.muted.delete('e');
  net.advance(5_000);
  for (const id of ['a', 'b', 'c', 'd']) t.is(net.stateAt(id, 'e'), 'alive', `${id} sees e alive again`);
  const deadSyncs = ['a', 'b', 'c', 'd'].reduce((sum, id) => sum + net.core(id).stats().deadSyncs, 0);
  t.true(deadSyncs >= 1, 'a datagram from the buried e started a sync with it');
});

test('an accusation about an incarnation already refuted makes us announce the current one again (no new incarnation)', (t) => {
  const s = single();
  s.feed({ t: 'dead', id: 'me', i: 1, f: 'x' });
  t.is(s.core.incarnation, 2, 'refuted');
  const before = s.core.stats().refutations;
  const out = s.core.receive(0, { v: 1, m: [{ t: 'suspect', id: 'me', i: 1, f: 'x' }] }, 'x:1');
  t.is(s.core.incarnation, 2, 'no new incarnation for old news');
  t.is(s.core.stats().refutations, before);
  t.is(s.core.stats().reannouncements, 1);
  const tick = s.core.tick(1_000);
  const sent = [...out.packets, ...tick.packets].flatMap((p) => p.packet.m);
  t.true(sent.some((m) => m.t === 'alive' && m.id === 'me' && m.i === 2), 'alive(me, 2) goes out again');
});
