import test from 'ava';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder } from '../src/rpc/framing.js';
import { ShoalError } from '../src/errors.js';

const plain = fc.jsonValue();

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
