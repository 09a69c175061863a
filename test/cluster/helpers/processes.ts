/**
 * A cluster of real node processes on loopback (OS-chosen ports), for the socket tests and the
 * cluster benchmark: start, SIGKILL, restart on the same data dir, stop. Bounded waits everywhere.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./node-process.ts', import.meta.url));
/** Longest a node process may take to start serving (busy shared machine). */
const START_TIMEOUT_MS = 60_000;

export interface ProcessNode {
  id: string;
  rpc: string;
  gossip: string;
  /** The RESP address when the node was started with node.resp set, else null. */
  resp: string | null;
  child: ChildProcess;
}

export class ProcessCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'shoal-procs-'));
  readonly nodes = new Map<string, ProcessNode>();
  private seed: string | null = null;

  constructor(private readonly set: Record<string, string> = {}) {}

  async start(id: string, set: Record<string, string> = {}): Promise<ProcessNode> {
    const spec = { id, dataDir: join(this.dir, id), seeds: this.seed ? [this.seed] : [], set: { ...this.set, ...set } };
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${id} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      rl.once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`node ${id} exited with ${code} before serving`));
      });
    });
    const info = JSON.parse(line) as { rpc: string; gossip: string; resp?: string | null };
    const node: ProcessNode = { id, rpc: info.rpc, gossip: info.gossip, resp: info.resp ?? null, child };
    this.nodes.set(id, node);
    this.seed ??= info.gossip;
    return node;
  }

  get(id: string): ProcessNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  addresses(): string[] {
    return [...this.nodes.values()].map((n) => n.rpc);
  }

  /** SIGKILL: no leave, no flush beyond what the fsync policy made durable. */
  async kill(id: string): Promise<void> {
    const node = this.get(id);
    this.nodes.delete(id);
    await signal(node.child, 'SIGKILL', 10_000);
  }

  async stopAll(): Promise<void> {
    const nodes = [...this.nodes.values()];
    this.nodes.clear();
    await Promise.all(nodes.map((n) => signal(n.child, 'SIGKILL', 10_000)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function signal(child: ChildProcess, sig: NodeJS.Signals, waitMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, waitMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(sig);
  });
}

/** Polls `check` every 100 ms until it returns true, for at most `ms`. */
export async function eventually(ms: number, check: () => Promise<boolean> | boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
