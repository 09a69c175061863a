/**
 * RESP benchmark (`npm run bench:resp`): redis-benchmark against Shoal's RESP port and against
 * redis-server in the same run, printed as a table and written to bench/results/resp.json with the
 * load average before and after (the machine may be shared: read the figures with it).
 *
 * Rows, each `redis-benchmark -t set -c 50 -d 100 -r 100000 -n N` then the same with `-t get` (so the
 * server CPU per request, utime + stime from /proc around each run, is per command) at -P 1 and -P 16:
 * - redis everysec vs Shoal fsync interval (one node, N=1), then redis always vs Shoal always;
 * - a three-node Shoal cluster (N=3, W=2, R=2, fsync interval) driven through all three nodes at
 *   once (one redis-benchmark per node, 50 clients split between them, the rates summed);
 * - for the "RESP within 10% of our own protocol" goal, the same JavaScript harness (50 connections,
 *   batches of 1 or 16 awaited together) over the same one-node setup, once through ioredis on the
 *   RESP port and once through ShoalClient on the RPC port: both pay a JS client, so the ratio is the
 *   servers' (redis-benchmark, in C, has no Shoal-protocol counterpart).
 *
 * Knobs (environment): SHOAL_BENCH_RESP_N (requests per redis-benchmark run, default 200000),
 * SHOAL_BENCH_RESP_CLIENTS (50), SHOAL_BENCH_RESP_QUICK=1 (skip the "always" rows and the cluster).
 * Needs redis-server and redis-benchmark (Debian: redis-server, redis-tools); rows that need a missing
 * tool are skipped with a message.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { ShoalClient } from '../src/rpc/shoal-client.js';
import { cpuMicros, microsPerOp } from './lib/proc-cpu.js';
import { eventually, ProcessCluster } from '../test/cluster/helpers/processes.js';

const REQUESTS = Number(process.env.SHOAL_BENCH_RESP_N ?? 200_000);
const CLIENTS = Number(process.env.SHOAL_BENCH_RESP_CLIENTS ?? 50);
const QUICK = process.env.SHOAL_BENCH_RESP_QUICK === '1';
const VALUE_BYTES = 100;
const KEYSPACE = 100_000;
const PIPELINES = [1, 16] as const;
const QUIET = { 'membership.probeIntervalMs': '500', 'cluster.ringSettleMs': '200', 'cluster.antiEntropyIntervalMs': '0', 'node.resp': '127.0.0.1:0' };
const SINGLE = { 'cluster.replicationFactor': '1', 'cluster.writeQuorum': '1', 'cluster.readQuorum': '1' };

interface Row {
  target: string;
  fsync: string;
  /** resp: redis-benchmark; resp-js and shoal-rpc-js: the same JS harness with ioredis and ShoalClient. */
  protocol: 'resp' | 'resp-js' | 'shoal-rpc-js';
  pipeline: number;
  op: 'set' | 'get';
  opsPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Server CPU (utime + stime of the server processes) per request, µs; null for the JS harness rows. */
  cpuUsPerOp: number | null;
}

function have(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a !== null && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

/** One redis-benchmark run of one command: its row parsed from the --csv output. */
async function redisBenchmark(host: string, port: number, op: 'set' | 'get', pipeline: number, clients: number, requests: number): Promise<{ rps: number; p50: number; p99: number }> {
  const out = await run('redis-benchmark', [
    '-h', host, '-p', String(port), '-t', op, '-c', String(clients), '-d', String(VALUE_BYTES),
    '-r', String(KEYSPACE), '-n', String(requests), '-P', String(pipeline), '--csv',
  ]);
  for (const line of out.split('\n')) {
    const cells = line.split(',').map((c) => c.replace(/"/g, ''));
    if (cells[0]?.toLowerCase() === op && cells.length >= 7) return { rps: Number(cells[1]), p50: Number(cells[4]), p99: Number(cells[6]) };
  }
  throw new Error(`unexpected redis-benchmark output: ${out}`);
}

/**
 * SET then GET (the GET run reads the keys the SET run wrote), each as one redis-benchmark per
 * address run at once, with the server processes' CPU (`pids`) read around each.
 */
async function benchRespTarget(target: string, fsync: string, addrs: Array<{ host: string; port: number }>, pids: Array<number | undefined>, out: Row[]): Promise<void> {
  for (const pipeline of PIPELINES) {
    for (const op of ['set', 'get'] as const) {
      const clients = Math.max(1, Math.round(CLIENTS / addrs.length));
      const requests = Math.max(1000, Math.round(REQUESTS / addrs.length));
      const before = cpuMicros(pids);
      const mine = await Promise.all(addrs.map((a) => redisBenchmark(a.host, a.port, op, pipeline, clients, requests)));
      const after = cpuMicros(pids);
      out.push({
        target,
        fsync,
        protocol: 'resp',
        pipeline,
        op,
        opsPerSec: Math.round(mine.reduce((s, r) => s + r.rps, 0)),
        p50Ms: addrs.length === 1 ? mine[0].p50 : null,
        p99Ms: addrs.length === 1 ? mine[0].p99 : null,
        cpuUsPerOp: microsPerOp(before, after, requests * addrs.length),
      });
    }
  }
}

async function withRedis<T>(appendfsync: 'everysec' | 'always', work: (port: number, pid: number | undefined) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', appendfsync, '--dir', dir], { stdio: 'ignore' });
  try {
    const up = await eventually(10_000, () => spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG');
    if (!up) throw new Error('redis-server did not start');
    return await work(port, child.pid);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

function hostPort(addr: string): { host: string; port: number } {
  const at = addr.lastIndexOf(':');
  return { host: addr.slice(0, at), port: Number(addr.slice(at + 1)) };
}

interface JsDriver {
  batch(op: 'set' | 'get', keys: string[]): Promise<void>;
  close(): Promise<void>;
}

function rpcDriver(addr: string): JsDriver {
  const client = new ShoalClient({ addresses: [addr], timeoutMs: 60_000, pool: { connectionsPerAddr: 1, connectTimeoutMs: 30_000 } });
  const value = Buffer.alloc(VALUE_BYTES, 'x');
  return {
    async batch(op, keys) {
      await Promise.all(keys.map((k) => (op === 'set' ? client.put(k, value) : client.get(k))));
    },
    close: () => client.close(),
  };
}

function respDriver(addr: string): JsDriver {
  const { host, port } = hostPort(addr);
  const redis = new Redis({ host, port, enableAutoPipelining: false, maxRetriesPerRequest: 0 });
  const value = Buffer.alloc(VALUE_BYTES, 'x');
  return {
    async batch(op, keys) {
      const pipe = redis.pipeline();
      for (const k of keys) {
        if (op === 'set') pipe.set(k, value);
        else pipe.getBuffer(k);
      }
      const results = await pipe.exec();
      for (const [e] of results ?? []) if (e) throw e;
    },
    async close() {
      await redis.quit();
    },
  };
}

/**
 * The same JavaScript harness over both protocols of one node: CLIENTS connections (ShoalClient with
 * one pooled connection each, or ioredis), each sending batches of `pipeline` requests and waiting for
 * them, like redis-benchmark -P. Both sides pay a JS client, so the ratio is the servers'.
 */
async function benchJs(protocol: 'resp-js' | 'shoal-rpc-js', addr: string, fsync: string, pipeline: number, out: Row[]): Promise<void> {
  const drivers = Array.from({ length: CLIENTS }, () => (protocol === 'resp-js' ? respDriver(addr) : rpcDriver(addr)));
  try {
    for (const op of ['set', 'get'] as const) {
      let issued = 0;
      const start = performance.now();
      await Promise.all(
        drivers.map(async (d) => {
          while (issued < REQUESTS) {
            const size = Math.min(pipeline, REQUESTS - issued);
            issued += size;
            await d.batch(op, Array.from({ length: size }, () => `key:${Math.floor(Math.random() * KEYSPACE)}`));
          }
        }),
      );
      const seconds = (performance.now() - start) / 1000;
      out.push({ target: 'shoal 1 node', fsync, protocol, pipeline, op, opsPerSec: Math.round(REQUESTS / seconds), p50Ms: null, p99Ms: null, cpuUsPerOp: null });
    }
  } finally {
    await Promise.all(drivers.map((d) => d.close()));
  }
}

async function withShoal<T>(nodes: number, set: Record<string, string>, work: (pc: ProcessCluster) => Promise<T>): Promise<T> {
  const pc = new ProcessCluster({ ...QUIET, ...set });
  try {
    await pc.start('n1');
    for (let i = 2; i <= nodes; i++) await pc.start(`n${i}`);
    const client = new ShoalClient({ addresses: pc.addresses(), timeoutMs: 30_000, pool: { connectTimeoutMs: 30_000 } });
    await eventually(20_000, async () => ((await client.ring()) as { members: unknown[] }).members.length === nodes);
    await client.close();
    await new Promise((r) => setTimeout(r, 500));
    return await work(pc);
  } finally {
    await pc.stopAll();
  }
}

function respAddrs(pc: ProcessCluster): Array<{ host: string; port: number }> {
  return [...pc.nodes.values()].map((n) => hostPort(n.resp ?? ''));
}

function pidsOf(pc: ProcessCluster): Array<number | undefined> {
  return [...pc.nodes.values()].map((n) => n.child.pid);
}

async function main(): Promise<void> {
  if (!have('redis-benchmark')) {
    console.log('redis-benchmark is not installed (Debian: apt-get install redis-tools): nothing to measure');
    return;
  }
  const haveRedis = have('redis-server');
  if (!haveRedis) console.log('redis-server is not installed: the Redis rows are skipped');
  const loadBefore = loadavg();
  const rows: Row[] = [];
  const policies: Array<['everysec' | 'always', 'interval' | 'always']> = QUICK ? [['everysec', 'interval']] : [['everysec', 'interval'], ['always', 'always']];
  for (const [redisFsync, shoalFsync] of policies) {
    if (haveRedis) await withRedis(redisFsync, (port, pid) => benchRespTarget('redis 1 node', redisFsync, [{ host: '127.0.0.1', port }], [pid], rows));
    await withShoal(1, { ...SINGLE, 'storage.fsync': shoalFsync }, async (pc) => {
      await benchRespTarget('shoal 1 node', shoalFsync, respAddrs(pc), pidsOf(pc), rows);
      const resp = [...pc.nodes.values()][0].resp ?? '';
      for (const pipeline of PIPELINES) {
        await benchJs('resp-js', resp, shoalFsync, pipeline, rows);
        await benchJs('shoal-rpc-js', pc.addresses()[0], shoalFsync, pipeline, rows);
      }
    });
  }
  if (!QUICK) {
    await withShoal(3, { 'storage.fsync': 'interval' }, (pc) => benchRespTarget('shoal 3 nodes (through all 3)', 'interval', respAddrs(pc), pidsOf(pc), rows));
  }
  const loadAfter = loadavg();

  const find = (target: string, fsync: string, protocol: string, pipeline: number, op: string) =>
    rows.find((r) => r.target === target && r.fsync === fsync && r.protocol === protocol && r.pipeline === pipeline && r.op === op);
  const ratios: Array<Record<string, unknown>> = [];
  for (const [redisFsync, shoalFsync] of policies) {
    for (const pipeline of PIPELINES) {
      for (const op of ['set', 'get'] as const) {
        const shoal = find('shoal 1 node', shoalFsync, 'resp', pipeline, op);
        const redis = find('redis 1 node', redisFsync, 'resp', pipeline, op);
        const respJs = find('shoal 1 node', shoalFsync, 'resp-js', pipeline, op);
        const rpcJs = find('shoal 1 node', shoalFsync, 'shoal-rpc-js', pipeline, op);
        ratios.push({
          fsync: `${redisFsync} vs ${shoalFsync}`,
          pipeline,
          op,
          shoalOverRedis: shoal && redis ? Math.round((shoal.opsPerSec / redis.opsPerSec) * 100) / 100 : null,
          // CPU per request, Redis's over Shoal's: the steadier figure on a shared machine.
          redisCpuOverShoalCpu: shoal?.cpuUsPerOp && redis?.cpuUsPerOp ? Math.round((redis.cpuUsPerOp / shoal.cpuUsPerOp) * 100) / 100 : null,
          respOverOwnProtocol: respJs && rpcJs ? Math.round((respJs.opsPerSec / rpcJs.opsPerSec) * 100) / 100 : null,
        });
      }
    }
  }

  console.log(`\nredis-benchmark -t set,get -c ${CLIENTS} -d ${VALUE_BYTES} -r ${KEYSPACE} -n ${REQUESTS}; ${cpus().length} cores; load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(' ')} after\n`);
  console.table(rows);
  console.log('Ratios (goals: Shoal ≥ 0.7× Redis at -P 1, ≥ 0.5× at -P 16; RESP within 10% of the own protocol):');
  console.table(ratios);

  const file = join(dirname(fileURLToPath(import.meta.url)), 'results', 'resp.json');
  await mkdir(dirname(file), { recursive: true });
  const result = {
    date: new Date().toISOString(),
    requests: REQUESTS,
    clients: CLIENTS,
    valueBytes: VALUE_BYTES,
    keyspace: KEYSPACE,
    cores: cpus().length,
    loadAverage: { before: loadBefore, after: loadAfter },
    quick: QUICK,
    rows,
    ratios,
  };
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

await main();
