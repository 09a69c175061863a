/**
 * Snapshot files: mutated snapshots loaded directly, and a store opened over a data dir whose only
 * copy of the data is a mutated snapshot. Either a clear CORRUPT error or exactly the data written.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ShoalError } from '../../../src/errors.js';
import { SNAPSHOT_HEADER_BYTES, loadSnapshot } from '../../../src/storage/snapshot.js';
import { openStore } from '../../../src/storage/store.js';
import { type FuzzTarget, InvariantError, UnexpectedError } from '../lib/harness.js';
import { mutate } from '../lib/mutate.js';
import { Rng } from '../lib/rng.js';
import { buildStoreFixture, entrySignature, FUZZ_STORE_OPTIONS, storeSignature, writeDir } from './store-fixture.js';

export const snapshotTarget: FuzzTarget = {
  name: 'snapshot',
  feeds: 'mutated snapshot → loadSnapshot / openStore',
  checkEvery: 5000,
  async setup(runSeed) {
    const fixture = await buildStoreFixture(new Rng(runSeed), 60, { snapshot: true });
    const snapName = [...fixture.files.keys()].find((n) => n.startsWith('snap-'));
    if (snapName === undefined) throw new Error('the fixture store wrote no snapshot');
    const snap = fixture.files.get(snapName) as Buffer;
    const lengthOffsets = [12, 16, 20, 32, 36, 48, 60, SNAPSHOT_HEADER_BYTES];
    const caseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-fuzz-snap-'));
    const file = path.join(caseDir, snapName);
    await writeDir(caseDir, new Map());
    return {
      async runCase(rng) {
        const bytes = mutate(rng, snap, { lengthOffsets, littleEndian: true });
        const viaStore = rng.chance(0.1);
        try {
          if (viaStore) {
            // The whole data dir with the snapshot damaged: the WAL still covers it, so nothing may be lost.
            await writeDir(caseDir, new Map([...fixture.files, [snapName, bytes]]));
            const store = await openStore(caseDir, FUZZ_STORE_OPTIONS);
            const got = await storeSignature(store);
            await store.close();
            if (got !== fixture.finalSignature) throw new InvariantError('store opened over a damaged snapshot with changed or lost data');
            return 'accepted';
          }
          await fs.writeFile(file, bytes);
          const loaded = await loadSnapshot(file, Date.now());
          if (entrySignature(loaded.entries) !== fixture.finalSignature) throw new InvariantError('a damaged snapshot loaded with changed data');
          return 'accepted';
        } catch (err) {
          if (err instanceof InvariantError) throw err;
          if (err instanceof ShoalError && err.code === 'CORRUPT') return 'rejected';
          throw new UnexpectedError(`${viaStore ? 'openStore' : 'loadSnapshot'} threw ${String(err)}`);
        }
      },
      async close() {
        await fs.rm(caseDir, { recursive: true, force: true });
        await fs.rm(fixture.dir, { recursive: true, force: true });
      },
    };
  },
};
