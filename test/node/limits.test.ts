/**
 * Every limit a peer can hit, through a running node configured with small limits: this proves the
 * config reaches the layer that enforces it, and that going past a limit is a clear refusal that
 * leaves the node serving. (The layers' own tests cover the mechanics: test/rpc, test/membership.)
 */
import test from 'ava';
import dgram from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { encodeFrame } from '../../src/rpc/framing.js';
import { startNode, splitAddress, type Node } from '../../src/node/node.js';
import type { ShoalError } from '../../src/errors.js';
import type { MembershipStats } from '../../src/membership/membership.js';
import type { RpcServerStats } from '../../src/rpc/server.js';
import { CLUSTER, RawPeer, frameHeader } from '../rpc/helpers.js';
import { eventually, tempDir, testClient, testConfig } from './helpers.js';

const LIMITS = {
  'cluster.name': CLUSTER,
  'rpc.connectionsMax': '6',
  'rpc.inFlightPerConnectionMax': '4',
  'rpc.handshakeTimeoutMs': '300',
  'rpc.idleTimeoutMs': '600',
  'rpc.frameBytesMax': String(64 * 1024),
  'storage.keyBytesMax': '16',
  'storage.valueBytesMax': '1024',
  'storage.fsync': 'always',
  'membership.datagramBytesMax': '600',
  'membership.syncMembersMax': '4',
  'membership.syncBytesMax': '4096',
  'membership.syncConnectionsMax': '2',
  'membership.syncTimeoutMs': '500',
};

let node: Node;
let stopNode: () => Promise<void>;

test.before(async () => {
  const tmp = tempDir('shoal-limits-');
  node = await startNode(testConfig(join(tmp.dir, 'n1'), { 'node.id': 'n1', ...LIMITS }), { processMetrics: false });
  stopNode = async () => {
    await node.stop();
    tmp.remove();
  };
});
test.after.always(() => stopNode?.());

const rpcPort = () => splitAddress(node.addresses.rpc).port;
const gossip = () => splitAddress(node.addresses.gossip);
const stats = () => node.stats() as unknown as { rpc: RpcServerStats; membership: MembershipStats };

interface Reply {
  id: number | null;
  ok: boolean;
  error?: { code: string; message: string };
}

test.serial('rpc.connectionsMax: the connection over the limit gets TOO_MANY_REQUESTS and is closed; others are served', async (t) => {
  const before = stats().rpc.connectionsRejected;
  const open: RawPeer[] = [];
  t.teardown(async () => {
    open.forEach((p) => p.destroy());
    await eventually(3000, async () => stats().rpc.connections === 0); // free the slots for the next tests
  });
  for (let i = 0; i < 6; i++) open.push(await RawPeer.open(rpcPort()));
  const extra = await RawPeer.open(rpcPort(), false);
  open.push(extra);
  const reply = (await extra.next()) as Reply;
  t.is(reply.error?.code, 'TOO_MANY_REQUESTS');
  t.regex(reply.error?.message ?? '', /connection limit of 6/);
  t.true(await extra.closedByServer());
  t.is(stats().rpc.connectionsRejected, before + 1);
  open[0].send({ id: 1, op: 'health', args: {} });
  t.true(((await open[0].next()) as Reply).ok, 'connections within the limit are served');
});

test.serial('rpc.inFlightPerConnectionMax: pipelined requests beyond the limit get TOO_MANY_REQUESTS, the rest are served', async (t) => {
  const peer = await RawPeer.open(rpcPort());
  t.teardown(() => peer.destroy());
  // One chunk of ten puts: each waits for its fdatasync, so all ten are in flight at once.
  const frames = Array.from({ length: 10 }, (_, i) => encodeFrame({ id: i + 1, op: 'put', args: { key: `f${i}`, value: Buffer.from('v') } }));
  peer.sendBytes(Buffer.concat(frames));
  const replies = (await peer.nextN(10)) as Reply[];
  const refused = replies.filter((r) => r.error?.code === 'TOO_MANY_REQUESTS').map((r) => r.id);
  t.deepEqual(refused.sort((a, b) => (a ?? 0) - (b ?? 0)), [5, 6, 7, 8, 9, 10]);
  t.is(replies.filter((r) => r.ok).length, 4);
});

test.serial('rpc.handshakeTimeoutMs: silent, half-hello and trickling clients are all dropped after the bound', async (t) => {
  const before = stats().rpc.handshakeTimeouts;
  const silent = await RawPeer.open(rpcPort(), false);
  const half = await RawPeer.open(rpcPort(), false);
  const hello = encodeFrame({ id: 0, op: 'hello', args: { version: 1, cluster: CLUSTER } });
  half.sendBytes(hello.subarray(0, 6));
  // One byte every 50 ms: traffic never stops, but the hello never completes.
  const trickle = await RawPeer.open(rpcPort(), false);
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < hello.length - 1 && !trickle.closed) trickle.sendBytes(hello.subarray(sent, ++sent));
  }, 50);
  t.teardown(() => clearInterval(timer));
  for (const peer of [silent, half, trickle]) t.true(await peer.closedByServer(3000));
  t.is(stats().rpc.handshakeTimeouts, before + 3);
});

test.serial('rpc.idleTimeoutMs: a client that sends half a request and stalls is dropped', async (t) => {
  const before = stats().rpc.idleClosed;
  const peer = await RawPeer.open(rpcPort());
  const frame = encodeFrame({ id: 1, op: 'get', args: { key: 'k' } });
  peer.sendBytes(frame.subarray(0, frame.length - 3));
  t.true(await peer.closedByServer(3000));
  t.is(stats().rpc.idleClosed, before + 1);
});

test.serial('rpc.frameBytesMax: a frame header over the limit is refused with FRAME_TOO_LARGE before the body arrives', async (t) => {
  const peer = await RawPeer.open(rpcPort());
  t.teardown(() => peer.destroy());
  peer.sendBytes(frameHeader(64 * 1024 + 1));
  const reply = (await peer.next()) as Reply;
  t.is(reply.error?.code, 'FRAME_TOO_LARGE');
  t.true(await peer.closedByServer());
});

test.serial('storage.keyBytesMax / valueBytesMax: KEY_TOO_LARGE / VALUE_TOO_LARGE through the cluster path, nothing stored', async (t) => {
  const client = testClient(node.addresses.rpc, CLUSTER);
  t.teardown(() => client.close());
  const key = (await t.throwsAsync(client.put('k'.repeat(17), 'v'))) as ShoalError;
  t.is(key.code, 'KEY_TOO_LARGE');
  t.regex(key.message, /over 16 bytes/);
  const value = (await t.throwsAsync(client.put('big', Buffer.alloc(1025)))) as ShoalError;
  t.is(value.code, 'VALUE_TOO_LARGE');
  t.regex(value.message, /1024/);
  t.is(await client.get('big'), null);
  await client.put('k'.repeat(16), Buffer.alloc(1024));
  t.is((await client.get('k'.repeat(16)))?.value.length, 1024, 'exactly at the limits is fine');
});

test.serial('membership.datagramBytesMax: an oversized datagram is dropped and counted', async (t) => {
  const before = stats().membership.dropped['too-large'];
  const socket = dgram.createSocket('udp4');
  t.teardown(() => socket.close());
  const { host, port } = gossip();
  await new Promise<void>((resolve, reject) => socket.send(Buffer.alloc(601, 0x80), port, host, (err) => (err ? reject(err) : resolve())));
  t.true(await eventually(3000, async () => stats().membership.dropped['too-large'] === before + 1));
  t.is(node.stats().state, 'serving');
});

/** A TCP connection to the gossip port's push-pull listener. */
async function syncSocket(): Promise<Socket & { closedAt: Promise<void>; received: Buffer[] }> {
  const { host, port } = gossip();
  const socket = connect({ host, port });
  await once(socket, 'connect');
  const received: Buffer[] = [];
  socket.on('data', (b: Buffer) => received.push(b));
  socket.on('error', () => {});
  socket.on('end', () => socket.end()); // the listener answered: close our side too, freeing its slot
  return Object.assign(socket, { received, closedAt: new Promise<void>((resolve) => socket.once('close', () => resolve())) });
}

function fakeMembers(n: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => ({ id: `fake${i}`, a: `127.0.0.1:${40000 + i}`, r: `127.0.0.1:${41000 + i}`, s: 'alive', i: 1 }));
}

test.serial('membership.syncConnectionsMax and syncTimeoutMs: extra push-pull connections are refused, silent ones closed', async (t) => {
  const before = { ...stats().membership };
  const silent = [await syncSocket(), await syncSocket()];
  t.teardown(() => silent.forEach((s) => s.destroy()));
  await new Promise((r) => setTimeout(r, 50)); // let the listener count them
  const extra = await syncSocket();
  await extra.closedAt;
  t.is(stats().membership.syncRejected, before.syncRejected + 1);
  await Promise.all(silent.map((s) => s.closedAt)); // closed by syncTimeoutMs (500 ms)
  t.is(stats().membership.syncErrors, before.syncErrors + 2);
});

test.serial('membership.syncConnectionsMax: a finished exchange frees its slot, so exchanges in sequence never run out', async (t) => {
  const before = stats().membership.syncRejected;
  for (let i = 0; i < 5; i++) {
    const socket = await syncSocket();
    socket.write(encodeFrame({ v: 1, f: 'fake0', j: false, m: [] }));
    await socket.closedAt;
    t.true(Buffer.concat(socket.received).length > 0, `exchange ${i + 1} is answered`);
  }
  t.is(stats().membership.syncRejected, before);
});

test.serial('membership.syncMembersMax: a push-pull state with too many members is refused, counted and not merged', async (t) => {
  const before = stats().membership.syncErrors;
  const socket = await syncSocket();
  t.teardown(() => socket.destroy());
  socket.write(encodeFrame({ v: 1, f: 'fake0', j: false, m: fakeMembers(5) }));
  await socket.closedAt;
  t.deepEqual(socket.received, [], 'no state is sent back');
  t.is(stats().membership.syncErrors, before + 1);
  t.false(((await testClient(node.addresses.rpc, CLUSTER).members()) as Array<{ id: string }>).some((m) => m.id.startsWith('fake')));
  // A state within the limit is answered (an empty one, so no fake member joins the node's view).
  const ok = await syncSocket();
  t.teardown(() => ok.destroy());
  ok.write(encodeFrame({ v: 1, f: 'fake0', j: false, m: [] }));
  await ok.closedAt;
  t.true(Buffer.concat(ok.received).length > 0);
});

test.serial('membership.syncBytesMax: a push-pull frame over the limit is refused from its header and counted', async (t) => {
  const before = stats().membership.syncErrors;
  const socket = await syncSocket();
  t.teardown(() => socket.destroy());
  socket.write(frameHeader(4097));
  await socket.closedAt;
  t.deepEqual(socket.received, []);
  t.is(stats().membership.syncErrors, before + 1);
});

test.serial('metrics endpoint: connections beyond its 64 are closed at once; the others are answered', async (t) => {
  const { host, port } = splitAddress(node.addresses.metrics as string);
  const open: Socket[] = [];
  t.teardown(() => open.forEach((s) => s.destroy()));
  for (let i = 0; i < 64; i++) {
    const socket = connect({ host, port });
    socket.on('error', () => {});
    await once(socket, 'connect');
    open.push(socket);
  }
  await new Promise((r) => setTimeout(r, 50)); // let the server count them
  const extra = connect({ host, port });
  extra.on('error', () => {});
  open.push(extra);
  const closed = new Promise<void>((resolve) => extra.once('close', () => resolve()));
  extra.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  let answered = '';
  extra.on('data', (b: Buffer) => (answered += b.toString()));
  const wasClosed = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
  t.true(wasClosed, 'the connection over the limit is closed');
  t.is(answered, '', 'and gets no answer');
  open[0].write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const [first] = (await once(open[0], 'data')) as [Buffer];
  t.regex(first.toString(), /^HTTP\/1\.1 200/);
});
