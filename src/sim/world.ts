/**
 * One seed of the whole-cluster simulator: machines (a disk and an address each) running the real
 * agent code (src/node/node.ts's startNode with a world: clock, disk and network simulated), a fault
 * plan, a workload of clients, and at the end the heal, the settling and the checker.
 *
 * Phases of a seed (simulated time):
 * 1. start: the seed machine bootstraps, the others join through it, 100 ms apart;
 * 2. storm [startMs, durationMs): the clients write and read while the plan's faults happen;
 * 3. heal at durationMs: the clients stop, partitions and loss end, disks are fixed, every machine that
 *    should run is (re)started, read-only stores are restarted by the "operator";
 * 4. settle: every `checkEveryMs` the checker runs; the seed passes once it finds nothing, and fails
 *    with what it still finds after `settleMaxMs`.
 */
import { createHash } from 'node:crypto';
import { isMutationName, MUTATIONS, type MutationName, setMutations } from '../mutations.js';
import { defaultConfig, type ShoalConfig } from '../node/config.js';
import { startNode, type Node } from '../node/node.js';
import type { FsIo } from '../storage/fsio.js';
import type { Store, Version } from '../storage/types.js';
import { compareVersion } from '../storage/types.js';
import { checkCluster, COPIES_ACKED, type NodeProbe, type Violation } from './checker.js';
import { describeFault, type Fault, planFaults } from './faults.js';
import { NodeLog, simLogger } from './logger.js';
import { SimNetwork } from './network.js';
import { SimRpcPool, serveRpc } from './rpc.js';
import { SimProcessClock, SimScheduler } from './scheduler.js';
import { type Attempt, DEFAULT_WORKLOAD, Workload, type WorkloadOptions } from './workload.js';
import { DEFAULT_RPC_LIMITS } from '../rpc/limits.js';
import { membershipWorld, SimMachineDisk } from './adapters.js';

export interface WorldOptions {
  seed: number;
  /** Machines at the start (3..9). */
  nodes: number;
  nodesMax: number;
  /** Simulated ms of the storm (faults and clients). */
  durationMs: number;
  /** Simulated ms the cluster gets after the heal to satisfy the checker. */
  settleMaxMs: number;
  checkEveryMs: number;
  /** The plan to run; default: planFaults from the seed. */
  faults?: Fault[];
  /** Run only these indexes of the plan (shrinking). */
  keep?: number[];
  mutations: MutationName[];
  workload: WorkloadOptions;
  /** Largest clock drift of a machine (ppm, either way). */
  driftPpmMax: number;
  /** Lines kept per node for a failure report. */
  logLinesPerNode: number;
  /** Print every trace line as it happens (debugging one seed). */
  printTrace?: boolean;
}

export const DEFAULT_WORLD: Omit<WorldOptions, 'seed'> = {
  nodes: 5,
  nodesMax: 7,
  durationMs: 60_000,
  settleMaxMs: 240_000,
  checkEveryMs: 5_000,
  mutations: [],
  workload: DEFAULT_WORKLOAD,
  driftPpmMax: 200,
  logLinesPerNode: 40,
};

export interface SeedResult {
  seed: number;
  ok: boolean;
  violations: Violation[];
  /** sha256 of the whole trace: equal for two runs of the same seed and plan. */
  traceHash: string;
  traceLines: number;
  plan: Fault[];
  /** Indexes of the plan that ran (all unless shrinking). */
  kept: number[];
  simulatedMs: number;
  wallMs: number;
  events: number;
  /** Simulated ms from the heal until the checker passed (null: it never did). */
  settledAfterMs: number | null;
  stats: {
    attempts: number;
    acked: number;
    reads: number;
    faultsRun: number;
    faultsSkipped: number;
    keys: number;
  };
  /** The last log lines of each node (failure reports). */
  lastLines: Record<string, string[]>;
  /** The trace's last lines (failure reports). */
  traceTail: string[];
}

type MachineState = 'up' | 'down' | 'left' | 'removed';

interface Machine {
  index: number;
  id: string;
  host: string;
  /** Moves bump this: the next address is 127.1.<generation>.<index + 1>. */
  generation: number;
  disk: SimMachineDisk;
  state: MachineState;
  driftPpm: number;
  proc: Proc | null;
  /** The store of its latest incarnation that opened one (the ack-copies oracle counts its entries). */
  lastStore: Store | null;
  log: NodeLog;
  /** A restart is scheduled (a later fault must not double it). */
  restartPending: boolean;
  /** Its data dir was wiped once: it is configured with seeds from then on. */
  wiped: boolean;
  /** Sum of the clock jumps of its incarnations (each new incarnation's clock starts unjumped). */
  clockOffsetMs: number;
  /** Hints its hint store acknowledged (durable) and delivered, since the last recovery (the hint oracle). */
  hintsAcked: number;
  hintsDelivered: number;
}

interface Proc {
  clock: SimProcessClock;
  fs: FsIo;
  node: Node | null;
  started: Promise<void>;
}

const GOSSIP_PORT = 7101;
const RPC_PORT = 7201;
const CLIENT_ADDR = '127.9.0.1:9000';
const STORM_START_MS = 3_000;

function machineHost(index: number, generation: number): string {
  return `127.1.${generation}.${index + 1}`;
}

export async function runSeed(partial: Partial<WorldOptions> & { seed: number }): Promise<SeedResult> {
  const options: WorldOptions = { ...DEFAULT_WORLD, ...partial };
  const wallStart = performance.now();
  const scheduler = new SimScheduler(options.seed);
  const net = new SimNetwork(scheduler);
  const hash = createHash('sha256');
  let traceLines = 0;
  const traceTail: string[] = [];
  const trace = {
    line(text: string) {
      hash.update(text);
      hash.update('\n');
      traceLines++;
      traceTail.push(text);
      if (options.printTrace === true) console.log(text);
      if (traceTail.length > 60) traceTail.shift();
    },
  };
  const note = (text: string) => trace.line(`${scheduler.timeMs.toFixed(1)} world ${text}`);
  const violations: Violation[] = [];
  const unhandled = (reason: unknown) => {
    const err = reason as { code?: string; message?: string; stack?: string };
    violations.push({ check: 'node-error', detail: `unhandled rejection: ${err?.code ?? ''} ${err?.message ?? String(reason)}`.trim() });
    note(`UNHANDLED REJECTION ${err?.message ?? String(reason)}`);
  };
  process.on('unhandledRejection', unhandled);
  setMutations(options.mutations);

  const plan = options.faults ?? planFaults({ seed: options.seed, nodes: options.nodes, nodesMax: options.nodesMax, startMs: STORM_START_MS, endMs: options.durationMs, gapMsMean: 4_000 });
  const kept = options.keep ?? plan.map((_, i) => i);
  const machines: Machine[] = [];
  /** Simulated times of data-dir wipes and of the crashes of removed nodes (copies destroyed: checker.ts). */
  const wipes: number[] = [];
  const stats = { faultsRun: 0, faultsSkipped: 0 };

  /** Each process incarnation has a pid of its own (the data-dir lock tells a dead owner by it). */
  const pids = new Map<number, SimProcessClock>();
  const pidOf = (clock: SimProcessClock): number => {
    const pid = 1000 + pids.size;
    pids.set(pid, clock);
    return pid;
  };
  /** Hints stand-ins acknowledged, per key: they count toward W (the ack-copies oracle). */
  const hintCopies = new Map<string, Version[]>();
  const noteHint = (key: string, entry: Version) => {
    const list = hintCopies.get(key) ?? [];
    list.push({ ts: entry.ts, node: entry.node });
    hintCopies.set(key, list);
  };
  /**
   * The durability promise at the moment of the acknowledgement: a write acknowledged at level L is on
   * at least COPIES_ACKED[L] nodes (stores holding it or something newer; stand-ins' hints for
   * `quorum`). Short TTLs are left out (the copy may have expired before the answer arrived), and so
   * are writes whose flight saw a wipe.
   */
  const checkAckCopies = (a: Attempt): void => {
    if (a.version === undefined || (a.ttlMs !== undefined && a.ttlMs < 60_000)) return;
    if (wipes.some((t) => t >= a.sentMs)) return;
    const version = a.version;
    let copies = 0;
    for (const m of machines) {
      const e = m.lastStore?.getEntry(a.key);
      if (e !== undefined && compareVersion(e, version) >= 0) copies++;
    }
    // Stand-ins' hints count toward `one` and `quorum`, not `all` (coordinator.ts).
    if (a.consistency !== 'all') for (const h of hintCopies.get(a.key) ?? []) if (compareVersion(h, version) >= 0) copies++;
    // N is the replication factor clamped to the cluster's size (members that neither left nor were removed).
    const need = Math.min(COPIES_ACKED[a.consistency], members().length);
    if (copies < need) {
      const holders = machines.map((m) => {
        const e = m.lastStore?.getEntry(a.key);
        return `${m.id}${m.proc?.node != null ? '' : '(down)'}=${e === undefined ? '-' : `${e.ts}/${e.node}`}`;
      });
      const coordinator = machines.find((m) => m.id === version.node)?.proc?.node?.internals();
      const view = coordinator === undefined || coordinator === null ? '' : ` coordinator's view: N=${coordinator.cluster.view.replicas()} owners=${coordinator.cluster.view.owners(a.key).join(',')} members=${coordinator.membership.members().map((x) => `${x.id}:${x.state}`).join(',')}`;
      violations.push({ check: 'ack-copies', detail: `${a.key}: ${a.kind} #${a.seq} acknowledged at ${a.consistency} (version ${version.ts}/${version.node}) with ${copies} copies, promised ${need} [${holders.join(' ')}]${view}` });
      note(`ACK WITH TOO FEW COPIES ${a.key}#${a.seq} ${copies}/${need}`);
    }
  };
  const gossipAddr = (m: Machine) => `${m.host}:${GOSSIP_PORT}`;
  const rpcAddr = (m: Machine) => `${m.host}:${RPC_PORT}`;

  const addMachine = (): Machine => {
    const index = machines.length;
    const m: Machine = {
      index,
      id: `n${index + 1}`,
      host: machineHost(index, 0),
      generation: 0,
      disk: new SimMachineDisk(scheduler, `/m${index + 1}`),
      state: 'down',
      driftPpm: Math.round((scheduler.random() * 2 - 1) * options.driftPpmMax),
      proc: null,
      lastStore: null,
      log: new NodeLog(options.logLinesPerNode),
      restartPending: false,
      wiped: false,
      clockOffsetMs: 0,
      hintsAcked: 0,
      hintsDelivered: 0,
    };
    machines.push(m);
    return m;
  };

  const configFor = (m: Machine): ShoalConfig => {
    const c = defaultConfig();
    c.node.id = m.id;
    c.node.dataDir = `/m${m.index + 1}/data`;
    c.node.gossip = gossipAddr(m);
    c.node.rpc = rpcAddr(m);
    c.node.resp = '';
    c.metrics.enabled = false;
    c.shutdown.leave = false; // stops are rolling restarts; leaving is its own action
    c.cluster.vnodes = 64;
    // Background work more often than by default, so more of it meets the faults of a short storm.
    c.cluster.cleanupDelayMs = 5_000;
    c.cluster.antiEntropyIntervalMs = 5_000;
    // Frames just larger than the largest value: a batch bounded by keys alone soon outgrows them.
    c.rpc.frameBytesMax = 1536 * 1024;
    // The seed machine bootstraps the cluster the first time (no seeds); every other machine, and the
    // seed on any later start, joins through the seed and the members it knew.
    // The seed list every other machine is given: the first three machines (as a DNS name would
    // list them), wherever they are now.
    // The bootstrap machine has none (cluster.example.json's n1), except after its data dir was wiped:
    // then the operator starts it with the others as seeds, as docs/CLUSTER.md ("One cluster") says,
    // instead of letting it found a second cluster.
    const bootstrap = m.index === 0 && !m.wiped;
    c.membership.seeds = bootstrap ? [] : machines.slice(0, 3).filter((x) => x !== m).map(gossipAddr);
    return c;
  };

  const start = (m: Machine, why: string): void => {
    if (m.proc !== null && !m.proc.clock.dead) return;
    const clock = scheduler.clock({ driftPpm: m.driftPpm });
    const fs = m.disk.process(clock);
    m.state = 'up';
    m.restartPending = false;
    const config = configFor(m);
    const logger = simLogger(m.id, () => scheduler.timeMs, m.log, trace);
    note(`start ${m.id} at ${m.host} (${why})`);
    const proc: Proc = { clock, fs, node: null, started: Promise.resolve() };
    m.proc = proc;
    proc.started = startNode(config, {
      logger,
      processMetrics: false,
      world: {
        clock,
        fs,
        rpcPool: new SimRpcPool(net, clock, rpcAddr(m), m.id, config.rpc.frameBytesMax, config.rpc.requestTimeoutMs),
        serveRpc: (addr, handler) => {
          serveRpc(net, clock, addr, config.rpc.frameBytesMax, async (op, args, ctx) => {
            const debugKey = process.env.SIM_DEBUG_KEY;
            if (debugKey !== undefined) {
              const items = op === 'internal.batch' ? (args.items as Array<[string, Record<string, unknown>]>) : [[op, args] as [string, Record<string, unknown>]];
              for (const [o, a] of items) if (a.key === debugKey || (Array.isArray(a.entries) && (a.entries as unknown[][]).some((e) => e[0] === debugKey))) note(`DEBUG ${m.id} serves ${o} from ${ctx.remote} ${JSON.stringify({ ...a, entry: undefined, entries: undefined, value: undefined })}`);
            }
            return handler(op, args, ctx);
          });
          return () => net.unlisten(addr, clock);
        },
        membership: membershipWorld(net, clock, m.host, fs),
        lock: { pid: pidOf(clock), isAlive: (pid) => pids.get(pid)?.dead === false },
      },
    }).then(
      (node) => {
        if (clock.dead) return;
        proc.node = node;
        const inner = node.internals();
        if (inner !== null) {
          m.lastStore = inner.store;
          // Every hint this node keeps (for a stand-in's or its own coordinator's count) is a copy.
          const hints = inner.hints;
          // The hint store's durability: what it recovered covers every hint it acknowledged and
          // did not deliver (a hint delivered may still be on disk: recovered may be more).
          const recovered = hints.targets().reduce((sum, target) => sum + hints.pendingFor(target), 0);
          if (recovered < m.hintsAcked - m.hintsDelivered) {
            violations.push({ check: 'lost-write', detail: `${m.id}'s hint store recovered ${recovered} hints, but ${m.hintsAcked - m.hintsDelivered} were acknowledged and not delivered` });
            note(`HINTS LOST ${m.id}: recovered ${recovered} < ${m.hintsAcked - m.hintsDelivered}`);
          }
          m.hintsAcked = recovered;
          m.hintsDelivered = 0;
          const add = hints.add.bind(hints);
          hints.add = async (target, key, entry) => {
            await add(target, key, entry);
            m.hintsAcked += 1;
            if (key === process.env.SIM_DEBUG_KEY) note(`DEBUG ${m.id} keeps a hint for ${target}`);
            noteHint(key, entry);
          };
          const replay = hints.replay.bind(hints);
          hints.replay = (target, send, opts) =>
            replay(target, async (key, entry) => {
              await send(key, entry);
              m.hintsDelivered += 1;
            }, opts);
        }
        note(`started ${m.id}`);
        node.stopped().then(
          () => {
            if (m.proc === proc) note(`${m.id} stopped`);
          },
          () => undefined,
        );
      },
      (err: unknown) => {
        if (clock.dead) return;
        const e = err as { code?: string; message?: string };
        if (m.disk.faultActive()) {
          // A disk that is full or failing keeps a node from starting, as it should; the heal retries.
          note(`${m.id} could not start on its faulty disk: ${e.code ?? ''} ${e.message ?? String(err)}`);
          clock.kill();
          m.disk.processDied(false);
          m.proc = null;
          m.state = 'down';
          return;
        }
        violations.push({ check: 'node-error', detail: `${m.id} failed to start: ${e.code ?? ''} ${e.message ?? String(err)}` });
        note(`${m.id} FAILED TO START ${e.code ?? ''} ${e.message ?? String(err)}`);
        clock.kill();
        m.state = 'down';
      },
    );
  };

  /** The process dies now (no goodbye); `power` also loses the disk's unsynced data. */
  const crash = (m: Machine, power: boolean): void => {
    const proc = m.proc;
    if (proc !== null) {
      proc.clock.kill();
      net.unlisten(rpcAddr(m), proc.clock);
    }
    m.disk.processDied(power);
    m.proc = null;
    m.state = 'down';
  };

  const restartLater = (m: Machine, ms: number, why: string): void => {
    m.restartPending = true;
    scheduler.at(ms, () => {
      if (m.state !== 'down' || m.proc !== null) return;
      start(m, why);
    });
  };

  const running = () => machines.filter((m) => m.state === 'up' && m.proc?.node != null);
  const up = () => machines.filter((m) => m.state === 'up');
  const members = () => machines.filter((m) => m.state === 'up' || m.state === 'down');

  const skip = (f: Fault, why: string) => {
    stats.faultsSkipped++;
    note(`skip ${describeFault(f)}: ${why}`);
  };

  const apply = (f: Fault): void => {
    const target = 'node' in f ? machines[f.node] : undefined;
    if ('node' in f && target === undefined) return skip(f, 'no such machine yet');
    const needUp = (m: Machine | undefined): m is Machine => m !== undefined && m.state === 'up' && m.proc?.node != null && !m.restartPending;
    switch (f.kind) {
      case 'kill':
      case 'power':
      case 'wipe':
      case 'move': {
        if (!needUp(target)) return skip(f, 'not running');
        if (up().length <= 2) return skip(f, 'would leave fewer than two running');
        note(`fault ${describeFault(f)}`);
        crash(target, f.kind === 'power');
        if (f.kind === 'wipe') {
          target.disk.wipe();
          target.wiped = true;
          target.hintsAcked = 0;
          target.hintsDelivered = 0;
          wipes.push(scheduler.timeMs);
        }
        if (f.kind === 'move') {
          target.generation++;
          target.host = machineHost(target.index, target.generation);
        }
        restartLater(target, f.downMs, f.kind);
        break;
      }
      case 'stop': {
        if (!needUp(target)) return skip(f, 'not running');
        if (up().length <= 2) return skip(f, 'would leave fewer than two running');
        note(`fault ${describeFault(f)}`);
        const proc = target.proc as Proc;
        target.restartPending = true;
        (proc.node as Node).stop().then(
          () => {
            if (target.proc !== proc) return;
            crash(target, false); // the process exits
            restartLater(target, f.downMs, 'after stop');
          },
          () => undefined,
        );
        break;
      }
      case 'leave': {
        if (!needUp(target)) return skip(f, 'not running');
        if (members().length <= 3) return skip(f, 'the cluster would fall below three members');
        note(`fault ${describeFault(f)}`);
        const proc = target.proc as Proc;
        const node = proc.node as Node;
        target.restartPending = true;
        // Whatever the answer says (the operator's CLI may give up first), a node that stops after
        // being asked to leave has left; one that still serves after a failed answer has not.
        node.stopped().then(
          () => {
            // Stopped for another reason (a graceful stop while the leave was refused): not a leave.
            if (target.proc !== proc || node.internals()?.membership.self().state !== 'left') return;
            note(`${target.id} left and stopped`);
            crash(target, false); // the process exits
            target.state = 'left';
            if (f.rejoinAfterMs !== null) {
              scheduler.at(f.rejoinAfterMs, () => {
                if (target.state === 'left') start(target, 'rejoin after leave');
              });
            }
          },
          () => undefined,
        );
        callClient(rpcAddr(target), 'leave', {}).then(
          () => {
            note(`${target.id} acknowledged the leave`);
            if (target.proc === proc) target.state = 'left';
          },
          (err: unknown) => {
            note(`${target.id} leave answer: ${(err as Error).message}`);
            // Refused, or the CLI gave up waiting: either way the node may be faulted again (if it
            // still completes the leave, stopped() above records it).
            if (target.proc === proc) target.restartPending = false;
          },
        );
        break;
      }
      case 'remove': {
        if (!needUp(target)) return skip(f, 'not running');
        if (members().length <= 3) return skip(f, 'the cluster would fall below three members');
        note(`fault ${describeFault(f)}`);
        crash(target, false);
        target.restartPending = true;
        const removedAtMs = scheduler.timeMs;
        // The operator removes it once the others see it dead; if that fails it simply stays down.
        scheduler.at(15_000, () => {
          const via = running()[0];
          if (via === undefined) return;
          callClient(rpcAddr(via), 'remove', { id: target.id }).then(
            () => {
              note(`${target.id} removed through ${via.id}`);
              if (target.state === 'down') {
                target.state = 'removed';
                // Its copies are abandoned with it, as a wipe destroys them (the checker's excuse).
                wipes.push(removedAtMs);
              }
            },
            (err: unknown) => {
              note(`remove ${target.id} failed: ${(err as Error).message}`);
              target.restartPending = false;
            },
          );
        });
        break;
      }
      case 'join': {
        if (machines.length >= options.nodesMax) return skip(f, 'at the largest size');
        note(`fault ${describeFault(f)}`);
        start(addMachine(), 'join');
        break;
      }
      case 'seed-last': {
        const all = up().filter((m) => m.proc !== null && !m.restartPending);
        if (all.length < machines.filter((m) => m.state === 'up').length || all.length < 2) return skip(f, 'some machine is not running');
        note(`fault ${describeFault(f)}`);
        for (const m of all) crash(m, false);
        for (const m of all) {
          if (m.index === 0) continue;
          restartLater(m, 500 + m.index * 100, 'seed-last: the others first');
        }
        if (all.includes(machines[0])) restartLater(machines[0], f.downMs, 'seed-last: the seed last');
        break;
      }
      case 'partition': {
        const side = f.side.filter((i) => i < machines.length).map((i) => machines[i].host);
        const others = machines.filter((m) => !f.side.includes(m.index)).map((m) => m.host);
        if (side.length === 0 || others.length === 0) return skip(f, 'one side is empty');
        note(`fault ${describeFault(f)} [${side.join(',')}] | [${others.join(',')}]`);
        net.partition(side, others, f.oneWay);
        scheduler.at(f.durationMs, () => {
          net.healAll();
          note('partition healed');
        });
        break;
      }
      case 'lossy': {
        note(`fault ${describeFault(f)}`);
        net.link = { ...net.link, lossRate: f.lossRate, duplicateRate: f.duplicateRate };
        scheduler.at(f.durationMs, () => {
          net.link = { ...net.link, lossRate: 0, duplicateRate: 0 };
          note('loss ended');
        });
        break;
      }
      case 'disk-full': {
        if (target === undefined) return;
        note(`fault ${describeFault(f)}`);
        target.disk.fill();
        scheduler.at(f.durationMs, () => {
          target.disk.unfill();
          note(`${target.id} disk has room again`);
        });
        break;
      }
      case 'disk-eio': {
        if (!needUp(target)) return skip(f, 'not running');
        note(`fault ${describeFault(f)}`);
        target.disk.failNext(f.op);
        // The operator sees the node unhealthy and restarts it.
        scheduler.at(f.restartAfterMs, () => {
          if (target.state !== 'up' || target.proc?.node == null || target.restartPending) return;
          note(`operator restarts ${target.id} after the disk error`);
          crash(target, false);
          start(target, 'after disk error');
        });
        break;
      }
      case 'power-io': {
        if (!needUp(target)) return skip(f, 'not running');
        if (up().length <= 2) return skip(f, 'would leave fewer than two running');
        note(`fault ${describeFault(f)} (armed)`);
        const proc = target.proc as Proc;
        target.restartPending = true;
        const prefix = `/m${target.index + 1}/data${f.under === '' ? '' : '/hints'}`;
        let fired = false;
        // The crash happens inside the disk operation's completion; the world acts on the next turn.
        target.disk.armCrash(prefix, f.ops, () => {
          fired = true;
          scheduler.at(0, () => {
            if (target.proc !== proc) return;
            note(`power loss of ${target.id} inside its disk activity (${f.under || 'any file'})`);
            crash(target, true);
            restartLater(target, f.downMs, 'power-io');
          });
        }, f.under === 'hints-unlink' ? 'unlink' : null);
        // Not enough disk activity within 20 s: the fault lapses.
        scheduler.at(20_000, () => {
          if (fired || target.proc !== proc) return;
          target.disk.disarmCrash();
          target.restartPending = false;
          note(`power-io on ${target.id} lapsed`);
        });
        break;
      }
      case 'clock-jump': {
        if (!needUp(target)) return skip(f, 'not running');
        note(`fault ${describeFault(f)}`);
        (target.proc as Proc).clock.jump(f.deltaMs);
        target.clockOffsetMs += f.deltaMs;
        break;
      }
    }
    stats.faultsRun++;
  };

  // The clients: their own process (never killed) on their own address.
  const clientClock = scheduler.clock();
  const clientPool = new SimRpcPool(net, clientClock, CLIENT_ADDR, null, DEFAULT_RPC_LIMITS.frameBytesMax, options.workload.timeoutMs);
  const callClient = (addr: string, op: string, args: Record<string, unknown>) => clientPool.call(addr, op, args);
  const workload = new Workload(options.workload, clientClock, callClient, () => members().map(rpcAddr), checkAckCopies);

  // 1. start
  for (let i = 0; i < options.nodes; i++) addMachine();
  start(machines[0], 'bootstrap');
  for (let i = 1; i < options.nodes; i++) scheduler.at(100 * i, () => start(machines[i], 'initial join'));
  scheduler.at(STORM_START_MS, () => {
    note('storm begins');
    workload.start();
  });
  // 2. storm
  for (const i of kept) {
    const f = plan[i];
    if (f === undefined) continue;
    scheduler.at(f.atMs, () => apply(f));
  }
  scheduler.at(options.durationMs, () => {
    // 3. heal
    note('heal');
    workload.stop();
    net.healAll();
    net.link = { ...net.link, lossRate: 0, duplicateRate: 0 };
    for (const m of machines) {
      m.disk.unfill();
      m.disk.clearFaults();
    }
  });
  const healMs = options.durationMs;
  // Processes that should run are started shortly after the heal (the storm's own restarts first).
  scheduler.at(healMs + 2_000, () => {
    for (const m of machines) {
      if (m.state === 'down' && m.proc === null) start(m, 'heal');
      const ro = m.proc?.node?.internals()?.store.stats().readOnly === true;
      if (ro && m.state === 'up') {
        note(`operator restarts ${m.id}: its store is read-only`);
        crash(m, false);
        start(m, 'heal: read-only store');
      }
    }
  });

  let result: 'pass' | 'fail' | null = null;
  let settledAfterMs: number | null = null;
  let lastViolations: Violation[] = [];
  const expectedIds = () => machines.filter((m) => m.state === 'up').map((m) => m.id);
  const probes = (): NodeProbe[] =>
    running().flatMap((m) => {
      const inner = m.proc?.node?.internals();
      if (!inner) return [];
      const { store, cluster, membership } = inner;
      return [
        {
          id: m.id,
          entry: (key: string) => store.getEntry(key),
          liveKeys: () => {
            const now = (m.proc as Proc).clock.now();
            const keys: string[] = [];
            for (const [key, e] of store.entries()) if (e.value !== null && (e.expiresAtMs === undefined || e.expiresAtMs > now)) keys.push(key);
            return keys;
          },
          owners: (key: string) => cluster.view.owners(key),
          ringChecksum: () => cluster.view.ring().checksum(),
          ringMembers: () => [...cluster.view.ring().members()].sort(),
          aliveIds: () => membership.members().filter((x) => x.state === 'alive').map((x) => x.id),
          describeMember: (id: string) => {
            const x = membership.members().find((mm) => mm.id === id);
            return x === undefined ? 'unknown' : `${x.state} at incarnation ${x.incarnation ?? '?'} (${x.gossip})`;
          },
          now: () => (m.proc as Proc).clock.now(),
        },
      ];
    });
  const check = (): Violation[] => {
    const extra: Violation[] = [...violations];
    for (const m of machines) {
      if (m.state === 'left' && m.proc !== null && m.proc.node?.state() === 'serving') {
        extra.push({ check: 'one-cluster', detail: `${m.id} acknowledged a leave but still serves` });
      }
    }
    // Jumps (either way) plus drift over the run, between the two most distant clocks.
    const offsets = machines.map((m) => m.clockOffsetMs);
    const driftMs = (2 * options.driftPpmMax * scheduler.timeMs) / 1e6;
    const skewMs = Math.max(0, ...offsets) - Math.min(0, ...offsets) + driftMs;
    return checkCluster(workload, probes(), expectedIds(), extra, (ms) => wipes.filter((t) => t > ms).length, skewMs);
  };
  const checkpoint = () => {
    if (result !== null) return;
    lastViolations = check();
    const t = scheduler.timeMs - healMs;
    note(`check after ${(t / 1000).toFixed(0)} s: ${lastViolations.length} violations`);
    if (lastViolations.length === 0) {
      result = 'pass';
      settledAfterMs = t;
    } else if (t >= options.settleMaxMs || lastViolations.some((v) => v.check === 'node-error' || v.check === 'ack-copies')) {
      result = 'fail';
    } else scheduler.at(options.checkEveryMs, checkpoint);
  };
  scheduler.at(healMs + 10_000, checkpoint);

  try {
    await scheduler.run({ untilMs: healMs + options.settleMaxMs + options.checkEveryMs + 10_000, stopWhen: () => result !== null });
  } finally {
    process.off('unhandledRejection', unhandled);
    setMutations([]);
  }
  if (result === null) {
    lastViolations = check();
    if (lastViolations.length === 0) lastViolations.push({ check: 'one-cluster', detail: 'the run ended before the checker decided' });
  }
  const byKey = workload.byKey();
  // The machines' processes stay as they are: nothing of theirs runs once the scheduler stops.
  for (const m of machines) m.proc?.clock.kill();
  return {
    seed: options.seed,
    ok: result === 'pass',
    violations: lastViolations,
    traceHash: hash.digest('hex'),
    traceLines,
    plan,
    kept,
    simulatedMs: scheduler.timeMs,
    wallMs: performance.now() - wallStart,
    events: scheduler.events,
    settledAfterMs,
    stats: {
      attempts: workload.attempts.length,
      acked: workload.attempts.filter((a) => a.acked).length,
      reads: workload.reads.ok + workload.reads.failed,
      faultsRun: stats.faultsRun,
      faultsSkipped: stats.faultsSkipped,
      keys: byKey.size,
    },
    lastLines: Object.fromEntries(machines.map((m) => [m.id, m.log.last()])),
    traceTail: [...traceTail],
  };
}

export function parseMutations(list: string | undefined): MutationName[] {
  if (list === undefined || list === '') return [];
  return list.split(',').map((name) => {
    if (!isMutationName(name)) throw new Error(`unknown mutation "${name}" (known: ${Object.keys(MUTATIONS).join(', ')})`);
    return name;
  });
}
