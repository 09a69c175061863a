import test from 'ava';
import fc from 'fast-check';
import { pack, unpack } from '../../src/codec.js';
import {
  checkFrame,
  decodePayload,
  encodePayload,
  encodeRecord,
  newDecodedRecord,
  payloadCapacity,
  RECORD_HEADER_BYTES,
  recordSeq,
} from '../../src/storage/record.js';
import type { Entry } from '../../src/storage/types.js';
import { ExpiryQueue } from '../../src/storage/expiry.js';
import { crc32cRange } from '../../src/storage/crc.js';
import { crc32c } from '@node-rs/crc32';

const time = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const arbRecord = fc.record({
  key: fc.string({ unit: 'binary', maxLength: 40 }),
  ts: time,
  node: fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
  value: fc.option(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a))),
  expiresAtMs: fc.option(time, { nil: undefined }),
  deletedAtMs: fc.option(time, { nil: undefined }),
});

function toEntry(r: { ts: number; node: string; value: Buffer | null; expiresAtMs?: number }): Entry {
  return r.expiresAtMs === undefined
    ? { ts: r.ts, node: r.node, value: r.value }
    : { ts: r.ts, node: r.node, value: r.value, expiresAtMs: r.expiresAtMs };
}

test('a payload round-trips and is plain msgpack any decoder reads', (t) => {
  fc.assert(
    fc.property(arbRecord, (r) => {
      const entry = toEntry(r);
      const b = Buffer.alloc(payloadCapacity(r.key, r.node, r.value?.length ?? 0));
      const end = encodePayload(b, 0, r.key, entry, r.deletedAtMs);
      const out = newDecodedRecord();
      decodePayload(b, 0, end, out);
      t.deepEqual(out.key, r.key);
      t.deepEqual(out.entry, entry);
      t.is(out.deletedAtMs, r.deletedAtMs);
      const generic = unpack(b.subarray(0, end)) as unknown[];
      t.deepEqual(generic, [r.value === null ? 2 : 1, r.key, r.ts, r.node, r.value, r.expiresAtMs ?? null, r.deletedAtMs ?? null]);
    }),
    { numRuns: 300 },
  );
});

test('a payload in any other valid msgpack encoding decodes through the generic path', (t) => {
  const bytes = pack([1, 'key', 42, 'n1', Buffer.from('val'), 1000, null]);
  const out = newDecodedRecord();
  decodePayload(bytes, 0, bytes.length, out);
  t.is(out.key, 'key');
  t.deepEqual(out.entry, { ts: 42, node: 'n1', value: Buffer.from('val'), expiresAtMs: 1000 });
  const bad = pack([1, 'key', -1, 'n1', Buffer.from('val'), null, null]);
  t.throws(() => decodePayload(bad, 0, bad.length, out));
});

test('framing carries the sequence number and any flipped bit fails the CRC', (t) => {
  fc.assert(
    fc.property(arbRecord, time, fc.nat(), (r, seq, flip) => {
      const b = Buffer.alloc(RECORD_HEADER_BYTES + payloadCapacity(r.key, r.node, r.value?.length ?? 0));
      const end = encodeRecord(b, 0, seq, r.key, toEntry(r), r.deletedAtMs);
      t.is(checkFrame(b, 0, end, 1 << 30), end);
      t.is(recordSeq(b, 0), seq);
      t.is(checkFrame(b, 0, end - 1, 1 << 30), 'truncated record');
      const at = flip % end;
      b[at] ^= 1 << flip % 8;
      t.not(checkFrame(b, 0, end, 1 << 30), end);
    }),
    { numRuns: 300 },
  );
});

test('the expiry heap pops in due order and at most `limit` per call', (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 200 }), fc.integer({ min: 0, max: 1000 }), (dues, now) => {
      const q = new ExpiryQueue();
      const ref: Entry = { ts: 0, node: 'n', value: null };
      dues.forEach((d, i) => q.push(d, `k${i}`, ref));
      const popped: number[] = [];
      while (q.popDue(now, 7, (key) => popped.push(dues[Number(key.slice(1))])) === 7);
      const expected = dues.filter((d) => d <= now).sort((a, b) => a - b);
      t.deepEqual(popped, expected);
      t.is(q.size, dues.length - expected.length);
      t.true(q.peekDueMs() > now);
    }),
    { numRuns: 200 },
  );
});

test('the table CRC32C agrees with the native one at every length', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(16), (bytes, skip) => {
      const b = Buffer.from(bytes);
      const start = Math.min(skip, b.length);
      t.is(crc32cRange(b, start, b.length), crc32c(b.subarray(start)));
    }),
    { numRuns: 300 },
  );
  t.is(crc32cRange(Buffer.from('123456789'), 0, 9), 0xe3069283, 'the standard CRC32C check value');
});
