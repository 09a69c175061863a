/**
 * A partition longer than the suspicion timeout between separate hosts (issue 10): each agent runs
 * in its own network namespace with its own address and the same ports, as on real machines; the
 * namespaces are joined by a bridge (in a namespace of its own) through veth pairs. The link of one
 * host is taken down, both sides take writes (the cut-off minority only with consistency one: it
 * refuses quorum writes), the link comes back up, and the cluster must be one again with every write
 * readable everywhere. The test creates and deletes every namespace; it is skipped, saying why, where
 * `ip netns` is not available (not root, no iproute2).
 */
import test from 'ava';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { AgentCluster, until } from './agents.js';
import { tempDir } from './helpers.js';

const TAG = `s${process.pid % 100_000}`;
const BRIDGE_NS = `${TAG}br`;
const CLIENT_NS = `${TAG}cl`;
const nodeNs = (i: number) => `${TAG}n${i}`;
const SUBNET = `10.${200 + (process.pid % 50)}.${process.pid % 250}`;
const ip = (host: number) => `${SUBNET}.${host}`;
const CLIENT_SCRIPT = fileURLToPath(new URL('./netns-client.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

function run(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function netnsAvailable(): string | null {
  const probe = `${TAG}probe`;
  try {
    run(['netns', 'add', probe]);
    run(['netns', 'del', probe]);
    return null;
  } catch (err) {
    return `ip netns is not usable here (${(err as Error).message.split('\n')[0]})`;
  }
}

const unavailable = netnsAvailable();
if (unavailable !== null) console.log(`partition-netns.test: skipped: ${unavailable}`);
const maybe = unavailable === null ? test.serial : test.serial.skip;

/** Host `name` in its namespace, linked to the bridge by veth `<name>a` (host side) / `<name>b` (bridge side). */
function addHost(ns: string, addr: string): void {
  run(['netns', 'add', ns]);
  run(['-n', ns, 'link', 'set', 'lo', 'up']);
  run(['link', 'add', `${ns}a`, 'netns', ns, 'type', 'veth', 'peer', 'name', `${ns}b`, 'netns', BRIDGE_NS]);
  run(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', `${ns}a`]);
  run(['-n', ns, 'link', 'set', `${ns}a`, 'up']);
  run(['-n', BRIDGE_NS, 'link', 'set', `${ns}b`, 'master', 'br0']);
  run(['-n', BRIDGE_NS, 'link', 'set', `${ns}b`, 'up']);
}

function deleteAll(): void {
  for (const ns of [CLIENT_NS, nodeNs(1), nodeNs(2), nodeNs(3), BRIDGE_NS]) {
    try {
      run(['netns', 'del', ns]);
    } catch {
      // not created
    }
  }
}

class NsClient {
  private readonly child: ChildProcess;
  private seq = 0;
  private readonly waiting = new Map<number, (reply: { ok: boolean; result?: unknown; code?: string; message?: string }) => void>();
  readonly ready: Promise<void>;

  constructor() {
    this.child = spawn('ip', ['netns', 'exec', CLIENT_NS, process.execPath, '--import', 'tsx', CLIENT_SCRIPT], { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] });
    let markReady = (): void => undefined;
    this.ready = new Promise((resolve) => (markReady = resolve));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const reply = JSON.parse(line) as { seq: number; ok: boolean };
      if (reply.seq === 0) markReady();
      this.waiting.get(reply.seq)?.(reply);
      this.waiting.delete(reply.seq);
    });
  }

  call(addr: string, op: string, args: Record<string, unknown> = {}): Promise<{ ok: boolean; result?: unknown; code?: string; message?: string }> {
    const seq = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(seq, resolve);
      this.child.stdin!.write(JSON.stringify({ seq, addr, op, args }) + '\n');
    });
  }

  close(): void {
    this.child.stdin!.end();
    setTimeout(() => this.child.kill('SIGKILL'), 3000).unref();
  }
}

maybe('a partition longer than the suspicion timeout between hosts, writes on both sides, healed: one cluster', async (t) => {
  t.timeout(400_000);
  deleteAll();
  t.teardown(deleteAll);
  run(['netns', 'add', BRIDGE_NS]);
  run(['-n', BRIDGE_NS, 'link', 'add', 'br0', 'type', 'bridge']);
  run(['-n', BRIDGE_NS, 'link', 'set', 'br0', 'up']);
  for (let i = 1; i <= 3; i++) addHost(nodeNs(i), ip(10 + i));
  addHost(CLIENT_NS, ip(100));

  const tmp = tempDir('shoal-netns-');
  const cluster = new AgentCluster({ dir: tmp.dir, nodes: 3, ip: (i) => ip(11 + i), prefix: (id) => ['ip', 'netns', 'exec', nodeNs(Number(id.slice(1)))] });
  const client = new NsClient();
  t.teardown(async () => {
    client.close();
    await cluster.stopAll();
    tmp.remove();
  });
  await client.ready;
  const rpc = (id: string) => cluster.node(id).rpc;
  const healthy = async (id: string) => ((await client.call(rpc(id), 'health')).result as { ok?: boolean } | undefined)?.ok === true;
  const view = async (id: string): Promise<Record<string, string>> => {
    const reply = await client.call(rpc(id), 'members');
    return reply.ok ? Object.fromEntries((reply.result as Array<{ id: string; state: string }>).map((m) => [m.id, m.state])) : {};
  };
  const allAlive = async (ids: string[]) => {
    for (const id of ids) {
      const v = await view(id);
      if (!['n1', 'n2', 'n3'].every((x) => v[x] === 'alive')) return false;
    }
    return true;
  };

  await cluster.start('n1', { wait: 'none' });
  t.true(await until(90_000, () => healthy('n1')), cluster.logOf('n1'));
  await cluster.start('n2', { wait: 'none' });
  await cluster.start('n3', { wait: 'none' });
  t.true(await until(90_000, async () => (await healthy('n2')) && (await healthy('n3'))), cluster.logOf('n3'));
  t.true(await until(30_000, () => allAlive(['n1', 'n2', 'n3'])), 'the cluster forms across the bridge');
  t.true((await client.call(rpc('n1'), 'put', { key: 'before', value: 'b' })).ok);

  // n3's host loses its link for longer than the suspicion timeout: both sides see the other dead.
  run(['-n', BRIDGE_NS, 'link', 'set', `${nodeNs(3)}b`, 'down']);
  t.true(await until(30_000, async () => (await view('n1')).n3 === 'dead'), `n1 sees ${JSON.stringify(await view('n1'))}`);
  await new Promise((r) => setTimeout(r, 3000));
  // The majority side takes quorum writes.
  const majority = await client.call(rpc('n1'), 'put', { key: 'majority', value: 'M' });
  t.true(majority.ok, majority.message);
  // The minority host refuses quorum writes (N stays 3: no second cluster) and takes consistency one.
  const quorum = await cluster.cli('n3', ['put', 'minority-quorum', 'x'], ['ip', 'netns', 'exec', nodeNs(3)]);
  t.is(quorum.code, 3, quorum.stdout + quorum.stderr);
  t.regex(quorum.stderr, /UNAVAILABLE|replicas answered/);
  const one = await cluster.cli('n3', ['put', 'minority', 'm', '--consistency', 'one'], ['ip', 'netns', 'exec', nodeNs(3)]);
  t.is(one.code, 0, one.stdout + one.stderr);
  const members3 = await cluster.cli('n3', ['members', '--json'], ['ip', 'netns', 'exec', nodeNs(3)]);
  const seen3 = Object.fromEntries((JSON.parse(members3.stdout) as Array<{ id: string; state: string }>).map((m) => [m.id, m.state]));
  t.deepEqual([seen3.n1, seen3.n2].map((s) => s === 'dead' || s === 'suspect'), [true, true], `n3 sees ${JSON.stringify(seen3)}`);

  // The link comes back: one cluster again, and every write is readable through every node.
  run(['-n', BRIDGE_NS, 'link', 'set', `${nodeNs(3)}b`, 'up']);
  t.true(await until(60_000, () => allAlive(['n1', 'n2', 'n3'])), `after the heal n1 sees ${JSON.stringify(await view('n1'))}, n3 ${JSON.stringify(await view('n3'))}`);
  for (const id of ['n1', 'n2', 'n3']) {
    for (const [key, value] of [['before', 'b'], ['majority', 'M'], ['minority', 'm']]) {
      t.true(await until(30_000, async () => (await client.call(rpc(id), 'get', { key })).result === value), `${id} reads ${key}`);
    }
  }
});
