/**
 * Shoal against serf, real processes on loopback, one harness run (`npm run bench:membership-real`):
 * prints a table and writes bench/results/membership-real.json. Not a test: figures, not assertions.
 *
 * Both run with their defaults at the same probe period (1 s: memberlist's LAN profile, which is
 * Shoal's default too). Each agent has its own 127.0.x.y address (Shoal 127.0.88.y, serf 127.0.89.y),
 * agent 0 is the seed (Shoal: seeds = its own address, as in cluster.example.json; serf: no -join),
 * the others join it (Shoal: membership.seeds, retried; serf: -retry-join every 500 ms, like
 * Shoal's first retry). Per system and per n (default 10 and 30):
 *
 * - join, started together: all n spawned at once; time from the last spawn until every agent lists
 *   every other as alive. Then, on that cluster:
 * - bytes per member per second of gossip (UDP and TCP to and from the gossip ports, IP bytes,
 *   counted by nftables) over an idle window, and the RSS of every agent;
 * - crash: SIGKILL of one agent; time until the first survivor, and all survivors, list it as dead
 *   (serf: failed);
 * - SIGSTOP of another agent for 2 probe periods: observers that list it as dead at any time during
 *   the stop and the 10 s after it (false positives);
 * - partition: the survivors split in two halves for --partition-ms (default 20 s, longer than the
 *   suspicion timeout), then healed; time until every survivor lists every survivor as alive;
 * - seed restart: the seed stops gracefully (Shoal SIGTERM, which leaves; serf SIGINT, which
 *   leaves), is started again with the same command; time until it lists the others as alive, or
 *   "alone" after --seed-wait-ms (30 s). Then once more, serf with -rejoin (the seed always runs with
 *   -snapshot), Shoal with the same command (its data dir is what it remembers).
 * - join, started 100 ms apart (a fresh cluster): time from the last spawn until all see all.
 * Then a rolling start of --rolling agents (default 50, up to 100; --rolling-gap-ms apart, default 100)
 * with default settings: join time (bounded by --rolling-wait-ms), suspect and dead events logged,
 * Shoal streaming retries, the 1-minute load average, CPU per agent until all see all, Shoal's
 * event-loop delay (the largest per agent, from its metrics, over the join), then idle RSS, private
 * memory and CPU per agent, and the detection of one agent's crash.
 *
 * The partition is made with nftables in a table of the harness's own (inet shoal_bench_<pid>): the
 * two halves run under two uids; the output hook marks each packet with its socket owner's half,
 * and the input hook drops what one half sends the other (silently, as a network would). (Rules on source addresses, as test/chaos/lib/nft.ts uses, cannot
 * see serf's TCP: memberlist dials from 127.0.0.1.) Every process and the table are removed at the
 * end, on error and on SIGINT/SIGTERM. Every wait is bounded.
 *
 * Needs: root, nftables, serf (Debian's package), and `npm run build` (the agents run from dist/).
 * Flags: --sizes 10,30  --rolling 50  --rolling-gap-ms 100  --systems shoal,serf  --partition-ms 20000
 *        --seed-wait-ms 30000  --rolling-wait-ms 120000  --idle-ms 10000  --out FILE (default
 *        bench/results/membership-real.json)  --shoal-node-args '...' (node flags of the Shoal
 *        agents of the rolling start, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'; they are then stopped
 *        with SIGTERM, so that the profiles are written, and not SIGKILLed).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { cpus, freemem, loadavg, tmpdir } from 'node:os';
import { cpuMicros } from './lib/proc-cpu.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Packr, Unpackr } from 'msgpackr';
import { ShoalClient } from '../src/rpc/shoal-client.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MAIN = join(ROOT, 'dist/cli/main.js');

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const SIZES = flag('sizes', '10,30').split(',').map(Number).filter((n) => n >= 4);
const ROLLING_N = Number(flag('rolling', '50'));
const SYSTEMS = flag('systems', 'shoal,serf').split(',') as SystemName[];
const PARTITION_MS = Number(flag('partition-ms', '20000'));
const SEED_WAIT_MS = Number(flag('seed-wait-ms', '30000'));
const ROLLING_WAIT_MS = Number(flag('rolling-wait-ms', '120000'));
const IDLE_MS = Number(flag('idle-ms', '10000'));
const ROLLING_GAP_MS = Number(flag('rolling-gap-ms', '100'));
const OUT = flag('out', join(ROOT, 'bench/results/membership-real.json'));
/** Node.js flags of the Shoal agents of the rolling start, space-separated ('' = none). */
const SHOAL_NODE_ARGS = flag('shoal-node-args', '');
const JOIN_WAIT_MS = 90_000;
const DETECT_WAIT_MS = 60_000;
const HEAL_WAIT_MS = 120_000;
const PROBE_PERIOD_MS = 1000;
const STOP_WAIT_MS = 30_000;
const AGENTS_MAX = 100;
/**
 * Memory one Shoal agent may take, for the check that the agents fit. An idle agent shows ~93 MiB of
 * RSS, but ~46 MiB of it is the node binary's file-backed pages, shared by every agent (smaps_rollup:
 * Shared_Clean); its own memory (Private_Dirty) is ~47 MiB. 100 MiB leaves room for a join's garbage.
 */
const AGENT_BYTES_MAX = 100 * 2 ** 20;
/** The two halves run as these uids (no such users needed), so nftables can tell them apart. */
const UIDS = [60_001, 60_002] as const;
/** Packet marks of the two halves (set in the output hook from the socket's owner). */
const MARKS = ['0x5b0a1', '0x5b0a2'] as const;

type SystemName = 'shoal' | 'serf';
type State = 'alive' | 'suspect' | 'dead' | 'left';
type View = Map<string, State>;

// ---- clean-up: every child and the nft table, on every exit path ---------------------------------

const children = new Set<ChildProcess>();
let nftTable: string | null = null;

function cleanupSync(): void {
  for (const child of children) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGCONT');
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  children.clear();
  if (nftTable !== null) {
    try {
      nft(['delete', 'table', 'inet', nftTable]);
    } catch {
      // gone
    }
    nftTable = null;
  }
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanupSync();
    process.exit(130);
  });
}

// ---- nftables: partition rules and gossip byte counters --------------------------------------------

function nftBinary(): string {
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin']) if (existsSync(join(dir, 'nft'))) return join(dir, 'nft');
  throw new Error('nft not found (apt-get install nftables)');
}

function nft(args: string[], input?: string): string {
  return execFileSync(nftBinary(), args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 });
}

function openNft(): void {
  nftTable = `shoal_bench_${process.pid}`;
  nft(['-f', '-'], [
    `table inet ${nftTable} {`,
    '  chain tagout { type filter hook output priority -10; policy accept; }',
    '  chain count { type filter hook output priority -20; policy accept; }',
    '  chain part { type filter hook input priority -10; policy accept; }',
    '}',
    // Each half's packets carry a mark from the socket owner (kept across loopback to the input hook).
    ...UIDS.map((uid, i) => `add rule inet ${nftTable} tagout meta skuid ${uid} meta mark set ${MARKS[i]}`),
  ].join('\n'));
}

/**
 * Drops, on arrival, what one half sends the other. On arrival, not on departure: a packet dropped
 * in the output hook fails the sender's sendto with EPERM, which memberlist takes as a send error
 * rather than a missed probe, so serf would never see the split.
 */
function partition(sideA: string[], sideB: string[]): void {
  const set = (ips: string[]) => `{ ${ips.join(', ')} }`;
  nft(['-f', '-'], [
    `add rule inet ${nftTable} part meta mark ${MARKS[0]} ip daddr ${set(sideB)} drop`,
    `add rule inet ${nftTable} part meta mark ${MARKS[1]} ip daddr ${set(sideA)} drop`,
  ].join('\n'));
}

function heal(): void {
  nft(['flush', 'chain', 'inet', nftTable as string, 'part']);
}

/** Counts gossip bytes of one system: datagrams to the gossip port, TCP to and from it. */
function countGossip(prefix: string, port: number): void {
  nft(['flush', 'chain', 'inet', nftTable as string, 'count']);
  nft(['-f', '-'], [
    `add rule inet ${nftTable} count ip daddr ${prefix}.0/24 udp dport ${port} counter`,
    `add rule inet ${nftTable} count ip daddr ${prefix}.0/24 tcp dport ${port} counter`,
    `add rule inet ${nftTable} count ip saddr ${prefix}.0/24 tcp sport ${port} counter`,
  ].join('\n'));
}

function countedBytes(): number {
  const listing = JSON.parse(nft(['-j', 'list', 'chain', 'inet', nftTable as string, 'count'])) as { nftables: Array<Record<string, unknown>> };
  let bytes = 0;
  for (const entry of listing.nftables) {
    const rule = entry.rule as { expr?: Array<Record<string, { bytes?: number }>> } | undefined;
    for (const expr of rule?.expr ?? []) bytes += expr.counter?.bytes ?? 0;
  }
  return bytes;
}

// ---- agents ---------------------------------------------------------------------------------------

interface Agent {
  index: number;
  id: string;
  ip: string;
  uid: number;
  child: ChildProcess;
  log: string[];
  exited: boolean;
}

interface System {
  name: SystemName;
  prefix: string;
  gossipPort: number;
  /** Starts agent i (0 is the seed). */
  spawn(index: number, n: number, dir: string, options?: { rejoin?: boolean; nodeArgs?: string }): Agent;
  /** The agent's member list, or null when it does not answer. */
  view(agent: Agent): Promise<View | null>;
  gracefulSignal: NodeJS.Signals;
  /** Log lines that count as suspect / dead events, and streaming retries. */
  suspectLine: RegExp;
  deadLine: RegExp;
  retryLine: RegExp | null;
  closeViews(): Promise<void>;
}

function track(child: ChildProcess, agent: Omit<Agent, 'child' | 'log' | 'exited'>): Agent {
  const a: Agent = { ...agent, child, log: [], exited: false };
  children.add(child);
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line !== '' && a.log.length < 200_000) a.log.push(line);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  child.on('exit', () => {
    a.exited = true;
    children.delete(child);
  });
  return a;
}

function uidOf(index: number, n: number): number {
  return index < Math.ceil(n / 2) ? UIDS[0] : UIDS[1];
}

const shoalClients = new Map<string, ShoalClient>();

const shoal: System = {
  name: 'shoal',
  prefix: '127.0.88',
  gossipPort: 7101,
  gracefulSignal: 'SIGTERM',
  suspectLine: /"message":"member suspect"/,
  deadLine: /"message":"member dead"/,
  retryLine: /streaming from source failed|streaming: sources unreachable/,
  spawn(index, n, dir, options = {}) {
    const ip = `${this.prefix}.${index + 1}`;
    const id = `s${index + 1}`;
    const uid = uidOf(index, n);
    const dataDir = join(dir, id);
    mkdirSync(dataDir, { recursive: true });
    chownSync(dataDir, uid, uid);
    const seed = `${this.prefix}.1:${this.gossipPort}`;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      SHOAL_NODE_ID: id, SHOAL_DATA_DIR: dataDir, SHOAL_CLUSTER: 'bench',
      SHOAL_NODE_GOSSIP: `${ip}:${this.gossipPort}`, SHOAL_NODE_RPC: `${ip}:7201`, SHOAL_NODE_METRICS: `${ip}:7301`,
      SHOAL_SEEDS: seed, SHOAL_LOG_FORMAT: 'json', SHOAL_LOG_LEVEL: 'info',
    };
    const nodeArgs = (options.nodeArgs ?? '').split(' ').filter((a) => a !== '');
    const child = spawn(process.execPath, [...nodeArgs, MAIN, 'agent'], { env, uid, gid: uid, stdio: ['ignore', 'pipe', 'pipe'] });
    return track(child, { index, id, ip, uid });
  },
  async view(agent) {
    let client = shoalClients.get(agent.id);
    if (client === undefined) {
      client = new ShoalClient({ addresses: [`${agent.ip}:7201`], clusterName: 'bench', timeoutMs: 1500, pool: { connectTimeoutMs: 1000 } });
      shoalClients.set(agent.id, client);
    }
    try {
      const members = (await client.members()) as Array<{ id: string; state: State }>;
      return new Map(members.map((m) => [m.id, m.state]));
    } catch {
      return null;
    }
  },
  async closeViews() {
    await Promise.all([...shoalClients.values()].map((c) => c.close().catch(() => undefined)));
    shoalClients.clear();
  },
};

/** serf's RPC (msgpack over TCP): handshake, then `members`, one request at a time per connection. */
class SerfRpc {
  private static readonly packr = new Packr({ useRecords: false });
  private static readonly unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
  private buffer = Buffer.alloc(0);
  private waiting: { count: number; resolve: (values: unknown[]) => void; reject: (err: Error) => void } | null = null;
  private seq = 0;
  closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('closed')));
  }

  static async connect(addr: string, timeoutMs: number): Promise<SerfRpc> {
    const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
    const socket = net.connect({ host, port });
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }), timeoutMs, () => socket.destroy());
    const rpc = new SerfRpc(socket);
    await rpc.call({ Command: 'handshake', Seq: rpc.seq++ }, { Version: 1 }, 1, timeoutMs);
    return rpc;
  }

  async call(header: object, body: object | null, responseValues: number, timeoutMs: number): Promise<unknown[]> {
    if (this.closed || this.waiting !== null) throw new Error('rpc busy or closed');
    const result = new Promise<unknown[]>((resolve, reject) => {
      this.waiting = { count: responseValues, resolve, reject };
    });
    const frames = [SerfRpc.packr.pack(header)];
    if (body !== null) frames.push(SerfRpc.packr.pack(body));
    this.socket.write(Buffer.concat(frames));
    return withTimeout(result, timeoutMs, () => this.close());
  }

  async members(timeoutMs: number): Promise<Array<{ Name: string; Status: string }>> {
    const [header, body] = await this.call({ Command: 'members', Seq: this.seq++ }, null, 2, timeoutMs);
    const error = (header as { Error?: string }).Error;
    if (error) throw new Error(error);
    return (body as { Members: Array<{ Name: string; Status: string }> }).Members;
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (this.waiting === null) return;
    let values: unknown[];
    try {
      values = SerfRpc.unpackr.unpackMultiple(this.buffer) as unknown[];
    } catch (err) {
      if ((err as { incomplete?: boolean }).incomplete) return;
      this.fail(err as Error);
      return;
    }
    if (values.length < this.waiting.count) return;
    const waiting = this.waiting;
    this.waiting = null;
    this.buffer = Buffer.alloc(0);
    waiting.resolve(values);
  }

  private fail(err: Error): void {
    this.closed = true;
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.reject(err);
  }
}

const serfRpcs = new Map<string, SerfRpc>();

const serf: System = {
  name: 'serf',
  prefix: '127.0.89',
  gossipPort: 7946,
  gracefulSignal: 'SIGINT',
  suspectLine: /memberlist: Suspect /,
  deadLine: /EventMemberFailed/,
  retryLine: null,
  spawn(index, n, dir, options = {}) {
    const ip = `${this.prefix}.${index + 1}`;
    const id = `f${index + 1}`;
    const uid = uidOf(index, n);
    const args = ['agent', `-node=${id}`, `-bind=${ip}:${this.gossipPort}`, `-rpc-addr=${ip}:7373`, '-log-level=info'];
    if (index > 0) args.push(`-retry-join=${this.prefix}.1:${this.gossipPort}`, '-retry-interval=500ms');
    if (index === 0) {
      // The seed keeps serf's snapshot (the members it knew), used by a restart with -rejoin.
      const own = join(dir, id);
      mkdirSync(own, { recursive: true });
      chownSync(own, uid, uid);
      args.push(`-snapshot=${join(own, 'serf.snapshot')}`);
      if (options.rejoin === true) args.push('-rejoin');
    }
    const child = spawn('serf', args, { uid, gid: uid, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    return track(child, { index, id, ip, uid });
  },
  async view(agent) {
    try {
      let rpc = serfRpcs.get(agent.id);
      if (rpc === undefined || rpc.closed) {
        rpc = await SerfRpc.connect(`${agent.ip}:7373`, 1000);
        serfRpcs.set(agent.id, rpc);
      }
      const members = await rpc.members(1500);
      const state = (s: string): State => (s === 'alive' ? 'alive' : s === 'failed' ? 'dead' : 'left');
      return new Map(members.map((m) => [m.Name, state(m.Status)]));
    } catch {
      serfRpcs.get(agent.id)?.close();
      serfRpcs.delete(agent.id);
      return null;
    }
  },
  async closeViews() {
    for (const rpc of serfRpcs.values()) rpc.close();
    serfRpcs.clear();
  },
};

// ---- helpers ----------------------------------------------------------------------------------------

async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`timed out after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pollMs(n: number): number {
  return n <= 12 ? 100 : n <= 30 ? 200 : 500;
}

async function views(system: System, agents: Agent[]): Promise<Array<View | null>> {
  return Promise.all(agents.map((a) => (a.exited ? Promise.resolve(null) : system.view(a))));
}

/** Polls until `done(views)`; the elapsed ms from `fromMs`, or null after `waitMs`. */
async function until(
  system: System, agents: Agent[], fromMs: number, waitMs: number, done: (v: Array<View | null>, atMs: number) => boolean,
): Promise<number | null> {
  const deadline = performance.now() + waitMs;
  const poll = pollMs(agents.length);
  for (let round = 0; round < 100_000 && performance.now() < deadline; round += 1) {
    // A view is as of when the round started asking (the answers arrive within the poll timeout).
    const started = performance.now();
    if (done(await views(system, agents), started - fromMs)) return started - fromMs;
    await sleep(Math.max(0, poll - (performance.now() - started)));
  }
  return null;
}

/** Every observer lists every one of `members` as alive. */
function allSeeAll(observers: Agent[], members: Agent[]): (v: Array<View | null>) => boolean {
  return (v) => v.every((view) => view !== null && members.every((m) => view.get(m.id) === 'alive'));
}

async function startAll(
  system: System, n: number, gapMs: number, dir: string, nodeArgs?: string,
): Promise<{ agents: Agent[]; lastSpawnMs: number }> {
  const agents: Agent[] = [];
  for (let i = 0; i < n; i += 1) {
    agents.push(system.spawn(i, n, dir, { nodeArgs }));
    if (gapMs > 0 && i < n - 1) await sleep(gapMs);
  }
  return { agents, lastSpawnMs: performance.now() };
}

async function stopAgent(agent: Agent, signal: NodeJS.Signals, waitMs: number): Promise<void> {
  if (agent.exited) return;
  const exited = new Promise((resolve) => agent.child.once('exit', resolve));
  agent.child.kill(signal);
  await Promise.race([exited, sleep(waitMs)]);
  if (!agent.exited) {
    agent.child.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
  }
}

async function stopAll(system: System, agents: Agent[], signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  await system.closeViews();
  await Promise.all(agents.map((a) => stopAgent(a, signal, signal === 'SIGKILL' ? 5000 : STOP_WAIT_MS)));
}

/**
 * The largest event-loop delay of a Shoal agent since it was last asked (ms), from its metrics
 * (prom-client's monitorEventLoopDelay, reset at each scrape), or null.
 */
async function loopDelayMaxMs(system: System, agent: Agent): Promise<number | null> {
  if (system.name !== 'shoal' || agent.exited) return null;
  try {
    const res = await fetch(`http://${agent.ip}:7301/metrics`, { signal: AbortSignal.timeout(3000) });
    const m = /^shoal_nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)$/m.exec(await res.text());
    return m === null ? null : Number(m[1]) * 1000;
  } catch {
    return null;
  }
}

function rssMiB(agent: Agent, field = 'VmRSS'): number | null {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${agent.child.pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]) / 1024;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) an agent has used so far (bench/lib/proc-cpu.ts). */
function cpuSecondsOf(agent: Agent): number | null {
  const micros = cpuMicros([agent.child.pid]);
  return micros === null ? null : micros / 1e6;
}

const loadSamples: Array<{ phase: string; load1: number; load5: number }> = [];
function sampleLoad(phase: string): void {
  const [load1, load5] = loadavg();
  loadSamples.push({ phase, load1, load5 });
}

const median = (xs: number[]) => (xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
const round = (x: number | null, digits = 0) => (x === null ? null : Number(x.toFixed(digits)));

// ---- scenarios --------------------------------------------------------------------------------------

interface SizeResult {
  system: SystemName;
  n: number;
  joinTogetherMs: number | null;
  bytesPerMemberPerSec: number | null;
  rssMiBMedian: number | null;
  /** RssAnon: the agent's own memory (RSS minus file-backed pages such as the shared node binary). */
  privateMiBMedian: number | null;
  /** CPU per agent over the idle window, percent of one core. */
  idleCpuPctMedian: number | null;
  crashFirstMs: number | null;
  crashAllMs: number | null;
  sigstopFalsePositives: number | null;
  sigstopObservers: number;
  /** Until every survivor listed the other half as dead (null: not within the bound; the split was then held that long). */
  partitionDetectedMs: number | null;
  partitionHealMs: number | null;
  seedRejoinMs: number | null;
  /** A second graceful stop and start of the seed: serf with -rejoin (and its -snapshot), Shoal the same command. */
  seedRejoinAgainMs: number | null;
  joinApartMs: number | null;
}

async function sizeRun(system: System, n: number): Promise<SizeResult> {
  const result: SizeResult = {
    system: system.name, n, joinTogetherMs: null, bytesPerMemberPerSec: null, rssMiBMedian: null, privateMiBMedian: null, idleCpuPctMedian: null, crashFirstMs: null, crashAllMs: null,
    sigstopFalsePositives: null, sigstopObservers: 0, partitionDetectedMs: null, partitionHealMs: null, seedRejoinMs: null, seedRejoinAgainMs: null, joinApartMs: null,
  };
  const dir = mkdtempSync(join(tmpdir(), `shoal-bench-${system.name}-`));
  execFileSync('chmod', ['0755', dir]);
  try {
    await clusterPhases(system, n, dir, result);
    if (result.joinTogetherMs !== null) await apartPhase(system, n, dir, result);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

/** Started together, then on that cluster: bytes, RSS, crash, SIGSTOP, partition, seed restart. */
async function clusterPhases(system: System, n: number, dir: string, result: SizeResult): Promise<void> {
  let agents: Agent[] = [];
  try {
    sampleLoad(`${system.name} n=${n} start`);
    const started = await startAll(system, n, 0, dir);
    agents = started.agents;
    result.joinTogetherMs = await until(system, agents, started.lastSpawnMs, JOIN_WAIT_MS, allSeeAll(agents, agents));
    log(`${system.name} n=${n}: joined (together) in ${fmtMs(result.joinTogetherMs)}`);
    if (result.joinTogetherMs === null) return;

    countGossip(system.prefix, system.gossipPort);
    const bytesBefore = countedBytes();
    const idleStart = performance.now();
    const cpuBefore = agents.map(cpuSecondsOf);
    await sleep(IDLE_MS);
    const idleSeconds = (performance.now() - idleStart) / 1000;
    result.bytesPerMemberPerSec = round((countedBytes() - bytesBefore) / n / idleSeconds);
    const cpuPct = agents.map((agent, i) => {
      const after = cpuSecondsOf(agent);
      const before = cpuBefore[i];
      return after === null || before === null ? null : ((after - before) / idleSeconds) * 100;
    });
    result.idleCpuPctMedian = round(median(cpuPct.filter((x): x is number => x !== null)), 2);
    result.rssMiBMedian = round(median(agents.map((agent) => rssMiB(agent)).filter((x): x is number => x !== null)), 1);
    result.privateMiBMedian = round(median(agents.map((agent) => rssMiB(agent, 'RssAnon')).filter((x): x is number => x !== null)), 1);
    sampleLoad(`${system.name} n=${n} idle`);

    // Crash: the last agent, SIGKILL.
    const victim = agents[n - 1];
    const survivors = agents.slice(0, n - 1);
    const killedAt = performance.now();
    victim.child.kill('SIGKILL');
    let first: number | null = null;
    result.crashAllMs = await until(system, survivors, killedAt, DETECT_WAIT_MS, (v, atMs) => {
      const dead = v.filter((view) => view?.get(victim.id) === 'dead').length;
      if (dead > 0 && first === null) first = atMs;
      return dead === survivors.length;
    });
    result.crashFirstMs = first;
    log(`${system.name} n=${n}: crash seen first ${fmtMs(result.crashFirstMs)}, all ${fmtMs(result.crashAllMs)}`);

    // SIGSTOP for two probe periods: who declares it dead?
    const paused = agents[n - 2];
    const observers = survivors.filter((a) => a !== paused);
    result.sigstopObservers = observers.length;
    const accused = new Set<string>();
    const pausedAt = performance.now();
    paused.child.kill('SIGSTOP');
    const watchMs = 2 * PROBE_PERIOD_MS + 10_000;
    let resumed = false;
    await until(system, observers, pausedAt, watchMs, (v) => {
      if (!resumed && performance.now() - pausedAt >= 2 * PROBE_PERIOD_MS) {
        paused.child.kill('SIGCONT');
        resumed = true;
      }
      v.forEach((view, i) => {
        if (view?.get(paused.id) === 'dead') accused.add(observers[i].id);
      });
      return false;
    });
    if (!resumed) paused.child.kill('SIGCONT');
    result.sigstopFalsePositives = accused.size;
    log(`${system.name} n=${n}: SIGSTOP ${2 * PROBE_PERIOD_MS} ms: ${accused.size} of ${observers.length} observers declared it dead`);
    // Let it be alive everywhere again before the partition.
    await until(system, survivors, performance.now(), HEAL_WAIT_MS, allSeeAll(survivors, survivors));

    // Partition of the survivors into the two uid halves.
    const sideA = survivors.filter((a) => a.uid === UIDS[0]);
    const sideB = survivors.filter((a) => a.uid === UIDS[1]);
    const splitAt = performance.now();
    partition(sideA.map((a) => a.ip), sideB.map((a) => a.ip));
    // Held for PARTITION_MS, and at least until every survivor lists the other side as dead, so that
    // the heal is a merge of two clusters and not a quick recovery from suspicion.
    const otherSide = (i: number) => (survivors[i].uid === UIDS[0] ? sideB : sideA);
    result.partitionDetectedMs = await until(system, survivors, splitAt, PARTITION_MS + DETECT_WAIT_MS, (v) =>
      v.every((view, i) => view !== null && otherSide(i).every((m) => view.get(m.id) === 'dead')));
    await sleep(Math.max(0, PARTITION_MS - (performance.now() - splitAt)));
    const healedAt = performance.now();
    heal();
    result.partitionHealMs = await until(system, survivors, healedAt, HEAL_WAIT_MS, allSeeAll(survivors, survivors));
    log(`${system.name} n=${n}: split (both sides saw the other dead after ${fmtMs(result.partitionDetectedMs)}) held ${fmtMs(healedAt - splitAt)}, healed in ${fmtMs(result.partitionHealMs)}`);
    sampleLoad(`${system.name} n=${n} partition`);

    // The seed stops gracefully and is started again with the same command.
    const seed = agents[0];
    await stopAgent(seed, system.gracefulSignal, STOP_WAIT_MS);
    await sleep(2000);
    const restarted = system.spawn(0, n, dir);
    agents[0] = restarted;
    const others = survivors.slice(1);
    result.seedRejoinMs = await until(system, [restarted], performance.now(), SEED_WAIT_MS, allSeeAll([restarted], others));
    log(`${system.name} n=${n}: seed restarted: ${result.seedRejoinMs === null ? `alone after ${SEED_WAIT_MS} ms` : `back in ${fmtMs(result.seedRejoinMs)}`}`);
    // Once more, serf with -rejoin (its snapshot); Shoal's command does not change (its data dir is its memory).
    await stopAgent(restarted, system.gracefulSignal, STOP_WAIT_MS);
    await sleep(2000);
    const again = system.spawn(0, n, dir, { rejoin: true });
    agents[0] = again;
    result.seedRejoinAgainMs = await until(system, [again], performance.now(), SEED_WAIT_MS, allSeeAll([again], others));
    log(`${system.name} n=${n}: seed restarted again${system.name === 'serf' ? ' with -rejoin' : ''}: ${result.seedRejoinAgainMs === null ? `alone after ${SEED_WAIT_MS} ms` : `back in ${fmtMs(result.seedRejoinAgainMs)}`}`);
  } finally {
    await stopAll(system, agents);
  }
}

/** A fresh cluster started 100 ms apart. */
async function apartPhase(system: System, n: number, dir: string, result: SizeResult): Promise<void> {
  const dir2 = join(dir, 'apart');
  mkdirSync(dir2);
  execFileSync('chmod', ['0755', dir2]);
  let apart: Agent[] = [];
  try {
    const started = await startAll(system, n, 100, dir2);
    apart = started.agents;
    result.joinApartMs = await until(system, apart, started.lastSpawnMs, JOIN_WAIT_MS, allSeeAll(apart, apart));
    log(`${system.name} n=${n}: joined (100 ms apart) ${fmtMs(result.joinApartMs)} after the last spawn`);
  } finally {
    await stopAll(system, apart);
  }
}

interface RollingResult {
  system: SystemName;
  n: number;
  /** Spawned this far apart (ms). */
  gapMs: number;
  joinMs: number | null;
  /** Fewest members an agent listed as alive at the end (n when all see all). */
  aliveMinAtEnd: number;
  suspectEvents: number;
  deadEvents: number;
  streamingRetries: number | null;
  load1Max: number;
  /** CPU seconds per agent (median, max) from its spawn until all saw all. */
  joinCpuSecondsMedian: number | null;
  joinCpuSecondsMax: number | null;
  /** Shoal: the largest event-loop delay of each agent from its start until all saw all (ms): median, max. */
  loopDelayMsMedian: number | null;
  loopDelayMsMax: number | null;
  /** Joined, then idle for --idle-ms: RSS, private memory (RssAnon) and CPU per agent (medians). */
  rssMiBMedian: number | null;
  privateMiBMedian: number | null;
  idleCpuPctMedian: number | null;
  /** SIGKILL of the last agent once idle: first and all survivors list it as dead. */
  crashFirstMs: number | null;
  crashAllMs: number | null;
}

async function rollingRun(system: System, n: number): Promise<RollingResult> {
  const dir = mkdtempSync(join(tmpdir(), `shoal-bench-${system.name}-rolling-`));
  execFileSync('chmod', ['0755', dir]);
  let agents: Agent[] = [];
  let load1Max = loadavg()[0];
  const loadTimer = setInterval(() => {
    load1Max = Math.max(load1Max, loadavg()[0]);
  }, 1000);
  try {
    sampleLoad(`${system.name} rolling ${n} start`);
    const started = await startAll(system, n, ROLLING_GAP_MS, dir, system.name === 'shoal' ? SHOAL_NODE_ARGS : undefined);
    agents = started.agents;
    let aliveMin = 0;
    const joinMs = await until(system, agents, started.lastSpawnMs, ROLLING_WAIT_MS, (v) => {
      aliveMin = Math.min(...v.map((view) => (view === null ? 0 : [...view.values()].filter((s) => s === 'alive').length)));
      return allSeeAll(agents, agents)(v);
    });
    sampleLoad(`${system.name} rolling ${n} end`);
    const count = (re: RegExp | null) => (re === null ? null : agents.reduce((sum, a) => sum + a.log.filter((l) => re.test(l)).length, 0));
    const joinCpu = agents.map(cpuSecondsOf).filter((x): x is number => x !== null);
    if (system.retryLine !== null) {
      // Why streaming retried: the commonest error texts (numbers and addresses blurred).
      const why = new Map<string, number>();
      for (const a of agents) {
        for (const line of a.log) {
          if (!system.retryLine.test(line)) continue;
          const m = /"error":"([^"]*)"/.exec(line);
          const key = (m?.[1] ?? line.slice(0, 80)).replace(/[0-9]+(\.[0-9]+)*/g, '#');
          why.set(key, (why.get(key) ?? 0) + 1);
        }
      }
      if (why.size > 0) log(`${system.name} rolling ${n}: streaming retries by error: ${JSON.stringify([...why].sort((a, b) => b[1] - a[1]).slice(0, 5))}`);
    }
    const loopDelays = (await Promise.all(agents.map((a) => loopDelayMaxMs(system, a)))).filter((x): x is number => x !== null);
    const out: RollingResult = {
      system: system.name, n, gapMs: ROLLING_GAP_MS, joinMs, aliveMinAtEnd: aliveMin, suspectEvents: count(system.suspectLine) ?? 0, deadEvents: count(system.deadLine) ?? 0,
      streamingRetries: count(system.retryLine), load1Max: round(Math.max(load1Max, loadavg()[0]), 2) ?? 0,
      joinCpuSecondsMedian: round(median(joinCpu), 2), joinCpuSecondsMax: joinCpu.length === 0 ? null : round(Math.max(...joinCpu), 2),
      loopDelayMsMedian: round(median(loopDelays)), loopDelayMsMax: loopDelays.length === 0 ? null : round(Math.max(...loopDelays)),
      rssMiBMedian: null, privateMiBMedian: null, idleCpuPctMedian: null, crashFirstMs: null, crashAllMs: null,
    };
    if (joinMs !== null) {
      const idleStart = performance.now();
      const cpuBefore = agents.map(cpuSecondsOf);
      await sleep(IDLE_MS);
      const idleSeconds = (performance.now() - idleStart) / 1000;
      const cpuPct = agents.map((agent, i) => {
        const after = cpuSecondsOf(agent);
        const before = cpuBefore[i];
        return after === null || before === null ? null : ((after - before) / idleSeconds) * 100;
      });
      out.idleCpuPctMedian = round(median(cpuPct.filter((x): x is number => x !== null)), 2);
      out.rssMiBMedian = round(median(agents.map((agent) => rssMiB(agent)).filter((x): x is number => x !== null)), 1);
      out.privateMiBMedian = round(median(agents.map((agent) => rssMiB(agent, 'RssAnon')).filter((x): x is number => x !== null)), 1);
      const victim = agents[n - 1];
      const survivors = agents.slice(0, n - 1);
      const killedAt = performance.now();
      victim.child.kill('SIGKILL');
      let first: number | null = null;
      out.crashAllMs = await until(system, survivors, killedAt, DETECT_WAIT_MS, (v, atMs) => {
        const dead = v.filter((view) => view?.get(victim.id) === 'dead').length;
        if (dead > 0 && first === null) first = atMs;
        return dead === survivors.length;
      });
      out.crashFirstMs = first;
    }
    log(`${system.name} rolling ${n}: ${joinMs === null ? `not all see all after ${ROLLING_WAIT_MS} ms (fewest alive ${aliveMin})` : `all see all ${fmtMs(joinMs)} after the last spawn`}; suspect ${out.suspectEvents}, dead ${out.deadEvents}, load ${out.load1Max}; ${JSON.stringify(out)}`);
    return out;
  } finally {
    clearInterval(loadTimer);
    // Profiled agents write their profiles on a graceful stop only.
    await stopAll(system, agents, system.name === 'shoal' && SHOAL_NODE_ARGS !== '' ? 'SIGTERM' : 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- main --------------------------------------------------------------------------------------------

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function fmtMs(ms: number | null): string {
  return ms === null ? 'never' : ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 1000).toFixed(1)} s`;
}

function preflight(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (agents under two uids, nftables rules)';
  if (!existsSync(MAIN)) return `${MAIN} is missing: run \`npm run build\` first (npm run bench:membership-real does)`;
  if (SYSTEMS.includes('serf') && spawnSync('serf', ['version'], { stdio: 'ignore' }).status !== 0) return 'serf is not installed (apt-get install serf)';
  try {
    nft(['list', 'tables']);
  } catch (err) {
    return `nftables is not usable: ${(err as Error).message.split('\n')[0]}`;
  }
  if (Math.max(...SIZES, ROLLING_N) > AGENTS_MAX) return `at most ${AGENTS_MAX} agents`;
  const needBytes = Math.max(...SIZES, ROLLING_N) * AGENT_BYTES_MAX;
  if (freemem() < needBytes) return `needs about ${Math.round(needBytes / 2 ** 20)} MiB free for the agents, ${Math.round(freemem() / 2 ** 20)} MiB are`;
  return null;
}

async function main(): Promise<void> {
  const problem = preflight();
  if (problem !== null) {
    process.stderr.write(`bench:membership-real: ${problem}\n`);
    process.exitCode = 2;
    return;
  }
  openNft();
  const systems = SYSTEMS.map((s) => (s === 'serf' ? serf : shoal));
  const sizes: SizeResult[] = [];
  const rolling: RollingResult[] = [];
  const startedAt = new Date().toISOString();
  for (const n of SIZES) for (const system of systems) sizes.push(await sizeRun(system, n));
  if (ROLLING_N > 0) for (const system of systems) rolling.push(await rollingRun(system, ROLLING_N));

  const cell = (r: SizeResult | undefined, f: (r: SizeResult) => string) => (r === undefined ? '—' : f(r));
  const rows: Array<[string, (r: SizeResult) => string]> = [
    ['all see all, started together (from the last spawn)', (r) => fmtMs(r.joinTogetherMs)],
    ['all see all, started 100 ms apart (from the last spawn)', (r) => fmtMs(r.joinApartMs)],
    ['crash: first survivor marks it dead', (r) => fmtMs(r.crashFirstMs)],
    ['crash: all survivors mark it dead', (r) => fmtMs(r.crashAllMs)],
    [`SIGSTOP ${2 * PROBE_PERIOD_MS / 1000} s: observers marking it dead`, (r) => (r.sigstopFalsePositives === null ? '—' : `${r.sigstopFalsePositives} of ${r.sigstopObservers}`)],
    ['split in two halves: all see the other half dead', (r) => fmtMs(r.partitionDetectedMs)],
    [`split held ≥ ${PARTITION_MS / 1000} s, healed: all alive again`, (r) => fmtMs(r.partitionHealMs)],
    [`seed stops gracefully, restarts: sees the others (≤ ${SEED_WAIT_MS / 1000} s)`, (r) => (r.seedRejoinMs === null ? 'stays alone' : `back in ${fmtMs(r.seedRejoinMs)}`)],
    ['the same again (serf: -snapshot -rejoin; Shoal: same command)', (r) => (r.seedRejoinAgainMs === null ? 'stays alone' : `back in ${fmtMs(r.seedRejoinAgainMs)}`)],
    ['gossip bytes per member per second (idle)', (r) => String(r.bytesPerMemberPerSec ?? '—')],
    ['RSS per agent, median (MiB)', (r) => String(r.rssMiBMedian ?? '—')],
    ['private memory (RssAnon) per agent, median (MiB)', (r) => String(r.privateMiBMedian ?? '—')],
    ['CPU per agent while idle, median (% of a core)', (r) => String(r.idleCpuPctMedian ?? '—')],
  ];
  const header = ['', ...SIZES.flatMap((n) => systems.map((s) => `${s.name} n=${n}`))];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const [label, f] of rows) {
    lines.push(`| ${[label, ...SIZES.flatMap((n) => systems.map((s) => cell(sizes.find((r) => r.n === n && r.system === s.name), f)))].join(' | ')} |`);
  }
  if (rolling.length > 0) {
    lines.push('', `| rolling start of ${ROLLING_N}, ${ROLLING_GAP_MS} ms apart | ${rolling.map((r) => r.system).join(' | ')} |`, `|---|${rolling.map(() => '---').join('|')}|`);
    lines.push(`| all see all (from the last spawn) | ${rolling.map((r) => (r.joinMs === null ? `never in ${ROLLING_WAIT_MS / 1000} s (fewest alive: ${r.aliveMinAtEnd})` : fmtMs(r.joinMs))).join(' | ')} |`);
    lines.push(`| suspect / dead events logged | ${rolling.map((r) => `${r.suspectEvents} / ${r.deadEvents}`).join(' | ')} |`);
    lines.push(`| streaming retries logged | ${rolling.map((r) => String(r.streamingRetries ?? '—')).join(' | ')} |`);
    lines.push(`| 1-min load average, max | ${rolling.map((r) => String(r.load1Max)).join(' | ')} |`);
    lines.push(`| CPU s per agent until all see all, median / max | ${rolling.map((r) => `${r.joinCpuSecondsMedian ?? '—'} / ${r.joinCpuSecondsMax ?? '—'}`).join(' | ')} |`);
    lines.push(`| largest event-loop delay per agent until all see all, median / max (ms) | ${rolling.map((r) => (r.loopDelayMsMedian === null ? '—' : `${r.loopDelayMsMedian} / ${r.loopDelayMsMax}`)).join(' | ')} |`);
    lines.push(`| then idle: RSS / private (RssAnon) MiB per agent, median | ${rolling.map((r) => `${r.rssMiBMedian ?? '—'} / ${r.privateMiBMedian ?? '—'}`).join(' | ')} |`);
    lines.push(`| idle CPU per agent, median (% of a core) | ${rolling.map((r) => String(r.idleCpuPctMedian ?? '—')).join(' | ')} |`);
    lines.push(`| crash of one agent: first / all survivors list it dead | ${rolling.map((r) => `${fmtMs(r.crashFirstMs)} / ${fmtMs(r.crashAllMs)}`).join(' | ')} |`);
  }
  process.stdout.write(`\nMembership, real processes on loopback (${cpus().length} cores, probe period ${PROBE_PERIOD_MS} ms, load at end ${loadavg().map((x) => x.toFixed(2)).join(' ')})\n\n${lines.join('\n')}\n`);

  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify({
    bench: 'membership-real', startedAt, finishedAt: new Date().toISOString(), cpus: cpus().length, node: process.version,
    serf: SYSTEMS.includes('serf') ? spawnSync('serf', ['version'], { encoding: 'utf8' }).stdout.split('\n')[0] : null,
    settings: { sizes: SIZES, rolling: ROLLING_N, rollingGapMs: ROLLING_GAP_MS, shoalNodeArgs: SHOAL_NODE_ARGS, partitionMs: PARTITION_MS, seedWaitMs: SEED_WAIT_MS, idleMs: IDLE_MS, probePeriodMs: PROBE_PERIOD_MS },
    sizes, rolling, loadavg: loadSamples, table: lines,
  }, null, 2)}\n`);
  process.stdout.write(`\nwrote ${OUT}\n`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench:membership-real failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    cleanupSync();
  });
