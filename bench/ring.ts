/**
 * Ring balance and movement, measured exactly over token ranges (src/ring/balance.ts).
 *
 * `measureRing()` is what bench/cluster.ts puts under `ring` in bench/results/cluster.json: for 10 and
 * 100 members named n1..nN with the default vnodes, the most loaded member's share over the mean
 * (goal ≤ 1.10 at 10 members) and the keys a join moves over the ideal 1/(n+1) (goal ≤ 1.1).
 *
 * Run directly (`npx tsx bench/ring.ts`) it also prints how the figures depend on the vnode count over
 * many random member-id sets (the evidence for the default), and writes bench/results/ring.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { maxOverMean, movedFraction } from '../src/ring/balance.js';
import { hashKey } from '../src/ring/hash.js';
import { Ring, RING_DEFAULTS } from '../src/ring/ring.js';

export interface RingFigure {
  nodes: number;
  vnodes: number;
  /** Most loaded member's primary share / mean share. */
  maxOverMean: number;
  /** Keys whose primary moves on one join / the ideal 1/(n+1). */
  joinMovedOverIdeal: number;
  /** Same two figures for the data of 3 replicas. */
  replicasMaxOverMean: number;
  joinMovedOverIdealReplicas: number;
  /** Ring build time (tokens of known members are cached, as on a membership change). */
  buildMs: number;
  /** preferenceList(key, 3) including the key hash. */
  lookupNs: number;
}

const REPLICAS = 3;

function members(ids: string[]): Array<{ id: string }> {
  return ids.map((id) => ({ id }));
}

function measureOne(ids: string[], joiner: string, vnodes: number): Omit<RingFigure, 'buildMs' | 'lookupNs'> {
  const n = ids.length;
  const before = Ring.build(members(ids), { vnodes });
  const after = Ring.build(members([...ids, joiner]), { vnodes });
  return {
    nodes: n,
    vnodes,
    maxOverMean: round(maxOverMean(before, 1)),
    joinMovedOverIdeal: round(movedFraction(before, after, 1) * (n + 1)),
    replicasMaxOverMean: round(maxOverMean(before, REPLICAS)),
    joinMovedOverIdealReplicas: round(movedFraction(before, after, REPLICAS) * (n + 1)),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function timeLookupNs(ring: Ring): number {
  const keys = Array.from({ length: 100_000 }, (_, i) => `user:${i}:profile`);
  for (const k of keys.slice(0, 1000)) ring.preferenceList(k, REPLICAS);
  const start = process.hrtime.bigint();
  for (const k of keys) ring.preferenceList(k, REPLICAS);
  return Math.round(Number(process.hrtime.bigint() - start) / keys.length);
}

/** Default-settings figures for 10 and 100 members (ids n1..nN, the joiner n(N+1)). */
export async function measureRing(): Promise<RingFigure[]> {
  const out: RingFigure[] = [];
  for (const nodes of [10, 100]) {
    const ids = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
    const figure = measureOne(ids, `n${nodes + 1}`, RING_DEFAULTS.vnodes);
    Ring.build(members(ids)); // warm the token cache: a rebuild on a membership change
    const start = performance.now();
    const ring = Ring.build(members(ids));
    const buildMs = Math.round((performance.now() - start) * 10) / 10;
    out.push({ ...figure, buildMs, lookupNs: timeLookupNs(ring) });
  }
  return out;
}

/** Avg and worst of the two figures over random id sets, per vnode count: why the default is 1024. */
function sweep(nodes: number, vnodes: number, sets: number): { avgMax: number; worstMax: number; overGoal: number; avgJoin: number; worstJoin: number } {
  let sumMax = 0;
  let worstMax = 0;
  let overGoal = 0;
  let sumJoin = 0;
  let worstJoin = 0;
  for (let s = 0; s < sets; s++) {
    // Deterministic "random" ids: stable across runs, unrelated to each other.
    const ids = Array.from({ length: nodes }, (_, i) => `node-${hashKey(`${nodes}/${s}/${i}`).toString(36).slice(0, 8)}`);
    const f = measureOne(ids, `node-joiner-${s}`, vnodes);
    sumMax += f.maxOverMean;
    worstMax = Math.max(worstMax, f.maxOverMean);
    if (f.maxOverMean > 1.1) overGoal++;
    sumJoin += f.joinMovedOverIdeal;
    worstJoin = Math.max(worstJoin, f.joinMovedOverIdeal);
  }
  return { avgMax: round(sumMax / sets), worstMax, overGoal, avgJoin: round(sumJoin / sets), worstJoin };
}

async function main(): Promise<void> {
  const figures = await measureRing();
  console.log(`Ring with default settings (vnodes ${RING_DEFAULTS.vnodes}, ids n1..nN, joiner n(N+1)); exact over token ranges`);
  console.log('goals: maxOverMean ≤ 1.10 at 10 nodes, joinMovedOverIdeal ≤ 1.10; reference: ringpop (100 points) 1.13–1.24× max/mean\n');
  console.table(
    figures.map((f) => ({
      nodes: f.nodes,
      vnodes: f.vnodes,
      'max/mean': f.maxOverMean,
      'join moved/ideal': f.joinMovedOverIdeal,
      'max/mean (3 replicas)': f.replicasMaxOverMean,
      'join moved/ideal (3 replicas)': f.joinMovedOverIdealReplicas,
      'build ms': f.buildMs,
      'lookup ns': f.lookupNs,
    })),
  );

  const rows: Array<Record<string, number | string>> = [];
  for (const nodes of [10, 100]) {
    for (const vnodes of [64, 128, 256, 512, 1024]) {
      const sets = nodes === 10 ? 40 : 8;
      const s = sweep(nodes, vnodes, sets);
      rows.push({ nodes, vnodes, 'id sets': sets, 'max/mean avg': s.avgMax, 'max/mean worst': s.worstMax, 'sets over 1.10': s.overGoal, 'join/ideal avg': s.avgJoin, 'join/ideal worst': s.worstJoin });
    }
  }
  console.log('\nRandom tokens by vnode count, over random member-id sets:');
  console.table(rows);

  const path = join(dirname(fileURLToPath(import.meta.url)), 'results', 'ring.json');
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify({ ring: figures, sweep: rows }, null, 2)}\n`);
  console.log(`\nwrote ${path}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
