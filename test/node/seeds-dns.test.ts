/**
 * Seeds from DNS with real nodes and a real DNS server: Debian's dnsmasq on a loopback port
 * (test/membership/dnsmasq.ts). Each node has its own 127.0.77.x address and the same gossip port, as
 * machines would. Skipped, with a message, where dnsmasq is not installed.
 */
import test from 'ava';
import { join } from 'node:path';
import { startNode, type Node } from '../../src/node/node.js';
import { Dnsmasq, HAVE_DNSMASQ, freeUdpPort } from '../membership/dnsmasq.js';
import { eventually, tempDir, testConfig } from './helpers.js';

if (!HAVE_DNSMASQ) console.log('seeds-dns.test.ts: dnsmasq is not installed (apt-get install dnsmasq): skipping the DNS seed tests');
const maybe = HAVE_DNSMASQ ? test : test.skip;

const FAST = {
  'membership.probeIntervalMs': '200', 'membership.probeTimeoutMs': '100', 'membership.gossipIntervalMs': '50',
  'membership.joinRetryInitialMs': '200', 'membership.joinRetryMaxMs': '400', 'cluster.ringSettleMs': '50',
  'membership.seedResolveTimeoutMs': '1000',
};
const WAIT_MS = 20_000;

interface Ctx {
  dir: string;
  nodes: Node[];
  dns: Dnsmasq | null;
}

function setup(t: import('ava').ExecutionContext): Ctx {
  const tmp = tempDir('shoal-seeds-dns-');
  const ctx: Ctx = { dir: tmp.dir, nodes: [], dns: null };
  t.teardown(async () => {
    await Promise.all(ctx.nodes.map((n) => n.stop().catch(() => undefined)));
    await ctx.dns?.stop();
    tmp.remove();
  });
  return ctx;
}

async function start(ctx: Ctx, id: string, gossip: string, set: Record<string, string>): Promise<Node> {
  const host = gossip.slice(0, gossip.lastIndexOf(':'));
  const config = testConfig(join(ctx.dir, id), {
    'node.id': id, 'node.gossip': gossip, 'node.rpc': `${host}:0`, 'node.metrics': `${host}:0`,
    'membership.dnsServers': ctx.dns?.address ?? '', ...FAST, ...set,
  });
  const node = await startNode(config, { processMetrics: false });
  ctx.nodes.push(node);
  return node;
}

function membership(node: Node): { members: Record<string, number>; joining: boolean; seedAddresses: string[]; seedResolutions: number } {
  return node.stats().membership as never;
}

/** Every node sees exactly `n` alive members. */
async function allSee(nodes: Node[], n: number): Promise<boolean> {
  return eventually(WAIT_MS, async () => nodes.every((node) => membership(node).members.alive === n && (membership(node).members.suspect ?? 0) === 0));
}

function describeViews(nodes: Node[]): string {
  return JSON.stringify(nodes.map((n) => {
    const m = membership(n);
    return { id: n.id, members: m.members, joining: m.joining, seedAddresses: m.seedAddresses, seedResolutions: m.seedResolutions };
  }));
}

maybe('nodes join through a host name (A record); the seed that resolves to itself starts the cluster', async (t) => {
  const ctx = setup(t);
  const port = await freeUdpPort('127.0.77.11');
  ctx.dns = await Dnsmasq.start({ 'n1.shoal.test': '127.0.77.11' });
  const seeds = { 'membership.seeds': `n1.shoal.test:${port}` };
  const n1 = await start(ctx, 'n1', `127.0.77.11:${port}`, seeds);
  t.false(membership(n1).joining, 'n1 resolved the seed to its own address: it is the first node');
  t.deepEqual(membership(n1).seedAddresses, [], 'its own address is filtered out');
  await start(ctx, 'n2', `127.0.77.12:${port}`, seeds);
  await start(ctx, 'n3', `127.0.77.13:${port}`, seeds);
  t.true(await allSee(ctx.nodes, 3), describeViews(ctx.nodes));
  t.deepEqual(membership(ctx.nodes[1]).seedAddresses, [`127.0.77.11:${port}`]);
});

maybe('nodes started together join through one SRV name that lists all of them (each filters itself out)', async (t) => {
  const ctx = setup(t);
  const port = await freeUdpPort('127.0.77.21');
  const ids = ['s1', 's2', 's3', 's4'];
  const hosts = Object.fromEntries(ids.map((id, i) => [`${id}.shoal.test`, `127.0.77.${21 + i}`]));
  ctx.dns = await Dnsmasq.start(hosts, ids.map((id) => ({ name: '_shoal._udp.shoal.test', target: `${id}.shoal.test`, port })));
  await Promise.all(ids.map((id, i) => start(ctx, id, `127.0.77.${21 + i}:${port}`, { 'membership.seeds': 'srv:_shoal._udp.shoal.test' })));
  t.true(await allSee(ctx.nodes, 4), describeViews(ctx.nodes));
  for (const node of ctx.nodes) {
    const addresses = membership(node).seedAddresses;
    t.is(addresses.length, 3, `${node.id}: ${JSON.stringify(addresses)}`);
    t.false(addresses.includes(node.addresses.gossip), `${node.id} filtered itself out`);
  }
});

maybe('a changed DNS answer is used on the next join attempt (A record via SIGHUP, SRV record via a restart)', async (t) => {
  const ctx = setup(t);
  const port = await freeUdpPort('127.0.77.31');
  // The name first points at an address where nothing runs; the SRV name does not exist yet.
  ctx.dns = await Dnsmasq.start({ 'seed.shoal.test': '127.0.77.39', 'n1.shoal.test': '127.0.77.31' });
  const n1 = await start(ctx, 'n1', `127.0.77.31:${port}`, {});
  const byName = await start(ctx, 'byname', `127.0.77.32:${port}`, { 'membership.seeds': `seed.shoal.test:${port}` });
  const bySrv = await start(ctx, 'bysrv', `127.0.77.33:${port}`, { 'membership.seeds': 'srv:_shoal._udp.shoal.test' });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.is(membership(n1).members.alive, 1, 'nobody reached n1 yet');
  t.true(membership(byName).joining, 'the seed answered nothing: still joining');
  t.deepEqual(membership(byName).seedAddresses, [`127.0.77.39:${port}`]);
  t.true(membership(bySrv).joining, 'an SRV name that does not resolve keeps the node joining, not alone in a cluster of its own');
  t.is(membership(bySrv).members.alive, 1);

  await ctx.dns.setHosts({ 'seed.shoal.test': '127.0.77.31', 'n1.shoal.test': '127.0.77.31' });
  t.true(await eventually(WAIT_MS, async () => !membership(byName).joining && membership(n1).members.alive === 2), describeViews(ctx.nodes));
  t.true(membership(bySrv).joining, 'the SRV joiner still has no answer');

  await ctx.dns.restart([{ name: '_shoal._udp.shoal.test', target: 'n1.shoal.test', port }]);
  t.true(await allSee(ctx.nodes, 3), describeViews(ctx.nodes));
  t.false(membership(bySrv).joining);
});

maybe('once joined, a node DNS lists that no member knows is merged (a seed back alone is found again)', async (t) => {
  const ctx = setup(t);
  const port = await freeUdpPort('127.0.77.41');
  ctx.dns = await Dnsmasq.start({ 'seeds.shoal.test': '127.0.77.41' });
  const resolveFast = { 'membership.seedResolveIntervalMs': '300' };
  // Two one-node clusters: a resolves the name to itself only (first node), b has no seeds.
  const a = await start(ctx, 'a', `127.0.77.41:${port}`, { 'membership.seeds': `seeds.shoal.test:${port}`, ...resolveFast });
  const b = await start(ctx, 'b', `127.0.77.42:${port}`, {});
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.is(membership(a).members.alive, 1);
  t.is(membership(b).members.alive, 1);
  // The name now lists both (two A records): a's periodic resolution finds b and merges with it.
  await ctx.dns.setHosts({ 'seeds.shoal.test': ['127.0.77.41', '127.0.77.42'] });
  t.true(await allSee([a, b], 2), describeViews([a, b]));
});
