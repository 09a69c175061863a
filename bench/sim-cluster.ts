/**
 * `npm run sim:cluster`: the whole-cluster deterministic simulator (src/sim/, docs/SIMULATION.md).
 *
 *   npm run sim:cluster -- --seeds 1000              seeds 1..1000 on every core; failures with replay commands
 *   npm run sim:cluster -- --seed 42                 one seed, with its plan and figures
 *   npm run sim:cluster -- --seed 42 --keep 0,3      the same seed with only those faults of its plan
 *   npm run sim:cluster -- --seed 42 --shrink        a failing seed's plan cut down to the faults it needs
 *   npm run sim:cluster -- --minutes 30              explore new seeds until 30 minutes have passed
 *   npm run sim:cluster -- --mutation NAME --seeds 1000    stop at the first seed that catches the mutation
 *   npm run sim:cluster -- --mutation-table --seeds 1000   every known mutation: seeds needed to catch it
 *   --replay-check   run every seed twice and demand the same trace hash
 *   --nodes N --duration S --first S --jobs J --out FILE (JSON results)
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MUTATIONS, type MutationName } from '../src/mutations.js';
import { describeFault } from '../src/sim/faults.js';
import { shrinkSeed } from '../src/sim/shrink.js';
import { parseMutations, runSeed, type SeedResult, type WorldOptions } from '../src/sim/world.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const value = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const num = (name: string, fallback: number) => {
  const v = value(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} needs a number, got "${v}"`);
  return n;
};

/** The world options of one seed: the node count varies with the seed unless --nodes fixes it. */
function worldFor(seed: number, mutations: MutationName[]): Partial<WorldOptions> & { seed: number } {
  const nodes = value('--nodes') !== undefined ? num('--nodes', 5) : 3 + (seed % 4);
  const keep = value('--keep');
  return {
    seed,
    nodes,
    nodesMax: Math.min(9, nodes + 2),
    durationMs: num('--duration', 60) * 1000,
    mutations,
    printTrace: flag('--trace'),
    ...(keep !== undefined ? { keep: keep === '' ? [] : keep.split(',').map(Number) } : {}),
  };
}

function replayCommand(r: SeedResult, mutations: MutationName[]): string {
  const parts = ['npm run sim:cluster --', `--seed ${r.seed}`];
  if (value('--nodes') !== undefined) parts.push(`--nodes ${value('--nodes')}`);
  if (value('--duration') !== undefined) parts.push(`--duration ${value('--duration')}`);
  if (mutations.length > 0) parts.push(`--mutation ${mutations.join(',')}`);
  if (r.kept.length !== r.plan.length) parts.push(`--keep ${r.kept.join(',')}`);
  return parts.join(' ');
}

function printFailure(r: SeedResult, mutations: MutationName[], full: boolean): void {
  console.log(`\nFAIL seed ${r.seed}: ${r.violations.length} violations; replay: ${replayCommand(r, mutations)}`);
  for (const v of r.violations.slice(0, 12)) console.log(`  ${v.check}: ${v.detail}`);
  if (r.violations.length > 12) console.log(`  … ${r.violations.length - 12} more`);
  console.log('  faults:');
  for (const i of r.kept) if (r.plan[i]) console.log(`    [${i}] ${describeFault(r.plan[i])}`);
  if (!full) return;
  console.log('  last events per node:');
  for (const [id, lines] of Object.entries(r.lastLines)) {
    console.log(`   ${id}:`);
    for (const line of lines.slice(-12)) console.log(`      ${line}`);
  }
  console.log('  world trace (last lines):');
  for (const line of r.traceTail.filter((l) => l.includes(' world ')).slice(-15)) console.log(`      ${line}`);
}

interface Summary {
  seeds: number;
  passed: number;
  failed: number[];
  simulatedMs: number;
  wallMs: number;
  events: number;
  settleMsMax: number;
  settleMsSum: number;
  attempts: number;
  acked: number;
  faults: number;
  replayMismatches: number[];
}

function emptySummary(): Summary {
  return { seeds: 0, passed: 0, failed: [], simulatedMs: 0, wallMs: 0, events: 0, settleMsMax: 0, settleMsSum: 0, attempts: 0, acked: 0, faults: 0, replayMismatches: [] };
}

function add(s: Summary, r: SeedResult): void {
  s.seeds++;
  if (r.ok) s.passed++;
  else s.failed.push(r.seed);
  s.simulatedMs += r.simulatedMs;
  s.wallMs += r.wallMs;
  s.events += r.events;
  if (r.settledAfterMs !== null) {
    s.settleMsMax = Math.max(s.settleMsMax, r.settledAfterMs);
    s.settleMsSum += r.settledAfterMs;
  }
  s.attempts += r.stats.attempts;
  s.acked += r.stats.acked;
  s.faults += r.stats.faultsRun;
}

/** One worker process: runs the given seeds and reports each result to the parent. */
async function worker(): Promise<void> {
  const seeds = (value('--worker-seeds') ?? '').split(',').filter(Boolean).map(Number);
  const mutations = parseMutations(value('--mutation'));
  for (const seed of seeds) {
    const r = await runSeed(worldFor(seed, mutations));
    let replayHash: string | null = null;
    if (flag('--replay-check')) replayHash = (await runSeed(worldFor(seed, mutations))).traceHash;
    process.send?.({ result: r, replayHash });
    if (!r.ok && flag('--stop-on-fail')) break;
  }
}

/** Runs `seeds` over `jobs` worker processes; calls `onResult` as results arrive; stops early if asked. */
async function runParallel(
  seeds: number[],
  jobs: number,
  extraArgs: string[],
  onResult: (r: SeedResult, replayHash: string | null) => boolean,
): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const chunks: number[][] = Array.from({ length: jobs }, () => []);
  seeds.forEach((s, i) => chunks[i % jobs].push(s));
  let stop = false;
  const live: ReturnType<typeof fork>[] = [];
  const children = chunks
    .filter((c) => c.length > 0)
    .map(
      (chunk) =>
        new Promise<void>((resolve) => {
          const child = fork(self, [...extraArgs, '--worker', '--worker-seeds', chunk.join(',')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
          child.on('message', (msg: { result: SeedResult; replayHash: string | null }) => {
            if (stop) return;
            if (!onResult(msg.result, msg.replayHash)) {
              stop = true;
              for (const c of live) c.kill();
            }
          });
          child.on('exit', () => resolve());
          live.push(child);
        }),
    );
  await Promise.all(children);
}

function passthroughArgs(): string[] {
  const out: string[] = [];
  for (const name of ['--nodes', '--duration', '--keep']) {
    const v = value(name);
    if (v !== undefined) out.push(name, v);
  }
  if (flag('--replay-check')) out.push('--replay-check');
  return out;
}

function printSummary(s: Summary, wallMs: number, jobs: number): void {
  const simS = s.simulatedMs / 1000;
  const cpuS = s.wallMs / 1000;
  console.log('\n| seeds | passed | failed | simulated s | wall s | simulated s per wall s (per core) | events | acked writes | faults | settle s (mean / max) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  console.log(
    `| ${s.seeds} | ${s.passed} | ${s.failed.length} | ${simS.toFixed(0)} | ${(wallMs / 1000).toFixed(1)} | ${(simS / (wallMs / 1000)).toFixed(0)} (${(simS / cpuS).toFixed(0)} on ${jobs} jobs) | ${s.events} | ${s.acked} / ${s.attempts} | ${s.faults} | ${s.passed > 0 ? (s.settleMsSum / s.passed / 1000).toFixed(0) : '-'} / ${(s.settleMsMax / 1000).toFixed(0)} |`,
  );
  console.log(`load average: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

async function main(): Promise<void> {
  if (flag('--worker')) return worker();
  const mutations = parseMutations(value('--mutation'));
  const jobs = num('--jobs', Math.max(1, Math.min(os.availableParallelism(), 2)));
  const out = value('--out');

  if (value('--seed') !== undefined) {
    const seed = num('--seed', 1);
    const options = worldFor(seed, mutations);
    const r = await runSeed(options);
    console.log(`seed ${seed}: ${r.ok ? 'pass' : 'FAIL'}; ${(r.simulatedMs / 1000).toFixed(0)} simulated s in ${(r.wallMs / 1000).toFixed(2)} wall s (${(r.simulatedMs / r.wallMs).toFixed(0)}×), ${r.events} events, trace ${r.traceLines} lines sha256 ${r.traceHash.slice(0, 16)}`);
    console.log(`  ${r.stats.acked}/${r.stats.attempts} writes acknowledged, ${r.stats.reads} reads, ${r.stats.keys} keys, ${r.stats.faultsRun} faults run, ${r.stats.faultsSkipped} skipped; settled ${r.settledAfterMs === null ? 'never' : `${(r.settledAfterMs / 1000).toFixed(0)} s after the heal`}`);
    if (r.ok) {
      console.log('  faults:');
      for (const i of r.kept) if (r.plan[i]) console.log(`    [${i}] ${describeFault(r.plan[i])}`);
    } else printFailure(r, mutations, true);
    if (flag('--replay-check')) {
      const again = await runSeed(options);
      console.log(`replay: ${again.traceHash === r.traceHash ? 'same trace' : `DIFFERENT trace (${again.traceHash.slice(0, 16)})`}`);
      if (again.traceHash !== r.traceHash) process.exitCode = 1;
    }
    if (!r.ok && flag('--shrink')) {
      const s = await shrinkSeed(options, r, num('--shrink-runs', 60), (t) => console.log(t));
      console.log(`shrunk from ${r.kept.length} to ${s.kept.length} faults in ${s.runs} runs`);
      printFailure(s.last, mutations, true);
    }
    if (!r.ok) process.exitCode = 1;
    return;
  }

  if (flag('--mutation-table')) {
    const limit = num('--seeds', 1000);
    const first = num('--first', 1);
    const rows: Array<{ mutation: string; description: string; seedsToFind: number | null; seed: number | null; check: string | null }> = [];
    for (const name of Object.keys(MUTATIONS) as MutationName[]) {
      const started = performance.now();
      let found: SeedResult | null = null;
      let ran = 0;
      const baselineFailures: number[] = [];
      // Seeds in chunks over every job; a seed that fails with the mutation counts only if it passes
      // without it (else the failure is not the mutation's: it is noted and the search goes on).
      const chunk = jobs * 10;
      for (let from = first; from < first + limit && found === null; from += chunk) {
        const seeds = Array.from({ length: Math.min(chunk, first + limit - from) }, (_, i) => from + i);
        const failing: SeedResult[] = [];
        await runParallel(seeds, jobs, [...passthroughArgs(), '--mutation', name], (r) => {
          ran++;
          if (!r.ok) failing.push(r);
          return true;
        });
        failing.sort((x, y) => x.seed - y.seed);
        for (const r of failing) {
          const baseline = await runSeed(worldFor(r.seed, []));
          if (baseline.ok) {
            found = r;
            break;
          }
          baselineFailures.push(r.seed);
        }
      }
      const f = found as SeedResult | null;
      rows.push({ mutation: name, description: MUTATIONS[name], seedsToFind: f === null ? null : f.seed - first + 1, seed: f?.seed ?? null, check: f?.violations[0]?.check ?? null });
      const note = baselineFailures.length > 0 ? ` (seeds failing without the mutation too, skipped: ${baselineFailures.join(', ')})` : '';
      console.log(`${name}: ${f === null ? `not found in ${ran} seeds` : `found by seed ${f.seed} (${f.violations[0]?.check}: ${f.violations[0]?.detail.slice(0, 140)})`} [${((performance.now() - started) / 1000).toFixed(0)} s]${note}`);
    }
    console.log('\n| mutation | seeds to find it | first check that failed |');
    console.log('|---|---|---|');
    for (const r of rows) console.log(`| ${r.mutation} | ${r.seedsToFind ?? `not in ${limit}`} | ${r.check ?? '-'} |`);
    if (out) fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), loadavg: os.loadavg(), seedsMax: limit, rows }, null, 2)}\n`);
    return;
  }

  const summary = emptySummary();
  const started = performance.now();
  const first = num('--first', 1);
  const minutes = value('--minutes') !== undefined ? num('--minutes', 10) : null;
  const count = minutes === null ? num('--seeds', 100) : 1_000_000;
  const batch = minutes === null ? count : jobs * 20;
  let next = first;
  const failures: SeedResult[] = [];
  while (next < first + count) {
    const seeds = Array.from({ length: Math.min(batch, first + count - next) }, (_, i) => next + i);
    next += seeds.length;
    await runParallel(seeds, jobs, [...passthroughArgs(), ...(mutations.length > 0 ? ['--mutation', mutations.join(',')] : [])], (r, replayHash) => {
      add(summary, r);
      if (replayHash !== null && replayHash !== r.traceHash) summary.replayMismatches.push(r.seed);
      if (!r.ok) {
        failures.push(r);
        printFailure(r, mutations, false);
      }
      if (summary.seeds % 50 === 0) process.stdout.write(`  … ${summary.seeds} seeds, ${summary.failed.length} failed\n`);
      return !(mutations.length > 0 && !r.ok && flag('--stop-on-fail'));
    });
    if (minutes !== null && performance.now() - started > minutes * 60_000) break;
    if (mutations.length > 0 && failures.length > 0 && flag('--stop-on-fail')) break;
  }
  const wallMs = performance.now() - started;
  printSummary(summary, wallMs, jobs);
  if (flag('--replay-check')) console.log(`replay check: ${summary.replayMismatches.length === 0 ? 'every seed replayed the same trace' : `DIFFERENT traces for seeds ${summary.replayMismatches.join(', ')}`}`);
  if (out) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), loadavg: os.loadavg(), jobs, wallMs, summary }, null, 2)}\n`);
  }
  if (summary.failed.length > 0 || summary.replayMismatches.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
