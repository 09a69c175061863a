import test from 'ava';
import { createServer } from 'node:net';
import { encodeFrame, FrameDecoder } from '../../src/rpc/framing.js';
import { once } from 'node:events';
import { ShoalError } from '../../src/errors.js';
import { RpcPool } from '../../src/rpc/client.js';
import { ShoalClient } from '../../src/rpc/shoal-client.js';
import type { RpcHandler } from '../../src/rpc/server.js';
import { CLUSTER, eventually, freePorts, memoryHandler, startServer } from './helpers.js';

/** A port with nothing listening on it (bound, then released). */
async function deadPort(): Promise<number> {
  return (await freePorts(1))[0];
}

function code(err: unknown): string | undefined {
  return err instanceof ShoalError ? err.code : undefined;
}

test('RpcPool: lazy connect, handshake, pipelined calls resolved by id', async (t) => {
  const mem = memoryHandler();
  const { server, addr } = await startServer(mem.handler);
  const pool = new RpcPool({ clusterName: CLUSTER, peer: 'n2', connectionsPerAddr: 2 });
  t.is(pool.stats().connections, 0);
  const puts = Array.from({ length: 50 }, (_, i) => pool.call(addr, 'put', { key: `k${i}`, value: Buffer.from(`v${i}`) }));
  await Promise.all(puts);
  const got = (await pool.call(addr, 'get', { key: 'k42' })) as { value: Buffer };
  t.is(got.value.toString(), 'v42');
  t.is(pool.stats().connections, 2, 'two connections, used round-robin');
  t.is(server.stats().connectionsTotal, 2);
  t.is(mem.contexts[0].peer, 'n2');
  const err = await t.throwsAsync(pool.call(addr, 'nope', {}));
  t.is(code(err), 'BAD_REQUEST');
  await pool.close();
  await server.close();
});

test('RpcPool: an unreachable address rejects UNAVAILABLE naming it', async (t) => {
  const port = await deadPort();
  const pool = new RpcPool({ clusterName: CLUSTER });
  const err = await t.throwsAsync(pool.call(`127.0.0.1:${port}`, 'get', { key: 'k' }));
  t.is(code(err), 'UNAVAILABLE');
  t.true(err!.message.includes(`127.0.0.1:${port}`));
  t.is(code(await t.throwsAsync(pool.call('no-port', 'get', {}))), 'CONFIG');
  await pool.close();
});

test('RpcPool: a handshake mismatch surfaces as BAD_HANDSHAKE', async (t) => {
  const { server, addr } = await startServer(memoryHandler().handler);
  const pool = new RpcPool({ clusterName: 'elsewhere' });
  const err = await t.throwsAsync(pool.call(addr, 'get', { key: 'k' }));
  t.is(code(err), 'BAD_HANDSHAKE');
  t.regex(err!.message, /cluster name mismatch/);
  await pool.close();
  await server.close();
});

test('RpcPool: a slow answer rejects TIMEOUT and a late answer is ignored', async (t) => {
  const handler: RpcHandler = (op) => new Promise((resolve) => setTimeout(() => resolve(op), op === 'slow' ? 300 : 0));
  const { server, addr } = await startServer(handler);
  const pool = new RpcPool({ clusterName: CLUSTER, connectionsPerAddr: 1 });
  const err = await t.throwsAsync(pool.call(addr, 'slow', {}, { timeoutMs: 50 }));
  t.is(code(err), 'TIMEOUT');
  t.is(pool.stats().timeouts, 1);
  await new Promise((r) => setTimeout(r, 350)); // the late answer arrives and is dropped
  t.is(await pool.call(addr, 'fast', {}), 'fast');
  t.is(pool.stats().connections, 1, 'the connection survived the timeout');
  await pool.close();
  await server.close();
});

test('RpcPool: in-flight calls on a dropped connection reject UNAVAILABLE; the next call reconnects', async (t) => {
  // A hand-written server: answers hello, drops the first connection at its first request, then serves.
  let connections = 0;
  const fake = createServer((socket) => {
    const nth = ++connections;
    const decoder = new FrameDecoder(1 << 20);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk) as { id: number; op: string }[]) {
        if (frame.op === 'hello') socket.write(encodeFrame({ id: frame.id, ok: true, result: { version: 1, cluster: CLUSTER, node: 'f' } }));
        else if (nth === 1) socket.destroy();
        else socket.write(encodeFrame({ id: frame.id, ok: true, result: 'served' }));
      }
    });
  });
  fake.listen(0, '127.0.0.1');
  await once(fake, 'listening');
  const addr = `127.0.0.1:${(fake.address() as { port: number }).port}`;
  const pool = new RpcPool({ clusterName: CLUSTER, connectionsPerAddr: 1 });
  const err = await t.throwsAsync(pool.call(addr, 'get', { key: 'k' }));
  t.is(code(err), 'UNAVAILABLE');
  t.true(err!.message.includes(addr));
  t.is(pool.stats().drops, 1);
  t.is(await pool.call(addr, 'get', { key: 'k' }), 'served');
  t.is(connections, 2);
  await pool.close();
  fake.close();
});

test('RpcPool: close() rejects in-flight calls with CLOSED and refuses new ones', async (t) => {
  const { server, addr } = await startServer(() => new Promise(() => {}));
  const pool = new RpcPool({ clusterName: CLUSTER });
  const pending = pool.call(addr, 'stuck', {});
  await eventually(() => server.stats().inFlight === 1);
  await pool.close();
  t.is(code(await t.throwsAsync(pending)), 'CLOSED');
  t.is(code(await t.throwsAsync(pool.call(addr, 'x', {}))), 'CLOSED');
  await server.close({ drainMs: 10 });
});

test('RpcPool: a request over frameBytesMax is refused locally', async (t) => {
  const { server, addr } = await startServer(memoryHandler().handler);
  const pool = new RpcPool({ clusterName: CLUSTER, frameBytesMax: 1000 });
  const err = await t.throwsAsync(pool.call(addr, 'put', { key: 'k', value: Buffer.alloc(2000) }));
  t.is(code(err), 'FRAME_TOO_LARGE');
  t.false('put' in server.stats().requests);
  await pool.close();
  await server.close();
});

test('ShoalClient: put/get/del with string and Buffer values, null for a missing key', async (t) => {
  const { server, addr } = await startServer(memoryHandler().handler);
  const client = new ShoalClient({ addresses: [addr], clusterName: CLUSTER });
  const { version } = await client.put('a', 'héllo');
  t.is(version.node, 'n1');
  const got = await client.get('a');
  t.is(got?.value.toString('utf8'), 'héllo');
  t.deepEqual(got?.version, version);
  await client.put('b', Buffer.from([0, 255]));
  t.deepEqual((await client.get('b'))?.value, Buffer.from([0, 255]));
  await client.del('a');
  t.is(await client.get('a'), null);
  t.is(code(await t.throwsAsync(client.put('x'.repeat(100), 'v'))), 'KEY_TOO_LARGE');
  await client.close();
  await server.close();
});

test('ShoalClient: tracks the highest ts seen and sends it as seenTs on writes', async (t) => {
  const seen: unknown[] = [];
  const mem = memoryHandler();
  const { server, addr } = await startServer(async (op, args, ctx) => {
    if (op === 'get') return { value: Buffer.from('x'), version: { ts: 5_000_000, node: 'n7' } };
    seen.push(args.seenTs);
    return mem.handler(op, args, ctx);
  });
  const client = new ShoalClient({ addresses: [addr], clusterName: CLUSTER });
  await client.put('k', 'v1');
  await client.get('k');
  t.is(client.highestSeenTs, 5_000_000);
  const { version } = await client.put('k', 'v2');
  t.true(version.ts > 5_000_000, 'the server advanced past seenTs');
  await client.del('k');
  t.deepEqual(seen, [undefined, 5_000_000, version.ts]);
  await client.close();
  await server.close();
});

test('ShoalClient: a failed write\'s version (error.version) is observed: the next write sends seenTs past it', async (t) => {
  // The server stamps a put at a clock 5 s ahead, reaches some replicas, and fails (found by the
  // simulator, seed 63): the error names that version. The client's next write must be stamped after it.
  const failedVersion = { ts: 9_000_000_000, node: 'n9' };
  const seen: unknown[] = [];
  const mem = memoryHandler();
  let failNext = 0;
  const { server, addr } = await startServer(async (op, args, ctx) => {
    if (op === 'put' || op === 'del') seen.push(args.seenTs);
    if (failNext > 0) {
      failNext -= 1;
      throw new ShoalError('UNAVAILABLE', 'only 2 of 3 replicas answered', { version: { ...failedVersion, ts: failedVersion.ts + failNext } });
    }
    return mem.handler(op, args, ctx);
  });
  t.teardown(() => server.close());
  const client = new ShoalClient({ addresses: [addr], clusterName: CLUSTER });
  t.teardown(() => client.close());
  const first = await client.put('k', 'v1');
  failNext = 1;
  const err = await t.throwsAsync(client.put('k', 'v2'));
  t.is(code(err), 'UNAVAILABLE');
  t.deepEqual((err as ShoalError).details?.version, failedVersion, 'the error keeps the version it carried');
  t.is(client.highestSeenTs, failedVersion.ts);
  const { version } = await client.put('k', 'v3');
  t.true(version.ts > failedVersion.ts, 'the acknowledged write is stamped after the failed one');
  // A failed del counts the same; an error without a version leaves seenTs as it was.
  failNext = 2;
  await t.throwsAsync(client.del('k')); // carries failedVersion.ts + 1 (below the v3 stamp)
  await t.throwsAsync(client.del('k')); // carries failedVersion.ts (below too)
  t.is(client.highestSeenTs, version.ts, 'an older version in an error does not lower seenTs');
  await t.throwsAsync(client.put('x'.repeat(100), 'v'));
  t.is(client.highestSeenTs, version.ts);
  t.deepEqual(seen, [undefined, first.version.ts, failedVersion.ts, version.ts, version.ts, version.ts]);
});

test('ShoalClient: fails over to the next address when one is unreachable', async (t) => {
  const port = await deadPort();
  const { server, addr } = await startServer(memoryHandler().handler);
  const client = new ShoalClient({ addresses: [`127.0.0.1:${port}`, addr], clusterName: CLUSTER });
  await client.put('k', 'v');
  t.is((await client.get('k'))?.value.toString(), 'v');
  t.deepEqual(await client.health(), { ok: true, node: 'n1' });
  await server.close();
  const err = await t.throwsAsync(client.get('k'));
  t.is(code(err), 'UNAVAILABLE');
  t.true(err!.message.includes(addr));
  await client.close();
});

test('ShoalClient: a server error is returned as is, not failed over', async (t) => {
  const calls: string[] = [];
  const a = await startServer(async () => {
    calls.push('a');
    throw new ShoalError('UNAVAILABLE', 'not enough replicas');
  });
  const b = await startServer(async () => {
    calls.push('b');
    return null;
  });
  const client = new ShoalClient({ addresses: [a.addr, b.addr], clusterName: CLUSTER });
  const err = await t.throwsAsync(client.get('k'));
  t.is(code(err), 'UNAVAILABLE');
  t.is(err!.message, 'not enough replicas');
  t.deepEqual(calls, ['a']);
  await client.close();
  await Promise.all([a.server.close(), b.server.close()]);
});

test('ShoalClient: a node that answers CLOSED (starting or stopping) is failed over; a closed client refuses', async (t) => {
  const calls: string[] = [];
  const a = await startServer(async () => {
    calls.push('a');
    throw new ShoalError('CLOSED', 'node n1 is starting, not serving yet; try another node');
  });
  const b = await startServer(async () => {
    calls.push('b');
    return null;
  });
  const client = new ShoalClient({ addresses: [a.addr, b.addr], clusterName: CLUSTER });
  t.is(await client.get('k'), null);
  t.deepEqual(calls, ['a', 'b']);
  const only = new ShoalClient({ addresses: [a.addr], clusterName: CLUSTER });
  const err = await t.throwsAsync(only.get('k'));
  t.is(code(err), 'UNAVAILABLE');
  t.regex(err!.message, /node n1 is starting/);
  await only.close();
  await client.close();
  t.is(code(await t.throwsAsync(client.get('k'))), 'CLOSED');
  await Promise.all([a.server.close(), b.server.close()]);
});
