/** The chaos workload's value sizes and the disk-full step of the schedule. */
import test from 'ava';
import fc from 'fast-check';
import { buildSchedule } from './lib/schedule.js';
import { decodeValue, encodeValue, VALUE_MIX, valueSizeFor } from './lib/workload.js';
import { prng } from './lib/schedule.js';

test('values round-trip whole at every size; a cut or flipped byte reads as a value no write produced', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 300_000 }), fc.integer({ min: 0, max: 1_000_000 }), (size, op) => {
      const label = `u/c1/${op % 97}#${op}`;
      const value = encodeValue(label, size);
      const header = Buffer.byteLength(`${label}|${size}|`);
      t.is(value.length, size > header ? size : Buffer.byteLength(label));
      t.is(decodeValue(value), label);
      if (value.length > Buffer.byteLength(`${label}|${size}|`) + 1) {
        t.not(decodeValue(value.subarray(0, value.length - 1)), label, 'a truncated value is not the write');
        const flipped = Buffer.from(value);
        flipped[flipped.length - 1] ^= 0x40;
        t.not(decodeValue(flipped), label, 'a corrupted value is not the write');
      }
    }),
    { numRuns: 60 },
  );
});

test('the size mix spans bytes to valueBytesMax in about the weights of VALUE_MIX', (t) => {
  const rand = prng(7);
  const max = 1024 * 1024;
  const sizes = Array.from({ length: 20_000 }, () => valueSizeFor(rand, max));
  t.true(sizes.every((s) => s >= 0 && s <= max));
  const share = (lo: number, hi: number) => sizes.filter((s) => s >= lo && s <= hi).length / sizes.length;
  t.true(Math.abs(share(0, 100) - VALUE_MIX[0].weight) < 0.02);
  t.true(share(1024, 8 * 1024) > 0.2);
  t.true(share(128 * 1024, 256 * 1024) > 0.02);
  t.true(Math.abs(sizes.filter((s) => s === max).length / sizes.length - 0.01) < 0.005, 'about 1 % at valueBytesMax');
});

test('a disk-full step is added with its own randomness: the other faults keep their kinds and nodes', (t) => {
  for (const seed of [1, 2, 90210]) {
    const shape = { seed, durationMs: 60_000, nodes: ['n1', 'n2', 'n3', 'n4', 'n5'], spare: 'n6', keep: ['n1', 'n2', 'n3'], partitions: true };
    const without = buildSchedule(shape);
    const withDisk = buildSchedule({ ...shape, diskFull: true });
    const disk = withDisk.filter((s) => s.fault === 'disk-full');
    t.is(disk.length, 1, `seed ${seed}: one disk-full step`);
    t.true(disk[0].durationMs >= 6000);
    const rest = withDisk.filter((s) => s.fault !== 'disk-full').map((s) => `${s.fault} ${s.targets.join(',')}`);
    const before = without.map((s) => `${s.fault} ${s.targets.join(',')}`);
    // The disk-full step takes time, so the schedule may end one step earlier; the rest is unchanged.
    t.deepEqual(rest.filter((s) => !s.startsWith('kill-all')), before.filter((s) => !s.startsWith('kill-all')).slice(0, rest.filter((s) => !s.startsWith('kill-all')).length));
  }
});
