/**
 * Real `shoal agent` processes started as a user starts them: a cluster file and
 * `shoal agent --config FILE --node ID`, each node on its own loopback address (127.B.C.11+i) with
 * the same ports, so a node restarted on the same data dir keeps its addresses. SIGTERM, SIGKILL,
 * wiping a data dir, and the CLI (`shoal put/get/members/leave`) as separate processes. Every wait is
 * bounded; every child is killed when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ShoalClient } from '../../src/rpc/shoal-client.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
/** Children run from the repository (tsx resolves from there); the cluster file's paths are absolute. */
const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Starting a tsx process on a shared 2-core machine can take long. */
const START_MS = 90_000;

const children = new Set<ChildProcess>();
let hooked = false;
let created = 0;

export interface AgentNode {
  id: string;
  ip: string;
  gossip: string;
  rpc: string;
  dataDir: string;
}

export interface AgentClusterOptions {
  dir: string;
  nodes: number;
  /** How many of the first nodes are seeds (default 1: the cluster.example.json layout). */
  seeds?: number;
  /** Settings for every node (the cluster file's `config`). */
  config?: Record<string, unknown>;
  /** Run each child under this prefix (e.g. `ip netns exec NS`), by node id. */
  prefix?: (id: string) => string[];
  /** Addresses by node index (default 127.B.C.11+i). */
  ip?: (i: number) => string;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Fast timings for tests: a probe every 200 ms, suspicion in about a second. */
export const FAST_CONFIG = {
  membership: { probeIntervalMs: 200, probeTimeoutMs: 100, gossipIntervalMs: 50, leaveTimeoutMs: 500, reconnectIntervalMs: 1000, pushPullIntervalMs: 5000 },
  cluster: { ringSettleMs: 100 },
  rpc: { drainMs: 500 },
};

export class AgentCluster {
  readonly nodes: AgentNode[];
  readonly file: string;
  private readonly running = new Map<string, { child: ChildProcess; exit: Promise<number | null> }>();
  /** The last output of each node's latest process (kept after it exits). */
  private readonly logs = new Map<string, string>();
  /** Exit code of each node's latest process once it exited. */
  private readonly exits = new Map<string, number | null>();

  constructor(private readonly o: AgentClusterOptions) {
    const index = (process.pid * 8 + created++) % 50_000;
    const [b, c] = [150 + Math.floor(index / 250) % 100, index % 250];
    this.nodes = Array.from({ length: o.nodes }, (_, i) => {
      const ip = o.ip?.(i) ?? `127.${b}.${c}.${11 + i}`;
      return { id: `n${i + 1}`, ip, gossip: `${ip}:7101`, rpc: `${ip}:7201`, dataDir: join(o.dir, 'data', `n${i + 1}`) };
    });
    this.file = join(o.dir, 'cluster.json');
    this.writeFile();
    if (!hooked) {
      hooked = true;
      process.on('exit', () => {
        for (const child of children) child.kill('SIGKILL');
      });
    }
  }

  /** Moves a node to another address (a rescheduled machine): the cluster file is rewritten, the data dir kept. */
  move(id: string, ip: string): void {
    const n = this.node(id);
    n.ip = ip;
    n.gossip = `${ip}:7101`;
    n.rpc = `${ip}:7201`;
    this.writeFile();
  }

  private writeFile(): void {
    const o = this.o;
    writeFileSync(this.file, JSON.stringify({
      cluster: 'dev',
      seeds: this.nodes.slice(0, o.seeds ?? 1).map((n) => n.gossip),
      nodes: this.nodes.map((n) => ({ id: n.id, gossip: n.gossip, rpc: n.rpc, metrics: `${n.ip}:7301`, resp: `${n.ip}:7401`, dataDir: n.dataDir })),
      config: o.config ?? FAST_CONFIG,
    }));
  }

  node(id: string): AgentNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Spawns the agent; with `wait` 'healthy' resolves once it serves, 'answers' once it answers health at all. */
  async start(id: string, options: { wait?: 'healthy' | 'answers' | 'none'; extra?: string[] } = {}): Promise<void> {
    if (this.running.has(id)) throw new Error(`${id} is running`);
    const n = this.node(id);
    mkdirSync(n.dataDir, { recursive: true });
    const args = [process.execPath, '--import', 'tsx', MAIN, 'agent', '--config', this.file, '--node', id, ...(options.extra ?? [])];
    const full = [...(this.o.prefix?.(id) ?? []), ...args];
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SHOAL_')));
    const child = spawn(full[0], full.slice(1), { cwd: REPO, env: inherited, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    this.logs.set(id, '');
    const append = (c: Buffer) => this.logs.set(id, ((this.logs.get(id) ?? '') + c.toString()).slice(-20_000));
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    this.exits.delete(id);
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => {
      children.delete(child);
      this.running.delete(id);
      this.exits.set(id, code);
      resolve(code);
    }));
    this.running.set(id, { child, exit });
    const wait = options.wait ?? 'healthy';
    if (wait !== 'none') await this.waitHealth(id, wait === 'answers');
  }

  logOf(id: string): string {
    return this.logs.get(id) ?? '';
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  async health(id: string): Promise<Record<string, unknown> | null> {
    const client = this.client(id, 2000);
    try {
      return (await client.health()) as Record<string, unknown>;
    } catch {
      return null;
    } finally {
      await client.close();
    }
  }

  async waitHealth(id: string, orAnswering = false, ms = START_MS): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (!this.running.has(id)) throw new Error(`${id} exited during start:\n${this.logOf(id)}`);
      const h = await this.health(id);
      if (h !== null && (h.ok === true || orAnswering)) return;
      await sleep(100);
    }
    throw new Error(`${id} not healthy within ${ms} ms:\n${this.logOf(id)}`);
  }

  /** SIGTERM (a graceful stop, which announces a leave) or SIGKILL; resolves with the exit code. */
  async signal(id: string, sig: 'SIGTERM' | 'SIGKILL'): Promise<number | null> {
    const entry = this.running.get(id);
    if (entry === undefined) return null;
    entry.child.kill(sig);
    return this.waitExit(id, 30_000);
  }

  /** The exit code of the node's latest process, waiting up to `ms` (then SIGKILL). */
  async waitExit(id: string, ms: number): Promise<number | null> {
    const entry = this.running.get(id);
    if (entry === undefined) return this.exits.get(id) ?? null;
    const timer = setTimeout(() => entry.child.kill('SIGKILL'), ms);
    const code = await entry.exit;
    clearTimeout(timer);
    return code;
  }

  wipe(id: string): void {
    rmSync(this.node(id).dataDir, { recursive: true, force: true });
  }

  /** A client for this node only (no fail-over). */
  client(id: string, timeoutMs = 10_000): ShoalClient {
    return new ShoalClient({ addresses: [this.node(id).rpc], clusterName: 'dev', timeoutMs, pool: { connectTimeoutMs: timeoutMs, connectionsPerAddr: 1 } });
  }

  /** `shoal ARGS --addr <id's rpc>` as a separate process. */
  cli(id: string, args: string[], prefix: string[] = []): Promise<CliResult> {
    const full = [...prefix, process.execPath, '--import', 'tsx', MAIN, ...args, '--addr', this.node(id).rpc, '--cluster', 'dev'];
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SHOAL_')));
    const child = spawn(full[0], full.slice(1), { cwd: REPO, env: inherited, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    return new Promise((resolve) => child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    }));
  }

  /** id → state as `members` on node `id` lists them (null when it does not answer). */
  async view(id: string): Promise<Record<string, string> | null> {
    const client = this.client(id, 2000);
    try {
      const rows = (await client.members()) as Array<{ id: string; state: string }>;
      return Object.fromEntries(rows.map((r) => [r.id, r.state]));
    } catch {
      return null;
    } finally {
      await client.close();
    }
  }

  /** True once every node of `ids` lists exactly `ids`, all alive (others may be listed as left). */
  async oneCluster(ids: string[]): Promise<boolean> {
    for (const id of ids) {
      const v = await this.view(id);
      if (v === null || !ids.every((x) => v[x] === 'alive')) return false;
      if (Object.entries(v).some(([x, s]) => !ids.includes(x) && s !== 'left' && s !== 'dead')) return false;
    }
    return true;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((id) => this.signal(id, 'SIGKILL')));
  }
}

export async function until(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(200);
  }
  return check();
}
