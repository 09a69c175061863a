/**
 * The membership core's limits on what a peer can make it hold or do, each with a small configured
 * value: messages per datagram, members known, ping-req relays, members in one push-pull state.
 * (Datagram bytes and the push-pull connection limits go through real sockets in test/node/limits.test.ts.)
 */
import test from 'ava';
import { MembershipCore } from '../../src/membership/core.js';
import { resolveMembershipConfig } from '../../src/membership/config.js';
import {
  ADDR_BYTES_MAX, ID_BYTES_MAX, SYNC_STATE_OVERHEAD_BYTES, type Packet,
  decodePacket, encodePacket, memberMeta, memberWireBytesMax, metaBytes, validateSyncState,
} from '../../src/membership/messages.js';
import { pack } from '../../src/codec.js';
import { FrameDecoder, encodeFrame } from '../../src/rpc/framing.js';
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

test('a push-pull of syncMembersMax members at the worst-case sizes fits syncBytesMax and passes the frame decoder and validation', (t) => {
  const config = resolveMembershipConfig();
  t.true(config.membersMax >= 10_000 * 1.5, 'membersMax holds 10 000 members with headroom');
  t.true(config.syncMembersMax >= config.membersMax, 'a sync carries every member');
  t.true(config.syncBytesMax >= config.syncMembersMax * memberWireBytesMax(config.metaBytesMax) + SYNC_STATE_OVERHEAD_BYTES);
  // Every field at its limit (a dead member's age `d` included): 128-byte id, 262-byte address, metadata of exactly metaBytesMax.
  const host = 'h'.repeat(ADDR_BYTES_MAX - 6);
  const baseTags: Record<string, string> = {};
  for (let k = 0; k < 1; k += 1) baseTags[`k${k}`] = 'v'.repeat(100);
  const meta = (rpc: string, tags: Record<string, string>) => metaBytes(memberMeta({ rpc, zone: 'z'.repeat(20), tags }));
  const members = Array.from({ length: config.syncMembersMax }, (_, i) => {
    const id = `${i}`.padStart(ID_BYTES_MAX, 'x');
    const addr = `${host}:${String(10_000 + (i % 50_000)).padStart(5, '1')}`;
    const tags = { ...baseTags, pad: '' };
    tags.pad = 'p'.repeat(config.metaBytesMax - meta(addr, tags));
    // The pad's own msgpack header grows with it: trim to exactly the limit.
    while (meta(addr, tags) > config.metaBytesMax) tags.pad = tags.pad.slice(1);
    // Dead with the largest age `d`: the biggest member entry there is.
    return { id, a: addr, r: addr, z: 'z'.repeat(20), g: tags, s: 'dead', i: Number.MAX_SAFE_INTEGER, d: Number.MAX_SAFE_INTEGER };
  });
  t.is(meta(members[0].r, members[0].g), config.metaBytesMax, 'the metadata is exactly at its limit');
  t.true(pack(members[0]).length <= memberWireBytesMax(config.metaBytesMax), 'memberWireBytesMax bounds one member');
  const frame = encodeFrame({ v: 1, f: members[0].id, j: false, m: members });
  t.true(frame.length <= config.syncBytesMax, `${frame.length} bytes ≤ syncBytesMax ${config.syncBytesMax}`);
  const [decoded] = new FrameDecoder(config.syncBytesMax).push(frame);
  t.like(validateSyncState(decoded, config), { ok: true });
});

test('a private directory is compacted once reaped members dominate it: memory follows the known members, not churn', (t) => {
  const c = new MembershipCore({ self: { id: 'me', gossip: 'me:7000', rpc: 'me:8000' }, config: { deadReapMs: 1000 }, random: mulberry32(5) });
  let now = 0;
  for (let round = 0; round < 4; round += 1) {
    // 1000 new members join, die and are reaped; 10 stay.
    const batch = Array.from({ length: 1000 }, (_, i) => alive(round * 1000 + i));
    c.receive(now, { v: 1, m: batch } as Packet, '10.0.0.1:7000');
    c.receive(now, { v: 1, m: batch.slice(10).map((m) => ({ t: 'dead' as const, id: m.id, i: 1, f: 'me' })) } as Packet, '10.0.0.1:7000');
    now += 2000;
    c.tick(now);
  }
  t.is(c.knownMembers, 41);
  const directory = (c as unknown as { dir: { size: number } }).dir;
  t.true(directory.size < 1200, `directory holds ${directory.size} ids after 4000 joined and 3960 were reaped`);
  // The survivors are intact after compaction.
  t.is(c.stateOf('m3005'), 'alive');
  t.is(c.member('m3005')?.gossip, '10.0.0.3005:7000');
  t.is(c.stateOf('m3500'), undefined);
  t.is(c.members().length, 41);
});
