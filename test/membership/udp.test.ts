import test from 'ava';
import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Membership } from '../../src/membership/membership.js';
import type { MembershipEvent } from '../../src/membership/types.js';
import { loopbackHost, waitFor } from './sockets.js';

const config = {
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  gossipIntervalMs: 50,
  pushPullIntervalMs: 2000,
  reconnectIntervalMs: 1000,
  joinRetryInitialMs: 100,
  joinRetryMaxMs: 1000,
};

test('six members over real UDP: join via one seed, crash, restart, leave', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-membership-'));
  const nodes = new Map<string, Membership>();
  const hosts: string[] = [];
  const events: MembershipEvent[] = [];
  const start = async (i: number, seeds: string[]): Promise<Membership> => {
    const id = `n${i}`;
    const m = await Membership.start({
      id, bindHost: hosts[i], gossipPort: 0, rpc: `${hosts[i]}:${9000 + i}`, zone: i % 2 === 0 ? 'a' : 'b',
      seeds, dataDir: path.join(root, id), config,
    });
    m.on('event', (e) => events.push(e));
    nodes.set(id, m);
    return m;
  };
  const stateOf = (observer: string, subject: string): string | undefined =>
    nodes.get(observer)?.members().find((m) => m.id === subject)?.state;
  const others = (except: string[]): string[] => [...nodes.keys()].filter((id) => !except.includes(id));
  try {
    for (let i = 1; i <= 6; i += 1) hosts[i] = await loopbackHost(20, i);
    const seed = await start(1, []);
    for (let i = 2; i <= 6; i += 1) await start(i, [seed.self().gossip]);
    const ids = [...nodes.keys()];
    await waitFor('everyone sees six alive members', () =>
      ids.every((o) => ids.every((s) => stateOf(o, s) === 'alive')));
    await waitFor('equal checksums', () => new Set(ids.map((id) => nodes.get(id)?.checksum())).size === 1);
    t.is(nodes.get('n3')?.members().find((m) => m.id === 'n4')?.zone, 'a');

    // crash n6: stop without leaving
    const n6 = nodes.get('n6') as Membership;
    const oldIncarnation = n6.self().incarnation;
    await n6.stop();
    await waitFor('n6 declared dead everywhere', () => others(['n6']).every((o) => stateOf(o, 'n6') === 'dead'));
    t.true(events.some((e) => e.type === 'suspect' && e.member.id === 'n6'));

    // restart n6 with the same data dir: a higher incarnation, alive again everywhere
    const again = await start(6, [seed.self().gossip]);
    t.true(again.self().incarnation > oldIncarnation);
    await waitFor('n6 alive again everywhere', () => others(['n6']).every((o) => stateOf(o, 'n6') === 'alive'));
    t.true(nodes.get('n2')?.members().find((m) => m.id === 'n6')?.incarnation === again.self().incarnation);

    // announced leave of n5
    const n5 = nodes.get('n5') as Membership;
    await n5.leave({ timeoutMs: 3000 });
    await n5.stop();
    await waitFor('n5 left everywhere', () => others(['n5']).every((o) => stateOf(o, 'n5') === 'left'));
    t.false(events.some((e) => e.type === 'dead' && e.member.id === 'n5'));
    t.is(nodes.get('n1')?.stats().dropped.malformed, 0);

    // garbage on the gossip port is counted and dropped
    const junk = dgram.createSocket('udp4');
    const { host, port } = { host: hosts[1], port: Number(seed.self().gossip.split(':')[1]) };
    await new Promise<void>((resolve) => junk.send(Buffer.from('not a packet'), port, host, () => resolve()));
    junk.close();
    await waitFor('garbage counted', () => (seed.stats().dropped.malformed ?? 0) >= 1);
    t.is(stateOf('n1', 'n2'), 'alive');
  } finally {
    await Promise.all([...nodes.values()].map((m) => m.stop()));
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('the incarnation survives a restart in the data dir', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-inc-'));
  try {
    const a = await Membership.start({ id: 'x', bindHost: '127.0.0.1', gossipPort: 0, rpc: '127.0.0.1:1', seeds: [], dataDir: dir, config });
    const first = a.self().incarnation;
    await a.stop();
    const b = await Membership.start({ id: 'x', bindHost: '127.0.0.1', gossipPort: 0, rpc: '127.0.0.1:1', seeds: [], dataDir: dir, config });
    t.is(b.self().incarnation, first + 1);
    t.false(b.joining);
    // the stream (TCP) side answers a fallback ping for us, and refuses one meant for someone else
    t.deepEqual(b.handleSync({ v: 1, t: 'ping', s: 5, n: 'x' }), { v: 1, t: 'ack', s: 5 });
    t.is((t.throws(() => b.handleSync({ v: 1, t: 'ping', s: 5, n: 'y' })) as { code?: string }).code, 'BAD_REQUEST');
    t.is((t.throws(() => b.handleSync({ v: 9, f: 'q', j: false, m: [] })) as { code?: string }).code, 'BAD_REQUEST');
    await b.stop();
    await fs.writeFile(path.join(dir, 'membership.json'), '{oops');
    const err = await t.throwsAsync(Membership.start({ id: 'x', bindHost: '127.0.0.1', gossipPort: 0, rpc: '127.0.0.1:1', seeds: [], dataDir: dir, config }));
    t.is((err as { code?: string }).code, 'CORRUPT');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
