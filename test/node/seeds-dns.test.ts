/**
 * Seeds from DNS with real nodes and a real DNS server: Debian's dnsmasq on a loopback port
 * (test/membership/dnsmasq.ts). Each node has its own 127.0.77.x address and the same gossip port, as
 * machines would. Skipped, with a message, where dnsmasq is not installed.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNode, type Node } from '../../src/node/node.js';
import { Dnsmasq, HAVE_DNSMASQ, freeUdpPort } from '../membership/dnsmasq.js';
import { eventually, tempDir, testClient, testConfig } from './helpers.js';

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
  // (On a loaded machine the first answer may time out; the node then resolves again.)
  t.true(await eventually(WAIT_MS, async () => !membership(n1).joining), 'n1 resolved the seed to its own address: it is the first node');
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

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** `shoal agent` configured through SHOAL_* variables only, as deploy/kubernetes does; resolves once it serves. */
async function agentProcess(env: Record<string, string>, children: ChildProcess[]): Promise<{ rpc: string; log: () => string }> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SHOAL_')));
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'agent'], { env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const started = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'node started');
    if (started) return { rpc: String(started.rpc), log: () => out };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`agent did not start: ${out}`);
}

maybe('shoal agent processes configured by SHOAL_* variables alone join through SRV (the deploy/kubernetes way)', async (t) => {
  const ctx = setup(t);
  const children: ChildProcess[] = [];
  t.teardown(() => {
    for (const child of children) child.kill('SIGKILL');
  });
  const port = await freeUdpPort('127.0.77.51');
  const ids = ['shoal-0', 'shoal-1', 'shoal-2'];
  const hosts = Object.fromEntries(ids.map((id, i) => [`${id}.shoal.test`, `127.0.77.${51 + i}`]));
  ctx.dns = await Dnsmasq.start(hosts, ids.map((id) => ({ name: '_gossip._udp.shoal.test', target: `${id}.shoal.test`, port })));
  const agents = await Promise.all(ids.map((id, i) => agentProcess({
    SHOAL_NODE_ID: id, SHOAL_DATA_DIR: join(ctx.dir, id), SHOAL_NODE_GOSSIP: `127.0.77.${51 + i}:${port}`,
    SHOAL_NODE_RPC: `127.0.77.${51 + i}:0`, SHOAL_NODE_METRICS: `127.0.77.${51 + i}:0`, SHOAL_LOG_FORMAT: 'json',
    SHOAL_SEEDS: 'srv:_gossip._udp.shoal.test', SHOAL_MEMBERSHIP_DNS_SERVERS: ctx.dns?.address ?? '',
    SHOAL_MEMBERSHIP_PROBE_INTERVAL_MS: '200ms', SHOAL_MEMBERSHIP_PROBE_TIMEOUT_MS: '100ms', SHOAL_MEMBERSHIP_JOIN_RETRY_INITIAL_MS: '200ms', SHOAL_MEMBERSHIP_JOIN_RETRY_MAX_MS: '400ms',
  }, children)));
  const clients = agents.map((a) => testClient(a.rpc));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  const alive = async () => (await Promise.all(clients.map((c) => c.members() as Promise<Array<{ state: string }>>)))
    .map((members) => members.filter((m) => m.state === 'alive').length);
  t.true(await eventually(WAIT_MS, async () => (await alive()).every((n) => n === 3)), `${JSON.stringify(await alive())}\n${agents.map((a) => a.log()).join('\n')}`);
  t.true(agents.slice(1).some((a) => a.log().includes('seeds resolved')), 'the agents log what the seeds resolved to');
});
