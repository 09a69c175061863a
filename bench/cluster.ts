/**
 * Cluster benchmark (`npm run bench:cluster`): prints a table and writes bench/results/cluster.json.
 *
 * - ring: balance and join movement of the default ring for 10 and 100 nodes (bench/ring.ts).
 * - throughput: put and get through ShoalClient against real node processes on loopback, measured in
 *   the same run for one node (N=1) and three nodes (N=3, W=2, R=2): the ratio is the cost of
 *   replication. Default fsync policy ('always', group commit), 100-byte values.
 * - joinStreamMBps: a fourth node joins a three-node cluster holding SHOAL_BENCH_JOIN_KEYS keys
 *   (default 1 000 000) and streams in the ~3/4 it now owns; the rate it receives them at, from its
 *   first streamed key to its last. Loading is by internal.applyBatch (fsync 'none' on this cluster)
 *   so that it takes seconds; the key count is scaled down, and the output says so, if loading would
 *   take too long on this machine.
 *
 * Knobs (environment): SHOAL_BENCH_MS (per op and setup, default 5000), SHOAL_BENCH_CONCURRENCY (32),
 * SHOAL_BENCH_JOIN_KEYS (1e6), SHOAL_BENCH_LOAD_BUDGET_MS (90000).
 */
import { hlcPack } from '../src/cluster/hlc.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RpcPool } from '../src/rpc/client.js';
import { ShoalClient } from '../src/rpc/shoal-client.js';
import { eventually, ProcessCluster } from '../test/cluster/helpers/processes.js';
import { measureRing, type RingFigure } from './ring.js';
import { cpuMicros, loadAverage, microsPerOp } from './lib/proc-cpu.js';
import { driveEtcd, type EtcdFigure } from './lib/etcd.js';

const DURATION_MS = Number(process.env.SHOAL_BENCH_MS ?? 5_000);
const CONCURRENCY = Number(process.env.SHOAL_BENCH_CONCURRENCY ?? 32);
const JOIN_KEYS = Number(process.env.SHOAL_BENCH_JOIN_KEYS ?? 1_000_000);
const LOAD_BUDGET_MS = Number(process.env.SHOAL_BENCH_LOAD_BUDGET_MS ?? 90_000);
const KEYSPACE = 10_000;
const VALUE = Buffer.alloc(100, 'v');
const OPS_PER_OP_MAX = 2_000_000;
const QUIET = { 'membership.probeIntervalMs': '500', 'cluster.ringSettleMs': '200', 'cluster.antiEntropyIntervalMs': '0' };

interface Throughput {
  setup: 'single' | 'cluster3';
  op: 'put' | 'get';
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** utime + stime of every server process over the phase, per client operation (µs). */
  cpuUsPerOp: number | null;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function drive(clients: ShoalClient[], op: 'put' | 'get', pids: Array<number | undefined>): Promise<Omit<Throughput, 'setup'>> {
  const latencies: number[] = [];
  const deadline = performance.now() + DURATION_MS;
  let next = 0;
  const cpuBefore = cpuMicros(pids);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      const c = clients[w % clients.length];
      while (performance.now() < deadline && latencies.length < OPS_PER_OP_MAX) {
        const key = `bench-${next++ % KEYSPACE}`;
        const t0 = performance.now();
        if (op === 'put') await c.put(key, VALUE);
        else await c.get(key);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsedS = (performance.now() - start) / 1000;
  const cpuUsPerOp = microsPerOp(cpuBefore, cpuMicros(pids), latencies.length);
  const sorted = Float64Array.from(latencies).sort();
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    op,
    opsPerSec: Math.round(latencies.length / elapsedS),
    p50Ms: r3(percentile(sorted, 0.5)),
    p99Ms: r3(percentile(sorted, 0.99)),
    cpuUsPerOp,
  };
}

async function throughput(setup: 'single' | 'cluster3'): Promise<Throughput[]> {
  const nodes = setup === 'single' ? 1 : 3;
  const replication: Record<string, string> =
    setup === 'single' ? { 'cluster.replicationFactor': '1', 'cluster.writeQuorum': '1', 'cluster.readQuorum': '1' } : {};
  const pc = new ProcessCluster({ ...QUIET, ...replication });
  try {
    await pc.start('n1');
    for (let i = 2; i <= nodes; i++) await pc.start(`n${i}`);
    const clients = pc.addresses().map((addr) => new ShoalClient({ addresses: [addr], timeoutMs: 30_000, pool: { connectTimeoutMs: 30_000 } }));
    await eventually(20_000, async () => {
      const rings = (await Promise.all(clients.map((c) => c.ring()))) as Array<{ members: unknown[] }>;
      return rings.every((r) => r.members.length === nodes);
    });
    await new Promise((r) => setTimeout(r, 500)); // let bootstrap streaming rounds finish
    const out: Throughput[] = [];
    const pids = [...pc.nodes.values()].map((n) => n.child.pid);
    for (const op of ['put', 'get'] as const) out.push({ setup, ...(await drive(clients, op, pids)) });
    await Promise.all(clients.map((c) => c.close()));
    return out;
  } finally {
    await pc.stopAll();
  }
}

interface JoinFigure {
  keys: number;
  requestedKeys: number;
  scaledDown: boolean;
  keysReceived: number;
  bytesReceived: number;
  seconds: number;
  keysPerSec: number;
  MBps: number;
  loadSeconds: number;
}

async function joinStream(): Promise<JoinFigure> {
  const pc = new ProcessCluster({ ...QUIET, 'storage.fsync': 'none', 'cluster.streamBytesPerSecMax': String(2 ** 30), 'cluster.cleanupDelayMs': '0' });
  const pool = new RpcPool({ clusterName: 'dev', timeoutMs: 120_000, connectTimeoutMs: 30_000 });
  try {
    await pc.start('n1');
    await pc.start('n2');
    await pc.start('n3');
    const addrs = pc.addresses();
    const first = new ShoalClient({ addresses: [addrs[0]], timeoutMs: 30_000, pool: { connectTimeoutMs: 30_000 } });
    await eventually(20_000, async () => ((await first.ring()) as { members: unknown[] }).members.length === 3);
    await first.close();
    // Load: every key on all three nodes (N=3 over 3 nodes), batches of 1000 in parallel per node.
    const loadStart = performance.now();
    const ts = hlcPack(Date.now(), 0);
    let keys = JOIN_KEYS;
    const batch = 1000;
    for (let i = 0; i < keys; i += batch * 4) {
      const calls: Array<Promise<unknown>> = [];
      for (let b = i; b < Math.min(keys, i + batch * 4); b += batch) {
        const entries: Array<[string, Record<string, unknown>]> = [];
        for (let k = b; k < Math.min(keys, b + batch); k++) entries.push([`join-${k}`, { value: VALUE, ts: ts + k, node: 'bench' }]);
        for (const addr of addrs) calls.push(pool.call(addr, 'internal.applyBatch', { entries }));
      }
      await Promise.all(calls);
      const elapsed = performance.now() - loadStart;
      const loaded = Math.min(keys, i + batch * 4);
      if (loaded >= 50_000 && (elapsed / loaded) * keys > LOAD_BUDGET_MS && keys === JOIN_KEYS) {
        keys = Math.max(loaded, Math.floor((LOAD_BUDGET_MS / elapsed) * loaded / 10_000) * 10_000);
        process.stdout.write(`loading ${JOIN_KEYS} keys would take ~${Math.round((elapsed / loaded) * JOIN_KEYS / 1000)} s here: scaled down to ${keys}\n`);
      }
    }
    const loadSeconds = (performance.now() - loadStart) / 1000;
    const joiner = await pc.start('n4');
    const client = new ShoalClient({ addresses: [joiner.rpc], timeoutMs: 30_000, pool: { connectTimeoutMs: 30_000 } });
    type S = { cluster?: { streaming?: { keysReceived: number; bytesReceived: number; syncing: boolean; rounds: number; bootstrap: boolean } } };
    let firstAt = 0;
    let lastAt = 0;
    let streaming = { keysReceived: 0, bytesReceived: 0 };
    await eventually(600_000, async () => {
      const s = ((await client.stats().catch(() => null)) as S | null)?.cluster?.streaming;
      if (!s) return false;
      if (s.keysReceived > 0 && firstAt === 0) firstAt = performance.now();
      if (s.keysReceived > streaming.keysReceived) lastAt = performance.now();
      streaming = s;
      return s.keysReceived > 0 && !s.syncing && !s.bootstrap && s.rounds > 0;
    });
    await client.close();
    const seconds = Math.max(0.001, (lastAt - firstAt) / 1000);
    return {
      keys,
      requestedKeys: JOIN_KEYS,
      scaledDown: keys < JOIN_KEYS,
      keysReceived: streaming.keysReceived,
      bytesReceived: streaming.bytesReceived,
      seconds: Math.round(seconds * 100) / 100,
      keysPerSec: Math.round(streaming.keysReceived / seconds),
      MBps: Math.round((streaming.bytesReceived / 1e6 / seconds) * 10) / 10,
      loadSeconds: Math.round(loadSeconds),
    };
  } finally {
    await pool.close();
    await pc.stopAll();
  }
}

async function main(): Promise<void> {
  const loadAverageAtStart = loadAverage();
  console.log(`bench:cluster — load average ${loadAverageAtStart.join(' ')}`);
  const ring: RingFigure[] = await measureRing();
  const rows: Throughput[] = [...(await throughput('single')), ...(await throughput('cluster3'))];
  const etcd: EtcdFigure = await driveEtcd({ durationMs: DURATION_MS, concurrency: CONCURRENCY, keyspace: KEYSPACE, value: VALUE });
  const joinFigure = await joinStream();
  console.log('\nring (default vnodes)');
  console.table(ring.map((r) => ({ nodes: r.nodes, vnodes: r.vnodes, maxOverMean: r.maxOverMean, joinMovedOverIdeal: r.joinMovedOverIdeal })));
  console.log(`throughput: ${CONCURRENCY} concurrent clients, ${DURATION_MS} ms per row, 100-byte values, fsync always`);
  console.table(rows);
  for (const op of ['put', 'get'] as const) {
    const single = rows.find((r) => r.setup === 'single' && r.op === op);
    const three = rows.find((r) => r.setup === 'cluster3' && r.op === op);
    if (!single || !three) continue;
    const cpu = single.cpuUsPerOp && three.cpuUsPerOp ? ` (goal ≥ 0.6); CPU per op cluster3 / single = ${(three.cpuUsPerOp / single.cpuUsPerOp).toFixed(2)} (goal ≤ 2.5)` : '';
    console.log(`${op}: cluster3 / single = ${(three.opsPerSec / single.opsPerSec).toFixed(2)}${cpu}`);
  }
  if (etcd.skipped) console.log(`etcd: ${etcd.skipped}`);
  else {
    console.log(`etcd ${etcd.version}, 3 members on loopback, same load generator (${etcd.api}):`);
    console.table(etcd.rows);
    for (const row of etcd.rows) {
      const shoal = rows.find((r) => r.setup === 'cluster3' && r.op === (row.op === 'put' ? 'put' : 'get'));
      if (shoal) console.log(`${row.op}: shoal cluster3 / etcd = ${(shoal.opsPerSec / row.opsPerSec).toFixed(2)} ops/s` + (shoal.cpuUsPerOp && row.cpuUsPerOp ? `, CPU per op ${(shoal.cpuUsPerOp / row.cpuUsPerOp).toFixed(2)}×` : ''));
    }
  }
  console.log('join streaming');
  console.table([joinFigure]);
  if (joinFigure.scaledDown) console.log(`note: scaled down from ${joinFigure.requestedKeys} to ${joinFigure.keys} keys to fit this machine`);
  const out = {
    ring,
    throughput: rows,
    etcd,
    joinStreamMBps: joinFigure.MBps,
    joinStream: joinFigure,
    loadAverageAtStart,
    loadAverageAtEnd: loadAverage(),
    settings: { concurrency: CONCURRENCY, durationMs: DURATION_MS, valueBytes: VALUE.length, keyspace: KEYSPACE, cpus: cpus().length, node: process.version },
    measuredAt: new Date().toISOString(),
  };
  const file = join(dirname(fileURLToPath(import.meta.url)), 'results', 'cluster.json');
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

await main();
