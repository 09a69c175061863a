/**
 * Real `shoal agent` processes for the chaos run: a generated cluster file in the run folder, one
 * loopback address per node (127.B.C.11, .12, ... with the same ports on each, so partitions can
 * target one node by address), data dirs and logs in the run folder, and kill / stop / cont /
 * restart / terminate. Every child is killed on every exit path: `close()`, and a synchronous
 * process 'exit' hook (which also runs after SIGINT/SIGTERM when run.ts turns them into exits).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ShoalClient } from '../../../src/rpc/shoal-client.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SHOAL_BIN = join(REPO_ROOT, 'bin', 'shoal.js');
const BIND_SHIM = join(dirname(fileURLToPath(import.meta.url)), 'bind-local.mjs');

export interface ChaosNode {
  id: string;
  ip: string;
  gossip: string;
  rpc: string;
  metrics: string;
  dataDir: string;
  logFile: string;
}

export interface ClusterOptions {
  runDir: string;
  /** Nodes started at the beginning. Default 5. */
  nodes?: number;
  /** Nodes configured but not started (for a join). Default 1. */
  spares?: number;
  /** Nodes that are seeds. Default 3 (or all, if fewer). */
  seeds?: number;
  clusterName?: string;
  /** Settings for every node in config/default.json layout (the cluster file's `config`). */
  config?: Record<string, unknown>;
  /** Second and third octets of the node addresses (127.B.C.x). Default: from the pid and a per-process count, so clusters never share addresses. */
  subnet?: [number, number];
  /** How long a start may take before it counts as failed. Default 120 s (module loading alone took ~60 s on a shared 2-core machine at load 20). */
  startTimeoutMs?: number;
  /** Abandons starts (waiting for health) when this aborts. */
  signal?: AbortSignal;
  /** Called when a node exits without being told to. */
  onUnexpectedExit?: (id: string, code: number | null, signal: string | null) => void;
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
  expectExit: boolean;
  stopped: boolean;
}

const GOSSIP_PORT = 7101;
const RPC_PORT = 7201;
const METRICS_PORT = 7301;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** All children of every cluster in this process, for the exit hook. */
const allChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
let clustersCreated = 0;

function killAllSync(): void {
  for (const child of allChildren) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(child.pid, 'SIGCONT');
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

export class ChaosCluster {
  readonly nodes: ChaosNode[];
  readonly clusterFile: string;
  readonly clusterName: string;
  readonly initial: string[];
  readonly spares: string[];
  private readonly running = new Map<string, Running>();
  private readonly o: ClusterOptions;

  constructor(options: ClusterOptions) {
    this.o = options;
    const count = options.nodes ?? 5;
    const spares = options.spares ?? 1;
    const index = process.pid * 4 + (clustersCreated++ % 4);
    const [b, c] = options.subnet ?? [100 + (Math.floor(index / 250) % 150), index % 250];
    this.clusterName = options.clusterName ?? 'chaos';
    mkdirSync(join(options.runDir, 'logs'), { recursive: true });
    this.nodes = Array.from({ length: count + spares }, (_, i) => {
      const ip = `127.${b}.${c}.${11 + i}`;
      const id = `n${i + 1}`;
      return {
        id, ip,
        gossip: `${ip}:${GOSSIP_PORT}`, rpc: `${ip}:${RPC_PORT}`, metrics: `${ip}:${METRICS_PORT}`,
        dataDir: join(options.runDir, 'data', id),
        logFile: join(options.runDir, 'logs', `${id}.log`),
      };
    });
    this.initial = this.nodes.slice(0, count).map((n) => n.id);
    this.spares = this.nodes.slice(count).map((n) => n.id);
    const seeds = this.nodes.slice(0, Math.min(count, options.seeds ?? 3));
    this.clusterFile = join(options.runDir, 'cluster.json');
    writeFileSync(this.clusterFile, JSON.stringify({
      cluster: this.clusterName,
      seeds: seeds.map((n) => n.gossip),
      nodes: this.nodes.map((n) => ({ id: n.id, gossip: n.gossip, rpc: n.rpc, metrics: n.metrics, dataDir: n.dataDir })),
      ...(options.config === undefined ? {} : { config: options.config }),
    }, null, 2) + '\n');
    if (!exitHookInstalled) {
      process.on('exit', killAllSync);
      exitHookInstalled = true;
    }
  }

  node(id: string): ChaosNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`chaos: no node ${id}`);
    return n;
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  runningIds(): string[] {
    return [...this.running.keys()];
  }

  /** A client for one node only (no fail-over), for probes and stats. */
  probeClient(id: string, timeoutMs = 2000): ShoalClient {
    return new ShoalClient({ addresses: [this.node(id).rpc], clusterName: this.clusterName, timeoutMs, pool: { connectionsPerAddr: 1 } });
  }

  /** Starts the agent and waits until it answers `health`. */
  async start(id: string): Promise<void> {
    if (this.running.has(id)) throw new Error(`chaos: ${id} already running`);
    const n = this.node(id);
    mkdirSync(n.dataDir, { recursive: true });
    const fd = openSync(n.logFile, 'a');
    writeSync(fd, `\n=== chaos: starting ${id} at ${new Date().toISOString()} ===\n`);
    const child = spawn(process.execPath, [SHOAL_BIN, 'agent', '--config', this.clusterFile, '--node', id], {
      cwd: this.o.runDir,
      stdio: ['ignore', fd, fd],
      env: {
        ...process.env,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(BIND_SHIM).href}`.trim(),
        SHOAL_CHAOS_LOCAL_ADDRESS: n.ip,
      },
    });
    closeSync(fd);
    allChildren.add(child);
    const entry: Running = { child, exited: Promise.resolve(), expectExit: false, stopped: false };
    entry.exited = new Promise<void>((resolveExit) => {
      child.once('exit', (code, signal) => {
        allChildren.delete(child);
        if (this.running.get(id) === entry) this.running.delete(id);
        if (!entry.expectExit) this.o.onUnexpectedExit?.(id, code, signal);
        resolveExit();
      });
    });
    this.running.set(id, entry);
    await this.waitHealthy(id, this.o.startTimeoutMs ?? 120_000);
  }

  private async waitHealthy(id: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const client = this.probeClient(id, 1000);
    try {
      while (Date.now() < deadline) {
        if (this.o.signal?.aborted) throw new Error(`chaos: start of ${id} abandoned (run aborted)`);
        if (!this.running.has(id)) throw new Error(`chaos: ${id} exited during start (see ${this.node(id).logFile})`);
        try {
          // The agent answers health while starting, with ok: false until every layer serves.
          const health = await client.health();
          if (health !== null && typeof health === 'object' && (health as { ok?: unknown }).ok === true) return;
        } catch {
          // Not listening yet.
        }
        await sleep(100);
      }
      throw new Error(`chaos: ${id} was not healthy within ${timeoutMs} ms (see ${this.node(id).logFile})`);
    } finally {
      await client.close();
    }
  }

  private async signal(id: string, sig: NodeJS.Signals, expectExit: boolean, waitMs: number): Promise<boolean> {
    const entry = this.running.get(id);
    if (entry === undefined) return true;
    if (expectExit) entry.expectExit = true;
    if (entry.stopped && sig !== 'SIGCONT') entry.child.kill('SIGCONT');
    entry.child.kill(sig);
    if (!expectExit) return true;
    const done = await Promise.race([entry.exited.then(() => true), sleep(waitMs).then(() => false)]);
    return done;
  }

  /** SIGKILL: no chance to flush or say goodbye. */
  async kill(id: string): Promise<void> {
    if (!(await this.signal(id, 'SIGKILL', true, 10_000))) throw new Error(`chaos: ${id} survived SIGKILL`);
  }

  stop(id: string): void {
    const entry = this.running.get(id);
    if (entry === undefined) return;
    entry.stopped = true;
    entry.child.kill('SIGSTOP');
  }

  cont(id: string): void {
    const entry = this.running.get(id);
    if (entry === undefined) return;
    entry.stopped = false;
    entry.child.kill('SIGCONT');
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Returns false when SIGKILL was needed. */
  async terminate(id: string, graceMs = 10_000): Promise<boolean> {
    if (await this.signal(id, 'SIGTERM', true, graceMs)) return true;
    await this.kill(id);
    return false;
  }

  /** From now on an exit of this node is not reported as unexpected (e.g. it was asked to leave). */
  expectExit(id: string): void {
    const entry = this.running.get(id);
    if (entry !== undefined) entry.expectExit = true;
  }

  /** Waits until the node exits by itself (e.g. after leave), up to `timeoutMs`. */
  async waitExit(id: string, timeoutMs: number): Promise<boolean> {
    const entry = this.running.get(id);
    if (entry === undefined) return true;
    entry.expectExit = true;
    return Promise.race([entry.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
  }

  /** Stops every node (SIGCONT + SIGTERM, SIGKILL after `graceMs`); returns ids that needed SIGKILL. */
  async close(graceMs = 5000): Promise<string[]> {
    const ids = this.runningIds();
    for (const id of ids) this.cont(id);
    const results = await Promise.all(ids.map(async (id) => ((await this.terminate(id, graceMs)) ? null : id)));
    return results.filter((x): x is string => x !== null);
  }
}

/** True when the agent and the cluster layer exist in this checkout (src, not dist). */
export function clusterImplemented(): { ok: true } | { ok: false; reason: string } {
  for (const file of ['src/cluster/cluster-node.ts', 'src/cli/main.ts', 'src/rpc/shoal-client.ts']) {
    if (!existsSync(join(REPO_ROOT, file))) return { ok: false, reason: `${file} does not exist yet` };
  }
  return { ok: true };
}
