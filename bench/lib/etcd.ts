/**
 * etcd as the cluster reference of bench:cluster: a 3-member etcd cluster (Debian's etcd-server,
 * 3.4) on loopback, driven by the same kind of load generator as Shoal: C requesters, each waiting
 * for its reply, spread over the three members, 100-byte values over a fixed key space.
 *
 * etcd is Raft: every put is linearizable and fsynced (its WAL is synced per batch), every default
 * read is linearizable (a ReadIndex round through the leader); `serializable` reads are answered by
 * the member alone. Requests go through etcd's HTTP/JSON gateway (/v3/kv/put, /v3/kv/range), which
 * adds JSON and base64 work in the server beside gRPC: the note in the output says so.
 *
 * Skipped with a message when the `etcd` binary is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../../test/rpc/helpers.js';
import { cpuMicros, microsPerOp } from './proc-cpu.js';

export interface EtcdRow {
  op: 'put' | 'get (linearizable)' | 'get (serializable)';
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerOp: number | null;
}

export interface EtcdFigure {
  skipped: string | null;
  version: string;
  api: string;
  rows: EtcdRow[];
}

export interface EtcdDriveOptions {
  durationMs: number;
  concurrency: number;
  keyspace: number;
  value: Buffer;
}

/** Longest the three members may take to elect a leader and answer. */
const START_TIMEOUT_MS = 30_000;
const OPS_MAX = 2_000_000;
/** Unrecorded run before each measured phase (connections open, the leader settles). */
const WARMUP_MS = 1_000;

function etcdVersion(): string | null {
  const run = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  if (run.status !== 0) return null;
  return /etcd Version: (\S+)/.exec(run.stdout)?.[1] ?? 'unknown';
}

function post(agent: http.Agent, port: number, path: string, body: object): Promise<unknown> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) reject(new Error(`etcd ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`));
          else resolve(JSON.parse(text));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

/** Starts three members, runs put, linearizable get and serializable get, stops them. */
export async function driveEtcd(options: EtcdDriveOptions): Promise<EtcdFigure> {
  const version = etcdVersion();
  const api = 'HTTP/JSON gateway, keep-alive connections';
  if (version === null) return { skipped: 'etcd is not installed (apt-get install etcd-server): the etcd rows are left out', version: '', api, rows: [] };
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-etcd-'));
  const ports = await freePorts(6);
  const members = [0, 1, 2].map((i) => ({ name: `e${i + 1}`, client: ports[i * 2], peer: ports[i * 2 + 1] }));
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const children = members.map((m) =>
    spawn(
      'etcd',
      [
        '--name', m.name, '--data-dir', join(dir, m.name),
        '--listen-client-urls', `http://127.0.0.1:${m.client}`, '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
        '--listen-peer-urls', `http://127.0.0.1:${m.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', 'shoal-bench',
        '--log-level', 'error', '--logger', 'zap',
      ],
      { stdio: 'ignore' },
    ),
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (const m of members) {
      while (true) {
        try {
          await post(agent, m.client, '/v3/kv/put', { key: b64('bench:probe'), value: b64('x') });
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`etcd member ${m.name} did not answer within ${START_TIMEOUT_MS} ms`, { cause: err });
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
    const pids = children.map((c) => c.pid);
    const value = options.value.toString('base64');
    const rows: EtcdRow[] = [];
    const phases: Array<[EtcdRow['op'], (key: string) => object, string]> = [
      ['put', (key) => ({ key, value }), '/v3/kv/put'],
      ['get (linearizable)', (key) => ({ key }), '/v3/kv/range'],
      ['get (serializable)', (key) => ({ key, serializable: true }), '/v3/kv/range'],
    ];
    let next = 0;
    /** C requesters for `ms`; the latency of each request, unless the run is a warm-up. */
    const run = async (path: string, body: (key: string) => object, ms: number, latencies: number[] | null): Promise<void> => {
      const end = performance.now() + ms;
      let count = 0;
      await Promise.all(
        Array.from({ length: options.concurrency }, async (_, w) => {
          const port = members[w % members.length].client;
          while (performance.now() < end && count < OPS_MAX) {
            const key = b64(`bench-${next++ % options.keyspace}`);
            const t0 = performance.now();
            await post(agent, port, path, body(key));
            count += 1;
            latencies?.push(performance.now() - t0);
          }
        }),
      );
    };
    for (const [op, body, path] of phases) {
      await run(path, body, Math.min(WARMUP_MS, options.durationMs), null);
      const latencies: number[] = [];
      const cpuBefore = cpuMicros(pids);
      const start = performance.now();
      await run(path, body, options.durationMs, latencies);
      const elapsedS = (performance.now() - start) / 1000;
      const sorted = Float64Array.from(latencies).sort();
      const r3 = (x: number): number => Math.round(x * 1000) / 1000;
      rows.push({
        op,
        opsPerSec: Math.round(latencies.length / elapsedS),
        p50Ms: r3(percentile(sorted, 0.5)),
        p99Ms: r3(percentile(sorted, 0.99)),
        cpuUsPerOp: microsPerOp(cpuBefore, cpuMicros(pids), latencies.length),
      });
    }
    return { skipped: null, version, api, rows };
  } finally {
    agent.destroy();
    await stopAll(children);
    rmSync(dir, { recursive: true, force: true });
  }
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64');
}
