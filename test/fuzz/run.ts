/**
 * `npm run fuzz [-- --cases N] [--seed S] [--target NAME[,NAME]] [--from I] [--time-ms T] [--out FILE]`
 *
 * Runs every fuzz target (default 100,000 cases each, bounded by a time budget per target), prints a
 * table of cases / outcomes / crashes / unexpected errors / heap growth, writes bench/results/fuzz.json,
 * and exits 1 if anything crashed, threw unexpectedly, or a target ran short of its cases. With
 * --target, only those targets run and their rows replace the same rows of the existing results file.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeFailures, runTarget, type TargetResult } from './lib/harness.js';
import { TARGETS } from './targets/index.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    target: { type: 'string' },
    from: { type: 'string', default: '0' },
    'time-ms': { type: 'string', default: String(15 * 60_000) },
    out: { type: 'string', default: 'bench/results/fuzz.json' },
  },
});

const cases = Number(values.cases);
const runSeed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed);
const timeBudgetMs = Number(values['time-ms']);
const firstCase = Number(values.from);
const wanted = values.target?.split(',');
const targets = wanted === undefined ? TARGETS : TARGETS.filter((t) => wanted.includes(t.name));
if (targets.length === 0 || ![cases, runSeed, timeBudgetMs, firstCase].every(Number.isSafeInteger)) {
  console.error(`usage: npm run fuzz -- [--cases N] [--seed S] [--from I] [--time-ms T] [--target ${TARGETS.map((t) => t.name).join('|')}]`);
  process.exit(2);
}

// Store fixtures close with an fdatasync: on tmpfs that costs nothing (os.tmpdir() follows TMPDIR).
if (process.env.TMPDIR === undefined && existsSync('/dev/shm')) process.env.TMPDIR = '/dev/shm';

console.log(`fuzz: run seed ${runSeed}, ${cases} cases per target, ${timeBudgetMs} ms budget per target`);
const results: TargetResult[] = [];
for (const target of targets) {
  const result = await runTarget(target, { cases, runSeed, timeBudgetMs, firstCase, catchStrays: true });
  results.push(result);
  const status = result.skipped ?? `${result.cases} cases in ${(result.ms / 1000).toFixed(1)} s, ${result.crashes} crashes, ${result.unexpected} unexpected`;
  console.log(`  ${target.name}: ${status}`);
  for (const line of describeFailures(result)) console.log(`    ${line}`);
  for (const note of result.notes) console.log(`    note: ${note}`);
}

// A partial run updates its targets' rows in the existing file and shows the whole table.
let table = results;
if (wanted !== undefined && existsSync(values.out)) {
  const previous = JSON.parse(await fs.readFile(values.out, 'utf8')) as { results: TargetResult[] };
  table = previous.results.map((old) => results.find((r) => r.target === old.target) ?? old);
  for (const r of results) if (!table.includes(r)) table.push(r);
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const header = ['target', 'feeds', 'cases', 'accepted', 'rejected', 'crashes', 'unexpected', 'heap Δ MiB', 'cases/s'];
const rows = table.map((r) =>
  r.skipped !== null
    ? [r.target, r.feeds, 'skipped', '', '', '', '', '', '']
    : [r.target, r.feeds, String(r.cases), String(r.accepted), String(r.rejected), String(r.crashes), String(r.unexpected), mib(r.heapGrowthBytes), String(Math.round(r.cases / (r.ms / 1000)))],
);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
console.log(`\n${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of rows) console.log(line(row));

const short = results.filter((r) => r.skipped === null && r.cases < cases);
const failed = table.filter((r) => r.crashes > 0 || r.unexpected > 0);
await fs.mkdir(path.dirname(values.out), { recursive: true });
await fs.writeFile(
  values.out,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, runSeed, casesWanted: cases, timeBudgetMs, results: table }, null, 2)}\n`,
);
console.log(`\nwrote ${values.out}`);
if (short.length > 0) console.log(`short of ${cases} cases (time budget): ${short.map((r) => r.target).join(', ')}`);
if (failed.length > 0) console.log(`FAILED: ${failed.map((r) => r.target).join(', ')} (run seed ${runSeed})`);
process.exit(failed.length > 0 || short.length > 0 ? 1 : 0);
