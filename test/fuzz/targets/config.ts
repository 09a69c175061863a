/**
 * Config files: mutated cluster files (bytes and JSON values) through the agent's config loader.
 * Invalid JSON or values must give ShoalError CONFIG, never anything else. The loader lives in
 * src/node/config.ts (the agent's layer); until it is on this branch the target reports itself skipped.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ShoalError } from '../../../src/errors.js';
import { type FuzzTarget, SkipTarget, UnexpectedError } from '../lib/harness.js';
import { mutate } from '../lib/mutate.js';
import type { Rng } from '../lib/rng.js';

const LOADER = fileURLToPath(new URL('../../../src/node/config.ts', import.meta.url));

interface LoaderModule {
  loadConfig(options: { clusterFile?: string; nodeId?: string; env?: Record<string, string | undefined> }): unknown;
}

const BASE = {
  cluster: 'dev',
  seeds: ['127.0.0.1:7101'],
  nodes: [
    { id: 'n1', gossip: '127.0.0.1:7101', rpc: '127.0.0.1:7201', metrics: '127.0.0.1:7301', dataDir: 'data/n1' },
    { id: 'n2', gossip: '127.0.0.1:7102', rpc: '127.0.0.1:7202', metrics: '127.0.0.1:7302', dataDir: 'data/n2' },
  ],
};

const ODD_VALUES: unknown[] = [null, true, 0, -1, 1e308, 1.5, '', ' ', '0', 'x'.repeat(300), '127.0.0.1:99999', '[::1]:7101', [], {}, { a: 1 }, ['a'], '__proto__', 'NaN'];

/** Replaces, deletes or adds one value somewhere in a JSON tree. */
function mutateJson(rng: Rng, value: unknown): unknown {
  if (Array.isArray(value)) {
    const copy = [...value];
    if (copy.length > 0 && rng.chance(0.7)) {
      const i = rng.int(copy.length);
      copy[i] = rng.chance(0.5) ? mutateJson(rng, copy[i]) : rng.pick(ODD_VALUES);
    } else copy.push(rng.pick(ODD_VALUES));
    return copy;
  }
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(copy);
    const roll = rng.float();
    if (keys.length > 0 && roll < 0.6) {
      const k = rng.pick(keys);
      copy[k] = rng.chance(0.5) ? mutateJson(rng, copy[k]) : rng.pick(ODD_VALUES);
    } else if (keys.length > 0 && roll < 0.8) delete copy[rng.pick(keys)];
    else copy[rng.pick(['storage', 'rpc', 'membership', 'node', rng.text(6)])] = rng.chance(0.5) ? { [rng.text(8)]: rng.pick(ODD_VALUES) } : rng.pick(ODD_VALUES);
    return copy;
  }
  return rng.pick(ODD_VALUES);
}

export const configTarget: FuzzTarget = {
  name: 'config',
  feeds: 'mutated cluster files → loadConfig',
  async setup() {
    if (!existsSync(LOADER)) throw new SkipTarget('src/node/config.ts is not on this branch yet');
    const loader = (await import(pathToFileURL(LOADER).href)) as LoaderModule;
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-fuzz-config-'));
    const file = path.join(dir, 'cluster.json');
    const baseText = Buffer.from(JSON.stringify(BASE, null, 2));
    return {
      async runCase(rng) {
        const roll = rng.float();
        const text = roll < 0.03 ? baseText : roll < 0.5 ? Buffer.from(JSON.stringify(mutateJson(rng, mutateJson(rng, BASE)))) : mutate(rng, baseText);
        await fs.writeFile(file, text);
        try {
          loader.loadConfig({ clusterFile: file, nodeId: rng.chance(0.9) ? 'n1' : rng.text(3), env: {} });
          return 'accepted';
        } catch (err) {
          if (err instanceof ShoalError && err.code === 'CONFIG') return 'rejected';
          throw new UnexpectedError(`loadConfig threw ${String(err)}`);
        }
      },
      async close() {
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  },
};
