/**
 * The nemesis schedule: a pure function of the seed and the run's shape, so a failing run is replayed
 * with the same faults at the same offsets against the same nodes. The executor (nemesis.ts) turns
 * each step into signals, nftables rules and file truncation.
 *
 * Shape: a quiet warm-up, then one fault at a time separated by quiet gaps; every fault kind appears
 * once before any repeats (as far as the duration allows), the operator actions (seed restart, leave
 * and rejoin, long partition) early, every other slot, so that even a short run has most of them;
 * the join comes before the leave; the
 * all-nodes kill, which no quorum survives, is a separate phase at the end so it does not blur the
 * availability of the single-node faults.
 */
import type { FaultKind } from './history.js';
import { mulberry32 } from '../../../src/membership/sim/random.js';

export interface ScheduleStep {
  /** Offset from the start of the workload. */
  atMs: number;
  fault: FaultKind;
  /** Node ids the fault acts on; for a split, the minority side. */
  targets: string[];
  /** How long the fault lasts before it is healed (for join/leave: how long the window is watched). */
  durationMs: number;
}

export interface ScheduleOptions {
  seed: number;
  /** Workload duration; no fault starts after `durationMs - tailQuietMs`. */
  durationMs: number;
  /** Ids of the nodes started at the beginning. */
  nodes: string[];
  /** Id of a node that is configured but not started, for the join (none = no join). */
  spare?: string;
  /** Ids that must never leave (the seeds). Default: the first node. */
  keep?: string[];
  /** nftables usable: otherwise partitions are left out. */
  partitions: boolean;
  /** The membership suspicion timeout; pauses last longer than this. Default 4000 ms. */
  suspicionMs?: number;
  /** Include the all-nodes kill phase. Default true. */
  killAll?: boolean;
  /**
   * Include one disk-full step (needs root and tmpfs). It is placed with its own PRNG stream, so the
   * other steps of a seed stay the same faults on the same nodes (only later in time).
   */
  diskFull?: boolean;
  warmupMs?: number;
  tailQuietMs?: number;
  /** Quiet time between faults. Default 2000–4000 ms. */
  gapMs?: [number, number];
}

/** mulberry32, the simulator's seeded PRNG (floats in [0, 1)); one implementation for both. */
export const prng = mulberry32;

export const PARTITION_FAULTS: FaultKind[] = ['partition-one', 'partition-split', 'partition-oneway', 'partition-long'];
/** What operators do to a running cluster (issue 10): each must end in one cluster. */
export const OPERATOR_FAULTS: FaultKind[] = ['seed-restart', 'leave-rejoin', 'partition-long'];
const SINGLE_FAULTS: FaultKind[] = ['kill-one', 'pause-one', 'wal-truncate', 'partition-one', 'partition-split', 'partition-oneway'];

function between(rand: () => number, [lo, hi]: [number, number]): number {
  return Math.round(lo + rand() * (hi - lo));
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)];
}

function shuffle<T>(rand: () => number, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** How long each fault kind lasts. Pauses outlast the suspicion timeout so the node is declared. */
function durationFor(fault: FaultKind, rand: () => number, suspicionMs: number): number {
  switch (fault) {
    case 'pause-one':
      return suspicionMs + between(rand, [2000, 4000]);
    case 'kill-one':
    case 'wal-truncate':
      return between(rand, [2000, 5000]);
    case 'kill-all':
      return between(rand, [1000, 2000]);
    case 'join':
    case 'leave':
    case 'leave-rejoin':
      return 6000;
    case 'seed-restart':
      return between(rand, [2000, 4000]);
    case 'partition-long':
      // Longer than the suspicion timeout: both sides declare the other dead and must merge again.
      return suspicionMs + between(rand, [3000, 5000]);
    case 'disk-full':
      return between(rand, [6000, 9000]);
    default:
      return between(rand, [4000, 7000]);
  }
}

export function buildSchedule(options: ScheduleOptions): ScheduleStep[] {
  const rand = prng(options.seed);
  const suspicionMs = options.suspicionMs ?? 4000;
  const gap = options.gapMs ?? [2000, 4000];
  const tailQuietMs = options.tailQuietMs ?? 3000;
  const endMs = options.durationMs - tailQuietMs;
  const keep = new Set(options.keep ?? options.nodes.slice(0, 1));
  let members = [...options.nodes];

  const killAll = options.killAll ?? true;
  const killAllMs = killAll ? durationFor('kill-all', prng(options.seed ^ 0x5eed), suspicionMs) + 8000 : 0;
  const singles = SINGLE_FAULTS.filter((f) => options.partitions || !PARTITION_FAULTS.includes(f));
  const membership: FaultKind[] = [];
  if (options.spare !== undefined) membership.push('join');
  if (members.some((m) => !keep.has(m)) && members.length > 3) membership.push('leave');
  // First round: every kind once in a seeded order, join/leave interleaved in that order.
  const firstRound = shuffle(rand, singles);
  const operator = OPERATOR_FAULTS.filter((f) =>
    (f !== 'partition-long' || options.partitions) &&
    (f !== 'seed-restart' || members.some((m) => keep.has(m))) &&
    (f !== 'leave-rejoin' || (members.some((m) => !keep.has(m)) && members.length > 3)));
  if (membership.includes('join')) firstRound.splice(Math.floor(rand() * (firstRound.length / 2)), 0, 'join');
  if (membership.includes('leave')) {
    const joinAt = firstRound.indexOf('join');
    const from = joinAt + 1;
    firstRound.splice(from + Math.floor(rand() * (firstRound.length - from + 1)), 0, 'leave');
  }
  // The operator actions go first, each followed by one other fault, so a short (CI) run has them and
  // still some of the rest.
  for (const [k, fault] of shuffle(rand, operator).entries()) firstRound.splice(2 * k, 0, fault);

  const diskRand = prng(options.seed ^ 0xd15c);
  // Among the first steps, so that even a short run has it.
  const diskFullAt = options.diskFull ? Math.floor(diskRand() * Math.min(firstRound.length + 1, 4)) : -1;

  const steps: ScheduleStep[] = [];
  let t = options.warmupMs ?? 3000;
  let i = 0;
  while (true) {
    if (steps.length === diskFullAt && !steps.some((s) => s.fault === 'disk-full')) {
      const durationMs = durationFor('disk-full', diskRand, suspicionMs);
      if (t + durationMs <= endMs - killAllMs) {
        steps.push({ atMs: t, fault: 'disk-full', targets: [pick(diskRand, members)], durationMs });
        t += durationMs + between(diskRand, gap);
      }
    }
    const fault = i < firstRound.length ? firstRound[i] : pick(rand, singles);
    i += 1;
    const durationMs = durationFor(fault, rand, suspicionMs);
    if (t + durationMs > endMs - killAllMs) break;
    let targets: string[];
    if (fault === 'join') {
      targets = [options.spare as string];
      members = [...members, options.spare as string];
    } else if (fault === 'leave') {
      const candidates = members.filter((m) => !keep.has(m) && m !== options.spare);
      targets = [pick(rand, candidates.length > 0 ? candidates : members.filter((m) => !keep.has(m)))];
      members = members.filter((m) => m !== targets[0]);
    } else if (fault === 'seed-restart') {
      targets = [pick(rand, members.filter((m) => keep.has(m)))];
    } else if (fault === 'leave-rejoin') {
      targets = [pick(rand, members.filter((m) => !keep.has(m)))];
    } else if (fault === 'partition-split' || fault === 'partition-long') {
      const minority = Math.floor((members.length - 1) / 2);
      targets = shuffle(rand, members).slice(0, Math.max(1, minority)).sort();
    } else {
      targets = [pick(rand, members)];
    }
    steps.push({ atMs: t, fault, targets, durationMs });
    t += durationMs + between(rand, gap);
  }
  if (killAll) {
    const durationMs = durationFor('kill-all', prng(options.seed ^ 0x5eed), suspicionMs);
    steps.push({ atMs: Math.max(t, endMs - killAllMs), fault: 'kill-all', targets: [...members].sort(), durationMs });
  }
  return steps;
}

/** Members at the end of the schedule (after join and leave). */
export function finalMembers(nodes: readonly string[], steps: readonly ScheduleStep[]): string[] {
  let members = [...nodes];
  for (const s of steps) {
    if (s.fault === 'join') members = [...members, ...s.targets];
    if (s.fault === 'leave') members = members.filter((m) => !s.targets.includes(m));
  }
  return members;
}
