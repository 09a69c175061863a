import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, UsageError } from '../../src/cli/exit-codes.js';
import { localCommand, planLocalCluster } from '../../src/cli/local-command.js';
import { readClusterFile } from '../../src/node/cluster-file.js';
import { bufferIo, tempDir, testClient } from '../node/helpers.js';
import { CLUSTER, freePorts, startServer } from '../rpc/helpers.js';

test('the local plan keeps the cluster file\'s nodes and continues their port pattern', (t) => {
  const example = readClusterFile(new URL('../../cluster.example.json', import.meta.url).pathname, (p) => readFileSync(p, 'utf8'));
  const plan = planLocalCluster(example, 5, 'tmp/local');
  t.deepEqual(plan.nodes.map((n) => n.id), ['n1', 'n2', 'n3', 'n4', 'n5']);
  t.deepEqual(plan.nodes.map((n) => n.rpc), ['127.0.0.1:7201', '127.0.0.1:7202', '127.0.0.1:7203', '127.0.0.1:7204', '127.0.0.1:7205']);
  t.deepEqual(plan.nodes.map((n) => n.gossip).slice(3), ['127.0.0.1:7104', '127.0.0.1:7105']);
  t.deepEqual(plan.nodes.map((n) => n.metrics).slice(3), ['127.0.0.1:7304', '127.0.0.1:7305']);
  t.deepEqual(plan.nodes.map((n) => n.resp), ['127.0.0.1:7401', '127.0.0.1:7402', '127.0.0.1:7403', '127.0.0.1:7404', '127.0.0.1:7405']);
  t.deepEqual(plan.nodes.map((n) => n.dataDir), ['n1', 'n2', 'n3', 'n4', 'n5'].map((id) => join('tmp/local', id)));
  t.deepEqual(plan.seeds, ['127.0.0.1:7101']);
  t.is(plan.cluster, 'dev');
  t.is(planLocalCluster(example, 1, 'd').nodes.length, 1);
  t.throws(() => planLocalCluster(example, 0, 'd'), { instanceOf: UsageError });
  t.throws(() => planLocalCluster(example, 100, 'd'), { instanceOf: UsageError });
});

test('shoal local starts the agents, waits until they serve, prints their addresses, and stops them all', async (t) => {
  const tmp = tempDir('shoal-local-');
  t.teardown(tmp.remove);
  const [g1, g2, r1, r2, m1, m2, p1] = await freePorts(7);
  const clusterFile = join(tmp.dir, 'cluster.json');
  writeFileSync(clusterFile, JSON.stringify({
    cluster: 'localtest',
    nodes: [
      { id: 'a', gossip: `127.0.0.1:${g1}`, rpc: `127.0.0.1:${r1}`, metrics: `127.0.0.1:${m1}`, resp: `127.0.0.1:${p1}` },
      { id: 'b', gossip: `127.0.0.1:${g2}`, rpc: `127.0.0.1:${r2}`, metrics: `127.0.0.1:${m2}` },
    ],
    config: { membership: { leaveTimeoutMs: 100 } },
  }));
  const stop = new AbortController();
  const b = bufferIo();
  let served = '';
  const code = await localCommand(
    {
      nodes: 2,
      dataDir: join(tmp.dir, 'data'),
      clusterFile,
      logLevel: 'warn',
      signal: stop.signal,
      onReady: (plan) => {
        const client = testClient(plan.nodes[1].rpc, 'localtest');
        void client
          .put('k', 'v')
          .then(() => client.get('k'))
          .then((r) => (served = r?.value.toString() ?? ''))
          .finally(() => client.close())
          .finally(() => stop.abort());
      },
    },
    b.io,
  );
  t.is(code, 0, b.stderr());
  t.is(served, 'v');
  const out = b.stdout();
  t.regex(out, /Shoal local cluster "localtest" is up: 2 node\(s\)/);
  t.regex(out, new RegExp(`a\\s+rpc 127\\.0\\.0\\.1:${r1}\\s+gossip 127\\.0\\.0\\.1:${g1}`));
  t.regex(out, new RegExp(`b\\s+rpc 127\\.0\\.0\\.1:${r2}`));
  t.regex(out, new RegExp(`export SHOAL_CONFIG=${join(tmp.dir, 'data', 'cluster.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`));
  t.regex(out, /shoal put hello world/);
  t.regex(out, new RegExp(`a\\s+rpc .*redis 127\\.0\\.0\\.1:${p1}`));
  t.regex(out, new RegExp(`redis-cli -h 127\\.0\\.0\\.1 -p ${p1} set hello world`));
  t.regex(out, /all nodes stopped/);
});

test('shoal local refuses a port answered by another process instead of reporting the cluster up', async (t) => {
  const tmp = tempDir('shoal-local-');
  t.teardown(tmp.remove);
  const [g1, m1] = await freePorts(2);
  // A stranger already serves health on the RPC port, as an earlier `shoal local` would.
  const { server, addr } = await startServer(async (op) => (op === 'health' ? { ok: true, node: 'a', pid: process.pid } : null));
  t.teardown(() => server.close());
  const clusterFile = join(tmp.dir, 'cluster.json');
  writeFileSync(clusterFile, JSON.stringify({
    cluster: CLUSTER,
    nodes: [{ id: 'a', gossip: `127.0.0.1:${g1}`, rpc: addr, metrics: `127.0.0.1:${m1}` }],
    config: { membership: { leaveTimeoutMs: 100 } },
  }));
  const b = bufferIo();
  const code = await localCommand({ nodes: 1, dataDir: join(tmp.dir, 'data'), clusterFile, logLevel: 'warn' }, b.io);
  t.is(code, EXIT.UNAVAILABLE);
  t.notRegex(b.stdout(), /is up/);
  t.regex(b.stderr(), new RegExp(`${addr} \\(a rpc\\) is in use by another process`));
});

test('--base-port and --host lay every node\'s ports out from one base; the file\'s seeds give way to the first node', (t) => {
  const example = readClusterFile(new URL('../../cluster.example.json', import.meta.url).pathname, (p) => readFileSync(p, 'utf8'));
  const plan = planLocalCluster(example, 4, 'd', { basePort: 8101 });
  t.deepEqual(plan.nodes.map((n) => n.gossip), ['127.0.0.1:8101', '127.0.0.1:8102', '127.0.0.1:8103', '127.0.0.1:8104']);
  t.deepEqual(plan.nodes.map((n) => n.rpc), ['127.0.0.1:8201', '127.0.0.1:8202', '127.0.0.1:8203', '127.0.0.1:8204']);
  t.deepEqual(plan.nodes.map((n) => n.metrics), ['127.0.0.1:8301', '127.0.0.1:8302', '127.0.0.1:8303', '127.0.0.1:8304']);
  t.deepEqual(plan.nodes.map((n) => n.resp), ['127.0.0.1:8401', '127.0.0.1:8402', '127.0.0.1:8403', '127.0.0.1:8404'], 'the example gives its nodes Redis ports');
  t.deepEqual(plan.seeds, ['127.0.0.1:8101']);
  const hosted = planLocalCluster(example, 2, 'd', { host: '127.0.0.2' });
  t.deepEqual(hosted.nodes.map((n) => n.rpc), ['127.0.0.2:7201', '127.0.0.2:7202']);
  t.throws(() => planLocalCluster(example, 2, 'd', { basePort: 65_500 }), { instanceOf: UsageError, message: /--base-port must be an integer from 1 to/ });
  t.throws(() => planLocalCluster(example, 2, 'd', { basePort: Number.NaN }), { instanceOf: UsageError });
});

/** A cluster file for `nodes` nodes on free ports, with quick leaves. */
async function localFile(dir: string, ids: string[], config: Record<string, unknown> = {}): Promise<string> {
  const ports = await freePorts(ids.length * 3);
  const file = join(dir, 'mine.json');
  writeFileSync(file, JSON.stringify({
    cluster: 'localtest',
    nodes: ids.map((id, i) => ({ id, gossip: `127.0.0.1:${ports[3 * i]}`, rpc: `127.0.0.1:${ports[3 * i + 1]}`, metrics: `127.0.0.1:${ports[3 * i + 2]}` })),
    config: { membership: { leaveTimeoutMs: 100 }, ...config },
  }));
  return file;
}

test('a second launch on a running cluster is refused (exit 3) and leaves its cluster.json alone; a SIGKILLed node is reported as such and a later Ctrl-C still exits 0', async (t) => {
  const tmp = tempDir('shoal-local-');
  t.teardown(tmp.remove);
  const clusterFile = await localFile(tmp.dir, ['a', 'b']);
  const dataDir = join(tmp.dir, 'data');
  const stop = new AbortController();
  const b = bufferIo();
  let second: { code: number; stderr: string; planBefore: string; planAfter: string } | null = null;
  let otherProcess: { status: number | null; stderr: string } | null = null;
  const code = await localCommand({
    nodes: 2, dataDir, clusterFile, logLevel: 'warn', signal: stop.signal,
    onReady: () => {
      void (async () => {
        const planBefore = readFileSync(join(dataDir, 'cluster.json'), 'utf8');
        const again = bufferIo();
        // Other ports but the same data dir: still refused, by DIR/local.pid.
        const other = await localFile(tmp.dir, ['a', 'b']);
        const c = await localCommand({ nodes: 3, dataDir, clusterFile: other, logLevel: 'warn' }, again.io);
        second = { code: c, stderr: again.stderr(), planBefore, planAfter: readFileSync(join(dataDir, 'cluster.json'), 'utf8') };
        // From another process, DIR/local.pid refuses it first.
        const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url)), 'local', '--data-dir', dataDir, '--config', other], { encoding: 'utf8', timeout: 60_000 });
        otherProcess = { status: child.status, stderr: child.stderr };
        const pidB = Number(readFileSync(join(dataDir, 'b', 'LOCK'), 'utf8'));
        process.kill(pidB, 'SIGKILL');
        for (let i = 0; i < 100 && !/killed by SIGKILL/.test(b.stderr()); i++) await new Promise((r) => setTimeout(r, 100));
        stop.abort();
      })();
    },
  }, b.io);
  t.truthy(second);
  const s = second as unknown as { code: number; stderr: string; planBefore: string; planAfter: string };
  t.is(s.code, EXIT.UNAVAILABLE);
  // In this process the pid file is our own, so the nodes' data-dir locks refuse it; a second process is refused by DIR/local.pid first.
  t.regex(s.stderr, /is in use by a running (shoal local|agent) \(pid \d+\)/);
  t.is(s.planAfter, s.planBefore, 'the running cluster\'s plan is untouched');
  const o = otherProcess as unknown as { status: number | null; stderr: string };
  t.is(o.status, EXIT.UNAVAILABLE);
  t.regex(o.stderr, new RegExp(`^shoal local: .* is in use by a running shoal local \\(pid ${process.pid}\\); stop it first, or pick another --data-dir\n$`));
  t.regex(b.stderr(), /node b was killed by SIGKILL; 1 of 2 still running/);
  t.notRegex(b.stderr(), /code null/);
  t.is(code, EXIT.OK, `a clean stop of the nodes still running exits 0: ${b.stderr()}`);
});

test('a node that cannot start makes shoal local exit 3; a configuration mistake exits 2 naming the user\'s file', async (t) => {
  const tmp = tempDir('shoal-local-');
  t.teardown(tmp.remove);
  const clusterFile = await localFile(tmp.dir, ['a', 'b']);
  const dataDir = join(tmp.dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'b'), 'a file where the data dir of b should be');
  const b = bufferIo();
  t.is(await localCommand({ nodes: 2, dataDir, clusterFile, logLevel: 'warn' }, b.io), EXIT.UNAVAILABLE, b.stderr());
  t.regex(b.stderr(), /\[b\] shoal agent: cannot start node b: the data dir .* is a file, not a directory/);
  t.notRegex(b.stdout(), /is up/);

  const bad = await localFile(tmp.dir, ['a'], { storage: { fsync: 'sometimes' } });
  const c = bufferIo();
  t.is(await localCommand({ nodes: 1, dataDir: join(tmp.dir, 'data2'), clusterFile: bad, logLevel: 'warn' }, c.io), EXIT.USAGE);
  t.regex(c.stderr(), new RegExp(`storage.fsync must be one of .*\\(from cluster file ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
  t.notRegex(c.stderr(), /data2\/cluster\.json/);
});
