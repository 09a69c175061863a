import test from 'ava';
import fc from 'fast-check';
import { RespParser, RespProtocolError, splitInline } from '../../src/resp/parser.js';
import { BoolReply, DoubleReply, ErrorReply, MapReply, NULL_ARRAY, OK, ReplyWriter, SetReply, VerbatimReply, encodeReply } from '../../src/resp/reply.js';

const LIMITS = { requestBytesMax: 1024 * 1024, argsMax: 1000 };

function multibulk(args: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

const strs = (cmds: Buffer[][]) => cmds.map((c) => c.map((a) => a.toString('latin1')));

test('multibulk commands parse back to their arguments however the bytes are split into chunks', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 30 }),
      (cmds, cuts) => {
        const commands = cmds.map((c) => c.map((a) => Buffer.from(a)));
        const wire = Buffer.concat(commands.map(multibulk));
        const parser = new RespParser(LIMITS);
        const got: Buffer[][] = [];
        let pos = 0;
        for (let i = 0; pos < wire.length; i++) {
          const n = cuts[i % cuts.length];
          parser.push(wire.subarray(pos, pos + n), got);
          pos += n;
        }
        t.deepEqual(strs(got), strs(commands));
        t.is(parser.bufferedBytes, 0);
      },
    ),
  );
});

test('arguments of a command inside one chunk are views of it, not copies', (t) => {
  const wire = multibulk([Buffer.from('SET'), Buffer.from('k'), Buffer.from('value')]);
  const [cmd] = new RespParser(LIMITS).push(wire);
  t.is(cmd[2].buffer, wire.buffer);
  t.is(cmd[2].toString(), 'value');
});

test('inline commands split on spaces with Redis quoting; empty lines are skipped', (t) => {
  const got = new RespParser(LIMITS).push(Buffer.from('PING\r\n\r\nSET k "a b\\x41\\n"\nGET \'it\\\'s\'\r\n'));
  t.deepEqual(strs(got), [['PING'], ['SET', 'k', 'a bA\n'], ['GET', "it's"]]);
  t.throws(() => splitInline(Buffer.from('SET "k v')), { instanceOf: RespProtocolError, message: /unbalanced/ });
  t.throws(() => splitInline(Buffer.from('SET "k"v')), { instanceOf: RespProtocolError });
});

test('limits: oversized requests, too many arguments and bad framing are protocol errors', (t) => {
  const small = { requestBytesMax: 100, argsMax: 3 };
  t.throws(() => new RespParser(small).push(Buffer.from('*4\r\n')), { instanceOf: RespProtocolError, message: /multibulk length/ });
  t.throws(() => new RespParser(small).push(Buffer.from('*1\r\n$500\r\n')), { instanceOf: RespProtocolError, message: /bulk length/ });
  t.throws(() => new RespParser(small).push(Buffer.from('*1\r\n$95\r\n')), { instanceOf: RespProtocolError, message: /over 100 bytes/ });
  const p = new RespParser(small);
  p.push(Buffer.from('*1\r\n$80\r\n'));
  t.throws(() => p.push(Buffer.alloc(95, 97)), { instanceOf: RespProtocolError, message: /over 100 bytes/ });
  t.throws(() => new RespParser(LIMITS).push(Buffer.from('*1\r\n+x\r\n')), { instanceOf: RespProtocolError, message: /expected '\$'/ });
  t.throws(() => new RespParser(LIMITS).push(Buffer.from('*1\r\n$1\r\nab\r\n')), { instanceOf: RespProtocolError, message: /CRLF/ });
  t.throws(() => new RespParser(LIMITS).push(Buffer.from('*x\r\n')), { instanceOf: RespProtocolError });
  t.throws(() => new RespParser(LIMITS).push(Buffer.alloc(70 * 1024, 97)), { instanceOf: RespProtocolError, message: /inline/ });
});

test('a large bulk split into many chunks is joined once it is complete', (t) => {
  const value = Buffer.alloc(300_000, 7);
  const wire = multibulk([Buffer.from('SET'), Buffer.from('k'), value]);
  const p = new RespParser(LIMITS);
  const got: Buffer[][] = [];
  for (let i = 0; i < wire.length; i += 1000) p.push(wire.subarray(i, i + 1000), got);
  t.is(got.length, 1);
  t.true(got[0][2].equals(value));
});

test('bulk replies of any size encode as $length, the bytes and CRLF, alone or after other replies', (t) => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 20_000, size: 'max' })), { minLength: 1, maxLength: 12 }), (values) => {
      const w = new ReplyWriter();
      for (const v of values) {
        w.write(OK, 2);
        w.write(Buffer.from(v), 2);
      }
      const got = Buffer.concat(w.take());
      const expected = Buffer.concat(values.flatMap((v) => [Buffer.from(`+OK\r\n$${v.length}\r\n`), Buffer.from(v), Buffer.from('\r\n')]));
      return got.equals(expected);
    }),
    { numRuns: 200 },
  );
  t.is(encodeReply(Buffer.alloc(0), 2).toString('latin1'), '$0\r\n\r\n');
  t.is(encodeReply(Buffer.alloc(12_345, 97), 2).subarray(0, 8).toString('latin1'), '$12345\r\n');
});

test('replies encode as RESP2 and RESP3', (t) => {
  const enc = (r: Parameters<typeof encodeReply>[0], p: 2 | 3) => encodeReply(r, p).toString('latin1');
  t.is(enc(OK, 2), '+OK\r\n');
  t.is(enc(new ErrorReply('ERR bad\r\nthing'), 2), '-ERR bad thing\r\n');
  t.is(enc(null, 2), '$-1\r\n');
  t.is(enc(null, 3), '_\r\n');
  t.is(enc(NULL_ARRAY, 2), '*-1\r\n');
  t.is(enc(42, 2), ':42\r\n');
  t.is(enc(Buffer.from('a\r\nb'), 2), '$4\r\na\r\nb\r\n');
  t.is(enc(['x', null, 1], 2), '*3\r\n$1\r\nx\r\n$-1\r\n:1\r\n');
  t.is(enc(new MapReply([['a', 1]]), 2), '*2\r\n$1\r\na\r\n:1\r\n');
  t.is(enc(new MapReply([['a', 1]]), 3), '%1\r\n$1\r\na\r\n:1\r\n');
  t.is(enc(new SetReply(['a']), 3), '~1\r\n$1\r\na\r\n');
  t.is(enc(new DoubleReply(1.5), 3), ',1.5\r\n');
  t.is(enc(new DoubleReply(1.5), 2), '$3\r\n1.5\r\n');
  t.is(enc(new BoolReply(true), 3), '#t\r\n');
  t.is(enc(new BoolReply(false), 2), ':0\r\n');
  t.is(enc(new VerbatimReply('hi'), 3), '=6\r\ntxt:hi\r\n');
  t.is(enc(new VerbatimReply('hi'), 2), '$2\r\nhi\r\n');
  const big = Buffer.alloc(100_000, 1);
  t.true(encodeReply(big, 2).subarray(-100_002, -2).equals(big));
});
