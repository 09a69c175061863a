import test from 'ava';
import fc from 'fast-check';
import fs from 'node:fs';
import path from 'node:path';
import type { ShoalError } from '../../src/errors.js';
import type { Logger, LogFields } from '../../src/log.js';
import { checkFrame } from '../../src/storage/record.js';
import { openStore } from '../../src/storage/store.js';
import { buf, open, tempDir, v, walFiles } from './helpers.js';

const RECORDS = 120;

/** A logger that remembers warnings. */
function recordingLogger(): Logger & { warnings: Array<{ message: string; fields?: LogFields }> } {
  const warnings: Array<{ message: string; fields?: LogFields }> = [];
  const logger = {
    warnings,
    debug() {},
    info() {},
    error() {},
    warn(message: string, fields?: LogFields) {
      warnings.push({ message, fields });
    },
    child: () => logger,
  };
  return logger;
}

/** Writes RECORDS puts of varied sizes into one segment and returns the record end offsets. */
async function writeLog(dir: string): Promise<number[]> {
  const store = await openStore(dir, { fsync: 'none' });
  for (let i = 0; i < RECORDS; i++) await store.put(`k${i}`, Buffer.alloc((i * 37) % 300, i), { version: v(i + 1) });
  await store.close();
  const seg = fs.readFileSync(path.join(dir, walFiles(dir)[0]));
  const ends: number[] = [];
  for (let off = 0; off < seg.length; ) {
    off += checkFrame(seg, off, seg.length, 1 << 30) as number;
    ends.push(off);
  }
  return ends;
}

function copyDir(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const name of fs.readdirSync(from)) fs.copyFileSync(path.join(from, name), path.join(to, name));
}

/** Writes 40 puts into several small segments and returns the segment names. */
async function writeSegments(dir: string): Promise<string[]> {
  const store = await openStore(dir, { fsync: 'none', walSegmentBytesMax: 2048 });
  for (let i = 0; i < 40; i++) await store.put(`k${i}`, Buffer.alloc(200, i), { version: v(i + 1) });
  await store.close();
  return walFiles(dir);
}

test('torn tail: cutting the last segment at any offset keeps exactly the whole records before it', async (t) => {
  const base = tempDir(t);
  const ends = await writeLog(path.join(base, 'orig'));
  const segName = walFiles(path.join(base, 'orig'))[0];
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: ends[ends.length - 1] - 1 }), fc.boolean(), async (cut, garbage) => {
      const dir = path.join(base, `run${run++}`);
      copyDir(path.join(base, 'orig'), dir);
      const file = path.join(dir, segName);
      fs.truncateSync(file, cut);
      if (garbage) fs.appendFileSync(file, Buffer.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3]));
      const logger = recordingLogger();
      const store = await openStore(dir, { fsync: 'none', logger });
      const whole = ends.filter((e) => e <= cut).length;
      for (let i = 0; i < RECORDS; i++) {
        const got = store.get(`k${i}`);
        if (i < whole) t.deepEqual(got?.value, Buffer.alloc((i * 37) % 300, i));
        else t.is(got, undefined);
      }
      const onDisk = fs.existsSync(file) ? fs.statSync(file).size : 0;
      if (cut !== (ends[whole - 1] ?? 0) || garbage) {
        const w = logger.warnings.find((x) => x.message.includes('torn'));
        t.truthy(w, 'a torn tail is logged');
        t.is(w?.fields?.file, file);
        t.is(w?.fields?.offset, ends[whole - 1] ?? 0);
      }
      // Appending after the truncation works and survives another reopen.
      await store.put('after', buf('x'), { version: v(1000) });
      await store.close();
      const again = await openStore(dir, { fsync: 'none' });
      t.is(again.get('after')?.value?.toString(), 'x');
      t.is(again.stats().keys, whole + 1);
      await again.close();
      t.true(onDisk <= cut);
      fs.rmSync(dir, { recursive: true });
    }),
    { numRuns: 25 },
  );
});

test('corruption mid-log refuses to open naming file, offset and the repair option; repair keeps earlier records', async (t) => {
  const dir = tempDir(t);
  const ends = await writeLog(dir);
  const file = path.join(dir, walFiles(dir)[0]);
  const bad = ends[9] + 20; // inside record #10's payload
  const bytes = fs.readFileSync(file);
  bytes[bad] ^= 0xff;
  fs.writeFileSync(file, bytes);

  const err = (await t.throwsAsync(openStore(dir, { fsync: 'none' }))) as ShoalError;
  t.is(err.code, 'CORRUPT');
  t.true(err.message.includes(file));
  t.true(err.message.includes(`offset ${ends[9]}`));
  t.regex(err.message, /repair: true/);
  t.deepEqual(err.details?.offset, ends[9]);
  t.false(fs.existsSync(path.join(dir, 'LOCK')), 'a refused open releases the lock');

  const logger = recordingLogger();
  const store = await open(t, dir, { repair: true, logger });
  for (let i = 0; i < 10; i++) t.truthy(store.get(`k${i}`));
  for (let i = 10; i < RECORDS; i++) t.is(store.get(`k${i}`), undefined);
  t.true(fs.existsSync(`${file}.corrupt-${ends[9]}`), 'the dropped bytes are set aside');
  t.truthy(logger.warnings.find((w) => w.message.includes('repair')));
  await store.put('new', buf('x'), { version: v(5000) });
  await store.close();
  const again = await open(t, dir);
  t.is(again.stats().keys, 11);
});

test('corruption in an older segment with valid later segments is refused too', async (t) => {
  const dir = tempDir(t);
  const segs = await writeSegments(dir);
  t.true(segs.length >= 3);
  const first = path.join(dir, segs[0]);
  const bytes = fs.readFileSync(first);
  bytes[bytes.length - 5] ^= 0x55; // last record of the first segment
  fs.writeFileSync(first, bytes);
  const err = (await t.throwsAsync(openStore(dir, { fsync: 'none' }))) as ShoalError;
  t.is(err.code, 'CORRUPT');
  t.true(err.message.includes(segs[0]));
  const repaired = await open(t, dir, { repair: true });
  t.true(repaired.stats().keys > 0 && repaired.stats().keys < 40);
  t.true(fs.readdirSync(dir).some((n) => n === `${segs[1]}.corrupt`));
});

test('a missing WAL segment (sequence gap) is refused as corruption', async (t) => {
  const dir = tempDir(t);
  const segs = await writeSegments(dir);
  fs.rmSync(path.join(dir, segs[1]));
  const err = (await t.throwsAsync(openStore(dir, { fsync: 'none' }))) as ShoalError;
  t.is(err.code, 'CORRUPT');
  t.regex(err.message, /expected/);
});
