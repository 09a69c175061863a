/**
 * `npm run chaos -- --seed S --duration 60s --nodes 5`: one chaos run against real agents. Prints
 * the summary table; on any violation prints the seed and the command that replays the schedule and
 * exits 1. Ctrl-C / SIGTERM stop the run and clean up (agents, nftables table) before exiting.
 */
import { parseArgs } from 'node:util';
import { parseDurationMs } from '../../src/units.js';
import { runChaos } from './lib/runner.js';

const USAGE = `usage: npm run chaos -- [--seed N] [--duration 60s] [--nodes 5] [--clients 6] [--rate 100]
                        [--no-kill-all] [--no-disk-full] [--no-hints] [--values mixed|small]
                        [--set section.field=value ...] [--runs-dir DIR]`;

function parseSet(assignments: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new Error(`--set needs section.field=value, got "${a}"`);
    const path = a.slice(0, eq).split('.');
    const raw = a.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // A plain string.
    }
    let at = out;
    for (const part of path.slice(0, -1)) at = (at[part] ??= {}) as Record<string, unknown>;
    at[path[path.length - 1]] = value;
  }
  return out;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        seed: { type: 'string' },
        duration: { type: 'string', default: '60s' },
        nodes: { type: 'string', default: '5' },
        clients: { type: 'string', default: '6' },
        rate: { type: 'string', default: '100' },
        'no-kill-all': { type: 'boolean', default: false },
        'no-disk-full': { type: 'boolean', default: false },
        'no-hints': { type: 'boolean', default: false },
        values: { type: 'string', default: 'mixed' },
        set: { type: 'string', multiple: true, default: [] },
        'runs-dir': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const seed = values.seed === undefined ? Math.floor(Math.random() * 1_000_000) : Number(values.seed);
  const nodes = Number(values.nodes);
  if (!Number.isInteger(seed) || !Number.isInteger(nodes) || nodes < 3 || nodes > 20) {
    console.error(`--seed must be an integer and --nodes between 3 and 20\n${USAGE}`);
    return 2;
  }
  const durationMs = parseDurationMs(values.duration);
  if (values.values !== 'mixed' && values.values !== 'small') {
    console.error(`--values must be mixed or small\n${USAGE}`);
    return 2;
  }
  // Hints off: a replica that missed writes converges by anti-entropy (and read repair) alone.
  const sets = values['no-hints'] ? [...values.set, 'cluster.hintsEnabled=false'] : values.set;
  const extra = [
    values.clients === '6' ? '' : ` --clients ${values.clients}`,
    values.rate === '100' ? '' : ` --rate ${values.rate}`,
    values['no-kill-all'] ? ' --no-kill-all' : '',
    values['no-disk-full'] ? ' --no-disk-full' : '',
    values['no-hints'] ? ' --no-hints' : '',
    values.values === 'mixed' ? '' : ` --values ${values.values}`,
    ...values.set.map((s) => ` --set ${s}`),
  ].join('');
  const command = `npm run chaos -- --seed ${seed} --duration ${values.duration} --nodes ${nodes}${extra}`;
  const abort = new AbortController();
  const stop = (sig: string) => {
    if (abort.signal.aborted) process.exit(130);
    console.error(`[chaos] ${sig}: stopping and cleaning up (again to exit at once)`);
    abort.abort();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    const { result, summary } = await runChaos({
      seed, durationMs, nodes, command,
      clients: Number(values.clients), ratePerSec: Number(values.rate), killAll: !values['no-kill-all'],
      diskFull: !values['no-disk-full'], values: values.values,
      config: parseSet(sets), signal: abort.signal,
      ...(values['runs-dir'] === undefined ? {} : { runsDir: values['runs-dir'] }),
    });
    console.log('\n' + summary);
    if (!result.valid) {
      console.log(`FAILED with seed ${seed}; replay with:\n  ${command}`);
      return 1;
    }
    return 0;
  } catch (err) {
    console.error(`[chaos] run failed: ${(err as Error).stack ?? String(err)}`);
    console.error(`seed ${seed}; replay with:\n  ${command}`);
    return 1;
  }
}

process.exitCode = await main();
// Anything still holding the event loop open (a stuck socket) must not keep the harness alive.
setTimeout(() => process.exit(), 2000).unref();
