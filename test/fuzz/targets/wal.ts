/**
 * Storage input: single WAL records (framing and payload decoder), and whole WAL segment files that a
 * store is reopened over. A damaged segment must open with a clear CORRUPT error or be truncated at
 * the damage, with every record before it intact.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ShoalError } from '../../../src/errors.js';
import { checkFrame, decodePayload, encodeRecord, MalformedPayload, newDecodedRecord, payloadCapacity, RECORD_HEADER_BYTES } from '../../../src/storage/record.js';
import { nullLogger } from '../../../src/log.js';
import { recover } from '../../../src/storage/recovery.js';
import { openStore } from '../../../src/storage/store.js';
import { type FuzzTarget, InvariantError, UnexpectedError } from '../lib/harness.js';
import { firstDifference, mutate } from '../lib/mutate.js';
import { Rng } from '../lib/rng.js';
import { buildStoreFixture, entrySignature, FUZZ_STORE_OPTIONS, storeSignature, writeDir } from './store-fixture.js';

function randomRecord(rng: Rng): Buffer {
  const key = rng.text(20);
  const node = rng.pick(['n1', 'node-2', 'é']);
  const value = rng.chance(0.2) ? null : rng.bytes(rng.int(80));
  const entry = { ts: rng.int(2 ** 48), node, value, ...(rng.chance(0.3) ? { expiresAtMs: rng.int(2 ** 45) } : {}) };
  const buf = Buffer.alloc(RECORD_HEADER_BYTES + payloadCapacity(key, node, value?.length ?? 0));
  const end = encodeRecord(buf, 0, rng.range(1, 2 ** 40), key, entry, value === null ? rng.int(2 ** 45) : undefined);
  return buf.subarray(0, end);
}

export const walRecordTarget: FuzzTarget = {
  name: 'wal-record',
  feeds: 'mutated records → checkFrame + decodePayload',
  async setup() {
    const out = newDecodedRecord();
    let rangeErrors = 0;
    return {
      runCase(rng) {
        const valid = randomRecord(rng);
        const donor = randomRecord(rng);
        const bytes = rng.chance(0.05) ? valid : mutate(rng, valid, { lengthOffsets: [0], littleEndian: true, donors: [donor] });
        // A splice can yield the whole donor: a valid record, just not this one.
        const written = (n: number): boolean => [valid, donor].some((r) => r.length >= n && r.subarray(0, n).equals(bytes.subarray(0, n)));
        const total = checkFrame(bytes, 0, bytes.length, 1 << 20);
        // Payloads are also fed straight to the decoder, as a snapshot body is decoded before its CRC is checked.
        const direct = rng.chance(0.5);
        if (typeof total === 'string' && !direct) return 'rejected';
        if (typeof total === 'number' && !written(total)) throw new InvariantError('a damaged record passed its checksum');
        const end = typeof total === 'number' ? total : bytes.length;
        try {
          decodePayload(bytes, Math.min(RECORD_HEADER_BYTES, end), end, out);
        } catch (err) {
          if (err instanceof MalformedPayload) return 'rejected';
          // Without a CRC in front, a truncated payload can make the fast path read past the buffer.
          // Both callers (recovery, loadSnapshot) catch every error here and report CORRUPT.
          if (direct && err instanceof RangeError) {
            rangeErrors += 1;
            return 'rejected';
          }
          throw new UnexpectedError(`decodePayload threw ${(err as Error).name}: ${(err as Error).message}`);
        }
        return 'accepted';
      },
      notes() {
        return rangeErrors === 0 ? [] : [`decodePayload threw RangeError instead of MalformedPayload on ${rangeErrors} payloads fed without their CRC (contained: callers turn it into CORRUPT)`];
      },
      async close() {},
    };
  },
};

export const walSegmentTarget: FuzzTarget = {
  name: 'wal-segment',
  feeds: 'mutated WAL segment → recover / openStore',
  checkEvery: 5000,
  async setup(runSeed) {
    const fixture = await buildStoreFixture(new Rng(runSeed), 40, { snapshot: false });
    const wal = fixture.files.get(fixture.walName) as Buffer;
    const starts = [0, ...fixture.recordEnds.slice(0, -1)];
    const caseDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-fuzz-wal-'));
    return {
      async runCase(rng) {
        const bytes = mutate(rng, wal, { lengthOffsets: starts, littleEndian: true, donors: [wal.subarray(starts[rng.int(starts.length)])] });
        const damageAt = firstDifference(wal, bytes);
        const intactBefore = damageAt === -1 ? fixture.recordEnds.length : fixture.recordEnds.filter((end) => end <= damageAt).length;
        const viaStore = rng.chance(0.2);
        if (viaStore) await writeDir(caseDir, new Map([[fixture.walName, bytes]]));
        else await fs.writeFile(path.join(caseDir, fixture.walName), bytes);
        const fromDamage = (got: string): void => {
          const k = fixture.signatures.findIndex((sig, i) => i >= intactBefore && sig === got);
          if (k === -1) {
            throw new InvariantError(`recovered neither the records before the damage (${intactBefore} records, damage at byte ${damageAt}) nor a longer prefix`);
          }
        };
        const refused = (err: unknown): 'rejected' => {
          if (err instanceof ShoalError && err.code === 'CORRUPT') {
            if (!/offset|missing/.test(err.message)) throw new InvariantError(`CORRUPT without a location: ${err.message}`);
            return 'rejected';
          }
          throw new UnexpectedError(`${viaStore ? 'openStore' : 'recover'} threw ${String(err)}`);
        };
        if (!viaStore) {
          // Recovery alone (what openStore runs first): cheaper, so most cases take this path.
          try {
            fromDamage(entrySignature((await recover(caseDir, { repair: false, nowMs: Date.now(), logger: nullLogger })).entries));
          } catch (err) {
            if (err instanceof InvariantError) throw err;
            return refused(err);
          }
          return 'accepted';
        }
        let store;
        try {
          store = await openStore(caseDir, FUZZ_STORE_OPTIONS);
        } catch (err) {
          return refused(err);
        }
        try {
          fromDamage(await storeSignature(store));
          if (rng.chance(0.25)) {
            // The repaired store takes writes, and they survive another reopen.
            await store.put('after-repair', Buffer.from('x'), { version: { ts: 1e9, node: 'n9' } });
            await store.close();
            store = await openStore(caseDir, FUZZ_STORE_OPTIONS);
            if (store.get('after-repair')?.value?.toString() !== 'x') throw new InvariantError('a write after a repaired open was lost');
          }
        } finally {
          await store.close();
          await writeDir(caseDir, new Map());
        }
        return 'accepted';
      },
      async close() {
        await fs.rm(caseDir, { recursive: true, force: true });
        await fs.rm(fixture.dir, { recursive: true, force: true });
      },
    };
  },
};
