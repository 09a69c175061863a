/**
 * Balance and movement figures of rings, computed exactly over token ranges (not by sampling keys):
 * what bench/ring.ts reports and what an operator tool can show before changing membership.
 */
import { TOKEN_SPACE } from './hash.js';
import type { Ring } from './ring.js';

/** The most loaded member's share over the mean share (1 = perfect). */
export function maxOverMean(ring: Ring, n = 1): number {
  const shares = [...ring.ownership(n).values()];
  if (shares.length === 0) return 1;
  return Math.max(...shares) * shares.length;
}

/**
 * Fraction of the data that has to move from `before` to `after` with n replicas: the share of
 * (key, replica) pairs whose replica is new in `after`, in [0, 1]. With n = 1 it is the fraction of
 * keys whose primary changes.
 */
export function movedFraction(before: Ring, after: Ring, n = 1): number {
  const merged = new BigUint64Array(before.tokenCount + after.tokenCount);
  merged.set(before.sortedTokens(), 0);
  merged.set(after.sortedTokens(), before.tokenCount);
  merged.sort();
  const width = Math.min(n, after.size);
  if (merged.length === 0 || width === 0) return 0;
  let moved = 0;
  let prev = merged[merged.length - 1] - TOKEN_SPACE; // the wrapping segment first
  for (let i = 0; i < merged.length; i++) {
    const end = merged[i];
    if (end === prev) continue;
    // Every token in (prev, end] has the same replicas in both rings.
    const was = before.replicasForToken(end, n);
    const now = after.replicasForToken(end, n);
    let fresh = 0;
    for (const id of now) if (!was.includes(id)) fresh++;
    if (fresh > 0) moved += (Number(end - prev) / 2 ** 64) * (fresh / width);
    prev = end;
  }
  return moved;
}
