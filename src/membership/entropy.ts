/**
 * The runtime's default random source: uniform in [0, 1) from a pool of crypto random bytes (probe
 * order and gossip targets an outsider cannot predict). With an injected Clock the runtime draws from
 * `clock.random` instead (seeded in the simulator). The only file of src/membership/ that reads
 * crypto randomness (eslint.config.js keeps it so).
 */
import { randomBytes } from 'node:crypto';

const POOL_BYTES = 4096;

export function cryptoRandom(): () => number {
  let pool = randomBytes(POOL_BYTES);
  let offset = 0;
  return () => {
    if (offset + 4 > pool.length) {
      pool = randomBytes(POOL_BYTES);
      offset = 0;
    }
    const value = pool.readUInt32BE(offset);
    offset += 4;
    return value / 2 ** 32;
  };
}
