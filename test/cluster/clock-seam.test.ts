/**
 * The cluster layer on the time seam (src/clock.ts, issue 12): real ClusterNodes driven entirely by the
 * simulator's scheduler (src/sim/scheduler.ts), one SimProcessClock per node, their calls delivered by
 * scheduler events (helpers/sim-network.ts). Puts and gets, a join (a ring change: streaming to the new
 * node, clean-up of copies no longer owned on the others), a crash and return (hints and their replay),
 * anti-entropy on its timer:
 * all of it runs on simulated time, no real timer armed and no real clock read from the cluster code,
 * far faster than real time, and a seed replays the same trace.
 */
import test from 'ava';
import { performance } from 'node:perf_hooks';
import { ClusterNode } from '../../src/cluster/cluster-node.js';
import type { ClusterConfig } from '../../src/cluster/config.js';
import { scanStore } from '../../src/cluster/scan.js';
import { setMutations } from '../../src/mutations.js';
import { SimScheduler, type SimProcessClock } from '../../src/sim/scheduler.js';
import { MembershipWorld } from './helpers/membership.js';
import { MemoryStore } from './helpers/memory-store.js';
import { SimNetwork } from './helpers/sim-network.js';
import { MemoryHints } from './helpers/stand-ins.js';

const CONFIG: Partial<ClusterConfig> = {
  vnodes: 16,
  antiEntropyIntervalMs: 5_000,
  hintReplayIntervalMs: 1_000,
  ringSettleMs: 1_000,
  cleanupDelayMs: 10_000,
};
/** Simulated length of one run. */
const RUN_MS = 100_000;
const KEYS = 20;
const JOIN_AT_MS = 20_000;
/** n3 is down (a crash within dead-owner grace: hints, then their replay) from here to DOWN_UNTIL_MS. */
const DOWN_AT_MS = 45_000;
const DOWN_UNTIL_MS = 56_000;

/** A frame of the cluster code (src/cluster/ and src/background.ts). */
const CLUSTER_FRAME = /\/src\/(?:cluster\/[\w-]+\.ts|background\.ts)/;

/**
 * Replaces the real timers and clocks with spies that note every call made with cluster code on the
 * stack (a module that reads Date.now or arms a real timer, or one that fell back to systemClock).
 */
function spyOnRealTime(): { offenders: string[]; restore: () => void } {
  const offenders: string[] = [];
  const g = globalThis as unknown as Record<string, unknown>;
  const restores: Array<() => void> = [];
  const check = (what: string): void => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 100;
    const stack = new Error().stack ?? '';
    Error.stackTraceLimit = limit;
    const frame = stack.split('\n').find((line) => CLUSTER_FRAME.test(line));
    if (frame !== undefined && offenders.length < 20) offenders.push(`${what} from ${frame.trim()}`);
  };
  const wrap = (target: Record<string, unknown>, name: string, label: string): void => {
    const original = target[name] as (...args: unknown[]) => unknown;
    const had = Object.getOwnPropertyDescriptor(target, name);
    Object.defineProperty(target, name, {
      configurable: true,
      writable: true,
      value: function (this: unknown, ...args: unknown[]) {
        check(label);
        return original.apply(this, args);
      },
    });
    restores.push(() => {
      if (had) Object.defineProperty(target, name, had);
      else delete target[name];
    });
  };
  for (const name of ['setTimeout', 'setInterval', 'setImmediate']) wrap(g, name, name);
  wrap(Date as unknown as Record<string, unknown>, 'now', 'Date.now');
  wrap(Math as unknown as Record<string, unknown>, 'random', 'Math.random');
  wrap(performance as unknown as Record<string, unknown>, 'now', 'performance.now');
  return { offenders, restore: () => restores.reverse().forEach((r) => r()) };
}

interface SimNode {
  node: ClusterNode;
  store: MemoryStore;
  clock: SimProcessClock;
}

interface RunResult {
  trace: string[];
  /** Problems the workload saw (a failed op, a stale read): must be empty. */
  failures: string[];
  simMs: number;
  wallMs: number;
  events: number;
  nodes: Map<string, SimNode>;
  latest: Map<string, string>;
  antiEntropyRounds: Record<string, number>;
  streamedToNewNode: number;
  cleanupDropped: number;
  hintsReplayed: number;
  /** Keys held by a node that does not own them, at the end. */
  misplaced: string[];
  /** Owners lacking the last acknowledged value, at the end. */
  missing: string[];
}

async function runWorld(seed: number): Promise<RunResult> {
  setMutations([]);
  const wallStart = performance.now();
  const sched = new SimScheduler(seed);
  const net = new SimNetwork(sched);
  const world = new MembershipWorld();
  const nodes = new Map<string, SimNode>();
  const trace: string[] = [];
  const failures: string[] = [];
  const latest = new Map<string, string>();
  const client = net.transport('client');
  const at = () => Math.round(sched.timeMs);

  const start = async (id: string): Promise<void> => {
    const clock = sched.clock({ driftPpm: Math.round((sched.random() - 0.5) * 200), offsetMs: Math.round((sched.random() - 0.5) * 50) });
    world.add(id);
    const store = new MemoryStore(() => clock.now());
    const node = await ClusterNode.start({ config: CONFIG, store, membership: world.source(id), transport: net.transport(id), hints: new MemoryHints(), clock });
    net.register(id, (op, args) => node.rpcHandler(op, args));
    nodes.set(id, { node, store, clock });
    trace.push(`${at()} start ${id}`);
  };
  const pick = (ids: string[]): string => ids[Math.floor(sched.random() * ids.length)];
  const read = (via: string, key: string, consistency: 'quorum' | 'all', expect: string): void => {
    client.call(via, 'get', { key, consistency }, { timeoutMs: 5_000 }).then(
      (r) => {
        const got = r === null ? null : Buffer.from((r as { value: Uint8Array }).value).toString();
        const version = r === null ? '-' : `${(r as { version: { ts: number; node: string } }).version.ts}.${(r as { version: { node: string } }).version.node}`;
        trace.push(`${at()} get ${key} via ${via} ${consistency} = ${got?.slice(0, 12) ?? 'null'} @${version}`);
        if (got !== expect) failures.push(`get ${key} via ${via} (${consistency}) at ${at()}: ${got?.slice(0, 12) ?? 'null'}, expected ${expect.slice(0, 12)}`);
      },
      (err: unknown) => failures.push(`get ${key} via ${via} at ${at()}: ${String(err)}`),
    );
  };
  const write = (i: number, members: string[]): void => {
    const key = `k${i % KEYS}`;
    const via = pick(members);
    const value = `${key}=${i};`.padEnd(8 + Math.floor(sched.random() * 200), '.');
    client.call(via, 'put', { key, value: Buffer.from(value) }, { timeoutMs: 5_000 }).then(
      (r) => {
        const v = (r as { version: { ts: number; node: string } }).version;
        latest.set(key, value);
        trace.push(`${at()} put ${key} via ${via} @${v.ts}.${v.node}`);
        // Read it back through another member soon after (R + W > N: it must be there).
        sched.at(50, () => read(pick(members.filter((m) => m !== via)), key, 'quorum', value));
      },
      (err: unknown) => failures.push(`put ${key} via ${via} at ${at()}: ${String(err)}`),
    );
  };

  for (const id of ['n1', 'n2', 'n3']) await start(id);
  // Three members until the join, four after; each key is rewritten every KEYS × 200 ms.
  for (let i = 0; i < 60; i++) sched.at(3_000 + i * 200, () => write(i, ['n1', 'n2', 'n3']));
  sched.at(JOIN_AT_MS, () => void start('n4'));
  for (let i = 60; i < 150; i++) sched.at(22_000 + (i - 60) * 200, () => write(i, ['n1', 'n2', 'n3', 'n4']));
  sched.at(DOWN_AT_MS, () => {
    net.down('n3');
    world.set('n3', 'dead');
    trace.push(`${at()} down n3`);
  });
  for (let i = 150; i < 200; i++) sched.at(DOWN_AT_MS + 500 + (i - 150) * 200, () => write(i, ['n1', 'n2', 'n4']));
  sched.at(DOWN_UNTIL_MS, () => {
    net.up('n3');
    world.set('n3', 'alive');
    trace.push(`${at()} up n3`);
  });
  sched.at(RUN_MS - 10_000, () => {
    for (const [key, value] of latest) for (const via of nodes.keys()) read(via, key, 'all', value);
  });
  const stopped = await sched.run({ untilMs: RUN_MS });
  if (stopped !== 'until') failures.push(`the run stopped early: ${stopped}`);

  const antiEntropyRounds: Record<string, number> = {};
  let cleanupDropped = 0;
  let hintsReplayed = 0;
  for (const [id, n] of nodes) {
    antiEntropyRounds[id] = (n.node.antiEntropy.stats() as { rounds: number }).rounds;
    cleanupDropped += n.node.cleanup.stats().dropped;
    hintsReplayed += n.node.handoff.stats().replayed;
  }
  const streamedToNewNode = (nodes.get('n4')?.node.streaming.stats() as { keysReceived: number } | undefined)?.keysReceived ?? 0;
  const misplaced: string[] = [];
  const missing: string[] = [];
  for (const [id, n] of nodes) {
    for (const [key] of n.store.entries()) if (!n.node.view.owners(key).includes(id)) misplaced.push(`${key}@${id}`);
  }
  for (const [key, value] of latest) {
    for (const owner of nodes.get('n1')!.node.view.owners(key)) {
      if (nodes.get(owner)?.store.getEntry(key)?.value?.toString() !== value) missing.push(`${key}@${owner}`);
    }
  }
  for (const [id, n] of [...nodes].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const rows = [...n.store.entries()].map(([k, e]) => `${k}:${e.ts}.${e.node}`).sort();
    trace.push(`end ${id} ${rows.join(' ')}`);
  }
  // Close inside the simulation: close() waits on the nodes' clocks.
  let closed = false;
  sched.at(0, () => {
    Promise.all([...nodes.values()].map((n) => n.node.close())).then(
      () => (closed = true),
      (err: unknown) => failures.push(`close: ${String(err)}`),
    );
  });
  await sched.run({ untilMs: RUN_MS + 60_000, stopWhen: () => closed });
  if (!closed) failures.push('the nodes did not close');
  for (const n of nodes.values()) n.clock.kill();
  return {
    trace,
    failures,
    simMs: sched.timeMs,
    wallMs: performance.now() - wallStart,
    events: sched.events,
    nodes,
    latest,
    antiEntropyRounds,
    streamedToNewNode,
    cleanupDropped,
    hintsReplayed,
    misplaced,
    missing,
  };
}

test.serial('three nodes, a join, a crash and return: anti-entropy, streaming, clean-up and hint replay run on simulated time only, and a seed replays the same trace', async (t) => {
  const spy = spyOnRealTime();
  let first: RunResult;
  let again: RunResult;
  let other: RunResult;
  try {
    first = await runWorld(42);
    again = await runWorld(42);
    other = await runWorld(43);
  } finally {
    spy.restore();
  }
  t.deepEqual(spy.offenders, [], 'no real timer or real clock used from the cluster code');
  for (const r of [first, again, other]) {
    t.deepEqual(r.failures, []);
    t.deepEqual(r.misplaced, [], 'clean-up left no copy on a non-owner');
    t.deepEqual(r.missing, [], 'every owner holds the last acknowledged value');
  }
  t.is(first.latest.size, KEYS);
  t.is(first.trace.filter((l) => l.includes(' put ')).length, 200, 'every put acknowledged');
  t.true(first.trace.filter((l) => l.includes(' get ')).length >= 200 + KEYS * 4);
  // The timers ran on simulated time: several anti-entropy intervals on every node, a streaming round
  // after the join (ringSettleMs), and the clean-up cleanupDelayMs after it.
  for (const [id, rounds] of Object.entries(first.antiEntropyRounds)) {
    const minimum = id === 'n4' ? 10 : 15;
    t.true(rounds >= minimum, `${id}: ${rounds} anti-entropy rounds in ${RUN_MS / 1000} simulated seconds`);
  }
  t.true(first.streamedToNewNode > 0, 'the new node streamed in its ranges');
  t.true(first.cleanupDropped > 0, 'the old owners dropped the copies they no longer own');
  t.true(first.hintsReplayed > 0, 'the writes n3 missed while down were replayed to it');
  // Far faster than real time (a loaded 2-core machine still does this in a fraction of the run).
  t.true(first.simMs >= RUN_MS);
  const speedup = first.simMs / first.wallMs;
  t.log(`${first.events} events, ${Math.round(first.simMs / 1000)} s simulated in ${Math.round(first.wallMs)} ms of wall time (${Math.round(speedup)}×)`);
  t.true(speedup >= 10, `only ${speedup.toFixed(1)}× real time`);
  // Reproducible: the same seed gives the same trace (versions written, reads, final stores); another
  // seed (other latencies, clock drifts, coordinators) a different one.
  t.deepEqual(again.trace, first.trace);
  t.is(again.events, first.events);
  t.notDeepEqual(other.trace, first.trace);
});

test.serial('the spy sees a cluster module that falls back to the real clock', async (t) => {
  const store = new MemoryStore();
  for (let i = 0; i < 5_000; i++) await store.apply(`k${i}`, { value: Buffer.from('v'), ts: i + 1, node: 'n1' });
  const spy = spyOnRealTime();
  let visited = 0;
  try {
    await scanStore(store, () => {
      visited += 1;
    }); // no clock given: systemClock's setImmediate, every SCAN_CHUNK_ENTRIES entries
  } finally {
    spy.restore();
  }
  t.is(visited, 5_000);
  t.true(spy.offenders.some((o) => o.startsWith('setImmediate') && o.includes('src/cluster/scan.ts')), spy.offenders.join('\n'));
});
