import test from 'ava';
import fc from 'fast-check';
import { Ring, forgetRecentRings, hashKey, ringBuildCounts } from '../../src/ring/ring.js';
import { rangeContains, RangeSet, rangeFromWire, rangeToWire } from '../../src/ring/ranges.js';
import { TOKEN_MAX } from '../../src/ring/hash.js';
import { ShoalError } from '../../src/errors.js';

// Small vnode counts keep the properties fast; the structure does not depend on the count.
const VN = 16;
const ids = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 9 });
const keys = fc.array(fc.string({ maxLength: 12 }), { minLength: 1, maxLength: 40 });
const token = fc.bigInt({ min: 0n, max: TOKEN_MAX });

function shuffle<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

test('the ring is a function of the member set: any order gives the same lists and checksum', (t) => {
  fc.assert(
    fc.property(ids, keys, fc.integer(), fc.integer({ min: 1, max: 4 }), (members, ks, seed, n) => {
      const a = Ring.build(members.map((id) => ({ id })), { vnodes: VN });
      const b = Ring.build(shuffle(members, seed).map((id) => ({ id })), { vnodes: VN });
      t.is(a.checksum(), b.checksum());
      t.deepEqual(a.members(), b.members());
      for (const k of ks) t.deepEqual(a.preferenceList(k, n), b.preferenceList(k, n));
    }),
    { numRuns: 60 },
  );
});

test('checksum changes with the member set, zones and vnodes', (t) => {
  const base = Ring.build([{ id: 'a' }, { id: 'b' }], { vnodes: VN });
  t.not(base.checksum(), Ring.build([{ id: 'a' }, { id: 'c' }], { vnodes: VN }).checksum());
  t.not(base.checksum(), Ring.build([{ id: 'a', zone: 'z1' }, { id: 'b' }], { vnodes: VN }).checksum());
  t.not(base.checksum(), Ring.build([{ id: 'a' }, { id: 'b' }], { vnodes: VN + 1 }).checksum());
  t.regex(base.checksum(), /^[0-9a-f]{16}$/);
});

test('a preference list has min(n, members) distinct members, primary = owner of the first token clockwise', (t) => {
  fc.assert(
    fc.property(ids, keys, fc.integer({ min: 1, max: 12 }), (members, ks, n) => {
      const ring = Ring.build(members.map((id) => ({ id })), { vnodes: VN });
      const table = ring.tokenTable();
      for (const k of ks) {
        const list = ring.preferenceList(k, n);
        t.is(list.length, Math.min(n, members.length));
        t.is(new Set(list).size, list.length);
        for (const id of list) t.true(members.includes(id));
        // Reference: linear scan for the first token >= hash, wrapping.
        const h = hashKey(k);
        const first = table.find((e) => e.token >= h) ?? table[0];
        t.is(list[0], first.owner);
      }
    }),
    { numRuns: 60 },
  );
});

test('without zones the list is the first n distinct owners walking clockwise', (t) => {
  fc.assert(
    fc.property(ids, token, fc.integer({ min: 1, max: 5 }), (members, tok, n) => {
      const ring = Ring.build(members.map((id) => ({ id })), { vnodes: VN });
      const table = ring.tokenTable();
      let i = ring.tokenIndexFor(tok);
      const want: string[] = [];
      for (let step = 0; step < table.length && want.length < n; step++, i = (i + 1) % table.length) {
        if (!want.includes(table[i].owner)) want.push(table[i].owner);
      }
      t.deepEqual(ring.replicasForToken(tok, n), want);
    }),
    { numRuns: 60 },
  );
});

test('a join changes each key’s replicas minimally: the newcomer replaces at most one member', (t) => {
  fc.assert(
    fc.property(ids, fc.string({ minLength: 1, maxLength: 8 }), keys, fc.integer({ min: 1, max: 4 }), (members, joiner, ks, n) => {
      fc.pre(!members.includes(joiner));
      const before = Ring.build(members.map((id) => ({ id })), { vnodes: VN });
      const after = Ring.build([...members, joiner].map((id) => ({ id })), { vnodes: VN });
      for (const k of ks) {
        const old = before.preferenceList(k, n);
        const now = after.preferenceList(k, n);
        const added = now.filter((id) => !old.includes(id));
        const removed = old.filter((id) => !now.includes(id));
        t.true(added.length <= 1 && (added.length === 0 || added[0] === joiner));
        // Growing below n adds without removing; otherwise one in, one out.
        t.is(removed.length, old.length < n ? 0 : added.length);
        // Primary moves only to the newcomer.
        if (old[0] !== now[0]) t.is(now[0], joiner);
      }
    }),
    { numRuns: 60 },
  );
});

test('a leave moves only the leaver’s keys', (t) => {
  fc.assert(
    fc.property(ids, keys, fc.nat(), (members, ks, pick) => {
      fc.pre(members.length >= 2);
      const leaver = members[pick % members.length];
      const before = Ring.build(members.map((id) => ({ id })), { vnodes: VN });
      const after = Ring.build(members.filter((id) => id !== leaver).map((id) => ({ id })), { vnodes: VN });
      for (const k of ks) {
        const old = before.preferenceList(k, 3);
        const now = after.preferenceList(k, 3);
        if (!old.includes(leaver)) t.deepEqual(now, old);
        else t.deepEqual(now.slice(0, old.length - 1), old.filter((id) => id !== leaver).slice(0, now.length));
      }
    }),
    { numRuns: 60 },
  );
});

test('zones: replicas come from distinct zones when there are enough zones', (t) => {
  const zoned = fc
    .uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 2, maxLength: 12 })
    .chain((members) => fc.tuple(fc.constant(members), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: members.length, maxLength: members.length })));
  fc.assert(
    fc.property(zoned, keys, fc.integer({ min: 1, max: 5 }), ([members, zones], ks, n) => {
      const list = members.map((id, i) => ({ id, zone: `z${zones[i]}` }));
      const ring = Ring.build(list, { vnodes: VN });
      const zoneCount = new Set(list.map((m) => m.zone)).size;
      for (const k of ks) {
        const prefs = ring.preferenceList(k, n);
        t.is(prefs.length, Math.min(n, members.length));
        t.is(new Set(prefs).size, prefs.length);
        const zonesUsed = new Set(prefs.map((id) => ring.zoneOf(id)));
        t.is(zonesUsed.size, Math.min(prefs.length, zoneCount));
      }
    }),
    { numRuns: 60 },
  );
});

test('zones: with 3 zones of unequal size, 3 replicas always span all 3 zones', (t) => {
  const members = [
    ...Array.from({ length: 6 }, (_, i) => ({ id: `a${i}`, zone: 'a' })),
    ...Array.from({ length: 3 }, (_, i) => ({ id: `b${i}`, zone: 'b' })),
    { id: 'c0', zone: 'c' },
  ];
  const ring = Ring.build(members, { vnodes: 64 });
  for (let i = 0; i < 2000; i++) {
    const zones = ring.preferenceList(`k${i}`, 3).map((id) => ring.zoneOf(id));
    t.deepEqual([...zones].sort(), ['a', 'b', 'c']);
  }
});

test('rangesFor covers exactly the tokens whose replicas include the node', (t) => {
  fc.assert(
    fc.property(ids, fc.array(token, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 4 }), (members, toks, n) => {
      const ring = Ring.build(members.map((id) => ({ id })), { vnodes: VN });
      const probes = [...toks, ...ring.tokenTable().map((e) => e.token), 0n, TOKEN_MAX];
      for (const id of members) {
        const set = new RangeSet(ring.rangesFor(id, n));
        const ranges = ring.rangesFor(id, n);
        for (const tok of probes) {
          const isReplica = ring.replicasForToken(tok, n).includes(id);
          t.is(ranges.some((r) => rangeContains(r, tok)), isReplica);
          t.is(set.has(tok), isReplica);
        }
      }
      t.deepEqual(ring.rangesFor('not-a-member', n), []);
    }),
    { numRuns: 40 },
  );
});

test('sharedRanges is the intersection of both members’ ranges', (t) => {
  fc.assert(
    fc.property(ids, fc.array(token, { minLength: 1, maxLength: 30 }), (members, toks) => {
      fc.pre(members.length >= 2);
      const ring = Ring.build(members.map((id) => ({ id })), { vnodes: VN });
      const [a, b] = members;
      const shared = new RangeSet(ring.sharedRanges(a, b, 3));
      const both = new RangeSet(ring.rangesFor(a, 3)).intersect(new RangeSet(ring.rangesFor(b, 3)));
      for (const tok of [...toks, ...ring.tokenTable().map((e) => e.token)]) {
        const reps = ring.replicasForToken(tok, 3);
        t.is(shared.has(tok), reps.includes(a) && reps.includes(b));
        t.is(both.has(tok), shared.has(tok));
      }
    }),
    { numRuns: 40 },
  );
});

test('ownership sums to 1 for any n, and a one-member ring owns everything', (t) => {
  fc.assert(
    fc.property(ids, fc.integer({ min: 1, max: 4 }), (members, n) => {
      const ring = Ring.build(members.map((id) => ({ id })), { vnodes: VN });
      const sum = [...ring.ownership(n).values()].reduce((a, b) => a + b, 0);
      t.true(Math.abs(sum - 1) < 1e-9);
    }),
    { numRuns: 40 },
  );
  const solo = Ring.build([{ id: 'only' }], { vnodes: 1 });
  t.is(solo.ownership().get('only'), 1);
  const [whole] = solo.rangesFor('only', 3);
  t.is(whole.start, whole.end);
  t.true(rangeContains(whole, 12_345n));
});

test('default vnodes reach the balance goal for 10 members', (t) => {
  const ring = Ring.build(Array.from({ length: 10 }, (_, i) => ({ id: `n${i + 1}` })));
  const shares = [...ring.ownership().values()];
  t.true(Math.max(...shares) * 10 <= 1.1, `max/mean ${Math.max(...shares) * 10}`);
});

test('empty ring, bad options and duplicate ids', (t) => {
  const empty = Ring.build([]);
  t.deepEqual(empty.preferenceList('k', 3), []);
  t.deepEqual(empty.members(), []);
  const dup = t.throws(() => Ring.build([{ id: 'a' }, { id: 'a' }]));
  t.is((dup as ShoalError).code, 'CONFIG');
  t.is((t.throws(() => Ring.build([{ id: 'a' }], { vnodes: 0 })) as ShoalError).code, 'CONFIG');
  t.is((t.throws(() => Ring.build([{ id: '' }])) as ShoalError).code, 'CONFIG');
  t.is((t.throws(() => Ring.build([{ id: 'a' }]).preferenceList('k', 0)) as ShoalError).code, 'BAD_REQUEST');
});

test('ranges: wire round-trip, wrap-around and bad input', (t) => {
  fc.assert(
    fc.property(token, token, token, (start, end, probe) => {
      const r = { start, end };
      t.deepEqual(rangeFromWire(rangeToWire(r)), r);
      t.is(new RangeSet([r]).has(probe), rangeContains(r, probe));
    }),
  );
  const wrap = { start: TOKEN_MAX - 5n, end: 5n };
  t.true(rangeContains(wrap, 0n));
  t.true(rangeContains(wrap, TOKEN_MAX));
  t.false(rangeContains(wrap, TOKEN_MAX - 5n));
  t.false(rangeContains(wrap, 6n));
  t.throws(() => rangeFromWire({ start: '-1', end: '2' }));
  t.throws(() => rangeFromWire({ start: (TOKEN_MAX + 1n).toString(), end: '2' }));
  t.throws(() => rangeFromWire({ start: 1, end: '2' }));
});

test('movedFraction: a join moves exactly the newcomer’s share; the same ring moves nothing', async (t) => {
  const { movedFraction, maxOverMean } = await import('../../src/ring/balance.js');
  fc.assert(
    fc.property(ids, fc.string({ minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 3 }), (members, joiner, n) => {
      fc.pre(!members.includes(joiner));
      const before = Ring.build(members.map((id) => ({ id })), { vnodes: VN });
      const after = Ring.build([...members, joiner].map((id) => ({ id })), { vnodes: VN });
      const moved = movedFraction(before, after, n);
      const share = after.ownership(n).get(joiner)!;
      // With fewer members than n the newcomer is an extra replica, not a replacement.
      if (members.length >= n) t.true(Math.abs(moved - share) < 1e-9, `${moved} vs ${share}`);
      t.is(movedFraction(before, before, n), 0);
      t.true(maxOverMean(before, n) >= 1 - 1e-9);
    }),
    { numRuns: 40 },
  );
});

test('a ring derived from a recent one (members joined or left) is the ring a full sort builds', (t) => {
  const pool = Array.from({ length: 40 }, (_, i) => `node-${i}`);
  const derivedBefore = ringBuildCounts.derived;
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.constantFrom(...pool), { minLength: 1, maxLength: 30 }),
      fc.array(fc.constantFrom(...pool), { maxLength: 6 }),
      fc.constantFrom(1, 16, 64),
      fc.boolean(),
      (base, toggles, vnodes, zones) => {
        const member = (id: string) => (zones ? { id, zone: `z${id.length % 3}` } : { id });
        const next = new Set(base);
        for (const id of toggles) if (!next.delete(id)) next.add(id);
        if (next.size === 0) return;
        forgetRecentRings();
        Ring.build(base.map(member), { vnodes }); // the recent ring the next build derives from
        const derived = Ring.build([...next].map(member), { vnodes });
        forgetRecentRings();
        const full = Ring.build([...next].map(member), { vnodes });
        t.deepEqual(derived.tokenTable(), full.tokenTable());
        t.is(derived.checksum(), full.checksum());
        for (const key of ['a', 'b', 'c', 'key-42']) t.deepEqual(derived.preferenceList(key, 3), full.preferenceList(key, 3));
        t.deepEqual(derived.rangesFor(derived.members()[0], 2), full.rangesFor(full.members()[0], 2));
      },
    ),
    { numRuns: 150 },
  );
  t.true(ringBuildCounts.derived > derivedBefore, 'the derivation was used');
});
