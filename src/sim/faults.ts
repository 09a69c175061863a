/**
 * The simulator's fault plan: the faults and operator actions of one seed, drawn up front from the seed
 * so that a plan can be replayed, printed and shrunk (a subset of it replays with the same seed). An
 * action whose target is not in the right state when its time comes (kill a node that is already down)
 * is skipped and says so in the trace, so any subset of a plan is itself a valid plan.
 */
import { mulberry32 } from '../membership/sim/random.js';

export type Fault =
  /** Process crash (kill -9): the page cache survives, so unsynced writes still reach the disk. */
  | { atMs: number; kind: 'kill'; node: number; downMs: number }
  /** Power loss: the process dies and the disk keeps only what was fsynced (the last write may tear). */
  | { atMs: number; kind: 'power'; node: number; downMs: number }
  /** Graceful stop without leaving (a rolling restart), then a restart. */
  | { atMs: number; kind: 'stop'; node: number; downMs: number }
  /** Crash, data dir wiped, restart with the same id. */
  | { atMs: number; kind: 'wipe'; node: number; downMs: number }
  /** Crash, restart on a new address with the same id and data. */
  | { atMs: number; kind: 'move'; node: number; downMs: number }
  /** `shoal leave`; with rejoinAfterMs the node is started again later on its data dir. */
  | { atMs: number; kind: 'leave'; node: number; rejoinAfterMs: number | null }
  /** Crash, then `shoal remove` of it through another node once it is dead; it never returns. */
  | { atMs: number; kind: 'remove'; node: number }
  /** A new node joins through the seeds. */
  | { atMs: number; kind: 'join' }
  /** Every node stops; all but the seed start again, then the seed, `downMs` later. */
  | { atMs: number; kind: 'seed-last'; downMs: number }
  /** `side` (machine indexes) cut from the others, both ways or one way (side → others only). */
  | { atMs: number; kind: 'partition'; side: number[]; oneWay: boolean; durationMs: number }
  | { atMs: number; kind: 'lossy'; lossRate: number; duplicateRate: number; durationMs: number }
  | { atMs: number; kind: 'disk-full'; node: number; durationMs: number }
  /** The next write or fsync of the node's disk fails with EIO; the operator restarts it later. */
  | { atMs: number; kind: 'disk-eio'; node: number; op: 'write' | 'fdatasync'; restartAfterMs: number }
  | { atMs: number; kind: 'clock-jump'; node: number; deltaMs: number }
  /**
   * Power loss at a random point of the node's disk activity: after `ops` more operations on files
   * under `under` of its data dir ('' for any; 'hints' for the hint store; 'hints-unlink' counts only
   * the deletions of hint segments), so crashes land inside the durability order of a WAL batch, a
   * snapshot or a hint compaction, not only between them.
   */
  | { atMs: number; kind: 'power-io'; node: number; under: '' | 'hints' | 'hints-unlink'; ops: number; downMs: number };

export type FaultKind = Fault['kind'];

export interface PlanOptions {
  seed: number;
  /** Machines at the start. */
  nodes: number;
  /** Largest number of machines (joins stop there). */
  nodesMax: number;
  /** Faults happen in [startMs, endMs). */
  startMs: number;
  endMs: number;
  /** Mean gap between faults (ms). */
  gapMsMean: number;
  /** Only these kinds (default: all). */
  kinds?: readonly FaultKind[];
}

const WEIGHTS: Record<FaultKind, number> = {
  kill: 3,
  power: 3,
  stop: 2,
  wipe: 1,
  move: 1,
  leave: 1.5,
  remove: 1,
  join: 1.5,
  'seed-last': 1,
  partition: 3,
  lossy: 1.5,
  'disk-full': 1.5,
  'disk-eio': 1,
  'clock-jump': 1.5,
  'power-io': 3,
};

export const FAULT_KINDS = Object.keys(WEIGHTS) as FaultKind[];

export function planFaults(options: PlanOptions): Fault[] {
  const random = mulberry32((options.seed ^ 0xfa017) >>> 0);
  const kinds = options.kinds ?? FAULT_KINDS;
  const total = kinds.reduce((sum, k) => sum + WEIGHTS[k], 0);
  const pickKind = (): FaultKind => {
    let r = random() * total;
    for (const k of kinds) {
      r -= WEIGHTS[k];
      if (r < 0) return k;
    }
    return kinds[kinds.length - 1];
  };
  const between = (min: number, max: number) => Math.round(min + random() * (max - min));
  let machines = options.nodes;
  const node = () => Math.floor(random() * machines);
  const plan: Fault[] = [];
  let at = options.startMs;
  for (;;) {
    at += Math.round(-Math.log(1 - random()) * options.gapMsMean);
    if (at >= options.endMs) break;
    const kind = pickKind();
    switch (kind) {
      case 'kill':
      case 'power':
      case 'stop':
      case 'wipe':
      case 'move':
        plan.push({ atMs: at, kind, node: node(), downMs: between(500, 25_000) });
        break;
      case 'leave':
        plan.push({ atMs: at, kind, node: node(), rejoinAfterMs: random() < 0.6 ? between(2000, 20_000) : null });
        break;
      case 'remove':
        plan.push({ atMs: at, kind, node: node() });
        break;
      case 'join':
        if (machines < options.nodesMax) {
          plan.push({ atMs: at, kind });
          machines++;
        }
        break;
      case 'seed-last':
        plan.push({ atMs: at, kind, downMs: between(1000, 15_000) });
        break;
      case 'partition': {
        const side = Array.from({ length: machines }, (_, i) => i).filter(() => random() < 0.4);
        if (side.length === 0) side.push(node());
        plan.push({ atMs: at, kind, side, oneWay: random() < 0.3, durationMs: between(1000, 40_000) });
        break;
      }
      case 'lossy':
        plan.push({ atMs: at, kind, lossRate: 0.05 + random() * 0.3, duplicateRate: random() * 0.1, durationMs: between(2000, 20_000) });
        break;
      case 'disk-full':
        plan.push({ atMs: at, kind, node: node(), durationMs: between(1000, 20_000) });
        break;
      case 'disk-eio':
        plan.push({ atMs: at, kind, node: node(), op: random() < 0.5 ? 'write' : 'fdatasync', restartAfterMs: between(1000, 15_000) });
        break;
      case 'power-io':
      {
        // A third of them crash right after a hint compaction deletes a sealed segment (its most
        // delicate moment), the others after a random count of file operations (any, or hints only).
        const r = random();
        const under = r < 0.33 ? 'hints-unlink' : r < 0.66 ? 'hints' : '';
        plan.push({ atMs: at, kind, node: node(), under, ops: under === 'hints-unlink' ? 1 : 1 + Math.floor(random() * 40), downMs: between(500, 15_000) });
      }
        break;
      case 'clock-jump':
        plan.push({ atMs: at, kind, node: node(), deltaMs: Math.round((random() < 0.5 ? -1 : 1) * (500 + random() * 20_000)) });
        break;
    }
  }
  return plan;
}

/** One line per fault, for traces and failure reports. */
export function describeFault(f: Fault): string {
  const { atMs, kind, ...rest } = f;
  const parts = Object.entries(rest).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : typeof v === 'number' ? Math.round(v * 1000) / 1000 : String(v)}`);
  return `${(atMs / 1000).toFixed(1)}s ${kind}${parts.length > 0 ? ` ${parts.join(' ')}` : ''}`;
}
