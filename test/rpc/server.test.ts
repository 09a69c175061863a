import test from 'ava';
import fc from 'fast-check';
import { encodeFrame } from '../../src/rpc/framing.js';
import { pack } from '../../src/codec.js';
import { RawPeer, CLUSTER, eventually, frameHeader, memoryHandler, startServer } from './helpers.js';
import type { RpcHandler } from '../../src/rpc/server.js';

type Reply = { id: number | null; ok: boolean; result?: unknown; error?: { code: string; message: string } };

test('hello, then put/get/del round trips with ids echoed', async (t) => {
  const mem = memoryHandler();
  const { server, port } = await startServer(mem.handler);
  const peer = await RawPeer.open(port, false);
  peer.send({ id: 0, op: 'hello', args: { version: 1, cluster: CLUSTER, peer: 'n9' } });
  t.deepEqual(await peer.next(), { id: 0, ok: true, result: { version: 1, cluster: CLUSTER, node: 'n1' } });
  peer.send({ id: 7, op: 'put', args: { key: 'k', value: Buffer.from('v1') } });
  t.deepEqual(await peer.next(), { id: 7, ok: true, result: { version: { ts: 1001, node: 'n1' } } });
  peer.send({ id: 8, op: 'get', args: { key: 'k' } });
  const got = (await peer.next()) as Reply;
  t.is(got.id, 8);
  t.deepEqual((got.result as { value: Buffer }).value, Buffer.from('v1'));
  peer.send({ id: 9, op: 'del', args: { key: 'k' } });
  t.is(((await peer.next()) as Reply).id, 9);
  peer.send({ id: 10, op: 'get', args: { key: 'k' } });
  t.deepEqual(await peer.next(), { id: 10, ok: true, result: null });
  t.is(mem.contexts[0].peer, 'n9');
  t.regex(mem.contexts[0].remote, /^127\.0\.0\.1:\d+$/);
  const stats = server.stats();
  t.is(stats.requests.put, 1);
  t.is(stats.requests.get, 2);
  t.is(stats.connections, 1);
  peer.destroy();
  await server.close();
});

test('pipelined requests are answered as they complete, out of order', async (t) => {
  const releases = new Map<string, () => void>();
  const handler: RpcHandler = (_op, args) =>
    new Promise((resolve) => releases.set(String(args.key), () => resolve({ key: args.key })));
  const { server, port } = await startServer(handler);
  const peer = await RawPeer.open(port);
  // One socket write carrying three requests.
  peer.sendBytes(Buffer.concat([1, 2, 3].map((id) => encodeFrame({ id, op: 'get', args: { key: `k${id}` } }))));
  t.true(await eventually(() => releases.size === 3));
  t.is(server.stats().inFlight, 3);
  releases.get('k3')!();
  releases.get('k1')!();
  releases.get('k2')!();
  const ids = ((await peer.nextN(3)) as Reply[]).map((r) => r.id);
  t.deepEqual(ids, [3, 1, 2]);
  peer.destroy();
  await server.close();
});

test('a client that half-closes after its requests still gets every answer', async (t) => {
  const mem = memoryHandler();
  const { server, port } = await startServer(mem.handler);
  const peer = await RawPeer.open(port);
  peer.sendBytes(Buffer.concat([1, 2, 3].map((id) => encodeFrame({ id, op: 'put', args: { key: `k${id}`, value: Buffer.from('v') } }))));
  peer.socket.end();
  const ids = ((await peer.nextN(3)) as Reply[]).map((r) => r.ok && r.id);
  t.deepEqual(ids.sort(), [1, 2, 3]);
  t.true(await peer.closedByServer());
  t.deepEqual(mem.applied, ['put k1', 'put k2', 'put k3']);
  await server.close();
});

test('a handshake with the wrong cluster or version gets BAD_HANDSHAKE and the connection closes', async (t) => {
  const { server, port } = await startServer(memoryHandler().handler);
  for (const args of [
    { version: 1, cluster: 'other' },
    { version: 2, cluster: CLUSTER },
    { cluster: CLUSTER },
  ]) {
    const peer = await RawPeer.open(port, false);
    peer.send({ id: 0, op: 'hello', args });
    const reply = (await peer.next()) as Reply;
    t.is(reply.id, 0);
    t.is(reply.error?.code, 'BAD_HANDSHAKE');
    t.true(await peer.closedByServer());
  }
  const early = await RawPeer.open(port, false);
  early.send({ id: 5, op: 'get', args: { key: 'k' } });
  const reply = (await early.next()) as Reply;
  t.is(reply.error?.code, 'BAD_HANDSHAKE');
  t.regex(reply.error!.message, /first request must be "hello"/);
  t.true(await early.closedByServer());
  t.is(server.stats().handshakeFailures, 4);
  await server.close();
});

test('an oversized frame is refused from its header alone and only that connection closes', async (t) => {
  const mem = memoryHandler();
  const { server, port } = await startServer(mem.handler, { frameBytesMax: 1024 });
  const good = await RawPeer.open(port);
  const bad = await RawPeer.open(port);
  bad.sendBytes(frameHeader(1025));
  const reply = (await bad.next()) as Reply;
  t.is(reply.id, null);
  t.is(reply.error?.code, 'FRAME_TOO_LARGE');
  t.true(await bad.closedByServer());
  good.send({ id: 1, op: 'put', args: { key: 'a', value: Buffer.alloc(900) } });
  t.true(((await good.next()) as Reply).ok);
  t.is(server.stats().malformedFrames, 1);
  good.destroy();
  await server.close();
});

test('a result over frameBytesMax is answered with FRAME_TOO_LARGE for that id', async (t) => {
  const { server, port } = await startServer(async () => ({ blob: Buffer.alloc(5000) }), { frameBytesMax: 4096 });
  const peer = await RawPeer.open(port);
  peer.send({ id: 3, op: 'big', args: {} });
  const reply = (await peer.next()) as Reply;
  t.is(reply.id, 3);
  t.is(reply.error?.code, 'FRAME_TOO_LARGE');
  peer.send({ id: 4, op: 'big', args: {} });
  t.is(((await peer.next()) as Reply).id, 4);
  peer.destroy();
  await server.close();
});

test('crafted bad requests: error with the id when known, close when not', async (t) => {
  const mem = memoryHandler();
  const { server, port } = await startServer(mem.handler);
  const peer = await RawPeer.open(port);
  const withId: [unknown, string][] = [
    [{ id: 1, op: 42, args: {} }, 'BAD_REQUEST'],
    [{ id: 2, op: 'put', args: [1, 2] }, 'BAD_REQUEST'],
    [{ id: 3, op: 'put', args: { key: 'k', value: 'not-bin' } }, 'BAD_REQUEST'],
    [{ id: 4, op: 'put', args: { key: 5, value: Buffer.from('x') } }, 'BAD_REQUEST'],
    [{ id: 5, op: 'nope', args: {} }, 'BAD_REQUEST'],
    [{ id: 6, op: 'put', args: { key: 'x'.repeat(65), value: Buffer.from('x') } }, 'KEY_TOO_LARGE'],
    [{ id: 7, op: 'put', args: { key: 'k', value: Buffer.from('x'), ttlMs: -1 } }, 'BAD_REQUEST'],
    [{ id: 8, op: 'hello', args: { version: 1, cluster: CLUSTER } }, 'BAD_REQUEST'],
  ];
  for (const [frame, code] of withId) {
    peer.send(frame);
    const reply = (await peer.next()) as Reply;
    t.is(reply.id, (frame as { id: number }).id);
    t.is(reply.error?.code, code, JSON.stringify(reply));
  }
  t.false(peer.closed);
  t.deepEqual(mem.applied, []);
  for (const frame of [[1, 'get', {}], { id: -1, op: 'get', args: {} }, { id: 1.5, op: 'get' }, 'hello', null]) {
    const p = await RawPeer.open(port);
    p.send(frame);
    const reply = (await p.next()) as Reply;
    t.is(reply.id, null);
    t.is(reply.error?.code, 'BAD_REQUEST');
    t.true(await p.closedByServer());
  }
  const garbage = await RawPeer.open(port);
  garbage.sendBytes(Buffer.concat([frameHeader(1), Buffer.from([0xc1])]));
  t.is(((await garbage.next()) as Reply).error?.code, 'BAD_REQUEST');
  t.true(await garbage.closedByServer());
  t.deepEqual(mem.applied, []);
  peer.destroy();
  await server.close();
});

test('random bytes never take the server down; a well-behaved client keeps being served', async (t) => {
  const mem = memoryHandler();
  const { server, port } = await startServer(mem.handler, { frameBytesMax: 4096 });
  const good = await RawPeer.open(port);
  good.send({ id: 1, op: 'put', args: { key: 'keep', value: Buffer.from('safe') } });
  await good.next();
  let id = 2;
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        // A valid header followed by random body bytes exercises the msgpack decoder too.
        fc.uint8Array({ minLength: 1, maxLength: 200 }).map((body) => Buffer.concat([frameHeader(body.length), body])),
        // A valid msgpack map of random shape, so the request validation runs as well.
        fc.dictionary(fc.constantFrom('id', 'op', 'args', 'key'), fc.anything()).map((m) => encodeFrame(m)),
      ),
      fc.boolean(),
      async (bytes, handshake) => {
        const peer = await RawPeer.open(port, handshake);
        peer.sendBytes(Buffer.from(bytes));
        await new Promise((r) => setTimeout(r, 5));
        peer.destroy();
        good.send({ id, op: 'get', args: { key: 'keep' } });
        const reply = (await good.next()) as Reply;
        t.is(reply.id, id++);
        t.deepEqual((reply.result as { value: Buffer }).value, Buffer.from('safe'));
      },
    ),
    { numRuns: 80 },
  );
  // Random input never carries a valid put (its value must be bin): only the good client's put applied.
  t.deepEqual(mem.applied, ['put keep']);
  t.is(mem.data.get('keep')?.value.toString(), 'safe');
  t.false(good.closed);
  good.destroy();
  await server.close();
});

test('requests over the in-flight limit get TOO_MANY_REQUESTS; the rest are served', async (t) => {
  const releases: (() => void)[] = [];
  const handler: RpcHandler = () => new Promise((resolve) => releases.push(() => resolve('done')));
  const { server, port } = await startServer(handler, { inFlightPerConnectionMax: 4 });
  const peer = await RawPeer.open(port);
  peer.sendBytes(Buffer.concat([1, 2, 3, 4, 5, 6].map((id) => encodeFrame({ id, op: 'slow', args: {} }))));
  const refused = (await peer.nextN(2)) as Reply[];
  t.deepEqual(refused.map((r) => [r.id, r.error?.code]), [[5, 'TOO_MANY_REQUESTS'], [6, 'TOO_MANY_REQUESTS']]);
  t.is(releases.length, 4);
  for (const release of releases) release();
  const served = (await peer.nextN(4)) as Reply[];
  t.deepEqual(served.map((r) => r.id).sort(), [1, 2, 3, 4]);
  t.is(server.stats().errors.TOO_MANY_REQUESTS, 2);
  peer.destroy();
  await server.close();
});

test('connections over connectionsMax are refused with TOO_MANY_REQUESTS', async (t) => {
  const { server, port } = await startServer(memoryHandler().handler, { connectionsMax: 2 });
  const a = await RawPeer.open(port);
  const b = await RawPeer.open(port);
  const c = await RawPeer.open(port, false);
  const reply = (await c.next()) as Reply;
  t.is(reply.error?.code, 'TOO_MANY_REQUESTS');
  t.true(await c.closedByServer());
  t.is(server.stats().connectionsRejected, 1);
  a.destroy();
  t.true(await eventually(() => server.stats().connections === 1));
  const d = await RawPeer.open(port);
  t.false(d.closed);
  for (const p of [b, d]) p.destroy();
  await server.close();
});

test('a connection without hello is closed after handshakeTimeoutMs', async (t) => {
  const { server, port } = await startServer(memoryHandler().handler, { handshakeTimeoutMs: 100 });
  const silent = await RawPeer.open(port, false);
  t.true(await silent.closedByServer());
  t.is(server.stats().handshakeTimeouts, 1);
  await server.close();
});

test('an idle connection is closed after idleTimeoutMs', async (t) => {
  const { server, port } = await startServer(memoryHandler().handler, { idleTimeoutMs: 200 });
  const idle = await RawPeer.open(port);
  t.true(await idle.closedByServer());
  t.is(server.stats().idleClosed, 1);
  await server.close();
});

test('backpressure: a client that does not read stops being read; memory stays bounded', async (t) => {
  const value = Buffer.alloc(64 * 1024, 7);
  const handler: RpcHandler = async () => ({ value });
  const high = 128 * 1024;
  const { server, port } = await startServer(handler, { writeBufferBytesHigh: high });
  const peer = await RawPeer.open(port);
  peer.socket.pause(); // stop reading: responses pile up in the kernel, then in the server
  const total = 500; // 32 MiB of responses if the server did not stop: more than the kernel buffers
  for (let id = 1; id <= total; id++) peer.send({ id, op: 'get', args: {} });
  t.true(await eventually(() => server.stats().pausedConnections === 1));
  await new Promise((r) => setTimeout(r, 200));
  const served = server.stats().requests.get ?? 0;
  t.true(served < total, `served ${served}`);
  await new Promise((r) => setTimeout(r, 200));
  t.is(server.stats().requests.get, served, 'no requests read while paused');
  t.true(server.stats().backpressurePauses >= 1);
  // Once the client reads, everything is answered.
  peer.socket.resume();
  const replies = (await peer.nextN(total)) as Reply[];
  t.is(replies.length, total);
  t.true(replies.every((r) => r.ok));
  t.is(server.stats().requests.get, total);
  peer.destroy();
  await server.close();
});

test('close({ drainMs }) answers in-flight requests, refuses new connections, then closes', async (t) => {
  let release: () => void = () => {};
  const handler: RpcHandler = () => new Promise((resolve) => (release = () => resolve('late')));
  const { server, port } = await startServer(handler);
  const peer = await RawPeer.open(port);
  peer.send({ id: 1, op: 'slow', args: {} });
  await eventually(() => server.stats().inFlight === 1);
  const closing = server.close({ drainMs: 5000 });
  peer.send({ id: 2, op: 'slow', args: {} });
  t.is(((await peer.next()) as Reply).error?.code, 'CLOSED');
  release();
  t.deepEqual(await peer.next(), { id: 1, ok: true, result: 'late' });
  await closing;
  t.true(await peer.closedByServer());
  await t.throwsAsync(RawPeer.open(port));
});

test('close({ drainMs }) gives up on a stuck handler after drainMs', async (t) => {
  const { server, port } = await startServer(() => new Promise(() => {}));
  const peer = await RawPeer.open(port);
  peer.send({ id: 1, op: 'stuck', args: {} });
  await eventually(() => server.stats().inFlight === 1);
  await server.close({ drainMs: 100 });
  t.true(await peer.closedByServer());
});

test('the frame encoding on the wire is plain msgpack with a 4-byte length', (t) => {
  const frame = encodeFrame({ id: 1, op: 'get', args: { key: 'a' } });
  t.is(frame.readUInt32BE(0), frame.length - 4);
  t.deepEqual(frame.subarray(4), pack({ id: 1, op: 'get', args: { key: 'a' } }));
});
