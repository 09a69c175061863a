/**
 * The membership core's limits on what a peer can make it hold or do, each with a small configured
 * value: messages per datagram, members known, ping-req relays, members in one push-pull state.
 * (Datagram bytes and the push-pull connection limits go through real sockets in test/node/limits.test.ts.)
 */
import test from 'ava';
import { MembershipCore } from '../../src/membership/core.js';
import { decodePacket, encodePacket, validateSyncState, type Packet } from '../../src/membership/messages.js';
import { mulberry32 } from '../../src/membership/sim/random.js';

function core(config: Record<string, number>): MembershipCore {
  return new MembershipCore({ self: { id: 'me', gossip: 'me:7000', rpc: 'me:8000' }, config, random: mulberry32(3) });
}

const alive = (i: number) => ({ t: 'alive' as const, id: `m${i}`, i: 1, a: `10.0.0.${i}:7000`, r: `10.0.0.${i}:8000` });

test('compoundMessagesMax: a datagram with more messages is dropped whole, one at the limit is taken', (t) => {
  const limits = { datagramBytesMax: 1400, compoundMessagesMax: 4, metaBytesMax: 512 };
  const acks = (n: number) => encodePacket({ v: 1, m: Array.from({ length: n }, (_, s) => ({ t: 'ack', s })) } as Packet);
  t.like(decodePacket(acks(5), limits), { ok: false, reason: 'malformed', detail: 'more than 4 messages' });
  t.like(decodePacket(acks(4), limits), { ok: true });
  const c = core({ compoundMessagesMax: 4 });
  c.receiveBytes(0, encodePacket({ v: 1, m: [1, 2, 3, 4, 5].map(alive) } as Packet), '10.0.0.1:7000');
  t.is(c.stats().dropped.malformed, 1);
  t.is(c.members().length, 1, 'none of the five members was taken');
});

test('membersMax: news of members beyond the limit is dropped and counted; known members still update', (t) => {
  const c = core({ membersMax: 3 }); // self + 2
  c.receive(0, { v: 1, m: [1, 2, 3, 4, 5].map(alive) } as Packet, '10.0.0.1:7000');
  t.is(c.members().length, 3);
  t.is(c.stats().dropped['members-full'], 3);
  c.receive(1, { v: 1, m: [{ t: 'suspect', id: 'm1', i: 1, f: 'me' }] } as Packet, '10.0.0.1:7000');
  t.is(c.members().find((m) => m.id === 'm1')?.state, 'suspect');
});

test('relaysMax: ping-req relays beyond the limit are dropped and counted, not forwarded', (t) => {
  const c = core({ relaysMax: 2 });
  const out = c.receive(0, { v: 1, m: [1, 2, 3, 4].map((s) => ({ t: 'ping-req', s, n: `m${s}`, a: `10.0.0.${s}:7000` })) } as Packet, '10.0.0.9:7000');
  t.is(out.packets.filter((p) => p.packet.m.some((m) => m.t === 'ping')).length, 2);
  t.is(c.stats().dropped['relays-full'], 2);
});

test('syncMembersMax: a push-pull state with more members fails validation (not merged); one at the limit passes', (t) => {
  const state = (n: number) => ({
    v: 1, f: 'm1', j: false,
    m: Array.from({ length: n }, (_, i) => ({ id: `m${i}`, a: `10.0.0.${i}:7000`, r: `10.0.0.${i}:8000`, s: 'alive', i: 1 })),
  });
  const limits = { syncMembersMax: 3, metaBytesMax: 512 };
  t.like(validateSyncState(state(4), limits), { ok: false, detail: 'more than 3 members' });
  t.like(validateSyncState(state(3), limits), { ok: true });
});
