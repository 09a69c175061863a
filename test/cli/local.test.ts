import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
  t.regex(out, /node bin\/shoal\.js put hello world/);
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
  t.regex(b.stderr(), new RegExp(`${addr} is answered by another process \\(pid ${process.pid}\\)`));
});
