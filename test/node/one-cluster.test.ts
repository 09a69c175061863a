/**
 * One cluster after every restart and leave (issue 10), with real `shoal agent` processes started as a
 * user starts them (a cluster file, `--config FILE --node ID`), and the CLI as separate processes:
 * the seed restarts after a graceful stop, after SIGKILL and with its data dir wiped; every node
 * restarts at once in random order; a node that reaches nobody does not serve; `shoal leave` ends
 * the agent. Each scenario ends in one cluster where a write through any node is read through any other.
 */
import test from 'ava';
import { connect } from 'node:net';
import { AgentCluster, until } from './agents.js';

type Cluster = AgentCluster;
import { tempDir } from './helpers.js';

const CONVERGE_MS = 60_000;

function setup(t: { teardown: (fn: () => unknown) => void }, nodes: number, seeds = 1): Cluster {
  const tmp = tempDir('shoal-one-');
  const cluster = new AgentCluster({ dir: tmp.dir, nodes, seeds });
  t.teardown(async () => {
    await cluster.stopAll();
    tmp.remove();
  });
  return cluster;
}

/** Writes one key through each node and reads every one of them through every node (quorum). */
async function crossCheck(t: { is: (a: unknown, b: unknown, m?: string) => void }, cluster: Cluster, ids: string[], tag: string): Promise<void> {
  for (const id of ids) {
    const client = cluster.client(id);
    try {
      await client.put(`${tag}-${id}`, `from-${id}`);
    } finally {
      await client.close();
    }
  }
  for (const reader of ids) {
    const client = cluster.client(reader);
    try {
      for (const writer of ids) {
        const got = await client.get(`${tag}-${writer}`);
        t.is(got?.value.toString(), `from-${writer}`, `${tag}: ${reader} reads what ${writer} wrote`);
      }
    } finally {
      await client.close();
    }
  }
}

async function startInOrder(cluster: Cluster, ids: string[]): Promise<void> {
  await cluster.start(ids[0], { wait: 'answers' });
  await Promise.all(ids.slice(1).map((id) => cluster.start(id, { wait: 'none' })));
  await Promise.all(ids.map((id) => cluster.waitHealth(id)));
}

test.serial('the seed restarts after a graceful stop and after SIGKILL: it rejoins the same cluster', async (t) => {
  t.timeout(400_000);
  const cluster = setup(t, 3);
  const ids = ['n1', 'n2', 'n3'];
  await startInOrder(cluster, ids);
  t.true(await until(CONVERGE_MS, () => cluster.oneCluster(ids)), 'the cluster forms');
  await crossCheck(t, cluster, ids, 'first');

  // Graceful stop: n1 announces its leave, the others list it as left.
  t.is(await cluster.signal('n1', 'SIGTERM'), 0);
  t.true(await until(CONVERGE_MS, async () => (await cluster.view('n2'))?.n1 === 'left'), 'n2 lists n1 as left');
  // n1 has no seeds (it is the seed) but it knew n2 and n3: it rejoins them at a higher incarnation.
  await cluster.start('n1');
  t.true(await until(CONVERGE_MS, () => cluster.oneCluster(ids)), `one cluster after the graceful restart: ${JSON.stringify(await cluster.view('n1'))}`);
  await crossCheck(t, cluster, ids, 'graceful');
  const stats = cluster.client('n1');
  const replication = ((await stats.stats()) as { cluster: { replication: { n: number } } }).cluster.replication;
  await stats.close();
  t.is(replication.n, 3, 'the restarted seed replicates to N = 3, not to itself alone');

  // SIGKILL: nothing announced; the others see it dead (or still alive), it comes back the same way.
  await cluster.signal('n1', 'SIGKILL');
  await cluster.start('n1');
  t.true(await until(CONVERGE_MS, () => cluster.oneCluster(ids)), 'one cluster after the SIGKILL restart');
  await crossCheck(t, cluster, ids, 'killed');
  // The first writes are still there after both restarts.
  const c = cluster.client('n1');
  t.is((await c.get('first-n2'))?.value.toString(), 'from-n2');
  await c.close();
});

test.serial('the seed restarts with its data dir wiped: with the other nodes as seeds it joins them, not a new cluster', async (t) => {
  t.timeout(400_000);
  // Every node lists every node as a seed (the layout docs/CLUSTER.md recommends); each filters itself out.
  const cluster = setup(t, 3, 3);
  const ids = ['n1', 'n2', 'n3'];
  await Promise.all(ids.map((id) => cluster.start(id, { wait: 'none' })));
  await Promise.all(ids.map((id) => cluster.waitHealth(id)));
  t.true(await until(CONVERGE_MS, () => cluster.oneCluster(ids)));
  await crossCheck(t, cluster, ids, 'before');

  await cluster.signal('n1', 'SIGKILL');
  cluster.wipe('n1');
  await cluster.start('n1');
  t.true(await until(CONVERGE_MS, () => cluster.oneCluster(ids)), `one cluster after the wipe: ${JSON.stringify(await cluster.view('n1'))}`);
  await crossCheck(t, cluster, ids, 'after');
  const c = cluster.client('n1');
  t.is((await c.get('before-n3'))?.value.toString(), 'from-n3', 'the wiped node reads old keys from the replicas');
  await c.close();
});

test.serial('every node restarts at once, in random order, after SIGKILL and after SIGTERM: one cluster, nothing lost', async (t) => {
  t.timeout(500_000);
  const cluster = setup(t, 4);
  const ids = ['n1', 'n2', 'n3', 'n4'];
  await startInOrder(cluster, ids);
  t.true(await until(CONVERGE_MS, () => cluster.oneCluster(ids)));
  await crossCheck(t, cluster, ids, 'start');
  for (const sig of ['SIGKILL', 'SIGTERM'] as const) {
    await Promise.all(ids.map((id) => cluster.signal(id, sig)));
    const order = [...ids].sort(() => Math.random() - 0.5);
    t.log(`${sig}, restart order ${order.join(' ')}`);
    for (const id of order) await cluster.start(id, { wait: 'none' });
    await Promise.all(ids.map((id) => cluster.waitHealth(id)));
    t.true(await until(CONVERGE_MS, () => cluster.oneCluster(ids)), `${sig}: one cluster after restarting in order ${order.join(' ')}`);
    await crossCheck(t, cluster, ids, `after-${sig}`);
  }
  const c = cluster.client('n4');
  for (const id of ids) t.is((await c.get(`start-${id}`))?.value.toString(), `from-${id}`);
  await c.close();
});

test.serial('a node that reaches no seed or known member does not serve until one answers; --bootstrap serves at once', async (t) => {
  t.timeout(300_000);
  const cluster = setup(t, 3);
  // --bootstrap: a node may start a cluster of its own although it has a seed.
  await cluster.start('n3', { extra: ['--bootstrap'] });
  t.is((await cluster.health('n3'))?.ok, true);
  await cluster.signal('n3', 'SIGKILL');

  // n2's seed (n1) is not running: n2 keeps trying, says why, and refuses client operations.
  await cluster.start('n2', { wait: 'answers' });
  await new Promise((r) => setTimeout(r, 1500));
  const health = await cluster.cli('n2', ['health']);
  t.is(health.code, 3, health.stdout + health.stderr);
  t.regex(health.stdout, /not ok: node n2 .*joining: no seed or known member answered/);
  const put = await cluster.cli('n2', ['put', 'k', 'v']);
  t.is(put.code, 3, put.stdout + put.stderr);
  t.regex(put.stderr, /UNAVAILABLE|not serving: joining/);
  // The Redis port is gated the same way: a joining node answers CLUSTERDOWN, never OK.
  const n2 = cluster.nodes.find((n) => n.id === 'n2');
  t.regex(await respCommand(`${n2?.ip}`, 7401, ['SET', 'k', 'v']), /^-CLUSTERDOWN .*joining/);

  await cluster.start('n1');
  await cluster.waitHealth('n2');
  t.true(await until(CONVERGE_MS, () => cluster.oneCluster(['n1', 'n2'])));
  await crossCheck(t, cluster, ['n1', 'n2'], 'joined');
});

test.serial('shoal leave ends the agent (exit 0, the CLI waits and says so); writes through the leaving node are refused or reach real owners', async (t) => {
  t.timeout(400_000);
  const cluster = setup(t, 4);
  const ids = ['n1', 'n2', 'n3', 'n4'];
  await startInOrder(cluster, ids);
  t.true(await until(CONVERGE_MS, () => cluster.oneCluster(ids)));

  // A writer through n4 only, while n4 leaves.
  const acked: string[] = [];
  const refused = new Map<string, number>();
  const messages: string[] = [];
  let writing = true;
  const writer = (async () => {
    const client = cluster.client('n4', 5000);
    for (let i = 0; writing && i < 20_000; i++) {
      try {
        await client.put(`w${i}`, `v${i}`);
        acked.push(`w${i}`);
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'ERROR';
        refused.set(code, (refused.get(code) ?? 0) + 1);
        messages.push((err as Error).message);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await client.close();
  })();
  await new Promise((r) => setTimeout(r, 1500));
  const leave = await cluster.cli('n4', ['leave']);
  t.is(leave.code, 0, leave.stdout + leave.stderr);
  t.regex(leave.stdout, /^OK: node n4 handed off its data, left the cluster and stopped$/m);
  t.is(await cluster.waitExit('n4', 30_000), 0, 'the agent exited 0');
  writing = false;
  await writer;
  t.log(`acknowledged ${acked.length}, refused ${JSON.stringify(Object.fromEntries(refused))}`);
  t.true(acked.length > 0, 'the writer made progress before the leave');
  t.true(refused.size > 0, 'writes after the leave started were refused');
  for (const code of refused.keys()) t.true(['CLOSED', 'UNAVAILABLE', 'TIMEOUT'].includes(code), `refused with ${code}`);
  // The client turns a CLOSED answer into "no node reachable" (it had only n4): the server's message says why.
  t.true(messages.some((m) => m.includes('node n4 is leaving')), `no write was refused while leaving: ${messages.slice(0, 3).join(' | ')}`);

  const rest = ['n1', 'n2', 'n3'];
  t.true(await until(CONVERGE_MS, async () => (await cluster.view('n1'))?.n4 === 'left'));
  t.true(await until(CONVERGE_MS, () => cluster.oneCluster(rest)));
  // Every acknowledged write is held by real owners: readable at quorum through the others.
  const reader = cluster.client('n2');
  const lost: string[] = [];
  // The last 200 acknowledged (around the leave) and 100 from before.
  const checked = [...acked.slice(-200), ...acked.slice(0, -200).filter((_, i, all) => i % Math.max(1, Math.floor(all.length / 100)) === 0)];
  for (const key of checked) if ((await reader.get(key))?.value.toString() !== `v${key.slice(1)}`) lost.push(key);
  const ring = (await reader.ring()) as { members: Array<{ id: string }> };
  await reader.close();
  t.deepEqual(lost, [], 'acknowledged writes through the leaving node are all readable');
  t.deepEqual(ring.members.map((m) => m.id).sort(), rest);
});

test.serial('a node restarted with its data dir on a new address is the same member: accepted, the old address forgotten', async (t) => {
  t.timeout(300_000);
  const cluster = setup(t, 3);
  const ids = ['n1', 'n2', 'n3'];
  await startInOrder(cluster, ids);
  t.true(await until(CONVERGE_MS, () => cluster.oneCluster(ids)));
  await crossCheck(t, cluster, ids, 'old');
  const oldGossip = cluster.node('n3').gossip;
  await cluster.signal('n3', 'SIGKILL');
  cluster.move('n3', cluster.node('n3').ip.replace(/\.\d+$/, '.60'));
  await cluster.start('n3');
  const gossipOf = async (viewer: string) => {
    const c = cluster.client(viewer, 2000);
    try {
      return ((await c.members()) as Array<{ id: string; gossip: string }>).filter((m) => m.id === 'n3').map((m) => m.gossip);
    } finally {
      await c.close();
    }
  };
  t.true(await until(CONVERGE_MS, async () => (await cluster.oneCluster(ids)) && (await gossipOf('n1'))[0] === cluster.node('n3').gossip));
  t.deepEqual(await gossipOf('n2'), [cluster.node('n3').gossip], 'one n3, at the new address');
  t.not(cluster.node('n3').gossip, oldGossip);
  await crossCheck(t, cluster, ids, 'moved');
  const c = cluster.client('n3');
  t.is((await c.get('old-n1'))?.value.toString(), 'from-n1');
  await c.close();
});

/** One RESP command over a fresh connection; the first reply line. */
function respCommand(host: string, port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no RESP reply from ${host}:${port} in 10 s`));
    }, 10_000);
    let reply = '';
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(reply.slice(0, reply.indexOf('\r\n')));
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}
