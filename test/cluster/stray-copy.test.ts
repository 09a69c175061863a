/**
 * Regression (found by the whole-cluster simulator, seed 6): a copy of a key this node does not own
 * that arrives while its ring stays the same (a hint replayed to it, or a write routed by another
 * node's partial ring) must be handed to the owners and dropped after cleanupDelayMs. Before the fix
 * clean-up ran only after ring changes, so a node whose ring never changed again kept the copy for good.
 *
 * Four real ClusterNodes on the simulator's clocks (src/sim/scheduler.ts) and network
 * (helpers/sim-network.ts): deterministic, and minutes of simulated time take well under a second.
 * test/sim/regressions.test.ts runs the scenario that produced such copies with the whole agent.
 */
import test, { type ExecutionContext } from 'ava';
import { ClusterNode } from '../../src/cluster/cluster-node.js';
import type { ClusterConfig } from '../../src/cluster/config.js';
import { setMutations } from '../../src/mutations.js';
import { SimScheduler, type SimProcessClock } from '../../src/sim/scheduler.js';
import type { Entry } from '../../src/storage/types.js';
import { MembershipWorld } from './helpers/membership.js';
import { MemoryStore } from './helpers/memory-store.js';
import { SimNetwork } from './helpers/sim-network.js';
import { MemoryHints } from './helpers/stand-ins.js';

const CLEANUP_DELAY_MS = 5_000;
const CONFIG: Partial<ClusterConfig> = {
  vnodes: 16,
  // Anti-entropy (between owners) has nothing to do with a copy on a non-owner; off keeps the
  // trace to the clean-up alone.
  antiEntropyIntervalMs: 0,
  hintReplayIntervalMs: 1_000,
  ringSettleMs: 500,
  cleanupDelayMs: CLEANUP_DELAY_MS,
};
const IDS = ['n1', 'n2', 'n3', 'n4'];
/** The cluster has formed, streamed and cleaned up after its joins well before this (simulated ms). */
const STABLE_AT_MS = 60_000;

interface SimNode {
  node: ClusterNode;
  store: MemoryStore;
  clock: SimProcessClock;
}

interface World {
  sched: SimScheduler;
  net: SimNetwork;
  nodes: Map<string, SimNode>;
  /** Runs the simulation `ms` further; fails the test if it stops early. */
  runFor(ms: number): Promise<void>;
  /** A promise driven by the simulation (resolved or rejected within `limitMs` of simulated time). */
  drive<T>(promise: Promise<T>, limitMs?: number): Promise<T>;
  close(): Promise<void>;
}

async function startWorld(t: ExecutionContext, seed: number): Promise<World> {
  setMutations([]);
  const sched = new SimScheduler(seed);
  const net = new SimNetwork(sched);
  const members = new MembershipWorld();
  const nodes = new Map<string, SimNode>();
  for (const id of IDS) {
    const clock = sched.clock();
    members.add(id);
    const store = new MemoryStore(() => clock.now());
    const node = await ClusterNode.start({ config: CONFIG, store, membership: members.source(id), transport: net.transport(id), hints: new MemoryHints(), clock });
    net.register(id, (op, args) => node.rpcHandler(op, args));
    nodes.set(id, { node, store, clock });
  }
  const runFor = async (ms: number): Promise<void> => {
    const stopped = await sched.run({ untilMs: sched.timeMs + ms });
    t.is(stopped, 'until', 'the simulation ran its full length');
  };
  const drive = async <T>(promise: Promise<T>, limitMs = 30_000): Promise<T> => {
    let settled = false;
    const watched = promise.finally(() => (settled = true));
    await sched.run({ untilMs: sched.timeMs + limitMs, stopWhen: () => settled });
    t.true(settled, 'the call settled on simulated time');
    return watched;
  };
  const close = async (): Promise<void> => {
    let closed = false;
    sched.at(0, () => void Promise.all([...nodes.values()].map((n) => n.node.close())).then(() => (closed = true)));
    await sched.run({ untilMs: sched.timeMs + 120_000, stopWhen: () => closed });
    for (const n of nodes.values()) n.clock.kill();
  };
  return { sched, net, nodes, runFor, drive, close };
}

/** Keys held by a node that does not own them, as node:key. */
function misplaced(w: World): string[] {
  const out: string[] = [];
  for (const [id, n] of w.nodes) for (const [key] of n.store.entries()) if (!n.node.view.owners(key).includes(id)) out.push(`${id}:${key}`);
  return out.sort();
}

function versionOf(e: Entry | undefined): string {
  return e === undefined ? 'absent' : `${e.ts}/${e.node}${e.value === null ? '/tomb' : ''}`;
}

/**
 * A stable cluster with a few keys written, then one key (or a batch) applied to the one node of the
 * four that does not own it, in a version newer than its owners hold (the owners learn it only from
 * the clean-up's hand-off).
 */
async function strayScenario(t: ExecutionContext, seed: number, op: 'internal.apply' | 'internal.applyBatch'): Promise<void> {
  const w = await startWorld(t, seed);
  const client = w.net.transport('client');
  try {
    await w.runFor(1_000);
    for (let i = 0; i < 20; i++) await w.drive(client.call(IDS[i % 4], 'put', { key: `k${i}`, value: Buffer.from(`v${i}`), consistency: 'all' }, { timeoutMs: 5_000 }));
    await w.runFor(STABLE_AT_MS - w.sched.timeMs);
    t.deepEqual(misplaced(w), [], 'the cluster starts clean');
    const checksums = new Set(IDS.map((id) => w.nodes.get(id)!.node.view.ring().checksum()));
    t.is(checksums.size, 1, 'one ring');
    const ringBefore = [...checksums][0];
    const cleanupRunsBefore = IDS.map((id) => w.nodes.get(id)!.node.cleanup.stats().runs);
    // Nothing is pending: another long stretch runs no clean-up anywhere (the ring does not change).
    await w.runFor(4 * CLEANUP_DELAY_MS);
    t.deepEqual(IDS.map((id) => w.nodes.get(id)!.node.cleanup.stats().runs), cleanupRunsBefore, 'no clean-up pending before the stray copy');

    // The stray copies: k0 (newer than its owners' version) and, for a batch, a tombstone of k1 too.
    const ref = w.nodes.get('n1')!.node.view;
    const target = IDS.find((id) => !ref.owners('k0').includes(id))!;
    const tombstoneKey = Array.from({ length: 19 }, (_, i) => `k${i + 1}`).find((k) => !ref.owners(k).includes(target))!;
    t.truthy(tombstoneKey, `another key that ${target} does not own`);
    const keys = op === 'internal.apply' ? ['k0'] : ['k0', tombstoneKey];
    const sent = new Map<string, Entry>();
    for (const key of keys) {
      const owner = ref.owners(key)[0];
      const current = w.nodes.get(owner)!.store.getEntry(key)!;
      const entry: Entry = { value: key === 'k0' ? Buffer.from('stray') : null, ts: current.ts + 1, node: owner };
      sent.set(key, entry);
    }
    const wire = [...sent].map(([key, e]) => [key, { value: e.value, ts: e.ts, node: e.node }] as const);
    const from = w.net.transport(ref.owners('k0')[0]);
    if (op === 'internal.apply') await w.drive(from.call(target, op, { key: wire[0][0], entry: wire[0][1] }, { timeoutMs: 5_000 }));
    else await w.drive(from.call(target, op, { entries: wire }, { timeoutMs: 5_000 }));
    const arrivedAt = w.sched.timeMs;
    for (const key of keys) t.is(versionOf(w.nodes.get(target)!.store.getEntry(key)), versionOf(sent.get(key)), `${target} holds the stray ${key}`);
    t.deepEqual(misplaced(w), keys.map((k) => `${target}:${k}`));

    // Clean-up waits cleanupDelayMs (in-flight streams and replays), then hands the copies over and
    // drops them; the ring never changes meanwhile.
    await w.runFor(CLEANUP_DELAY_MS / 2);
    t.deepEqual(misplaced(w), keys.map((k) => `${target}:${k}`), 'kept until cleanupDelayMs has passed');
    await w.runFor(arrivedAt + CLEANUP_DELAY_MS + 2_000 - w.sched.timeMs);
    t.deepEqual(misplaced(w), [], `${target} no longer holds copies of keys it does not own`);
    for (const key of keys) {
      t.is(w.nodes.get(target)!.store.getEntry(key), undefined, `${key} dropped from ${target}`);
      for (const owner of ref.owners(key)) {
        t.is(versionOf(w.nodes.get(owner)!.store.getEntry(key)), versionOf(sent.get(key)), `${owner} (an owner) holds the copy's version of ${key}`);
      }
    }
    for (const id of IDS) t.is(w.nodes.get(id)!.node.view.ring().checksum(), ringBefore, `${id}: the ring did not change`);
    t.true(w.nodes.get(target)!.node.cleanup.stats().dropped >= keys.length);
  } finally {
    await w.close();
  }
}

test.serial('a copy of a key the node does not own, applied by internal.apply (a hint replay) while the ring stays the same, is handed to its owners and dropped after cleanupDelayMs', async (t) => {
  await strayScenario(t, 6, 'internal.apply');
});

test.serial('stray copies from an internal.applyBatch (a value and a tombstone) are handed over and dropped after cleanupDelayMs', async (t) => {
  await strayScenario(t, 7, 'internal.applyBatch');
});
