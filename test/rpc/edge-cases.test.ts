/**
 * Protocol edge cases met by a client written from docs/PROTOCOL.md alone: extension values, keys that
 * are not valid UTF-8, unknown arguments.
 */
import test from 'ava';
import { pack } from '../../src/codec.js';
import { frameHeader, memoryHandler, RawPeer, startServer } from './helpers.js';

type Response = { id: number | null; ok: boolean; error?: { code: string; message: string }; result?: unknown };

const MARK = Buffer.from('@@MARK@@'); // packs as bin8: c4 08 + 8 bytes, 10 bytes like a fixext 8

/** A request frame whose `args.value` is replaced by `replacement` (10 bytes of raw msgpack). */
function frameWithRaw(id: number, replacement: Buffer, where: 'value' | 'id' = 'value'): Buffer {
  const body = pack(where === 'value' ? { id, op: 'put', args: { key: 'k', value: MARK } } : { id: MARK, op: 'put', args: { key: 'k', value: MARK } });
  const bin = Buffer.concat([Buffer.from([0xc4, 0x08]), MARK]);
  const at = body.indexOf(bin);
  if (at < 0 || replacement.length !== bin.length) throw new Error('bad fixture');
  replacement.copy(body, at);
  return Buffer.concat([frameHeader(body.length), body]);
}

const fixext8 = (type: number): Buffer => Buffer.concat([Buffer.from([0xd7, type & 0xff]), Buffer.alloc(8, 1)]);

for (const [name, type] of [['an unknown extension type (42)', 42], ['a msgpack timestamp (-1)', -1], ['msgpackr\'s Set extension (0x73)', 0x73], ['extension 0 (msgpackr decodes it as undefined)', 0]] as const) {
  test(`${name} in a request gets BAD_REQUEST for that request alone; the connection goes on`, async (t) => {
    const { handler, applied } = memoryHandler();
    const { server, port } = await startServer(handler);
    t.teardown(() => server.close());
    const peer = await RawPeer.open(port);
    t.teardown(() => peer.destroy());
    peer.sendBytes(frameWithRaw(7, fixext8(type)));
    peer.send({ id: 8, op: 'put', args: { key: 'after', value: Buffer.from('v') } });
    const [first, second] = (await peer.nextN(2)) as Response[];
    t.is(first.id, 7);
    t.false(first.ok);
    t.is(first.error?.code, 'BAD_REQUEST');
    t.regex(first.error?.message ?? '', new RegExp(`extension type ${type}\\b`));
    t.is(second.id, 8);
    t.true(second.ok, 'the next request on the same connection is served');
    t.false(peer.closed);
    t.deepEqual(applied, ['put after']);
  });
}

test('an extension value where the id should be: no id to answer, so a connection-level error (id nil) and close', async (t) => {
  const { handler } = memoryHandler();
  const { server, port } = await startServer(handler);
  t.teardown(() => server.close());
  const peer = await RawPeer.open(port);
  t.teardown(() => peer.destroy());
  peer.sendBytes(frameWithRaw(0, fixext8(42), 'id'));
  const reply = (await peer.next()) as Response;
  t.is(reply.id, null);
  t.is(reply.error?.code, 'BAD_REQUEST');
  t.true(await peer.closedByServer());
});

test('a key that is not valid UTF-8 is refused, so different byte strings never collide on U+FFFD', async (t) => {
  const { handler, applied } = memoryHandler();
  const { server, port } = await startServer(handler);
  t.teardown(() => server.close());
  const peer = await RawPeer.open(port);
  t.teardown(() => peer.destroy());
  for (const [id, bad] of [[1, 0xff], [2, 0xfe]] as const) {
    const body = pack({ id, op: 'put', args: { key: 'kXk', value: Buffer.from('v') } });
    body[body.indexOf(Buffer.from('kXk')) + 1] = bad; // str bytes 6b ff 6b: invalid UTF-8
    peer.sendBytes(Buffer.concat([frameHeader(body.length), body]));
    const reply = (await peer.next()) as Response;
    t.is(reply.id, id);
    t.is(reply.error?.code, 'BAD_REQUEST');
    t.regex(reply.error?.message ?? '', /UTF-8/);
  }
  t.deepEqual(applied, []);
});

test('an unknown argument is refused naming it and the known ones (a typo like `ttl` is not silently ignored)', async (t) => {
  const { handler, applied } = memoryHandler();
  const { server, port } = await startServer(handler);
  t.teardown(() => server.close());
  const peer = await RawPeer.open(port);
  t.teardown(() => peer.destroy());
  peer.send({ id: 1, op: 'put', args: { key: 'k', value: Buffer.from('v'), ttl: 1000 } });
  peer.send({ id: 2, op: 'get', args: { key: 'k', consistancy: 'all' } });
  peer.send({ id: 3, op: 'put', args: { key: 'k', value: Buffer.from('v'), ttlMs: 1000, consistency: 'one', seenTs: 5 } });
  const [a, b, c] = (await peer.nextN(3)) as Response[];
  t.is(a.error?.code, 'BAD_REQUEST');
  t.regex(a.error?.message ?? '', /unknown argument "ttl".*ttlMs/);
  t.regex(b.error?.message ?? '', /unknown argument "consistancy"/);
  t.true(c.ok);
  t.deepEqual(applied, ['put k']);
});
