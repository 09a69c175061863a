import test from 'ava';
import fc from 'fast-check';
import { Hlc, hlcLogical, hlcPack, hlcPhysicalMs, HLC_LOGICAL_SPAN } from '../../src/cluster/hlc.js';
import { ShoalError } from '../../src/errors.js';
import { compareVersion } from '../../src/storage/types.js';

const T0 = 1_764_000_000_000; // Nov 2025

/** A wall clock driven by a list of deltas (may go backwards). */
function scriptedClock(start: number): { now: () => number; move: (ms: number) => void } {
  let wall = start;
  return { now: () => wall, move: (ms) => (wall += ms) };
}

test('timestamps are packed (physicalMs - epoch) * 4096 + logical', (t) => {
  const clock = scriptedClock(T0);
  const hlc = new Hlc('n1', clock.now);
  const a = hlc.now();
  t.is(a.ts, hlcPack(T0, 0));
  t.is(a.node, 'n1');
  t.is(hlcPhysicalMs(hlc.now().ts), T0);
  t.is(hlcLogical(hlc.now().ts), 2);
  clock.move(5);
  t.is(hlc.now().ts, hlcPack(T0 + 5, 0));
});

test('now() is strictly increasing whatever the wall clock does', (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -5000, max: 5000 }), { maxLength: 200 }), (deltas) => {
      const clock = scriptedClock(T0);
      const hlc = new Hlc('n1', clock.now);
      let prev = hlc.now().ts;
      for (const d of deltas) {
        clock.move(d);
        const ts = hlc.now().ts;
        t.true(ts > prev);
        t.true(hlcPhysicalMs(ts) >= clock.now() || ts === prev + 1);
        prev = ts;
      }
    }),
  );
});

test('the logical counter overflows into the next millisecond', (t) => {
  const hlc = new Hlc('n1', () => T0);
  let last = 0;
  for (let i = 0; i < HLC_LOGICAL_SPAN + 3; i++) last = hlc.now().ts;
  t.is(hlcPhysicalMs(last), T0 + 1);
  t.is(hlcLogical(last), 2);
});

test('causality: a stamp after observe() is newer than the observed one, across skewed nodes', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ from: fc.nat(2), to: fc.nat(2), tick: fc.integer({ min: 0, max: 30 }) }), { maxLength: 100 }),
      fc.tuple(fc.integer({ min: -20_000, max: 20_000 }), fc.integer({ min: -20_000, max: 20_000 })),
      (messages, [skew1, skew2]) => {
        let wall = T0;
        const skews = [0, skew1, skew2];
        const clocks = skews.map((s, i) => new Hlc(`n${i}`, () => wall + s));
        for (const m of messages) {
          wall += m.tick;
          const sent = clocks[m.from].now();
          clocks[m.to].observe(sent.ts);
          const reply = clocks[m.to].now();
          t.is(compareVersion(reply, sent), 1);
        }
      },
    ),
  );
});

test('a remote ts more than maxDriftMs ahead is refused (or clamped)', (t) => {
  const hlc = new Hlc('n1', () => T0, { maxDriftMs: 60_000 });
  hlc.observe(hlcPack(T0 + 59_000, 0));
  t.is(hlcPhysicalMs(hlc.now().ts), T0 + 59_000);
  const err = t.throws(() => hlc.observe(hlcPack(T0 + 3_600_000, 0))) as ShoalError;
  t.is(err.code, 'BAD_REQUEST');
  t.is(err.details?.reason, 'clock-drift');
  t.true(hlcPhysicalMs(hlc.now().ts) < T0 + 60_000);
  t.is(hlc.stats().driftRejected, 1);

  const clamped = new Hlc('n2', () => T0, { maxDriftMs: 1000, onDrift: 'clamp' });
  clamped.observe(hlcPack(T0 + 10_000_000, 0));
  const ts = clamped.now().ts;
  t.is(hlcPhysicalMs(ts), T0 + 1000);
  t.is(clamped.stats().driftRejected, 1);
});

test('observe() rejects garbage and ignores the past', (t) => {
  const hlc = new Hlc('n1', () => T0);
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 60]) {
    t.is((t.throws(() => hlc.observe(bad)) as ShoalError).code, 'BAD_REQUEST');
  }
  const a = hlc.now().ts;
  hlc.observe(5);
  t.is(hlc.now().ts, a + 1);
});

test('the packing lasts until 2094: a 2090 clock works, a clock past the range is refused, one before 2025 keeps order', (t) => {
  const in2090 = Date.UTC(2090, 5, 1);
  const late = new Hlc('n1', () => in2090);
  const v = late.now();
  t.true(Number.isSafeInteger(v.ts));
  t.is(hlcPhysicalMs(v.ts), in2090);
  const past = new Hlc('n1', () => Date.UTC(2095, 0, 1));
  t.is((t.throws(() => past.now()) as ShoalError).code, 'INTERNAL');
  const unset = new Hlc('n1', () => 0); // a clock never set: 1970
  const a = unset.now().ts;
  const b = unset.now().ts;
  t.true(b > a);
});
