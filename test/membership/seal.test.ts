/**
 * Gossip encryption in membership's transports: datagrams and push-pull frames sealed with the keyring,
 * what does not open dropped and counted, the datagram budget kept with the envelope included.
 */
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pack } from '../../src/codec.js';
import { ShoalError } from '../../src/errors.js';
import type { LogFields, Logger } from '../../src/log.js';
import { Membership } from '../../src/membership/membership.js';
import { type AliveMessage, type Packet, PACKET_OVERHEAD_BYTES, decodePacket, encodePacket, messageBytes } from '../../src/membership/messages.js';
import { GossipSeal } from '../../src/membership/seal.js';
import { SyncListener, TcpSyncTransport } from '../../src/membership/sync.js';
import { ENVELOPE_OVERHEAD_BYTES, Keyring, generateKey } from '../../src/security/keyring.js';
import { waitFor } from './sockets.js';

const CLUSTER = 'prod';
const limits = { syncBytesMax: 1 << 20, syncTimeoutMs: 5000, syncConnectionsMax: 4 };
/** Slow probes: these tests drive traffic themselves. */
const quiet = { probeIntervalMs: 10_000, probeTimeoutMs: 500, gossipIntervalMs: 20, pushPullIntervalMs: 60_000, reconnectIntervalMs: 60_000 };

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-seal-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A UDP socket on loopback that records what it receives. */
async function peerSocket(t: ExecutionContext): Promise<{ socket: dgram.Socket; port: number; received: Buffer[] }> {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (bytes) => received.push(bytes));
  await new Promise<void>((resolve) => socket.bind({ address: '127.0.0.1', port: 0 }, () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { socket, port: socket.address().port, received };
}

function send(socket: dgram.Socket, bytes: Buffer, addr: string): Promise<void> {
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  return new Promise((resolve, reject) => socket.send(bytes, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

/** A logger that keeps every line. */
function recordingLogger(): { logger: Logger; lines: Array<{ message: string; fields?: LogFields }> } {
  const lines: Array<{ message: string; fields?: LogFields }> = [];
  const record = (message: string, fields?: LogFields) => void lines.push({ message, fields });
  const logger: Logger = { debug: record, info: record, warn: record, error: record, child: () => logger };
  return { logger, lines };
}

test('datagrams that do not open are dropped before the core and counted by reason; a sealed ping gets a sealed ack', async (t) => {
  const dir = await tempDir(t);
  const key = generateKey();
  const { logger, lines } = recordingLogger();
  const m = await Membership.start({
    id: 'a', bindHost: '127.0.0.1', gossipPort: 0, rpc: '127.0.0.1:9', seeds: [], dataDir: dir, config: quiet, logger,
    keyring: new Keyring([key]), clusterName: CLUSTER,
  });
  t.teardown(() => m.stop());
  const peer = await peerSocket(t);
  const ping = (seq: number) => encodePacket({ v: 1, m: [{ t: 'ping', s: seq, n: 'a' }] });
  const ours = new Keyring([key]);

  const foreignKey = new Keyring([generateKey()]).seal(ping(1), CLUSTER);
  const foreignCluster = ours.seal(ping(2), 'staging');
  const tampered = ours.seal(ping(3), CLUSTER);
  tampered[tampered.length - 20] ^= 0x01;
  const plaintext = encodePacket({ v: 1, m: [{ t: 'ping', s: 4, n: 'a' }, { t: 'alive', id: 'x', i: 1, a: '127.0.0.1:1', r: '127.0.0.1:2' }] });
  const truncated = ours.seal(ping(5), CLUSTER).subarray(0, ENVELOPE_OVERHEAD_BYTES - 1);
  const oversized = ours.seal(Buffer.alloc(1400), CLUSTER);
  for (const bytes of [foreignKey, foreignCluster, tampered, plaintext, truncated, oversized]) await send(peer.socket, bytes, m.self().gossip);
  await send(peer.socket, ours.seal(ping(6), CLUSTER), m.self().gossip);

  await waitFor('the ack of the sealed ping', () => peer.received.length > 0);
  const reply = ours.open(peer.received[0], CLUSTER);
  t.truthy(reply, 'the ack is sealed with the cluster key and name');
  const decoded = decodePacket(reply as Buffer, { datagramBytesMax: 1400, compoundMessagesMax: 255, metaBytesMax: 512 });
  t.true(decoded.ok && decoded.value.m.some((msg) => msg.t === 'ack' && msg.s === 6), 'only the good ping is answered');
  t.false(decoded.ok && decoded.value.m.some((msg) => msg.t === 'ack' && msg.s !== 6));
  t.is(ours.open(peer.received[0], 'staging'), null);

  const stats = m.stats();
  t.true(stats.encrypted);
  t.deepEqual(stats.decryptFailures.udp, { short: 1, version: 1, 'unknown-key': 1, auth: 2, 'too-large': 1, unsealed: 0 });
  t.is(stats.packetsReceived, 1, 'the core saw only the datagram that opened');
  t.is(stats.dropped.malformed + stats.dropped.version, 0);
  const warned = lines.filter((l) => l.message.includes('did not open'));
  t.true(warned.length >= 1 && warned.length <= 5, 'logged, at a bounded rate');
  t.true(lines.some((l) => l.message.includes('oversized')));
});

test('sealed datagrams never exceed datagramBytesMax: the core packs into the budget minus the envelope', async (t) => {
  const dir = await tempDir(t);
  const key = generateKey();
  const ours = new Keyring([key]);
  const peer = await peerSocket(t);
  const peerAddr = `127.0.0.1:${peer.port}`;
  // Equal-sized alive messages for 120 members that all live at the peer socket: A gossips them there.
  const alives: AliveMessage[] = [];
  for (let i = 0; i < 120; i += 1) alives.push({ t: 'alive', id: `f${String(i).padStart(3, '0')}`, i: 1, a: peerAddr, r: '127.0.0.1:7000' });
  const size = messageBytes(alives[0]);
  t.true(alives.every((a) => messageBytes(a) === size));
  // A budget that equal-sized messages fill exactly: without the envelope subtracted, a full
  // gossip datagram would be the budget plus 33 bytes.
  const datagramBytesMax = PACKET_OVERHEAD_BYTES + size * Math.floor((1000 - PACKET_OVERHEAD_BYTES) / size);
  const m = await Membership.start({
    id: 'a', bindHost: '127.0.0.1', gossipPort: 0, rpc: '127.0.0.1:9', seeds: [], dataDir: dir,
    config: { ...quiet, datagramBytesMax, retransmitMult: 8 }, keyring: new Keyring([key]), clusterName: CLUSTER,
  });
  t.teardown(() => m.stop());
  for (let i = 0; i < alives.length; i += 10) {
    await send(peer.socket, ours.seal(encodePacket({ v: 1, m: alives.slice(i, i + 10) }), CLUSTER), m.self().gossip);
  }
  await waitFor('A learned the 120 members', () => m.members().length === 121);
  await waitFor('gossip rounds reached the peer', () => peer.received.length >= 10);

  const sizes = peer.received.map((b) => b.length);
  t.true(Math.max(...sizes) <= datagramBytesMax, `largest ${Math.max(...sizes)} of ${datagramBytesMax}`);
  const plains = peer.received.map((b) => ours.open(b, CLUSTER));
  t.true(plains.every((p) => p !== null), 'every datagram opens');
  // The budget is used, not just respected: a datagram holds as many messages as fit.
  const fullest = Math.max(...plains.map((p) => (p as Buffer).length));
  t.true(fullest > datagramBytesMax - ENVELOPE_OVERHEAD_BYTES - size, `fullest plaintext ${fullest}`);
  t.is(m.stats().sendErrors, 0, 'nothing was over the budget and held back');
});

test('random datagrams never reach the core of an encrypting member; each is counted', async (t) => {
  const dir = await tempDir(t);
  const m = await Membership.start({
    id: 'a', bindHost: '127.0.0.1', gossipPort: 0, rpc: '127.0.0.1:9', seeds: [], dataDir: dir, config: quiet,
    keyring: new Keyring([generateKey()]), clusterName: CLUSTER,
  });
  t.teardown(() => m.stop());
  const peer = await peerSocket(t);
  const samples = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 1500 }), { numRuns: 300, seed: 7 });
  const total = () => Object.values(m.stats().decryptFailures.udp).reduce((a, b) => a + b, 0);
  // In batches, so that the receive buffer never overflows and every datagram is accounted for.
  for (let i = 0; i < samples.length; i += 25) {
    for (const bytes of samples.slice(i, i + 25)) await send(peer.socket, Buffer.from(bytes), m.self().gossip);
    await waitFor(`datagrams up to ${i + 25} counted (${total()} so far)`, () => total() === Math.min(samples.length, i + 25));
  }
  t.is(m.stats().packetsReceived, 0);
  t.deepEqual(m.members().map((x) => x.id), ['a']);
  t.is(peer.received.length, 0, 'nothing is answered');
});

test('the TCP fallback ping is sealed too: answered with the key, refused without it', async (t) => {
  const dir = await tempDir(t);
  const key = generateKey();
  const m = await Membership.start({
    id: 'a', bindHost: '127.0.0.1', gossipPort: 0, rpc: '127.0.0.1:9', seeds: [], dataDir: dir, config: quiet,
    keyring: new Keyring([key]), clusterName: CLUSTER,
  });
  t.teardown(() => m.stop());
  const ping = { v: 1, t: 'ping', s: 5, n: 'a' };
  t.deepEqual(await new TcpSyncTransport(limits, new GossipSeal(new Keyring([key]), CLUSTER)).request(m.self().gossip, ping), { v: 1, t: 'ack', s: 5 });
  const err = await t.throwsAsync(new TcpSyncTransport(limits, new GossipSeal(new Keyring([generateKey()]), CLUSTER)).request(m.self().gossip, ping));
  t.regex(err?.message ?? '', /could not open what we sent/);
  t.is(m.stats().decryptFailures.tcp['unknown-key'], 1);
});

test('a keyring needs a budget that still fits the core minimum after the envelope', async (t) => {
  const dir = await tempDir(t);
  const err = await t.throwsAsync(
    Membership.start({
      id: 'a', bindHost: '127.0.0.1', gossipPort: 0, rpc: '127.0.0.1:9', seeds: [], dataDir: dir,
      config: { datagramBytesMax: 530 }, keyring: new Keyring([generateKey()]), clusterName: CLUSTER,
    }),
  );
  t.is((err as ShoalError).code, 'CONFIG');
  t.regex(err?.message ?? '', /at least 545 with gossip encryption/);
});

/** A listener answering `{ got: state }`, sealed with `seal` (or not), on a free loopback port. */
async function listener(t: ExecutionContext, seal: GossipSeal | null): Promise<{ addr: string; errors: ShoalError[] }> {
  const errors: ShoalError[] = [];
  const l = new SyncListener(limits, (state) => ({ got: state }), (err) => errors.push(err), seal);
  const port = await l.listen('127.0.0.1', 0);
  t.teardown(() => l.close());
  return { addr: `127.0.0.1:${port}`, errors };
}

test('push-pull frames are sealed both ways; the same key and cluster name exchange state', async (t) => {
  const key = generateKey();
  const server = new GossipSeal(new Keyring([key]), CLUSTER);
  const { addr, errors } = await listener(t, server);
  const client = new GossipSeal(new Keyring([key]), CLUSTER);
  const reply = await new TcpSyncTransport(limits, client).request(addr, { v: 1, hello: 'x' });
  t.deepEqual(reply, { got: { v: 1, hello: 'x' } });
  t.is(errors.length, 0);
  t.is(server.keyring.stats().opened, 1);
  t.is(client.keyring.stats().opened, 1);
});

test('push-pull with a wrong key, another cluster, plaintext or no key is refused with a clear error, counted', async (t) => {
  const key = generateKey();
  const server = new GossipSeal(new Keyring([key]), CLUSTER);
  const { addr, errors } = await listener(t, server);

  const wrongKey = await t.throwsAsync(new TcpSyncTransport(limits, new GossipSeal(new Keyring([generateKey()]), CLUSTER)).request(addr, { v: 1 }));
  t.is((wrongKey as ShoalError).code, 'BAD_HANDSHAKE');
  t.is(wrongKey?.message, `push-pull: ${addr} could not open what we sent (wrong key or cluster name?)`);
  const otherCluster = await t.throwsAsync(new TcpSyncTransport(limits, new GossipSeal(new Keyring([key]), 'staging')).request(addr, { v: 1 }));
  t.regex(otherCluster?.message ?? '', /could not open what we sent/);
  const plain = await t.throwsAsync(new TcpSyncTransport(limits).request(addr, { v: 1 }));
  t.regex(plain?.message ?? '', /encrypts gossip and this node has no key/);
  t.deepEqual(server.drops().tcp, { short: 0, version: 0, 'unknown-key': 1, auth: 1, 'too-large': 0, unsealed: 1 });
  t.is(errors.length, 3);
  t.true(errors.every((e) => e.code === 'BAD_HANDSHAKE'));

  // An encrypting node talking to a node without a key.
  const open = await listener(t, null);
  const noKey = await t.throwsAsync(new TcpSyncTransport(limits, new GossipSeal(new Keyring([key]), CLUSTER)).request(open.addr, { v: 1 }));
  t.regex(noKey?.message ?? '', /has no gossip key but this node encrypts gossip/);
  t.is(open.errors.length, 1);
});

test('a tampered push-pull answer is not accepted', async (t) => {
  const key = generateKey();
  // A fake listener that answers with a sealed frame and one bit flipped.
  const net = await import('node:net');
  const ring = new Keyring([key]);
  const server = net.createServer((socket) => {
    socket.once('data', () => {
      const sealed = ring.seal(pack({ v: 1, f: 'x', j: false, m: [] }), CLUSTER);
      sealed[10] ^= 0x80;
      const body = pack(sealed);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      socket.end(Buffer.concat([head, body]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const client = new GossipSeal(new Keyring([key]), CLUSTER);
  const err = await t.throwsAsync(new TcpSyncTransport(limits, client).request(`127.0.0.1:${(server.address() as { port: number }).port}`, { v: 1 }));
  t.regex(err?.message ?? '', /could not be opened \(auth: wrong key or cluster name\?\)/);
  t.is(client.drops().tcp.auth, 1);
});

test('an unsealed membership cannot be fooled into accepting a sealed packet as state', (t) => {
  const sealed = new Keyring([generateKey()]).seal(encodePacket({ v: 1, m: [{ t: 'ping', s: 1, n: 'a' }] } satisfies Packet), CLUSTER);
  const decoded = decodePacket(sealed, { datagramBytesMax: 1400, compoundMessagesMax: 255, metaBytesMax: 512 });
  t.false(decoded.ok, 'ciphertext is not a packet');
});
