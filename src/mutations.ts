/**
 * Known-bug mutations for the whole-cluster simulator (docs/SIMULATION.md): each name re-introduces,
 * behind a flag, one bug that was fixed (or that a plausible change would bring), so the simulator can
 * prove it finds it. Only the simulator turns a mutation on (`npm run sim:cluster -- --mutation NAME`);
 * production code never does, and `mutant()` costs one size check while none is on.
 */

export const MUTATIONS = {
  'repair-batch-keys-only': 'repair and streaming batches bounded by key count only, not by bytes (frames too large)',
  'n-clamped-to-live': 'the replication factor clamped to the members alive instead of the cluster size',
  'seed-forgets-known': 'the members a node knew are not used to rejoin (neither at a restart nor by the reconnect of known members)',
  'hint-delete-before-rename': 'hint compaction deletes the old file before the rename is durable',
  'cleanup-floating-promise': 'a clean-up failure escapes as an unhandled rejection',
  'leave-keeps-coordinating': 'a node that left keeps coordinating client writes',
  'read-repair-older': 'read repair writes an older version over a newer one',
  'dead-not-synced': 'a node that joins does not learn the members its peers hold dead or suspect (it counts N from the live ones)',
  'known-not-held': 'a restarted node does not hold the members its data dir knows as dead until they answer (a wiped node meeting only it counts N = 2)',
} as const;

export type MutationName = keyof typeof MUTATIONS;

const active = new Set<MutationName>();

/** True when the simulator turned `name` on. */
export function mutant(name: MutationName): boolean {
  return active.size > 0 && active.has(name);
}

/** Turns the given mutations on (and every other off). Simulator only. */
export function setMutations(names: readonly MutationName[]): void {
  active.clear();
  for (const name of names) active.add(name);
}

export function isMutationName(name: string): name is MutationName {
  return Object.hasOwn(MUTATIONS, name);
}
