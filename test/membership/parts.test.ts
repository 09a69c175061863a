import test from 'ava';
import fc from 'fast-check';
import { pack } from '../../src/codec.js';
import { Awareness } from '../../src/membership/awareness.js';
import { BroadcastQueue, retransmitLimit } from '../../src/membership/broadcasts.js';
import { resolveMembershipConfig } from '../../src/membership/config.js';
import { MembershipCore } from '../../src/membership/core.js';
import { type AliveMessage, type Message, decodePacket, encodePacket, messageBytes, validateSyncState } from '../../src/membership/messages.js';
import { mulberry32 } from '../../src/membership/sim/random.js';
import { Suspicion, expectedConfirmations, suspicionTimeouts } from '../../src/membership/suspicion.js';

const limits = { datagramBytesMax: 1400, compoundMessagesMax: 255, metaBytesMax: 512 };

function alive(id: string, i = 1): AliveMessage {
  return { t: 'alive', id, i, a: `${id}:7000`, r: `${id}:8000` };
}

test('retransmit limit is λ·ceil(log10(n+1))', (t) => {
  t.is(retransmitLimit(4, 1), 4);
  t.is(retransmitLimit(4, 9), 4);
  t.is(retransmitLimit(4, 10), 8);
  t.is(retransmitLimit(4, 1000), 16);
});

test('broadcast queue: fewest-sent first, limit, newer replaces older, byte budget', (t) => {
  const q = new BroadcastQueue(100);
  const size = messageBytes(alive('a'));
  q.enqueue('a', alive('a'), size);
  t.deepEqual(q.take(1000, 10, 3).messages.map((m) => m.id), ['a']);
  q.enqueue('b', alive('b'), size);
  // b was sent 0 times, a once: b first
  t.deepEqual(q.take(size, 10, 3).messages.map((m) => m.id), ['b']);
  t.deepEqual(q.take(1000, 10, 3).messages.map((m) => m.id), ['b', 'a']);
  t.is(q.transmitsOf('a'), 2);
  t.deepEqual(q.take(1000, 10, 3).messages.map((m) => m.id), ['b', 'a'], 'newest first among equals');
  t.is(q.size, 0, 'both reached their 3 transmissions');
  t.is(q.transmitsOf('a'), undefined);
  t.deepEqual(q.take(1000, 10, 3).messages, []);
  q.enqueue('c', alive('c', 1), size);
  q.enqueue('c', alive('c', 2), size);
  const got = q.take(1000, 10, 3);
  t.deepEqual(got.messages, [alive('c', 2)]);
  t.is(got.bytes, size);
  t.is(q.size, 1);
});

test('broadcast queue: newest first among equals, count cap, bounded length', (t) => {
  const q = new BroadcastQueue(5);
  for (let i = 0; i < 8; i += 1) q.enqueue(`m${i}`, alive(`m${i}`), 30);
  t.is(q.size, 5);
  t.is(q.dropped, 3);
  t.deepEqual(q.take(1000, 2, 4).messages.map((m) => m.id), ['m7', 'm6']);
});

test('suspicion timeout shrinks from max to min with independent confirmations', (t) => {
  const timeouts = suspicionTimeouts({ suspicionMult: 4, suspicionMaxTimeoutMult: 6, probeIntervalMs: 1000 }, 100);
  t.deepEqual(timeouts, { minMs: 8000, maxMs: 48_000 });
  t.deepEqual(suspicionTimeouts({ suspicionMult: 4, suspicionMaxTimeoutMult: 6, probeIntervalMs: 1000 }, 3).minMs, 4000);
  t.is(expectedConfirmations(4, 100), 2);
  t.is(expectedConfirmations(4, 3), 0);
  const s = new Suspicion(1000, 'a', 2, timeouts);
  t.is(s.deadlineMs(), 49_000);
  t.false(s.confirm('a'), 'the accuser does not confirm itself');
  t.true(s.confirm('b'));
  t.false(s.confirm('b'), 'no double counting');
  const one = s.timeoutMs();
  t.true(one < 48_000 && one > 8000);
  t.true(s.confirm('c'));
  t.is(s.timeoutMs(), 8000);
  t.false(s.confirm('d'), 'beyond k nothing changes');
  t.is(new Suspicion(0, 'a', 0, timeouts).timeoutMs(), 8000);
});

test('awareness scales timeouts between 1× and max×', (t) => {
  const a = new Awareness(8);
  t.is(a.scale(500), 500);
  a.apply(3);
  t.is(a.scale(500), 2000);
  a.apply(100);
  t.is(a.score, 7);
  t.is(a.scale(100), 800);
  a.apply(-100);
  t.is(a.score, 0);
});

test('config: defaults follow memberlist LAN and bad values are CONFIG errors', (t) => {
  const c = resolveMembershipConfig();
  t.like(c, { probeIntervalMs: 1000, probeTimeoutMs: 500, indirectChecks: 3, suspicionMult: 4, retransmitMult: 4, gossipIntervalMs: 200, gossipNodes: 3, datagramBytesMax: 1400 });
  t.is(t.throws(() => resolveMembershipConfig({ probeIntervalMs: -1 }))?.message.includes('probeIntervalMs'), true);
  t.throws(() => resolveMembershipConfig({ probeTimeoutMs: 2000 }));
  t.throws(() => resolveMembershipConfig({ nonsense: 1 } as never));
});

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ t: fc.constant('ping' as const), s: fc.nat(), n: fc.string({ minLength: 1, maxLength: 40, unit: 'binary' }) }),
  fc.record({ t: fc.constant('ack' as const), s: fc.nat() }),
  fc.record({ t: fc.constant('nack' as const), s: fc.nat() }),
  fc.record({ t: fc.constant('ping-req' as const), s: fc.nat(), n: fc.string({ minLength: 1, maxLength: 20 }), a: fc.constant('10.1.2.3:7000') }),
  fc.record({ t: fc.constant('suspect' as const), id: fc.string({ minLength: 1, maxLength: 20 }), i: fc.nat(), f: fc.string({ minLength: 1, maxLength: 20 }) }),
  fc.record({ t: fc.constant('dead' as const), id: fc.string({ minLength: 1, maxLength: 20 }), i: fc.nat(), f: fc.string({ minLength: 1, maxLength: 20 }) }),
  fc.record({ t: fc.constant('left' as const), id: fc.string({ minLength: 1, maxLength: 20 }), i: fc.nat() }),
  fc.record(
    { t: fc.constant('alive' as const), id: fc.string({ minLength: 1, maxLength: 20 }), i: fc.nat(), a: fc.constant('h:1'), r: fc.constant('h:2'), z: fc.string({ minLength: 1, maxLength: 8 }), g: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }) },
    { requiredKeys: ['t', 'id', 'i', 'a', 'r'] },
  ),
);

test('messageBytes is the exact encoded size', (t) => {
  fc.assert(fc.property(messageArb, (m) => t.is(messageBytes(m), pack(m).length)));
  t.is(messageBytes({ t: 'ack', s: 2 ** 40 }), pack({ t: 'ack', s: 2 ** 40 }).length);
  t.is(messageBytes({ t: 'left', id: 'é'.repeat(200), i: 70_000 }), pack({ t: 'left', id: 'é'.repeat(200), i: 70_000 }).length);
});

test('packets round-trip through the decoder', (t) => {
  fc.assert(
    fc.property(fc.array(messageArb, { minLength: 1, maxLength: 10 }), (m) => {
      const decoded = decodePacket(encodePacket({ v: 1, m }), limits);
      t.true(decoded.ok);
      if (decoded.ok) t.deepEqual(decoded.value.m, JSON.parse(JSON.stringify(m)));
    }),
  );
});

test('the decoder rejects and names oversized, unknown-version and malformed input', (t) => {
  const big = decodePacket(Buffer.alloc(1401), limits);
  t.like(big, { ok: false, reason: 'too-large' });
  t.like(decodePacket(pack({ v: 2, m: [{ t: 'ack', s: 1 }] }), limits), { ok: false, reason: 'version' });
  for (const bad of [
    { v: 1, m: [] },
    { v: 1, m: [{ t: 'ack', s: -1 }] },
    { v: 1, m: [{ t: 'ack', s: 1.5 }] },
    { v: 1, m: [{ t: 'ping', s: 1 }] },
    { v: 1, m: [{ t: 'teleport', s: 1 }] },
    { v: 1, m: [{ t: 'ping-req', s: 1, n: 'x', a: 'nohost' }] },
    { v: 1, m: [{ t: 'alive', id: 'x', i: 1, a: 'h:1', r: 'h:2', g: { k: 5 } }] },
    { v: 1, m: [{ t: 'alive', id: 'x', i: 1, a: 'h:1', r: 'h:2', g: { k: 'v'.repeat(129) } }] },
    { v: 1, m: [{ t: 'left', id: 'x'.repeat(129), i: 1 }] },
    { v: 1, m: 'nope' },
    [1, 2, 3],
  ]) {
    const decoded = decodePacket(pack(bad), limits);
    t.like(decoded, { ok: false, reason: 'malformed' }, JSON.stringify(bad).slice(0, 60));
  }
  t.like(decodePacket(Buffer.from([0xc1]), limits), { ok: false });
  t.like(validateSyncState({ v: 1, f: 'a', j: true, m: [{ id: 'x', a: 'h:1', r: 'h:2', s: 'zombie', i: 1 }] }, { syncMembersMax: 10, metaBytesMax: 512 }), { ok: false, reason: 'malformed' });
  t.like(validateSyncState({ v: 1, f: 'a', j: false, m: [{ id: 'x', a: 'h:1', r: 'h:2', s: 'dead', i: 1 }] }, { syncMembersMax: 10, metaBytesMax: 512 }), { ok: true });
  t.like(validateSyncState({ v: 1, f: 'a', j: false, m: [{ id: 'x', a: 'h:1', r: 'h:2', s: 'dead', i: 1 }] }, { syncMembersMax: 0, metaBytesMax: 512 }), { ok: false });
});

test('fuzz: random bytes and mutated datagrams never throw out of the core and are counted', (t) => {
  const core = new MembershipCore({ self: { id: 'me', gossip: 'me:1', rpc: 'me:2' }, random: mulberry32(9) });
  let fed = 0;
  const valid = encodePacket({ v: 1, m: [{ t: 'ping', s: 1, n: 'me' }, alive('x')] });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 2000 }),
        fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
          const copy = Buffer.from(valid);
          copy[at] = byte;
          return copy;
        }),
        fc.anything().map((v) => pack({ v: 1, m: [v] })),
      ),
      (bytes) => {
        fed += 1;
        t.notThrows(() => core.receiveBytes(0, bytes, 'x:1'));
      },
    ),
    { numRuns: 2000 },
  );
  const s = core.stats();
  t.true(s.dropped.malformed + s.dropped['too-large'] + s.dropped.version + s.packetsReceived === fed);
  t.true(s.dropped.malformed > 100);
});
