/**
 * `tsx bench/cluster-cost.ts`: what one client operation costs the server processes of a cluster,
 * in figures that hold on a loaded machine: server CPU per op (utime + stime from /proc, also net of
 * the cluster's idle CPU rate measured just before), read and write system calls per op (syscr and
 * syscw of /proc/PID/io) and voluntary context switches per op; plus the node-to-node batching figures
 * of n1 (`cluster.batching` of shoal stats). Node processes are real (test/cluster/helpers/processes.ts),
 * from the sources (tsx). For profiles: SHOAL_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" and
 * WINDOW_FILE=DIR/window.json, then `tsx bench/profile-top.ts DIR 25 DIR/window.json` (the load phase
 * only). Used for docs/PERFORMANCE.md.
 *
 * Environment: NODES (3; 1 = a single node with N=W=R=1), OPS ("put,get"), MS (per op, 4000),
 * C (32 concurrent requesters, spread over one ShoalClient per node), SET (JSON of extra --set values).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ShoalClient } from '../src/rpc/shoal-client.js';
import { eventually, ProcessCluster } from '../test/cluster/helpers/processes.js';
import { cpuMicros } from './lib/proc-cpu.js';

const NODES = Number(process.env.NODES ?? 3);
const MS = Number(process.env.MS ?? 4000);
const C = Number(process.env.C ?? 32);
const OPS = (process.env.OPS ?? 'put,get').split(',');
const KEYSPACE = 10_000;
const VALUE = Buffer.alloc(100, 'v');

function syscalls(pids: number[]): { reads: number; writes: number; switches: number } {
  let reads = 0;
  let writes = 0;
  let switches = 0;
  for (const pid of pids) {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    reads += Number(/syscr: (\d+)/.exec(io)?.[1] ?? NaN);
    writes += Number(/syscw: (\d+)/.exec(io)?.[1] ?? NaN);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    switches += Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  }
  return { reads, writes, switches };
}

const single: Record<string, string> = NODES === 1 ? { 'cluster.replicationFactor': '1', 'cluster.writeQuorum': '1', 'cluster.readQuorum': '1' } : {};
const extra = JSON.parse(process.env.SET ?? '{}') as Record<string, string>;
const pc = new ProcessCluster({ 'membership.probeIntervalMs': '500', 'cluster.ringSettleMs': '200', 'cluster.antiEntropyIntervalMs': '0', ...single, ...extra });
await pc.start('n1');
for (let i = 2; i <= NODES; i++) await pc.start(`n${i}`);
const clients = pc.addresses().map((a) => new ShoalClient({ addresses: [a], timeoutMs: 30_000, pool: { connectTimeoutMs: 30_000 } }));
await eventually(20_000, async () => ((await Promise.all(clients.map((c) => c.ring()))) as Array<{ members: unknown[] }>).every((r) => r.members.length === NODES));
await new Promise((r) => setTimeout(r, 500));
const pids = [...pc.nodes.values()].map((n) => n.child.pid as number);
const idleFrom = cpuMicros(pids) ?? 0;
await new Promise((r) => setTimeout(r, 2000));
const idleUsPerMs = ((cpuMicros(pids) ?? 0) - idleFrom) / 2000;
console.log(`load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}; idle CPU ${idleUsPerMs.toFixed(1)} µs per ms`);
const loadStart = performance.now();
for (const op of OPS) {
  let done = 0;
  let next = 0;
  const cpu0 = cpuMicros(pids) ?? 0;
  const sys0 = syscalls(pids);
  const t0 = performance.now();
  const deadline = t0 + MS;
  await Promise.all(
    Array.from({ length: C }, async (_, w) => {
      const client = clients[w % clients.length];
      while (performance.now() < deadline) {
        const key = `bench-${next++ % KEYSPACE}`;
        if (op === 'put') await client.put(key, VALUE);
        else await client.get(key);
        done += 1;
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = (cpuMicros(pids) ?? 0) - cpu0;
  const sys1 = syscalls(pids);
  console.log(
    `${op}: ${Math.round(done / (ms / 1000))} ops/s, ${(cpu / done).toFixed(1)} µs CPU/op (${((cpu - idleUsPerMs * ms) / done).toFixed(1)} net of idle), ` +
      `per op: ${((sys1.reads - sys0.reads) / done).toFixed(2)} read and ${((sys1.writes - sys0.writes) / done).toFixed(2)} write syscalls, ` +
      `${((sys1.switches - sys0.switches) / done).toFixed(2)} voluntary context switches`,
  );
}
const loadEnd = performance.now();
const stats = (await clients[0].stats()) as { cluster?: { batching?: unknown } };
console.log(`n1 batching: ${JSON.stringify(stats.cluster?.batching ?? null)}`);
await Promise.all(clients.map((c) => c.close()));
// SIGTERM (a graceful stop) so that --cpu-prof writes its profiles; the window file says when the load ran.
const windows: Record<string, [number, number]> = {};
await Promise.all(
  [...pc.nodes.values()].map(async (n) => {
    const exited = new Promise((r) => n.child.once('exit', r));
    n.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    const t = performance.now();
    windows[String(n.child.pid)] = [t - loadStart, t - loadEnd];
  }),
);
if (process.env.WINDOW_FILE) writeFileSync(process.env.WINDOW_FILE, JSON.stringify(windows));
await pc.stopAll();
