/**
 * `npm run bench:membership`: the membership protocol in the deterministic simulator, for n = 100,
 * 1000, 10000 at 0% and 5% datagram loss. Prints a table and writes bench/results/membership.json
 * ({ rows: [...] }). Options: --quick (short runs, for a smoke test), --seed N, --nodes 100,1000 (or
 * --sizes), --losses 0,5 (percent), --fp-minutes M (simulated minutes of every false-positive run;
 * default 10 at n ≤ 100, 60 at n = 1000, 10 at n ≥ 10000), --slow-pct P (CPU-starved members, default
 * 1), --partition (also the half/half partition at n ≥ 10000), --out FILE (default
 * bench/results/membership.json; rows of other (n, loss) pairs already in it are kept), --merge-into
 * FILE (the same rows into a second file), --large-from N (the n ≥ 10000 path from this n on). Every
 * phase prints its figures and rewrites the file as soon as it ends (rows say `complete` and
 * `phasesComplete`), so a long run cut short keeps what it measured. Times are in protocol periods
 * (probeIntervalMs = 1 s by default, so periods are seconds).
 *
 * At n ≥ 10000 one simulator runs every phase in turn (a bootstrap of n cores learning n members is
 * 10^8 record inserts) and only with Lifeguard on: quiet minute (bandwidth), crashes, a join, then
 * the false-positive run with slowed members.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveMembershipConfig } from '../src/membership/config.js';
import { Simulator } from '../src/membership/sim/simulator.js';
import { suspicionTimeouts } from '../src/membership/suspicion.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const seedArg = args.indexOf('--seed');
const baseSeed = seedArg >= 0 ? Number(args[seedArg + 1]) : 20_261_126;
const argValue = (...names: string[]): string | undefined => {
  for (const name of names) {
    const i = args.indexOf(name);
    if (i >= 0) return args[i + 1];
  }
  return undefined;
};
const sizes = (argValue('--nodes', '--sizes') ?? '100,1000,10000').split(',').map(Number);
const LOSSES = (argValue('--losses') ?? '0,5').split(',').map((pct) => Number(pct) / 100);
/** From this n on, one simulator runs every phase in turn (`--large-from N` lowers it, to try that path on a smaller n). */
const LARGE_N = Number(argValue('--large-from') ?? 10_000);
const partitionLarge = args.includes('--partition');
const config = resolveMembershipConfig();
const PERIOD_MS = config.probeIntervalMs;
/** SWIM's expected time (in periods) until some member first probes a failed one: e/(e − 1). */
const SWIM_FIRST_DETECT_PERIODS = Math.E / (Math.E - 1);
/** A slowed member handles each of its packets and timers up to this late (uniformly). */
const SLOW_MS_MAX = 1500;
const SLOW_FRACTION = Number(argValue('--slow-pct') ?? '1') / 100;
/** The join is counted as known once this fraction of the other members sees the joiner alive. */
const JOIN_KNOWN_FRACTION = 0.9999;

const fpMinutesArg = args.indexOf('--fp-minutes');
const fpMinutesFixed = fpMinutesArg >= 0 ? Number(args[fpMinutesArg + 1]) : null;

/** Simulated minutes of each false-positive run, per cluster size (shorter for big n: CPU time). */
function fpMinutes(n: number): number {
  if (fpMinutesFixed !== null) return fpMinutesFixed;
  if (quick) return n >= 1000 ? 0.25 : 2;
  return n <= 100 ? 10 : n < LARGE_N ? 60 : 10;
}

/** Simulated minutes of the runs other than the slowed Lifeguard one. */
function otherMinutes(n: number): number {
  return n >= 1000 ? Math.min(fpMinutes(n), 2) : fpMinutes(n);
}

const kbit = (bytesPerSecond: number): number => round((bytesPerSecond * 8) / 1000);

function crashTrials(n: number): number {
  if (quick) return 1;
  return n >= 1000 ? 2 : 4;
}

const periods = (ms: number | null): number | null => (ms === null ? null : round(ms / PERIOD_MS));
const round = (x: number): number => Math.round(x * 100) / 100;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** A member joins a converged cluster; then members crash one by one. */
function detection(n: number, lossRate: number, seed: number): Partial<Row> {
  const sim = new Simulator({ n, seed, lossRate });
  let watching = '';
  let firstSuspectMs = -1;
  sim.onEvent((_node, event, timeMs) => {
    if (event.type === 'suspect' && event.member.id === watching && firstSuspectMs < 0) firstSuspectMs = timeMs;
  });
  sim.bootstrap(n - 1);
  sim.runFor(5000);
  const joiner = n - 1;
  sim.start(joiner, [0]);
  const joinMs = sim.runUntilTrue(() => sim.countSeeing(joiner, 'alive') >= Math.ceil(JOIN_KNOWN_FRACTION * (n - 1)), 120_000, 50);
  sim.runFor(5000);
  const firsts: number[] = [];
  const alls: number[] = [];
  let undetected = 0;
  const { minMs, maxMs } = suspicionTimeouts(config, n);
  for (let trial = 0; trial < crashTrials(n); trial += 1) {
    const victim = 1 + ((trial * Math.max(1, Math.floor(n / 5)) + trial) % (n - 2));
    watching = sim.nodes[victim].id;
    firstSuspectMs = -1;
    const crashMs = sim.now;
    sim.crash(victim);
    const took = sim.runUntilTrue(() => sim.countSeeing(victim, 'dead') === sim.upCount(), maxMs + 60_000, 50);
    if (took === null) undetected += 1;
    else alls.push(took);
    if (firstSuspectMs >= 0) firsts.push(firstSuspectMs - crashMs);
    sim.runFor(3000);
  }
  return { joinPeriods: periods(joinMs), join9999Seconds: periods(joinMs), ...detectionFields({ firsts, alls, undetected }, minMs) };
}

interface Stability {
  falsePositiveMembers: number;
  deadDeclarations: number;
  suspicions: number;
  msgsPerMemberPerPeriod: number;
  bytesPerMemberPerPeriod: number;
  simSecondsPerWallSecond: number;
  simSecondsPerCpuSecond: number;
}

/** A healthy cluster (optionally with slowed members) left alone: who is ever declared dead? */
function stability(n: number, lossRate: number, lifeguard: boolean, slowed: boolean, seed: number, minutes: number): Stability {
  const sim = new Simulator({ n, seed, lossRate, config: { lifeguard } });
  const declared = new Set<string>();
  let deadDeclarations = 0;
  let suspicions = 0;
  sim.onEvent((node, event) => {
    if (event.type === 'dead') {
      deadDeclarations += 1;
      declared.add(event.member.id);
    }
    // Count each suspicion once: as seen by member 1 (never slowed), which hears about nearly all.
    if (event.type === 'suspect' && node === 1) suspicions += 1;
  });
  sim.bootstrap();
  if (slowed) for (let i = 0; i < n; i += Math.round(1 / SLOW_FRACTION)) sim.setSlow(i, SLOW_MS_MAX);
  const warmupMs = n >= 1000 ? 10_000 : 30_000;
  sim.runFor(warmupMs);
  const packets0 = sim.totals.packetsSent;
  const bytes0 = sim.totals.bytesSent;
  const durationMs = minutes * 60_000;
  const clock = speedClock();
  sim.runFor(durationMs);
  const memberPeriods = n * (durationMs / PERIOD_MS);
  return {
    falsePositiveMembers: declared.size,
    deadDeclarations,
    suspicions,
    msgsPerMemberPerPeriod: round((sim.totals.packetsSent - packets0) / memberPeriods),
    bytesPerMemberPerPeriod: Math.round((sim.totals.bytesSent - bytes0) / memberPeriods),
    ...clock.speed(durationMs),
  };
}

/**
 * n ≥ LARGE_N: one simulator, Lifeguard on, every phase in turn: a quiet minute (bandwidth, speed),
 * a join (n − 1 bootstrapped, then the last member joins through member 0), crashes one by one, then
 * SLOW_FRACTION of the members CPU-starved for fpMinutes(n) (false positives: healthy members, not the
 * crashed ones, ever declared dead). Each phase writes its figures into `row` (and the results file)
 * as soon as it ends; the slowed run also after every FP_STEP_MS of simulated time.
 */
function largeRun(row: Row, n: number, lossRate: number, seed: number): void {
  const sim = new Simulator({ n, seed, lossRate });
  const crashed = new Set<string>();
  const declared = new Set<string>();
  let deadDeclarations = 0;
  let suspicions = 0;
  let counting = false;
  let watching = '';
  let firstSuspectMs = -1;
  sim.onEvent((node, event, timeMs) => {
    if (event.type === 'suspect' && event.member.id === watching && firstSuspectMs < 0) firstSuspectMs = timeMs;
    if (!counting) return;
    if (event.type === 'dead' && !crashed.has(event.member.id)) {
      deadDeclarations += 1;
      declared.add(event.member.id);
    }
    if (event.type === 'suspect' && node === 1 && !crashed.has(event.member.id)) suspicions += 1;
  });
  const boot0 = performance.now();
  phase('bootstrap', () => sim.bootstrap(n - 1), () => ({
    bootstrapWallSeconds: round((performance.now() - boot0) / 1000),
    heapMiB: Math.round((process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers) / 2 ** 20),
  }));
  sim.runFor(10_000);
  // Bandwidth and speed over a quiet minute (n − 1 members).
  const quietMs = quick ? 10_000 : 60_000;
  const packets0 = sim.totals.packetsSent;
  const bytes0 = sim.totals.bytesSent;
  const clock = speedClock();
  phase('quiet minute', () => sim.runFor(quietMs), () => {
    const memberPeriods = (n - 1) * (quietMs / PERIOD_MS);
    const bytesPerMemberPerPeriod = Math.round((sim.totals.bytesSent - bytes0) / memberPeriods);
    return {
      msgsPerMemberPerPeriod: round((sim.totals.packetsSent - packets0) / memberPeriods),
      bytesPerMemberPerPeriod, kbitPerMemberPerSecond: kbit(bytesPerMemberPerPeriod),
      ...clock.speed(quietMs), loadAverage1m: round(os.loadavg()[0]),
    };
  });
  const joiner = n - 1;
  sim.start(joiner, [0]);
  phase('join', () => sim.runUntilTrue(() => sim.countSeeing(joiner, 'alive') >= Math.ceil(JOIN_KNOWN_FRACTION * (n - 1)), 120_000, 50), (joinMs) => ({
    joinPeriods: periods(joinMs), join9999Seconds: periods(joinMs),
  }));
  sim.runFor(5000);
  const firsts: number[] = [];
  const alls: number[] = [];
  let undetected = 0;
  const { minMs, maxMs } = suspicionTimeouts(config, n);
  for (let trial = 0; trial < crashTrials(n); trial += 1) {
    const victim = 2 + trial * Math.floor(n / 7);
    watching = sim.nodes[victim].id;
    crashed.add(watching);
    firstSuspectMs = -1;
    const crashMs = sim.now;
    sim.crash(victim);
    phase(`crash ${trial + 1}`, () => sim.runUntilTrue(() => sim.countSeeing(victim, 'dead') === sim.upCount(), maxMs + 60_000, 200), (took) => {
      if (took === null) undetected += 1;
      else alls.push(took);
      if (firstSuspectMs >= 0) firsts.push(firstSuspectMs - crashMs);
      return detectionFields({ firsts, alls, undetected }, minMs);
    });
  }
  watching = '';
  sim.runFor(5000);
  for (let i = 0; i < n; i += Math.round(1 / SLOW_FRACTION)) if (i !== 1 && sim.nodes[i].up) sim.setSlow(i, SLOW_MS_MAX);
  counting = true;
  const minutes = fpMinutes(n);
  const fpClock = speedClock();
  const fpPackets0 = sim.totals.packetsSent;
  const fpBytes0 = sim.totals.bytesSent;
  const fpFields = (doneMs: number): Partial<Row> => {
    const memberPeriods = sim.upCount() * (doneMs / PERIOD_MS);
    const bytes = Math.round((sim.totals.bytesSent - fpBytes0) / memberPeriods);
    return {
      falsePositivesSlowed: declared.size, suspicionsSlowed: suspicions, deadDeclarationsSlowed: deadDeclarations,
      fpMinutesDone: round(doneMs / 60_000), fpMsgsPerMemberPerPeriod: round((sim.totals.packetsSent - fpPackets0) / memberPeriods),
      fpBytesPerMemberPerPeriod: bytes, fpKbitPerMemberPerSecond: kbit(bytes), ...prefixed(fpClock.speed(doneMs)),
    };
  };
  phase(`false positives (${minutes} simulated minutes)`, () => {
    // In steps of FP_STEP_MS (the same events in the same order as one runFor), each written as it ends.
    for (let doneMs = 0; doneMs < minutes * 60_000;) {
      const stepMs = Math.min(FP_STEP_MS, minutes * 60_000 - doneMs);
      sim.runFor(stepMs);
      doneMs += stepMs;
      progress(`false positives, ${round(doneMs / 60_000)} of ${minutes} simulated minutes`, fpFields(doneMs));
    }
  }, () => fpFields(minutes * 60_000));
}

/** The slowed run at n ≥ LARGE_N reports (and saves) its figures this often, in simulated time. */
const FP_STEP_MS = 10_000;

/** Wall and CPU clocks started now; `speed(simMs)`: simulated seconds per wall and per CPU second since. */
interface Speed {
  simSecondsPerWallSecond: number;
  simSecondsPerCpuSecond: number;
}

function speedClock(): { speed: (simMs: number) => Speed } {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  return {
    speed: (simMs) => {
      const cpu = process.cpuUsage(cpu0);
      return {
        simSecondsPerWallSecond: round(simMs / (performance.now() - wall0)),
        simSecondsPerCpuSecond: round(simMs / ((cpu.user + cpu.system) / 1000)),
      };
    },
  };
}

/** The speed of the slowed run, under its own names. */
function prefixed(speed: Speed): Partial<Row> {
  return { fpSimSecondsPerWallSecond: speed.simSecondsPerWallSecond, fpSimSecondsPerCpuSecond: speed.simSecondsPerCpuSecond };
}

function detectionFields(d: { firsts: number[]; alls: number[]; undetected: number }, minMs: number): Partial<Row> {
  const allDeadMaxPeriods = round(Math.max(0, ...d.alls) / PERIOD_MS);
  return {
    firstSuspectPeriods: round(mean(d.firsts) / PERIOD_MS),
    allDeadPeriods: round(mean(d.alls) / PERIOD_MS),
    allDeadMaxPeriods,
    crashesUndetected: d.undetected,
    deadWithinTimeoutPlus3: d.undetected === 0 && allDeadMaxPeriods <= minMs / PERIOD_MS + 3,
  };
}

/** Half the cluster is cut off until both halves declared the other dead; then the cut heals. */
function partition(n: number, lossRate: number, seed: number): number | null {
  const sim = new Simulator({ n, seed, lossRate });
  sim.bootstrap();
  sim.runFor(5000);
  const half = Math.floor(n / 2);
  for (let i = half; i < n; i += 1) sim.setGroup(i, 1);
  const probesA = [0, Math.floor(half / 2), half - 1];
  const probesB = [half, Math.floor((half + n) / 2), n - 1];
  const split = (): boolean =>
    probesA.every((a) => probesB.every((b) => sim.nodes[a].core.stateOf(sim.nodes[b].id) === 'dead')) &&
    probesB.every((b) => probesA.every((a) => sim.nodes[b].core.stateOf(sim.nodes[a].id) === 'dead'));
  const { maxMs } = suspicionTimeouts(config, n);
  sim.runUntilTrue(split, maxMs + 120_000, 1000);
  sim.heal();
  return sim.runUntilTrue(() => sim.converged(), 600_000, 200);
}

/** Largest n for the all-at-once join: the seed answers n − 1 push-pulls in one instant. */
const JOIN_TOGETHER_N_MAX = 200;

/** Every member started at the same instant, all joining through member 0: time until all see all. */
function joinTogether(n: number, lossRate: number, seed: number): number | null {
  const sim = new Simulator({ n, seed, lossRate });
  for (let i = 0; i < n; i += 1) sim.start(i, i === 0 ? [] : [0]);
  return sim.runUntilTrue(() => sim.converged(), 120_000, 50);
}

/** One (n, loss) row; a measure is null until its phase ran (`phasesComplete`), or when it is not run at that n. */
interface Row {
  n: number;
  lossPct: number;
  seed: number;
  quick: boolean;
  /** False while phases are still running (a run cut short leaves such a row). */
  complete: boolean;
  phasesComplete: string[];
  phaseCpuSeconds: Record<string, number>;
  joinPeriods: number | null;
  /** All n started at once through one seed (issue 10: was 20–30 s at n = 30 before the follow-up syncs). */
  joinTogetherPeriods: number | null;
  /** Seconds (periods) until 99.99 % of the other members know a joiner (serf's model: ~2.5 s at n = 10 000). */
  join9999Seconds: number | null;
  firstSuspectPeriods: number | null;
  swimFirstDetectPeriods: number;
  allDeadPeriods: number | null;
  allDeadMaxPeriods: number | null;
  suspicionMinPeriods: number;
  suspicionMaxPeriods: number;
  deadWithinTimeoutPlus3: boolean | null;
  crashesUndetected: number | null;
  /** Simulated minutes of the slowed, Lifeguard run (the false-positive goal). */
  fpSimulatedMinutes: number;
  /** Simulated minutes of the slowed run done so far (= fpSimulatedMinutes once complete). */
  fpMinutesDone: number | null;
  /** Simulated minutes of the other three stability runs (shorter at large n: CPU time); null = not run. */
  fpOtherMinutes: number | null;
  falsePositives: number | null;
  falsePositivesNoLifeguard: number | null;
  falsePositivesSlowed: number | null;
  falsePositivesSlowedNoLifeguard: number | null;
  /** Dead declarations of healthy members in the slowed Lifeguard run (one member declared by many counts many times). */
  deadDeclarationsSlowed: number | null;
  suspicions: number | null;
  suspicionsNoLifeguard: number | null;
  suspicionsSlowed: number | null;
  suspicionsSlowedNoLifeguard: number | null;
  msgsPerMemberPerPeriod: number | null;
  bytesPerMemberPerPeriod: number | null;
  kbitPerMemberPerSecond: number | null;
  /** UDP load during the slowed Lifeguard run: suspicions and refutations gossiped all the time. */
  fpMsgsPerMemberPerPeriod: number | null;
  fpBytesPerMemberPerPeriod: number | null;
  fpKbitPerMemberPerSecond: number | null;
  partitionReconvergePeriods: number | null;
  /** Simulated seconds per wall-clock / CPU second in the quiet (plain Lifeguard) run, and the load average then. */
  simSecondsPerWallSecond: number | null;
  simSecondsPerCpuSecond: number | null;
  /** The same in the slowed Lifeguard run (gossip of suspicions and refutations all the time). */
  fpSimSecondsPerWallSecond: number | null;
  fpSimSecondsPerCpuSecond: number | null;
  loadAverage1m: number | null;
  /** n ≥ LARGE_N: wall time of the bootstrap, and heap + array buffers after it. */
  bootstrapWallSeconds: number | null;
  heapMiB: number | null;
  /** Peak resident set of the process so far (all rows of this run). */
  rssMiBMax: number;
  cpuSeconds: number;
  wallSeconds: number;
}

/** The row being measured; `phase` and `progress` write into it. */
let current: { row: Row; cpu0: NodeJS.CpuUsage; wall0: number } | null = null;

/** Runs one phase; its figures (`fields(result)`) go into the current row, the console and the results file at once. */
function phase<T>(name: string, body: () => T, fields: (result: T) => Partial<Row> = () => ({})): T {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const result = body();
  const cpu = cpuSeconds(cpu0);
  const update = fields(result);
  assert.ok(current !== null);
  current.row.phasesComplete.push(name);
  current.row.phaseCpuSeconds[name] = cpu;
  progress(`${name} done: ${cpu} s CPU, ${round((performance.now() - wall0) / 1000)} s wall`, update);
  return result;
}

/** Writes `update` into the current row and the results file, and prints it. */
function progress(what: string, update: Partial<Row>): void {
  assert.ok(current !== null);
  const { row } = current;
  Object.assign(row, update);
  row.cpuSeconds = cpuSeconds(current.cpu0);
  row.wallSeconds = round((performance.now() - current.wall0) / 1000);
  row.rssMiBMax = Math.round(process.resourceUsage().maxRSS / 1024);
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`[n=${row.n} loss=${row.lossPct}%] ${what} (row so far ${row.cpuSeconds} s CPU, ${row.wallSeconds} s wall, RSS max ${row.rssMiBMax} MiB, load ${load}) ${JSON.stringify(update)}`);
  writeResults();
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return round((used.user + used.system) / 1e6);
}

const rows: Row[] = [];
const started = Date.now();
for (const n of sizes) {
  for (const lossRate of LOSSES) {
    const seed = baseSeed + n * 10 + lossRate * 100;
    const { minMs, maxMs } = suspicionTimeouts(config, n);
    const large = n >= LARGE_N;
    const row: Row = {
      n, lossPct: lossRate * 100, seed: baseSeed, quick, complete: false, phasesComplete: [], phaseCpuSeconds: {},
      swimFirstDetectPeriods: round(SWIM_FIRST_DETECT_PERIODS), suspicionMinPeriods: round(minMs / PERIOD_MS),
      suspicionMaxPeriods: round(maxMs / PERIOD_MS), fpSimulatedMinutes: fpMinutes(n), fpMinutesDone: null,
      fpOtherMinutes: large ? null : otherMinutes(n),
      joinPeriods: null, joinTogetherPeriods: null, join9999Seconds: null, firstSuspectPeriods: null, allDeadPeriods: null,
      allDeadMaxPeriods: null, deadWithinTimeoutPlus3: null, crashesUndetected: null, falsePositives: null,
      falsePositivesNoLifeguard: null, falsePositivesSlowed: null, falsePositivesSlowedNoLifeguard: null, deadDeclarationsSlowed: null,
      suspicions: null, suspicionsNoLifeguard: null, suspicionsSlowed: null, suspicionsSlowedNoLifeguard: null,
      msgsPerMemberPerPeriod: null, bytesPerMemberPerPeriod: null, kbitPerMemberPerSecond: null, partitionReconvergePeriods: null,
      fpMsgsPerMemberPerPeriod: null, fpBytesPerMemberPerPeriod: null, fpKbitPerMemberPerSecond: null,
      simSecondsPerWallSecond: null, simSecondsPerCpuSecond: null, fpSimSecondsPerWallSecond: null, fpSimSecondsPerCpuSecond: null,
      loadAverage1m: null, bootstrapWallSeconds: null, heapMiB: null, rssMiBMax: 0, cpuSeconds: 0, wallSeconds: 0,
    };
    rows.push(row);
    current = { row, cpu0: process.cpuUsage(), wall0: performance.now() };
    if (large) {
      largeRun(row, n, lossRate, seed);
      if (partitionLarge) phase('partition', () => partition(n, lossRate, seed + 3), (ms) => ({ partitionReconvergePeriods: periods(ms) }));
    } else {
      phase('detection', () => detection(n, lossRate, seed), (d) => d);
      if (n <= JOIN_TOGETHER_N_MAX) phase('join together', () => joinTogether(n, lossRate, seed + 4), (ms) => ({ joinTogetherPeriods: periods(ms) }));
      const other = otherMinutes(n);
      phase('stability', () => stability(n, lossRate, true, false, seed + 1, other), (plain) => ({
        falsePositives: plain.falsePositiveMembers, suspicions: plain.suspicions, msgsPerMemberPerPeriod: plain.msgsPerMemberPerPeriod,
        bytesPerMemberPerPeriod: plain.bytesPerMemberPerPeriod, kbitPerMemberPerSecond: kbit(plain.bytesPerMemberPerPeriod),
        simSecondsPerWallSecond: plain.simSecondsPerWallSecond, simSecondsPerCpuSecond: plain.simSecondsPerCpuSecond,
        loadAverage1m: round(os.loadavg()[0]),
      }));
      phase('stability without Lifeguard', () => stability(n, lossRate, false, false, seed + 1, other), (off) => ({
        falsePositivesNoLifeguard: off.falsePositiveMembers, suspicionsNoLifeguard: off.suspicions,
      }));
      phase('slowed', () => stability(n, lossRate, true, true, seed + 2, fpMinutes(n)), (slow) => ({
        falsePositivesSlowed: slow.falsePositiveMembers, suspicionsSlowed: slow.suspicions, deadDeclarationsSlowed: slow.deadDeclarations,
        fpMinutesDone: fpMinutes(n), fpSimSecondsPerWallSecond: slow.simSecondsPerWallSecond, fpSimSecondsPerCpuSecond: slow.simSecondsPerCpuSecond,
        fpMsgsPerMemberPerPeriod: slow.msgsPerMemberPerPeriod, fpBytesPerMemberPerPeriod: slow.bytesPerMemberPerPeriod,
        fpKbitPerMemberPerSecond: kbit(slow.bytesPerMemberPerPeriod),
      }));
      phase('slowed without Lifeguard', () => stability(n, lossRate, false, true, seed + 2, other), (slowOff) => ({
        falsePositivesSlowedNoLifeguard: slowOff.falsePositiveMembers, suspicionsSlowedNoLifeguard: slowOff.suspicions,
      }));
      phase('partition', () => partition(n, lossRate, seed + 3), (ms) => ({ partitionReconvergePeriods: periods(ms) }));
    }
    row.complete = true;
    progress('row complete', { complete: true });
    current = null;
  }
}

const columns: Array<[keyof Row, string]> = [
  ['n', 'n'], ['lossPct', 'loss%'], ['join9999Seconds', 'join 99.99%'], ['joinTogetherPeriods', 'join all'], ['firstSuspectPeriods', '1st susp'],
  ['allDeadPeriods', 'all dead'], ['allDeadMaxPeriods', 'max'], ['suspicionMinPeriods', 'susp min'],
  ['deadWithinTimeoutPlus3', '≤min+3'], ['falsePositives', 'FP LG'], ['falsePositivesNoLifeguard', 'FP noLG'],
  ['falsePositivesSlowed', 'FP slow LG'], ['falsePositivesSlowedNoLifeguard', 'FP slow noLG'],
  ['suspicionsSlowed', 'susp slow LG'], ['suspicionsSlowedNoLifeguard', 'susp slow noLG'],
  ['msgsPerMemberPerPeriod', 'msg/m/s'], ['bytesPerMemberPerPeriod', 'B/m/s'], ['kbitPerMemberPerSecond', 'kbit/m/s'], ['fpKbitPerMemberPerSecond', 'slow kbit/m/s'],
  ['partitionReconvergePeriods', 'heal'], ['fpSimulatedMinutes', 'FP min'], ['fpOtherMinutes', 'other min'],
  ['simSecondsPerWallSecond', 'sim s/wall s'], ['simSecondsPerCpuSecond', 'sim s/CPU s'], ['fpSimSecondsPerCpuSecond', 'FP sim s/CPU s'],
  ['loadAverage1m', 'load'], ['cpuSeconds', 'CPU s'], ['rssMiBMax', 'RSS MiB'],
];
const table = [columns.map(([, label]) => label), ...rows.map((row) => columns.map(([key]) => (row[key] === null ? '-' : String(row[key]))))];
const widths = columns.map((_, i) => Math.max(...table.map((line) => line[i].length)));
console.log(`Membership simulator (seed ${baseSeed}${quick ? ', --quick' : ''}): times in periods of ${PERIOD_MS} ms; SWIM expects the first probe of a failed member after e/(e-1) = ${round(SWIM_FIRST_DETECT_PERIODS)} periods, and a suspicion is raised at the end of that probe's period.`);
for (const line of table) console.log(line.map((cell, i) => cell.padStart(widths[i])).join('  '));
console.log(`FP = distinct healthy members ever declared dead: 'FP slow LG' over 'FP min' simulated minutes, the other FP columns over 'other min' (shorter at n ≥ 1000 for CPU time; n ≥ ${LARGE_N} runs Lifeguard only, '-' = not run); slowed = ${SLOW_FRACTION * 100}% of members handle every packet and timer up to ${SLOW_MS_MAX} ms late; susp = suspicions raised (seen at one member). heal = periods from the end of a half/half partition to full agreement.`);
console.log(`total ${Math.round((Date.now() - started) / 1000)} s wall`);
console.log(`wrote ${writeResults().join(', ')}`);

/**
 * Rewritten after every phase, so a long run that is cut short still leaves what it measured (rows
 * with `complete: false` say which phases are done). The file's rows of other (n, loss) pairs are
 * kept: runs of different sizes merge into one file. `--merge-into FILE` writes the same rows there too.
 */
function writeResults(): string[] {
  const targets = [argValue('--out') ?? path.join('bench', 'results', 'membership.json')];
  const also = argValue('--merge-into');
  if (also !== undefined && !targets.includes(also)) targets.push(also);
  for (const out of targets) {
    let kept: Row[] = [];
    if (fs.existsSync(out)) {
      const old = JSON.parse(fs.readFileSync(out, 'utf8')) as { rows?: Row[] };
      kept = (old.rows ?? []).filter((r) => !rows.some((mine) => mine.n === r.n && mine.lossPct === r.lossPct));
    }
    const merged = [...kept, ...rows].sort((a, b) => a.n - b.n || a.lossPct - b.lossPct);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const body = { seed: baseSeed, quick, periodMs: PERIOD_MS, slowMsMax: SLOW_MS_MAX, slowFraction: SLOW_FRACTION, rows: merged };
    const tmp = `${out}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`);
    fs.renameSync(tmp, out);
  }
  return targets;
}
