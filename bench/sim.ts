/**
 * `npm run bench:membership`: the membership protocol in the deterministic simulator, for n = 100,
 * 1000, 10000 at 0% and 5% datagram loss. Prints a table and writes bench/results/membership.json
 * ({ rows: [...] }). Options: --quick (short runs, for a smoke test), --seed N, --nodes 100,1000 (or
 * --sizes), --losses 0,5 (percent), --fp-minutes M (simulated minutes of every false-positive run;
 * default 10 at n ≤ 100, 60 at n = 1000, 10 at n ≥ 10000), --slow-pct P (CPU-starved members, default
 * 1), --partition (also the half/half partition at n ≥ 10000), --out FILE (default
 * bench/results/membership.json). Times are in protocol periods
 * (probeIntervalMs = 1 s by default, so periods are seconds).
 *
 * At n ≥ 10000 one simulator runs every phase in turn (a bootstrap of n cores learning n members is
 * 10^8 record inserts) and only with Lifeguard on: quiet minute (bandwidth), crashes, a join, then
 * the false-positive run with slowed members.
 */
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
const LARGE_N = 10_000;
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

interface Detection {
  joinPeriods: number | null;
  firstSuspectPeriods: number;
  allDeadPeriods: number;
  allDeadMaxPeriods: number;
  crashesUndetected: number;
}

/** A member joins a converged cluster; then members crash one by one. */
function detection(n: number, lossRate: number, seed: number): Detection {
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
  const { maxMs } = suspicionTimeouts(config, n);
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
  return {
    joinPeriods: periods(joinMs),
    firstSuspectPeriods: round(mean(firsts) / PERIOD_MS),
    allDeadPeriods: round(mean(alls) / PERIOD_MS),
    allDeadMaxPeriods: round(Math.max(0, ...alls) / PERIOD_MS),
    crashesUndetected: undetected,
  };
}

interface Stability {
  falsePositiveMembers: number;
  deadDeclarations: number;
  suspicions: number;
  msgsPerMemberPerPeriod: number;
  bytesPerMemberPerPeriod: number;
  simSecondsPerWallSecond: number;
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
  const wall0 = performance.now();
  sim.runFor(durationMs);
  const wallMs = performance.now() - wall0;
  const memberPeriods = n * (durationMs / PERIOD_MS);
  return {
    falsePositiveMembers: declared.size,
    deadDeclarations,
    suspicions,
    msgsPerMemberPerPeriod: round((sim.totals.packetsSent - packets0) / memberPeriods),
    bytesPerMemberPerPeriod: Math.round((sim.totals.bytesSent - bytes0) / memberPeriods),
    simSecondsPerWallSecond: round(durationMs / wallMs),
  };
}

interface Large extends Detection, Stability {
  bootstrapWallSeconds: number;
  heapMiB: number;
}

/**
 * n ≥ LARGE_N: one simulator, Lifeguard on, every phase in turn: a quiet minute (bandwidth, speed),
 * a join (n − 1 bootstrapped, then the last member joins through member 0), crashes one by one, then
 * SLOW_FRACTION of the members CPU-starved for fpMinutes(n) (false positives: healthy members, not the
 * crashed ones, ever declared dead).
 */
function large(n: number, lossRate: number, seed: number): Large {
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
  sim.bootstrap(n - 1);
  const bootstrapWallSeconds = round((performance.now() - boot0) / 1000);
  const heapMiB = Math.round(process.memoryUsage().heapUsed / 2 ** 20 + process.memoryUsage().arrayBuffers / 2 ** 20);
  process.stderr.write(`  bootstrap: ${bootstrapWallSeconds} s wall, ${heapMiB} MiB heap + array buffers\n`);
  sim.runFor(10_000);
  // Bandwidth and speed over a quiet minute (n − 1 members).
  const quietMs = quick ? 10_000 : 60_000;
  const packets0 = sim.totals.packetsSent;
  const bytes0 = sim.totals.bytesSent;
  const wall0 = performance.now();
  phase('quiet minute', () => sim.runFor(quietMs));
  const simSecondsPerWallSecond = round(quietMs / (performance.now() - wall0));
  const memberPeriods = (n - 1) * (quietMs / PERIOD_MS);
  const msgsPerMemberPerPeriod = round((sim.totals.packetsSent - packets0) / memberPeriods);
  const bytesPerMemberPerPeriod = Math.round((sim.totals.bytesSent - bytes0) / memberPeriods);
  const joiner = n - 1;
  sim.start(joiner, [0]);
  const joinMs = phase('join', () => sim.runUntilTrue(() => sim.countSeeing(joiner, 'alive') >= Math.ceil(JOIN_KNOWN_FRACTION * (n - 1)), 120_000, 50));
  sim.runFor(5000);
  const firsts: number[] = [];
  const alls: number[] = [];
  let undetected = 0;
  const { maxMs } = suspicionTimeouts(config, n);
  for (let trial = 0; trial < crashTrials(n); trial += 1) {
    const victim = 2 + trial * Math.floor(n / 7);
    watching = sim.nodes[victim].id;
    crashed.add(watching);
    firstSuspectMs = -1;
    const crashMs = sim.now;
    sim.crash(victim);
    const took = phase(`crash ${trial + 1}`, () => sim.runUntilTrue(() => sim.countSeeing(victim, 'dead') === sim.upCount(), maxMs + 60_000, 200));
    if (took === null) undetected += 1;
    else alls.push(took);
    if (firstSuspectMs >= 0) firsts.push(firstSuspectMs - crashMs);
  }
  watching = '';
  sim.runFor(5000);
  for (let i = 0; i < n; i += Math.round(1 / SLOW_FRACTION)) if (i !== 1 && sim.nodes[i].up) sim.setSlow(i, SLOW_MS_MAX);
  counting = true;
  phase(`false positives (${fpMinutes(n)} simulated minutes)`, () => sim.runFor(fpMinutes(n) * 60_000));
  return {
    joinPeriods: periods(joinMs),
    firstSuspectPeriods: round(mean(firsts) / PERIOD_MS),
    allDeadPeriods: round(mean(alls) / PERIOD_MS),
    allDeadMaxPeriods: round(Math.max(0, ...alls) / PERIOD_MS),
    crashesUndetected: undetected,
    falsePositiveMembers: declared.size,
    deadDeclarations,
    suspicions,
    msgsPerMemberPerPeriod,
    bytesPerMemberPerPeriod,
    simSecondsPerWallSecond,
    bootstrapWallSeconds,
    heapMiB,
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

interface Row {
  n: number;
  lossPct: number;
  joinPeriods: number | null;
  /** All n started at once through one seed (issue 10: was 20–30 s at n = 30 before the follow-up syncs). */
  joinTogetherPeriods: number | null;
  /** Seconds (periods) until 99.99 % of the other members know a joiner (serf's model: ~2.5 s at n = 10 000). */
  join9999Seconds: number | null;
  firstSuspectPeriods: number;
  swimFirstDetectPeriods: number;
  allDeadPeriods: number;
  allDeadMaxPeriods: number;
  suspicionMinPeriods: number;
  suspicionMaxPeriods: number;
  deadWithinTimeoutPlus3: boolean;
  crashesUndetected: number;
  /** Simulated minutes of the slowed, Lifeguard run (the false-positive goal). */
  fpSimulatedMinutes: number;
  /** Simulated minutes of the other three stability runs (shorter at large n: CPU time); null = not run. */
  fpOtherMinutes: number | null;
  falsePositives: number | null;
  falsePositivesNoLifeguard: number | null;
  falsePositivesSlowed: number;
  falsePositivesSlowedNoLifeguard: number | null;
  suspicions: number | null;
  suspicionsNoLifeguard: number | null;
  suspicionsSlowed: number;
  suspicionsSlowedNoLifeguard: number | null;
  msgsPerMemberPerPeriod: number;
  bytesPerMemberPerPeriod: number;
  kbitPerMemberPerSecond: number;
  partitionReconvergePeriods: number | null;
  /** Simulated seconds per wall-clock second in the quiet (plain Lifeguard) run, and the load average then. */
  simSecondsPerWallSecond: number;
  loadAverage1m: number;
  heapMiB: number | null;
  cpuSeconds: number;
}

function phase<T>(name: string, body: () => T): T {
  const cpu0 = process.cpuUsage();
  const result = body();
  process.stderr.write(`  ${name}: ${cpuSeconds(cpu0)} s CPU\n`);
  return result;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return round((used.user + used.system) / 1e6);
}

const rows: Row[] = [];
const started = Date.now();
for (const n of sizes) {
  for (const lossRate of LOSSES) {
    const cpu0 = process.cpuUsage();
    const seed = baseSeed + n * 10 + lossRate * 100;
    const { minMs, maxMs } = suspicionTimeouts(config, n);
    const common = {
      n, lossPct: lossRate * 100, swimFirstDetectPeriods: round(SWIM_FIRST_DETECT_PERIODS),
      suspicionMinPeriods: round(minMs / PERIOD_MS), suspicionMaxPeriods: round(maxMs / PERIOD_MS), fpSimulatedMinutes: fpMinutes(n),
    };
    let row: Row;
    if (n >= LARGE_N) {
      const l = large(n, lossRate, seed);
      const reconverge = partitionLarge ? phase('partition', () => partition(n, lossRate, seed + 3)) : null;
      row = {
        ...common,
        joinPeriods: l.joinPeriods, join9999Seconds: l.joinPeriods, joinTogetherPeriods: null,
        firstSuspectPeriods: l.firstSuspectPeriods, allDeadPeriods: l.allDeadPeriods, allDeadMaxPeriods: l.allDeadMaxPeriods,
        deadWithinTimeoutPlus3: l.crashesUndetected === 0 && l.allDeadMaxPeriods <= minMs / PERIOD_MS + 3, crashesUndetected: l.crashesUndetected,
        fpOtherMinutes: null, falsePositives: null, falsePositivesNoLifeguard: null, falsePositivesSlowed: l.falsePositiveMembers,
        falsePositivesSlowedNoLifeguard: null, suspicions: null, suspicionsNoLifeguard: null, suspicionsSlowed: l.suspicions,
        suspicionsSlowedNoLifeguard: null, msgsPerMemberPerPeriod: l.msgsPerMemberPerPeriod, bytesPerMemberPerPeriod: l.bytesPerMemberPerPeriod,
        kbitPerMemberPerSecond: kbit(l.bytesPerMemberPerPeriod), partitionReconvergePeriods: periods(reconverge),
        simSecondsPerWallSecond: l.simSecondsPerWallSecond, loadAverage1m: round(os.loadavg()[0]), heapMiB: l.heapMiB, cpuSeconds: cpuSeconds(cpu0),
      };
    } else {
      const d = phase('detection', () => detection(n, lossRate, seed));
      const together = n <= JOIN_TOGETHER_N_MAX ? phase('join together', () => joinTogether(n, lossRate, seed + 4)) : null;
      const other = otherMinutes(n);
      const plain = phase('stability', () => stability(n, lossRate, true, false, seed + 1, other));
      const load = os.loadavg()[0];
      const plainOff = phase('stability without Lifeguard', () => stability(n, lossRate, false, false, seed + 1, other));
      const slow = phase('slowed', () => stability(n, lossRate, true, true, seed + 2, fpMinutes(n)));
      const slowOff = phase('slowed without Lifeguard', () => stability(n, lossRate, false, true, seed + 2, other));
      const reconverge = phase('partition', () => partition(n, lossRate, seed + 3));
      row = {
        ...common,
        joinPeriods: d.joinPeriods, join9999Seconds: d.joinPeriods, joinTogetherPeriods: periods(together),
        firstSuspectPeriods: d.firstSuspectPeriods, allDeadPeriods: d.allDeadPeriods, allDeadMaxPeriods: d.allDeadMaxPeriods,
        deadWithinTimeoutPlus3: d.crashesUndetected === 0 && d.allDeadMaxPeriods <= minMs / PERIOD_MS + 3, crashesUndetected: d.crashesUndetected,
        fpOtherMinutes: other, falsePositives: plain.falsePositiveMembers, falsePositivesNoLifeguard: plainOff.falsePositiveMembers,
        falsePositivesSlowed: slow.falsePositiveMembers, falsePositivesSlowedNoLifeguard: slowOff.falsePositiveMembers,
        suspicions: plain.suspicions, suspicionsNoLifeguard: plainOff.suspicions, suspicionsSlowed: slow.suspicions,
        suspicionsSlowedNoLifeguard: slowOff.suspicions, msgsPerMemberPerPeriod: plain.msgsPerMemberPerPeriod,
        bytesPerMemberPerPeriod: plain.bytesPerMemberPerPeriod, kbitPerMemberPerSecond: kbit(plain.bytesPerMemberPerPeriod),
        partitionReconvergePeriods: periods(reconverge), simSecondsPerWallSecond: plain.simSecondsPerWallSecond,
        loadAverage1m: round(load), heapMiB: null, cpuSeconds: cpuSeconds(cpu0),
      };
    }
    rows.push(row);
    process.stderr.write(`n=${n} loss=${row.lossPct}% done (${row.cpuSeconds} s CPU): ${JSON.stringify(row)}\n`);
    writeResults();
  }
}

const columns: Array<[keyof Row, string]> = [
  ['n', 'n'], ['lossPct', 'loss%'], ['join9999Seconds', 'join 99.99%'], ['joinTogetherPeriods', 'join all'], ['firstSuspectPeriods', '1st susp'],
  ['allDeadPeriods', 'all dead'], ['allDeadMaxPeriods', 'max'], ['suspicionMinPeriods', 'susp min'],
  ['deadWithinTimeoutPlus3', '≤min+3'], ['falsePositives', 'FP LG'], ['falsePositivesNoLifeguard', 'FP noLG'],
  ['falsePositivesSlowed', 'FP slow LG'], ['falsePositivesSlowedNoLifeguard', 'FP slow noLG'],
  ['suspicionsSlowed', 'susp slow LG'], ['suspicionsSlowedNoLifeguard', 'susp slow noLG'],
  ['msgsPerMemberPerPeriod', 'msg/m/s'], ['bytesPerMemberPerPeriod', 'B/m/s'], ['kbitPerMemberPerSecond', 'kbit/m/s'],
  ['partitionReconvergePeriods', 'heal'], ['fpSimulatedMinutes', 'FP min'], ['fpOtherMinutes', 'other min'],
  ['simSecondsPerWallSecond', 'sim s/wall s'], ['loadAverage1m', 'load'],
];
const table = [columns.map(([, label]) => label), ...rows.map((row) => columns.map(([key]) => (row[key] === null ? '-' : String(row[key]))))];
const widths = columns.map((_, i) => Math.max(...table.map((line) => line[i].length)));
console.log(`Membership simulator (seed ${baseSeed}${quick ? ', --quick' : ''}): times in periods of ${PERIOD_MS} ms; SWIM expects the first probe of a failed member after e/(e-1) = ${round(SWIM_FIRST_DETECT_PERIODS)} periods, and a suspicion is raised at the end of that probe's period.`);
for (const line of table) console.log(line.map((cell, i) => cell.padStart(widths[i])).join('  '));
console.log(`FP = distinct healthy members ever declared dead: 'FP slow LG' over 'FP min' simulated minutes, the other FP columns over 'other min' (shorter at n ≥ 1000 for CPU time; n ≥ ${LARGE_N} runs Lifeguard only, '-' = not run); slowed = ${SLOW_FRACTION * 100}% of members handle every packet and timer up to ${SLOW_MS_MAX} ms late; susp = suspicions raised (seen at one member). heal = periods from the end of a half/half partition to full agreement.`);
console.log(`total ${Math.round((Date.now() - started) / 1000)} s wall`);
console.log(`wrote ${writeResults()}`);

/** Rewritten after every row, so a long run that is cut short still leaves its finished rows. */
function writeResults(): string {
  const out = argValue('--out') ?? path.join('bench', 'results', 'membership.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const body = { seed: baseSeed, quick, periodMs: PERIOD_MS, slowMsMax: SLOW_MS_MAX, slowFraction: SLOW_FRACTION, rows };
  fs.writeFileSync(out, `${JSON.stringify(body, null, 2)}\n`);
  return out;
}
