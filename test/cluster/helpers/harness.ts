/** Starts N ClusterNodes in one process over the in-memory network and membership. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../../src/clock.js';
import { ClusterNode } from '../../../src/cluster/cluster-node.js';
import { HintStore } from '../../../src/cluster/hints.js';
import type { HintStoreLike } from '../../../src/cluster/ports.js';
import type { ClusterConfig } from '../../../src/cluster/config.js';
import { wallClock } from './clock.js';
import { MemoryStore } from './memory-store.js';
import { MembershipWorld } from './membership.js';
import { InMemoryNetwork } from './network.js';
import { MemoryHints } from './stand-ins.js';

/** Periodic tasks off: tests drive hint replay, anti-entropy and streaming explicitly. */
export const MANUAL: Partial<ClusterConfig> = {
  hintReplayIntervalMs: 0,
  antiEntropyIntervalMs: 0,
  cleanupDelayMs: 0,
  ringSettleMs: 0,
  vnodes: 64,
  // The in-memory network never hangs; generous timeouts keep a starved machine from failing tests.
  requestTimeoutMs: 120_000,
  internalTimeoutMs: 60_000,
};

export interface TestNode {
  id: string;
  node: ClusterNode;
  store: MemoryStore;
  hints: HintStoreLike;
}

export class TestCluster {
  readonly world = new MembershipWorld();
  readonly net = new InMemoryNetwork();
  readonly nodes = new Map<string, TestNode>();

  /** With `durableHints`, each node gets a real HintStore in a temp dir (removed by close()). */
  private tempDir: string | null = null;

  constructor(
    private readonly config: Partial<ClusterConfig>,
    private readonly options: { durableHints?: boolean; valueBytesMax?: number } = {},
  ) {
    if (config.frameBytesMax !== undefined) this.net.frameBytesMax = config.frameBytesMax;
  }

  private async openHints(id: string): Promise<HintStoreLike> {
    if (!this.options.durableHints) return new MemoryHints();
    this.tempDir ??= mkdtempSync(join(tmpdir(), 'shoal-hints-'));
    return HintStore.open(join(this.tempDir, id), { fsync: false });
  }

  /**
   * Starts a node. `isolated`: it sees only itself (and nobody sees it) until world.connect(id), like a
   * node running alone; `store`: a store with data already (a reused data dir); `clock`: the node's
   * Clock, or just its wall clock (timers and monotonic time then stay real).
   */
  async add(
    id: string,
    options: { clock?: Clock | (() => number); config?: Partial<ClusterConfig>; isolated?: boolean; store?: MemoryStore } = {},
  ): Promise<TestNode> {
    this.world.add(id, undefined, { isolated: options.isolated });
    const clock = typeof options.clock === 'function' ? wallClock(options.clock) : options.clock;
    const store = options.store ?? new MemoryStore(clock ? () => clock.now() : Date.now, { valueBytesMax: this.options.valueBytesMax });
    const hints = await this.openHints(id);
    const node = await ClusterNode.start({
      config: { ...MANUAL, ...this.config, ...options.config },
      store,
      membership: this.world.source(id),
      transport: this.net.transport(id),
      hints,
      clock,
    });
    this.net.register(id, (op, args) => node.rpcHandler(op, args, { remote: 'mem', peer: null }));
    const entry = { id, node, store, hints };
    this.nodes.set(id, entry);
    return entry;
  }

  get(id: string): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  ids(): string[] {
    return [...this.nodes.keys()];
  }

  /** A client call; a string `value` is sent as bin (UTF-8), as every real client does. */
  call(id: string, op: string, args: Record<string, unknown>): Promise<unknown> {
    const wire = typeof args.value === 'string' ? { ...args, value: Buffer.from(args.value) } : args;
    return this.net.transport('client').call(id, op, wire, { timeoutMs: 5_000 });
  }

  /** A crash: unreachable, and membership (eventually) says dead. */
  kill(id: string, state: 'dead' | 'suspect' = 'dead'): void {
    this.net.down(id);
    this.world.set(id, state);
  }

  revive(id: string): void {
    this.net.up(id);
    this.world.set(id, 'alive');
  }

  /** Which stores hold a live copy of key (value as utf8), by node id. */
  holders(key: string): Record<string, string | null> {
    const out: Record<string, string | null> = {};
    for (const [id, n] of this.nodes) {
      const e = n.store.getEntry(key);
      if (e) out[id] = e.value === null ? null : e.value.toString();
    }
    return out;
  }

  /** Waits for every node's background work (late replica calls, hints, read repairs). */
  async settle(): Promise<void> {
    for (const n of this.nodes.values()) if (!this.net.isDown(n.id)) await n.node.idle();
  }

  async close(): Promise<void> {
    for (const n of this.nodes.values()) {
      await n.node.close();
      await n.hints.close();
    }
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }
}

export async function startCluster(
  count: number,
  config: Partial<ClusterConfig> = {},
  options: { durableHints?: boolean; valueBytesMax?: number } = {},
): Promise<TestCluster> {
  const cluster = new TestCluster(config, options);
  for (let i = 1; i <= count; i++) await cluster.add(`n${i}`);
  await cluster.settle(); // bootstrap rounds done before the test starts
  return cluster;
}

export function str(result: unknown): string | null {
  if (result === null) return null;
  const value = (result as { value: Buffer }).value;
  return Buffer.from(value).toString();
}
