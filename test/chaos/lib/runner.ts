/**
 * One chaos run, start to finish: cluster up, workload and nemesis together, heal, convergence,
 * final reads, check, report. Used by run.ts (`npm run chaos`) and by chaos.test.ts (CI). Cleans up
 * on every path: agents stopped, the nftables table deleted, the history flushed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkHistory, type CheckResult } from './checker.js';
import { ChaosCluster, REPO_ROOT } from './cluster.js';
import { awaitConvergence } from './convergence.js';
import { HistoryWriter } from './history.js';
import { diskFullUnavailable, Nemesis } from './nemesis.js';
import { Firewall, firewallStatus } from './nft.js';
import { summaryText, timelineSvg, type RunInfo } from './report.js';
import { buildSchedule, finalMembers, prng } from './schedule.js';
import { classOfKey, clientsByNode, runOp, runWorkload } from './workload.js';

export interface ChaosOptions {
  seed: number;
  durationMs: number;
  nodes?: number;
  clients?: number;
  ratePerSec?: number;
  /** Include the all-nodes kill phase. Default true. */
  killAll?: boolean;
  /** Include a disk-full step on one node (when a tmpfs can be mounted). Default true. */
  diskFull?: boolean;
  /** Value sizes: 'mixed' (default, bytes to valueBytesMax) or 'small' (labels only). */
  values?: 'mixed' | 'small';
  /** Folder that receives `<timestamp>-seed<S>/`. Default test/chaos/runs. */
  runsDir?: string;
  /** Settings for every node (cluster file `config`), merged over CHAOS_NODE_CONFIG. */
  config?: Record<string, unknown>;
  /** Budget for convergence after the heal. Default 75 s. */
  convergeBudgetMs?: number;
  /** Minimum availability during single-node kills. Default 0.99 (issue 6). */
  availabilityMin?: number;
  /** Convergence goals after the heal. Defaults 10 s and 60 s (issue 6). */
  membershipConvergeMsMax?: number;
  replicasConvergeMsMax?: number;
  /** The command that replays this run (printed on failure). */
  command: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Give up (cleanly: agents stopped, table deleted) when the whole run takes longer. Default none. */
  deadlineMs?: number;
}

/** storage.valueBytesMax as the nodes run with it (a --set wins over the default 1 MiB). */
function configuredValueBytesMax(config: Record<string, unknown> | undefined): number {
  const storage = config?.storage as Record<string, unknown> | undefined;
  return typeof storage?.valueBytesMax === 'number' ? storage.valueBytesMax : 1024 * 1024;
}

export interface ChaosOutcome {
  result: CheckResult;
  runDir: string;
  summary: string;
}

/**
 * Node settings for chaos runs (documented in docs/CHAOS.md): JSON logs, and clean-up of copies no
 * longer owned 5 s after a ring change has been streamed instead of 30 s, so that a short run sees
 * the clean-up happen (and checks that it drops nothing the owners do not hold).
 */
export const CHAOS_NODE_CONFIG: Record<string, unknown> = {
  log: { format: 'json', level: 'info' },
  cluster: { cleanupDelayMs: 5000 },
};

/** How far past its duration the workload may run while the nemesis finishes a late schedule. */
const OVERRUN_MS_MAX = 60_000;

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) && b !== null && typeof b === 'object' && !Array.isArray(b)
      ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
      : v;
  }
  return out;
}

function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    newest = Math.max(newest, st.isDirectory() ? newestMtimeMs(p) : st.mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than src/ (the agent runs from dist). */
export function ensureBuilt(log: (line: string) => void = () => {}): void {
  const entry = join(REPO_ROOT, 'dist', 'cli', 'main.js');
  if (existsSync(entry) && statSync(entry).mtimeMs >= newestMtimeMs(join(REPO_ROOT, 'src'))) return;
  log('building dist/ (npm run build)');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 });
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '');
}

async function finalReads(cluster: ChaosCluster, history: HistoryWriter, members: string[], keys: string[], seed: number, signal: AbortSignal): Promise<void> {
  const addresses = new Map(members.map((id) => [id, cluster.node(id).rpc]));
  const clients = clientsByNode(addresses, cluster.clusterName, 5000);
  const rand = prng(seed ^ 0xf1a1);
  let next = 0;
  const worker = async () => {
    const seen = { ts: 0 };
    while (next < keys.length && !signal.aborted) {
      const key = keys[next++];
      const a = members[Math.floor(rand() * members.length)];
      const b = members.length > 1 ? members.filter((m) => m !== a)[Math.floor(rand() * (members.length - 1))] : a;
      const base = { client: 'final', op: 'get' as const, key, cls: classOfKey(key), phase: 'final' as const };
      // 'one' first: an 'all' read repairs what it reads, and would hide a lagging replica.
      await runOp(history, [clients.get(a) as NonNullable<ReturnType<typeof clients.get>>], { ...base, node: a, consistency: 'one' }, seen, 5000);
      await runOp(history, [clients.get(b) as NonNullable<ReturnType<typeof clients.get>>], { ...base, node: b, consistency: 'all' }, seen, 5000);
    }
  };
  try {
    await Promise.all(Array.from({ length: 16 }, worker));
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosOutcome> {
  const log = options.log ?? ((line: string) => console.log(`[chaos] ${line}`));
  const nodes = options.nodes ?? 5;
  const runDir = join(options.runsDir ?? join(REPO_ROOT, 'test', 'chaos', 'runs'), `${stamp()}-seed${options.seed}`);
  mkdirSync(runDir, { recursive: true });
  const skipped: string[] = [];
  const notes: string[] = [];
  ensureBuilt(log);

  const fwStatus = firewallStatus();
  let firewall: Firewall | null = null;
  if (fwStatus.available) {
    try {
      firewall = Firewall.open();
    } catch (err) {
      skipped.push(`partitions: nft failed (${(err as Error).message.split('\n')[0]})`);
    }
  } else {
    skipped.push(`partitions: ${fwStatus.reason}`);
  }
  let diskFull = options.diskFull ?? true;
  if (diskFull) {
    const reason = diskFullUnavailable();
    if (reason !== null) {
      skipped.push(`disk-full: ${reason}`);
      diskFull = false;
    }
  }
  for (const s of skipped) log(`SKIPPED ${s}`);

  const abort = new AbortController();
  const onAbort = () => abort.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const deadline = options.deadlineMs === undefined ? null : setTimeout(() => {
    log(`the run exceeded its deadline of ${options.deadlineMs} ms; stopping`);
    abort.abort();
  }, options.deadlineMs);
  const checkAborted = (phase: string) => {
    if (abort.signal.aborted) throw new Error(`run aborted ${phase} (deadline or signal)`);
  };
  const history = new HistoryWriter({ file: join(runDir, 'history.jsonl') });
  const cluster = new ChaosCluster({
    runDir, nodes, spares: nodes > 3 ? 1 : 0, signal: abort.signal,
    config: merge(CHAOS_NODE_CONFIG, options.config ?? {}),
    onUnexpectedExit: (node, code, signal) => {
      history.append({ kind: 'mark', atMs: Date.now(), name: 'crash', detail: { node, code, signal } });
      log(`node ${node} exited unexpectedly (code ${code}, signal ${signal}); see ${cluster.node(node).logFile}`);
    },
  });
  const seeds = cluster.nodes.slice(0, Math.min(3, nodes)).map((n) => n.id);
  const steps = buildSchedule({
    seed: options.seed, durationMs: options.durationMs, nodes: cluster.initial, spare: cluster.spares[0],
    keep: seeds, partitions: firewall !== null, killAll: options.killAll ?? true, diskFull,
  });
  writeFileSync(join(runDir, 'schedule.json'), JSON.stringify({ seed: options.seed, command: options.command, steps }, null, 2) + '\n');
  log(`run folder ${runDir}`);
  log(`schedule: ${steps.map((s) => `${(s.atMs / 1000).toFixed(0)}s ${s.fault} ${s.targets.join(',')}`).join('; ')}`);

  const nemesis = new Nemesis({ cluster, firewall, history, seed: options.seed, log });
  try {
    await Promise.all(cluster.initial.map((id) => cluster.start(id)));
    checkAborted('while starting the cluster');
    const formed = await awaitConvergence(cluster, { expected: cluster.initial, keys: [], budgetMs: 30_000, log: () => {}, signal: abort.signal });
    if (!formed.result.converged) throw new Error(`the cluster did not form: ${formed.result.detail ?? ''}`);
    log(`cluster of ${nodes} formed; workload for ${options.durationMs / 1000} s`);

    history.append({ kind: 'mark', atMs: Date.now(), name: 'workload-start' });
    const startMs = Date.now();
    const addresses = new Map(cluster.nodes.map((n) => [n.id, n.rpc]));
    // The workload runs for the duration and, when restarts made the schedule run late, until the
    // last fault healed (at most OVERRUN_MS_MAX more), so that every fault happens under load.
    const workloadStop = new AbortController();
    abort.signal.addEventListener('abort', () => workloadStop.abort(), { once: true });
    const [workload] = await Promise.all([
      runWorkload({
        seed: options.seed, addresses, clusterName: cluster.clusterName, history, targets: () => nemesis.currentMembers(),
        clients: options.clients, ratePerSec: options.ratePerSec, durationMs: options.durationMs + OVERRUN_MS_MAX,
        values: options.values ?? 'mixed', valueBytesMax: configuredValueBytesMax(options.config),
      }, workloadStop.signal),
      (async () => {
        try {
          await nemesis.run(steps, startMs, abort.signal);
          const rest = startMs + options.durationMs - Date.now();
          if (rest > 0) await new Promise((r) => setTimeout(r, rest));
        } finally {
          workloadStop.abort();
        }
      })(),
    ]);
    checkAborted('during the workload');
    history.append({ kind: 'mark', atMs: Date.now(), name: 'heal' });
    log(`workload done (${workload.ops} ops, ${workload.keys.length} keys); healing`);
    await nemesis.healAll();
    checkAborted('while healing');
    const expected = finalMembers(cluster.initial, steps);
    const convergence = await awaitConvergence(cluster, { expected, keys: workload.keys, budgetMs: options.convergeBudgetMs, log, signal: abort.signal });
    checkAborted('while converging');
    notes.push(...convergence.notes.map((n) => (n === 'hints' ? 'stats has no pendingHints: hint drain not measured' : n)));
    history.append({ kind: 'mark', atMs: Date.now(), name: 'converged', detail: { ...convergence.result } });
    const applyDeadlineMs = Date.now();
    log(`final reads of ${workload.keys.length} keys`);
    await finalReads(cluster, history, expected, workload.keys, options.seed, abort.signal);
    checkAborted('during the final reads');
    history.flush();

    const result = checkHistory(history.events, {
      convergence: convergence.result,
      applyDeadlineMs,
      availabilityMin: options.availabilityMin,
      membershipConvergeMsMax: options.membershipConvergeMsMax,
      replicasConvergeMsMax: options.replicasConvergeMsMax,
      ...(convergence.replicas === undefined ? {} : { replicas: convergence.replicas }),
    });
    const info: RunInfo = { seed: options.seed, durationMs: options.durationMs, nodes, command: options.command, runDir, skipped, notes };
    const summary = summaryText(result, info);
    writeFileSync(join(runDir, 'summary.txt'), summary);
    writeFileSync(join(runDir, 'summary.json'), JSON.stringify({ ...info, result }, null, 2) + '\n');
    writeFileSync(join(runDir, 'timeline.svg'), timelineSvg(history.events, result, `shoal chaos seed ${options.seed} — ${result.valid ? 'PASS' : 'FAIL'}`));
    return { result, runDir, summary };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    if (deadline !== null) clearTimeout(deadline);
    abort.abort();
    const forced = await cluster.close();
    if (forced.length > 0) log(`needed SIGKILL to stop ${forced.join(', ')} at the end`);
    firewall?.close();
    history.close();
  }
}
