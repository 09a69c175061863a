/**
 * A node whose data disk fills up: three real nodes in this process, n3's data dir on a 2 MiB tmpfs
 * that the test fills. n3 turns read-only and says so (health, GET /health, stats, metrics, the
 * CLI); writes through the cluster still meet quorum on n1 and n2, and n3 goes on serving reads.
 * n2's hints live on a small tmpfs of their own that fills too: n2 reports its hint store failed.
 */
import test from 'ava';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { startNode, type Node } from '../../src/node/node.js';
import { fillDisk, mountTmpfs, mountTmpfsAt, tmpfsUnavailable } from '../storage/tmpfs.js';
import { bufferIo, eventually, httpGet, sample, tempDir, testClient, testConfig } from './helpers.js';

const unavailable = tmpfsUnavailable();
if (unavailable !== null) console.log(`disk-full: the tmpfs test is skipped: ${unavailable}`);
const tmpfsTest = unavailable === null ? test : test.skip;

tmpfsTest('a node with a full disk reports itself unhealthy; cluster writes meet quorum on the others; its reads go on', async (t) => {
  const tmp = tempDir('shoal-diskfull-');
  t.teardown(tmp.remove);
  const small = mountTmpfs(t, 2 * 1024 * 1024);
  // n2 keeps its hints on a disk of their own that fills up too (its store stays writable).
  const n2Hints = join(tmp.dir, 'n2', 'hints');
  mkdirSync(n2Hints, { recursive: true });
  mountTmpfsAt(t, n2Hints, 256 * 1024);
  const nodes: Node[] = [];
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  const fast = {
    'membership.probeIntervalMs': '200', 'membership.probeTimeoutMs': '100', 'membership.gossipIntervalMs': '50', 'cluster.ringSettleMs': '50',
  };
  const dataDirs = { n1: join(tmp.dir, 'n1'), n2: join(tmp.dir, 'n2'), n3: join(small, 'n3') };
  for (const id of ['n1', 'n2', 'n3'] as const) {
    const seeds: Record<string, string> = nodes.length === 0 ? {} : { 'membership.seeds': nodes[0].addresses.gossip };
    nodes.push(await startNode(testConfig(dataDirs[id], { 'node.id': id, ...fast, ...seeds }), { processMetrics: false }));
  }
  const [c1, c2, c3] = nodes.map((n) => testClient(n.addresses.rpc));
  t.teardown(() => Promise.all([c1.close(), c2.close(), c3.close()]));
  t.true(
    await eventually(15_000, async () => {
      const views = (await Promise.all([c1.members(), c3.members()])) as Array<Array<{ state: string }>>;
      return views.every((v) => v.length === 3 && v.every((m) => m.state === 'alive'));
    }),
    'the three nodes see each other',
  );
  await c1.put('before', 'written while the disk had room');

  // Fill n3's disk. Values bigger than a page, so even the WAL segment's last partial page cannot take one.
  fillDisk(join(small, 'ballast'), 4 * 1024 * 1024);
  fillDisk(join(n2Hints, 'ballast'), 1024 * 1024);
  const big = (i: number) => Buffer.alloc(16 * 1024, i);
  // Through n1 (quorum 2 of 3): n1 and n2 take it, n3 refuses with READ_ONLY.
  await c1.put('k1', big(1));
  // Through n3 itself: its own replica fails, the coordinator still gets n1 and n2.
  await c3.put('k3', big(3));
  // Asking for all three replicas fails, and the error names the replica and why.
  const all = await t.throwsAsync(c1.put('k-all', big(4), { consistency: 'all' }));
  t.regex(all.message, /n3: READ_ONLY/);

  // n3 says it is unhealthy, everywhere an operator or a load balancer looks.
  const health = (await c3.health()) as Record<string, unknown>;
  t.false(health.ok);
  t.regex(String(health.reason), /store is read-only: disk full \(ENOSPC\)/);
  t.true(((await c1.health()) as { ok: boolean }).ok, 'n1 stays healthy');
  const http = await httpGet(nodes[2].addresses.metrics as string, '/health');
  t.is(http.status, 503);
  t.regex(http.body, /ENOSPC/);
  t.is((await httpGet(nodes[0].addresses.metrics as string, '/health')).status, 200);
  const stats = (await c3.stats()) as { store: { readOnly: boolean; readOnlyReason: string } };
  t.true(stats.store.readOnly);
  t.regex(stats.store.readOnlyReason, /ENOSPC/);
  const metrics = (await httpGet(nodes[2].addresses.metrics as string, '/metrics')).body;
  t.is(sample(metrics, 'shoal_healthy'), 0);
  t.is(sample(metrics, 'shoal_store_read_only'), 1);
  t.is(sample((await httpGet(nodes[0].addresses.metrics as string, '/metrics')).body, 'shoal_healthy'), 1);
  const cli = bufferIo();
  t.is(await runCli(['health', '--addr', nodes[2].addresses.rpc, '--timeout', '30s'], cli.io), 3);
  t.regex(cli.stdout(), /^not ok: node n3 .*store is read-only: disk full \(ENOSPC\)/m);

  // Reads go on, through n3 too, and see the writes the others took.
  t.deepEqual((await c3.get('k1'))?.value, big(1));
  t.deepEqual((await c3.get('k3'))?.value, big(3));
  t.is((await c3.get('before'))?.value.toString(), 'written while the disk had room');
  t.is(nodes[2].stats().state, 'serving');

  // Through n2: n3 refuses, so n2 keeps a hint for it, on a full disk: the write still succeeds
  // (n1 and n2 hold it), and n2 reports that it can no longer keep hints.
  await c2.put('k2', big(2));
  t.true(
    await eventually(5000, async () => /hint store failed.*ENOSPC/.test(String(((await c2.health()) as { reason?: string }).reason))),
    'n2 says its hint store failed',
  );
  t.false(((await c2.health()) as { ok: boolean }).ok);
  t.deepEqual((await c1.get('k2'))?.value, big(2));
});
