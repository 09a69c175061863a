/**
 * Seed addresses → gossip addresses to join through. The runtime (membership.ts) resolves the
 * configured seeds at start and again after every join attempt, for the next one, through
 * `resolveSeeds`, so a seed written as a name can follow a machine that moved.
 * Today a seed is a literal host:port and comes back as is (deduplicated, in order); name resolution
 * plugs in here, and nowhere else.
 */

export interface ResolveSeedsOptions {
  /** Our own gossip address: left out (a node never joins through itself). */
  self?: string;
}

/** The gossip addresses `seeds` stand for right now. Never throws for one bad seed: it is left out. */
export async function resolveSeeds(seeds: readonly string[], options: ResolveSeedsOptions = {}): Promise<string[]> {
  const out: string[] = [];
  for (const seed of seeds) {
    const addr = seed.trim();
    if (addr === '' || addr === options.self || out.includes(addr)) continue;
    out.push(addr);
  }
  return Promise.resolve(out);
}
