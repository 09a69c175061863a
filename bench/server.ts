/**
 * npm run bench:server — one harness drives a Shoal node (msgpack over TCP, ShoalClient) and a
 * redis-server (RESP, ioredis) with the same connections, pipelining depth, key and value sizes and
 * durability: Redis appendonly with appendfsync everysec against Shoal fsync 'interval', and always
 * against 'always'. Each of the C connections sends a batch of P requests and waits for all of them
 * (P = 1: request/response; P = 16: pipelined), like redis-benchmark -P. redis-benchmark's own
 * figures are recorded as the ceiling. Writes bench/results/server.json and prints a table.
 *
 * The system "shoal-tls" is the same Shoal node with TLS on its RPC port (security.tls, certificates
 * made with openssl as in docs/SECURITY.md), driven by TLS clients: the cost of TLS, measured in the
 * same run as plaintext Shoal (skipped with a note when openssl is missing).
 *
 * Environment: BENCH_SECONDS (per cell, default 3), BENCH_CONNECTIONS (50), BENCH_KEYS (10000),
 * BENCH_VALUE_BYTES (100), BENCH_FSYNC ("interval,always"), BENCH_SYSTEMS ("shoal,shoal-tls,redis"),
 * BENCH_ROUNDS (2), BENCH_NODE_ARGS (extra node flags for the Shoal process, e.g. --cpu-prof),
 * BENCH_OUT (results file name in bench/results, default server.json).
 *
 * The Shoal node is `shoal agent` (after `npm run build`) when src/node/ exists, else
 * `tsx bench/server.ts --serve FSYNC DIR`: openStore + RpcServer with a get/put/del handler, in its
 * own process. BENCH_SHOAL=agent|serve forces one.
 */
import { freePorts } from '../test/rpc/helpers.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { ShoalClient } from '../src/rpc/shoal-client.js';
import { loadClientTls, loadServerTls, type RpcTlsClientOptions } from '../src/rpc/tls.js';
import { makeTestCerts, type TestCerts } from '../test/security/tls-certs.js';
import { RpcServer, type RpcHandler } from '../src/rpc/server.js';
import { ShoalError } from '../src/errors.js';
import { parseDelArgs, parseGetArgs, parsePutArgs } from '../src/rpc/protocol.js';
import { openStore } from '../src/storage/store.js';
import { Hlc } from '../src/cluster/hlc.js';
import type { FsyncPolicy } from '../src/storage/types.js';
import { cpuMicros, loadAverage, microsPerOp } from './lib/proc-cpu.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLUSTER = 'bench';
const REDIS_FSYNC: Record<string, string> = { interval: 'everysec', always: 'always', none: 'no' };
const GOAL_RATIO: Record<number, number> = { 1: 0.7, 16: 0.5 };

const config = {
  seconds: Number(process.env.BENCH_SECONDS ?? 3),
  /** Unmeasured start of every cell (connections settle into the new op and depth). */
  warmupMs: 500,
  /** Unrecorded run of every cell per system before the first measured one. */
  warmupSeconds: Number(process.env.BENCH_WARMUP_SECONDS ?? 1.5),
  connections: Number(process.env.BENCH_CONNECTIONS ?? 50),
  keys: Number(process.env.BENCH_KEYS ?? 10_000),
  valueBytes: Number(process.env.BENCH_VALUE_BYTES ?? 100),
  pipelines: [1, 16],
  ops: ['put', 'get'] as const,
  fsyncs: (process.env.BENCH_FSYNC ?? 'interval,always').split(',') as FsyncPolicy[],
  systems: (process.env.BENCH_SYSTEMS ?? 'shoal,shoal-tls,redis').split(','),
  rounds: Number(process.env.BENCH_ROUNDS ?? 2),
};

type Op = (typeof config.ops)[number];

/** PEM files of a Shoal node with TLS (bench only: throwaway certificates). */
interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

interface Row {
  system: 'shoal' | 'shoal-tls' | 'redis';
  op: Op;
  pipeline: number;
  fsync: FsyncPolicy;
  connections: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** utime + stime of the server process over the measured cell, per operation (µs). */
  cpuUsPerOp: number | null;
}

interface Driver {
  /** Sends `keys.length` requests at once on this connection and waits for all of them. */
  batch(op: Op, keys: string[]): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- the Shoal node (child process)

async function serve(fsync: FsyncPolicy, dir: string, tls: TlsFiles | null): Promise<void> {
  const store = await openStore(dir, { fsync, fsyncIntervalMs: 1000, snapshotWalBytes: 0, snapshotIntervalMs: 0 });
  const hlc = new Hlc('bench');
  const handler: RpcHandler = async (op, args) => {
    switch (op) {
      case 'get': {
        const entry = store.get(parseGetArgs(args).key);
        if (!entry || entry.value === null) return null;
        return { value: entry.value, version: { ts: entry.ts, node: entry.node } };
      }
      case 'put': {
        const put = parsePutArgs(args);
        if (put.seenTs !== undefined) hlc.observe(put.seenTs);
        const version = hlc.now();
        await store.put(put.key, put.value, put.ttlMs === undefined ? { version } : { version, ttlMs: put.ttlMs });
        return { version };
      }
      case 'del': {
        const del = parseDelArgs(args);
        if (del.seenTs !== undefined) hlc.observe(del.seenTs);
        const version = hlc.now();
        await store.delete(del.key, { version });
        return { version };
      }
      default:
        throw new ShoalError('BAD_REQUEST', `unknown op "${op}"`);
    }
  };
  const server = new RpcServer({
    host: '127.0.0.1',
    port: 0,
    nodeId: 'bench',
    clusterName: CLUSTER,
    handler,
    tls: tls === null ? undefined : loadServerTls({ caFile: tls.ca, certFile: tls.cert, keyFile: tls.key }),
  });
  const { port } = await server.listen();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  const stop = async (): Promise<void> => {
    await server.close({ drainMs: 1000 });
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

/** The real agent when it exists (src/node/node.ts, built to dist/), else the composed node above. */
function shoalMode(): 'agent' | 'serve' {
  const wanted = process.env.BENCH_SHOAL;
  if (wanted === 'agent' || wanted === 'serve') return wanted;
  return existsSync(join(ROOT, 'src', 'node', 'node.ts')) && existsSync(join(ROOT, 'src', 'cli', 'main.ts')) ? 'agent' : 'serve';
}

async function startShoal(fsync: FsyncPolicy, dir: string, tls: TlsFiles | null): Promise<{ port: number; child: ChildProcess }> {
  const nodeArgs = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : [];
  if (shoalMode() === 'serve') {
    const tlsArgs = tls === null ? [] : [tls.ca, tls.cert, tls.key];
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', fileURLToPath(import.meta.url), '--serve', fsync, dir, ...tlsArgs], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('shoal node did not start in 30 s')), 30_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) {
          clearTimeout(timer);
          resolve((JSON.parse(line) as { port: number }).port);
        }
      });
      child.once('exit', (code) => reject(new Error(`shoal node exited with ${code}`)));
    });
    return { port, child };
  }
  // A single-node cluster through the real CLI: `shoal agent` with every address on loopback.
  const [rpc, gossip, metrics] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [...nodeArgs, join(ROOT, 'bin', 'shoal.js'), 'agent', '--id', 'bench', '--cluster', CLUSTER, '--data-dir', dir,
      '--rpc', `127.0.0.1:${rpc}`, '--gossip', `127.0.0.1:${gossip}`, '--metrics', `127.0.0.1:${metrics}`,
      '--fsync', fsync, '--log-level', 'warn',
      '--set', 'cluster.replicationFactor=1', '--set', 'cluster.writeQuorum=1', '--set', 'cluster.readQuorum=1',
      ...(tls === null ? [] : ['--set', 'security.tls=true', '--set', `security.tlsCa=${tls.ca}`, '--set', `security.tlsCert=${tls.cert}`, '--set', `security.tlsKey=${tls.key}`])],
    { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const probe = new ShoalClient({ addresses: [`127.0.0.1:${rpc}`], clusterName: CLUSTER, timeoutMs: 1000, tls: clientTls(tls) });
  try {
    for (let attempt = 0; ; attempt++) {
      if (child.exitCode !== null) throw new Error(`shoal agent exited with ${child.exitCode}`);
      try {
        await probe.get('bench:probe');
        return { port: rpc, child };
      } catch (err) {
        if (attempt >= 150) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await probe.close();
  }
}

function clientTls(tls: TlsFiles | null): RpcTlsClientOptions | undefined {
  return tls === null ? undefined : loadClientTls({ caFile: tls.ca });
}

function shoalDriver(port: number, tls: RpcTlsClientOptions | undefined): Driver {
  const client = new ShoalClient({
    addresses: [`127.0.0.1:${port}`],
    clusterName: CLUSTER,
    timeoutMs: 30_000,
    pool: { connectionsPerAddr: 1 },
    tls,
  });
  const value = Buffer.alloc(config.valueBytes, 'v');
  return {
    async batch(op, keys) {
      if (keys.length === 1) {
        await (op === 'put' ? client.put(keys[0], value) : client.get(keys[0]));
        return;
      }
      await Promise.all(keys.map((key) => (op === 'put' ? client.put(key, value) : client.get(key))));
    },
    close: () => client.close(),
  };
}

// ---------------------------------------------------------------- redis-server

async function freePort(): Promise<number> {
  return (await freePorts(1))[0];
}

async function startRedis(fsync: FsyncPolicy, dir: string): Promise<{ port: number; child: ChildProcess } | null> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return null;
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'yes',
      '--appendfsync', REDIS_FSYNC[fsync], '--daemonize', 'no', '--logfile', ''],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {}); // not up yet: retried below
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return { port, child };
    } catch {
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill();
  throw new Error('redis-server did not start');
}

function redisDriver(port: number): Driver {
  const redis = new Redis({ host: '127.0.0.1', port, enableAutoPipelining: false });
  const value = Buffer.alloc(config.valueBytes, 'v');
  return {
    async batch(op, keys) {
      if (keys.length === 1) {
        await (op === 'put' ? redis.set(keys[0], value) : redis.getBuffer(keys[0]));
        return;
      }
      const pipe = redis.pipeline();
      for (const key of keys) {
        if (op === 'put') pipe.set(key, value);
        else pipe.getBuffer(key);
      }
      const results = await pipe.exec();
      for (const [err] of results ?? []) if (err) throw err;
    },
    async close() {
      await redis.quit();
    },
  };
}

/** redis-benchmark's own figures for the same shape: the ceiling of what Redis can do here. */
function redisBenchmark(port: number, pipeline: number): Record<string, unknown>[] {
  const requests = pipeline === 1 ? 100_000 : 400_000;
  const run = spawnSync(
    'redis-benchmark',
    ['-h', '127.0.0.1', '-p', String(port), '-c', String(config.connections), '-n', String(requests),
      '-d', String(config.valueBytes), '-r', String(config.keys), '-P', String(pipeline), '-t', 'set,get', '--csv'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const lines = (run.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('"'));
  if (lines.length < 2) return [];
  const header = lines[0].split(',').map((h) => h.replaceAll('"', ''));
  return lines.slice(1).map((line) => {
    const cells = line.split(',').map((c) => c.replaceAll('"', ''));
    const row: Record<string, unknown> = { pipeline };
    header.forEach((h, i) => (row[h] = i === 0 ? cells[i] : Number(cells[i])));
    return row;
  });
}

// ---------------------------------------------------------------- the harness

function keyName(i: number): string {
  return `key:${String(i).padStart(10, '0')}`;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Runs C workers (one per driver) for warmup + `seconds`; each keeps one batch of P in flight. */
async function runCell(drivers: Driver[], op: Op, pipeline: number, pid: number | undefined, seconds = config.seconds): Promise<Omit<Row, 'system' | 'fsync'>> {
  const start = performance.now();
  const measureFrom = start + config.warmupMs;
  const end = measureFrom + seconds * 1000;
  const latencies: number[] = [];
  let ops = 0;
  // CPU is read on timers at the window's edges: ops counted in the window share its CPU.
  let cpuFrom: number | null = null;
  let cpuTo: number | null = null;
  const fromTimer = setTimeout(() => (cpuFrom = cpuMicros([pid])), config.warmupMs);
  const toTimer = setTimeout(() => (cpuTo = cpuMicros([pid])), config.warmupMs + seconds * 1000);
  const samplesMax = 2_000_000;
  await Promise.all(
    drivers.map(async (driver) => {
      const keys = new Array<string>(pipeline);
      while (true) {
        const t0 = performance.now();
        if (t0 >= end) return;
        for (let i = 0; i < pipeline; i++) keys[i] = keyName(Math.floor(Math.random() * config.keys));
        await driver.batch(op, keys);
        const t1 = performance.now();
        if (t0 >= measureFrom && t1 <= end) {
          ops += pipeline;
          if (latencies.length < samplesMax) latencies.push(t1 - t0);
        }
      }
    }),
  );
  clearTimeout(fromTimer);
  clearTimeout(toTimer);
  latencies.sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    op,
    pipeline,
    connections: drivers.length,
    opsPerSec: Math.round(ops / seconds),
    p50Ms: round(percentile(latencies, 0.5)),
    p99Ms: round(percentile(latencies, 0.99)),
    cpuUsPerOp: microsPerOp(cpuFrom, cpuTo, ops),
  };
}

/** Writes every key once so that gets find values. */
async function prefill(drivers: Driver[]): Promise<void> {
  const chunk = Math.ceil(config.keys / drivers.length);
  await Promise.all(
    drivers.map(async (driver, d) => {
      for (let i = d * chunk; i < Math.min(config.keys, (d + 1) * chunk); i += 16) {
        const keys: string[] = [];
        for (let k = i; k < Math.min(i + 16, config.keys, (d + 1) * chunk); k++) keys.push(keyName(k));
        await driver.batch('put', keys);
      }
    }),
  );
}

interface System {
  name: Row['system'];
  drivers: Driver[];
  /** The server process whose CPU is charged to this system's operations. */
  pid: number | undefined;
}

/**
 * Runs every (op, pipeline) cell on each system in turn, `rounds` times, interleaved, and keeps each
 * system's best round: the machine is shared, and interleaving exposes both systems to the same
 * background load instead of giving one of them a quiet minute.
 */
async function measure(systems: System[], fsync: FsyncPolicy): Promise<Row[]> {
  const rows: Row[] = [];
  for (const system of systems) {
    await prefill(system.drivers);
    // Unrecorded warm-up of every cell: a Node process runs its hot path interpreted at first, and
    // the first seconds would otherwise measure the JIT rather than the server.
    for (const op of config.ops) {
      for (const pipeline of config.pipelines) await runCell(system.drivers, op, pipeline, system.pid, config.warmupSeconds);
    }
  }
  for (const op of config.ops) {
    for (const pipeline of config.pipelines) {
      const best = new Map<string, Row>();
      for (let round = 0; round < config.rounds; round++) {
        for (const system of systems) {
          const cell: Row = { system: system.name, fsync, ...(await runCell(system.drivers, op, pipeline, system.pid)) };
          const previous = best.get(system.name);
          if (!previous || cell.opsPerSec > previous.opsPerSec) best.set(system.name, cell);
          process.stderr.write(`  ${system.name} ${fsync} ${op} P=${pipeline} round ${round + 1}: ${cell.opsPerSec} ops/s, p50 ${cell.p50Ms} ms, p99 ${cell.p99Ms} ms, ${cell.cpuUsPerOp ?? '-'} µs CPU/op\n`);
        }
      }
      rows.push(...best.values());
    }
  }
  return rows;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Shoal with TLS against plaintext Shoal, cell by cell. */
function tlsTable(rows: Row[]): string {
  const lines = [
    'op   P   fsync     | plain ops/s  p50 ms  p99 ms |   tls ops/s  p50 ms  p99 ms | tls/plain',
    '-----------------------------------------------------------------------------------------',
  ];
  const fmt = (n: number, w: number): string => String(n).padStart(w);
  for (const tls of rows.filter((r) => r.system === 'shoal-tls')) {
    const plain = rows.find((r) => r.system === 'shoal' && r.op === tls.op && r.pipeline === tls.pipeline && r.fsync === tls.fsync);
    if (!plain) continue;
    lines.push(
      `${tls.op.padEnd(4)} ${String(tls.pipeline).padStart(2)}  ${tls.fsync.padEnd(9)} |` +
        ` ${fmt(plain.opsPerSec, 11)} ${fmt(plain.p50Ms, 7)} ${fmt(plain.p99Ms, 7)} |` +
        ` ${fmt(tls.opsPerSec, 11)} ${fmt(tls.p50Ms, 7)} ${fmt(tls.p99Ms, 7)} |` +
        ` ${(tls.opsPerSec / plain.opsPerSec).toFixed(2).padStart(9)}`,
    );
  }
  return lines.join('\n');
}

function table(rows: Row[]): string {
  const lines = [
    'op   P   fsync     | shoal ops/s  p50 ms  p99 ms  µs/op | redis ops/s  p50 ms  p99 ms  µs/op | ratio  CPU×  goal',
    '------------------------------------------------------------------------------------------------------------------',
  ];
  const fmt = (n: number | undefined, w: number): string => (n === undefined ? '-' : String(n)).padStart(w);
  for (const shoal of rows.filter((r) => r.system === 'shoal')) {
    const redis = rows.find((r) => r.system === 'redis' && r.op === shoal.op && r.pipeline === shoal.pipeline && r.fsync === shoal.fsync);
    const ratio = redis ? shoal.opsPerSec / redis.opsPerSec : undefined;
    const goal = shoal.fsync === 'interval' ? GOAL_RATIO[shoal.pipeline] : undefined;
    const verdict = ratio === undefined || goal === undefined ? '' : `≥${goal} ${ratio >= goal ? 'met' : 'MISSED'}`;
    const cpuRatio = shoal.cpuUsPerOp !== null && redis?.cpuUsPerOp ? shoal.cpuUsPerOp / redis.cpuUsPerOp : undefined;
    lines.push(
      `${shoal.op.padEnd(4)} ${String(shoal.pipeline).padStart(2)}  ${shoal.fsync.padEnd(9)} |` +
        ` ${fmt(shoal.opsPerSec, 11)} ${fmt(shoal.p50Ms, 7)} ${fmt(shoal.p99Ms, 7)} ${fmt(shoal.cpuUsPerOp ?? undefined, 6)} |` +
        ` ${fmt(redis?.opsPerSec, 11)} ${fmt(redis?.p50Ms, 7)} ${fmt(redis?.p99Ms, 7)} ${fmt(redis?.cpuUsPerOp ?? undefined, 6)} |` +
        ` ${ratio === undefined ? '    -' : ratio.toFixed(2).padStart(5)} ${cpuRatio === undefined ? '    -' : cpuRatio.toFixed(1).padStart(5)}  ${verdict}`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  const onSignal = (): void => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  const work = mkdtempSync(join(tmpdir(), 'shoal-bench-server-'));
  const rows: Row[] = [];
  const ceiling: Record<string, unknown>[] = [];
  let redisNote: string | null = null;
  let tlsNote: string | null = null;
  let certs: TestCerts | null = null;
  if (config.systems.includes('shoal-tls')) {
    certs = makeTestCerts();
    if (certs === null) tlsNote = 'openssl is not installed: the shoal-tls rows are left out';
  }
  const tlsFiles: TlsFiles | null = certs === null ? null : { ca: certs.ca, cert: certs.node.cert, key: certs.node.key };
  if (shoalMode() === 'agent') {
    const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('npm run build failed');
  }
  const loadAverageAtStart = loadAverage();
  console.error(`bench:server — load average ${loadAverageAtStart.join(' ')}; ${config.connections} connections, ${config.keys} keys, ${config.valueBytes}-byte values, ${config.seconds} s per cell`);
  try {
    for (const fsync of config.fsyncs) {
      const systems: System[] = [];
      if (config.systems.includes('shoal')) {
        const dir = join(work, `shoal-${fsync}`);
        mkdirSync(dir);
        const shoal = await startShoal(fsync, dir, null);
        children.push(shoal.child);
        systems.push({ name: 'shoal', pid: shoal.child.pid, drivers: Array.from({ length: config.connections }, () => shoalDriver(shoal.port, undefined)) });
      }
      if (tlsFiles !== null) {
        const dir = join(work, `shoal-tls-${fsync}`);
        mkdirSync(dir);
        const shoal = await startShoal(fsync, dir, tlsFiles);
        children.push(shoal.child);
        const tls = clientTls(tlsFiles);
        systems.push({ name: 'shoal-tls', pid: shoal.child.pid, drivers: Array.from({ length: config.connections }, () => shoalDriver(shoal.port, tls)) });
      }
      let redisPort: number | null = null;
      if (config.systems.includes('redis')) {
        const dir = join(work, `redis-${fsync}`);
        mkdirSync(dir);
        const redis = await startRedis(fsync, dir);
        if (redis) {
          children.push(redis.child);
          redisPort = redis.port;
          systems.push({ name: 'redis', pid: redis.child.pid, drivers: Array.from({ length: config.connections }, () => redisDriver(redis.port)) });
        } else {
          redisNote = 'redis-server is not installed (apt-get install -y redis-server): Redis columns left empty';
        }
      }
      try {
        rows.push(...(await measure(systems, fsync)));
        if (redisPort !== null) {
          for (const pipeline of config.pipelines) {
            for (const row of redisBenchmark(redisPort, pipeline)) ceiling.push({ fsync, connections: config.connections, ...row });
          }
        }
      } finally {
        for (const system of systems) await Promise.all(system.drivers.map((d) => d.close()));
        for (const child of children.splice(0)) await stop(child);
      }
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
    certs?.remove();
  }
  const resultsDir = join(ROOT, 'bench', 'results');
  if (!existsSync(resultsDir)) mkdirSync(resultsDir, { recursive: true });
  const out = {
    when: new Date().toISOString(),
    loadAverageAtStart,
    loadAverageAtEnd: loadAverage(),
    shoalNode:
      shoalMode() === 'agent'
        ? 'shoal agent (bin/shoal.js, single node, N=W=R=1), own process'
        : 'openStore + RpcServer with a get/put/del handler (bench/server.ts --serve), own process',
    config,
    rows,
    redisBenchmark: ceiling,
    note: redisNote,
    tlsNote,
  };
  writeFileSync(join(resultsDir, process.env.BENCH_OUT ?? 'server.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.log(`load average at start ${loadAverageAtStart.join(' ')}, at end ${out.loadAverageAtEnd.join(' ')}; µs/op = server CPU (utime + stime) per operation`);
  console.log(table(rows));
  if (rows.some((r) => r.system === 'shoal-tls')) console.log(`\nShoal with TLS (same run):\n${tlsTable(rows)}`);
  if (tlsNote) console.log(tlsNote);
  if (ceiling.length > 0) {
    console.log('\nredis-benchmark (ceiling):');
    for (const r of ceiling) console.log(`  ${String(r.fsync).padEnd(9)} P=${String(r.pipeline).padEnd(3)} ${String(r.test).padEnd(4)} ${r.rps} rps, p50 ${r.p50_latency_ms} ms, p99 ${r.p99_latency_ms} ms`);
  }
  if (redisNote) console.log(redisNote);
}

if (process.argv[2] === '--serve') {
  const [ca, cert, key] = process.argv.slice(5);
  await serve(process.argv[3] as FsyncPolicy, process.argv[4], ca === undefined ? null : { ca, cert, key });
} else {
  await main();
}
