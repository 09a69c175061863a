import test from 'ava';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder } from '../src/rpc/framing.js';
import { pack, unpack } from '../src/codec.js';
import { ShoalError } from '../src/errors.js';

/**
 * msgpackr renames a map key `__proto__` to `__proto_` when decoding (its prototype-pollution guard),
 * so that one key cannot round-trip. It gets its own test below; everywhere else it is left out.
 */
const jsonKey = fc.string().filter((key) => key !== '__proto__');

/** Any JSON value (what `JSON.parse` can build), like fc.jsonValue() but without the `__proto__` key. */
const depth = fc.createDepthIdentifier();
const { plain } = fc.letrec<{ plain: unknown }>((tie) => ({
  plain: fc.oneof(
    { depthSize: 'small', depthIdentifier: depth },
    fc.boolean(),
    fc.double({ noDefaultInfinity: true, noNaN: true }),
    fc.string(),
    fc.constant(null),
    fc.array(tie('plain'), { depthIdentifier: depth }),
    fc.dictionary(jsonKey, tie('plain'), { depthIdentifier: depth }),
  ),
}));

test('frames round-trip however the stream is split', (t) => {
  fc.assert(
    fc.property(fc.array(plain, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 30 }), (values, cuts) => {
      const stream = Buffer.concat(values.map((v) => encodeFrame(v)));
      const decoder = new FrameDecoder(1 << 20);
      const got: unknown[] = [];
      let offset = 0;
      for (const cut of cuts) {
        if (offset >= stream.length) break;
        got.push(...decoder.push(stream.subarray(offset, offset + cut)));
        offset += cut;
      }
      got.push(...decoder.push(stream.subarray(offset)));
      t.deepEqual(got, JSON.parse(JSON.stringify(values)));
      t.is(decoder.pendingBytes, 0);
    }),
  );
});

test('a __proto__ map key is decoded as an own key `__proto_`, never as a prototype', (t) => {
  // JSON.parse makes `__proto__` an own property, the way a hostile peer's msgpack map would carry it.
  const hostile = JSON.parse('{"__proto__": {"polluted": true, "op": "del"}, "op": "get"}') as Record<string, unknown>;
  t.deepEqual(Object.keys(hostile), ['__proto__', 'op']);
  for (const decoded of [unpack(pack(hostile)), new FrameDecoder(1 << 10).push(encodeFrame({ args: hostile }))[0]]) {
    const outer = decoded as Record<string, unknown>;
    const map = ('args' in outer ? outer.args : outer) as Record<string, unknown>;
    t.is(Object.getPrototypeOf(map), Object.prototype);
    t.deepEqual(Object.keys(map), ['__proto_', 'op']);
    t.deepEqual(map.__proto_, { polluted: true, op: 'del' });
    t.is(map.op, 'get');
    t.is((map as { polluted?: unknown }).polluted, undefined);
  }
  t.is(({} as { polluted?: unknown }).polluted, undefined, 'Object.prototype is untouched');
});

test('an oversized header is refused before its body arrives', (t) => {
  const decoder = new FrameDecoder(100);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(101);
  const err = t.throws(() => decoder.push(header));
  t.true(err instanceof ShoalError);
  t.is((err as ShoalError).code, 'FRAME_TOO_LARGE');
});

test('a truncated or padded body is BAD_REQUEST', (t) => {
  const decoder = new FrameDecoder(100);
  const frame = Buffer.from([0, 0, 0, 1, 0x92]); // announces a 2-element array, ends at once
  const err = t.throws(() => decoder.push(frame));
  t.is((err as ShoalError).code, 'BAD_REQUEST');
  const padded = Buffer.from([0, 0, 0, 2, 1, 2]); // one value, then a stray byte
  t.is((t.throws(() => new FrameDecoder(100).push(padded)) as ShoalError).code, 'BAD_REQUEST');
});

test('the codec writes plain msgpack only: an undefined field is nil, never an extension type', (t) => {
  const bytes = pack({ a: undefined, b: [undefined, 1] });
  // map16 of 2 entries (msgpackr's choice for objects): "a" → nil, "b" → fixarray [nil, 1]
  t.is(bytes.toString('hex'), 'de0002a161c0a16292c001');
  t.deepEqual(unpack(bytes), { a: null, b: [null, 1] });
});
