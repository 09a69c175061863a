/**
 * `npm run sim`: the membership protocol in the deterministic simulator, for n = 10, 100, 1000 at 0%
 * and 10% datagram loss. Prints a table and writes bench/results/membership.json ({ rows: [...] }).
 * Options: --quick (short runs, for a smoke test), --seed N, --sizes 10,100, --fp-minutes M (simulated
 * minutes of every false-positive run; default 60 at n = 10, 10 at n = 100, 0.25 at n = 1000).
 * Times are in protocol periods (probeIntervalMs = 1 s by default).
 */
import fs from 'node:fs';
import path from 'node:path';
import { resolveMembershipConfig } from '../src/membership/config.js';
import { Simulator } from '../src/membership/sim/simulator.js';
import { suspicionTimeouts } from '../src/membership/suspicion.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const seedArg = args.indexOf('--seed');
const baseSeed = seedArg >= 0 ? Number(args[seedArg + 1]) : 20_261_126;
const sizesArg = args.indexOf('--sizes');
const sizes = sizesArg >= 0 ? args[sizesArg + 1].split(',').map(Number) : [10, 100, 1000];
const LOSSES = [0, 0.1];
const config = resolveMembershipConfig();
const PERIOD_MS = config.probeIntervalMs;
/** SWIM's expected time (in periods) until some member first probes a failed one: e/(e − 1). */
const SWIM_FIRST_DETECT_PERIODS = Math.E / (Math.E - 1);
/** A slowed member handles each of its packets and timers up to this late (uniformly). */
const SLOW_MS_MAX = 1500;
const SLOW_FRACTION = 0.1;

const fpMinutesArg = args.indexOf('--fp-minutes');
const fpMinutesFixed = fpMinutesArg >= 0 ? Number(args[fpMinutesArg + 1]) : null;

/** Simulated minutes of each false-positive run, per cluster size (shorter for big n: CPU time). */
function fpMinutes(n: number): number {
  if (fpMinutesFixed !== null) return fpMinutesFixed;
  if (quick) return n >= 1000 ? 0.25 : 2;
  return n <= 10 ? 60 : n <= 100 ? 10 : 0.25;
}

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
  const joinMs = sim.runUntilTrue(() => sim.countSeeing(joiner, 'alive') === n - 1, 120_000, 50);
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
}

/** A healthy cluster (optionally with slowed members) left alone: who is ever declared dead? */
function stability(n: number, lossRate: number, lifeguard: boolean, slowed: boolean, seed: number): Stability {
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
  const durationMs = fpMinutes(n) * 60_000;
  sim.runFor(durationMs);
  const memberPeriods = n * (durationMs / PERIOD_MS);
  return {
    falsePositiveMembers: declared.size,
    deadDeclarations,
    suspicions,
    msgsPerMemberPerPeriod: round((sim.totals.packetsSent - packets0) / memberPeriods),
    bytesPerMemberPerPeriod: Math.round((sim.totals.bytesSent - bytes0) / memberPeriods),
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
  firstSuspectPeriods: number;
  swimFirstDetectPeriods: number;
  allDeadPeriods: number;
  allDeadMaxPeriods: number;
  suspicionMinPeriods: number;
  suspicionMaxPeriods: number;
  deadWithinTimeoutPlus3: boolean;
  crashesUndetected: number;
  fpSimulatedMinutes: number;
  falsePositives: number;
  falsePositivesNoLifeguard: number;
  falsePositivesSlowed: number;
  falsePositivesSlowedNoLifeguard: number;
  suspicions: number;
  suspicionsNoLifeguard: number;
  suspicionsSlowed: number;
  suspicionsSlowedNoLifeguard: number;
  msgsPerMemberPerPeriod: number;
  bytesPerMemberPerPeriod: number;
  partitionReconvergePeriods: number | null;
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
    const d = phase('detection', () => detection(n, lossRate, seed));
    const together = n <= JOIN_TOGETHER_N_MAX ? phase('join together', () => joinTogether(n, lossRate, seed + 4)) : null;
    const plain = phase('stability', () => stability(n, lossRate, true, false, seed + 1));
    const plainOff = phase('stability without Lifeguard', () => stability(n, lossRate, false, false, seed + 1));
    const slow = phase('slowed', () => stability(n, lossRate, true, true, seed + 2));
    const slowOff = phase('slowed without Lifeguard', () => stability(n, lossRate, false, true, seed + 2));
    // At n = 1000 a partition makes every member gossip ~1000 suspicions and deaths and then as many
    // refutations: minutes of CPU, so it runs at 0% loss only there.
    const reconverge = n >= 1000 && lossRate > 0 ? null : phase('partition', () => partition(n, lossRate, seed + 3));
    const row: Row = {
      n,
      lossPct: lossRate * 100,
      joinPeriods: d.joinPeriods,
      joinTogetherPeriods: periods(together),
      firstSuspectPeriods: d.firstSuspectPeriods,
      swimFirstDetectPeriods: round(SWIM_FIRST_DETECT_PERIODS),
      allDeadPeriods: d.allDeadPeriods,
      allDeadMaxPeriods: d.allDeadMaxPeriods,
      suspicionMinPeriods: round(minMs / PERIOD_MS),
      suspicionMaxPeriods: round(maxMs / PERIOD_MS),
      deadWithinTimeoutPlus3: d.crashesUndetected === 0 && d.allDeadMaxPeriods <= minMs / PERIOD_MS + 3,
      crashesUndetected: d.crashesUndetected,
      fpSimulatedMinutes: fpMinutes(n),
      falsePositives: plain.falsePositiveMembers,
      falsePositivesNoLifeguard: plainOff.falsePositiveMembers,
      falsePositivesSlowed: slow.falsePositiveMembers,
      falsePositivesSlowedNoLifeguard: slowOff.falsePositiveMembers,
      suspicions: plain.suspicions,
      suspicionsNoLifeguard: plainOff.suspicions,
      suspicionsSlowed: slow.suspicions,
      suspicionsSlowedNoLifeguard: slowOff.suspicions,
      msgsPerMemberPerPeriod: plain.msgsPerMemberPerPeriod,
      bytesPerMemberPerPeriod: plain.bytesPerMemberPerPeriod,
      partitionReconvergePeriods: periods(reconverge),
      cpuSeconds: cpuSeconds(cpu0),
    };
    rows.push(row);
    process.stderr.write(`n=${n} loss=${row.lossPct}% done (${row.cpuSeconds} s CPU): ${JSON.stringify(row)}\n`);
    writeResults();
  }
}

const columns: Array<[keyof Row, string]> = [
  ['n', 'n'], ['lossPct', 'loss%'], ['joinPeriods', 'join'], ['joinTogetherPeriods', 'join all'], ['firstSuspectPeriods', '1st susp'],
  ['allDeadPeriods', 'all dead'], ['allDeadMaxPeriods', 'max'], ['suspicionMinPeriods', 'susp min'],
  ['deadWithinTimeoutPlus3', '≤min+3'], ['falsePositives', 'FP LG'], ['falsePositivesNoLifeguard', 'FP noLG'],
  ['falsePositivesSlowed', 'FP slow LG'], ['falsePositivesSlowedNoLifeguard', 'FP slow noLG'],
  ['suspicionsSlowed', 'susp slow LG'], ['suspicionsSlowedNoLifeguard', 'susp slow noLG'],
  ['msgsPerMemberPerPeriod', 'msg/m/p'], ['bytesPerMemberPerPeriod', 'B/m/p'],
  ['partitionReconvergePeriods', 'heal'], ['fpSimulatedMinutes', 'FP min'],
];
const table = [columns.map(([, label]) => label), ...rows.map((row) => columns.map(([key]) => String(row[key])))];
const widths = columns.map((_, i) => Math.max(...table.map((line) => line[i].length)));
console.log(`Membership simulator (seed ${baseSeed}${quick ? ', --quick' : ''}): times in periods of ${PERIOD_MS} ms; SWIM expects the first probe of a failed member after e/(e-1) = ${round(SWIM_FIRST_DETECT_PERIODS)} periods, and a suspicion is raised at the end of that probe's period.`);
for (const line of table) console.log(line.map((cell, i) => cell.padStart(widths[i])).join('  '));
console.log(`FP = distinct healthy members ever declared dead, over 'FP min' simulated minutes each (n=1000 runs are shortened to keep CPU time reasonable); slowed = ${SLOW_FRACTION * 100}% of members handle every packet and timer up to ${SLOW_MS_MAX} ms late; susp = suspicions raised (seen at one member). heal = periods from the end of a half/half partition to full agreement.`);
console.log(`total ${Math.round((Date.now() - started) / 1000)} s wall`);
console.log(`wrote ${writeResults()}`);

/** Rewritten after every row, so a long run that is cut short still leaves its finished rows. */
function writeResults(): string {
  const out = path.join('bench', 'results', 'membership.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const body = { seed: baseSeed, quick, periodMs: PERIOD_MS, slowMsMax: SLOW_MS_MAX, slowFraction: SLOW_FRACTION, rows };
  fs.writeFileSync(out, `${JSON.stringify(body, null, 2)}\n`);
  return out;
}
