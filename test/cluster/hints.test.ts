import test from 'ava';
import fc from 'fast-check';
import { mkdtemp, readdir, rm, readFile, writeFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HintStore, type HintStoreOptions } from '../../src/cluster/hints.js';
import { ShoalError } from '../../src/errors.js';
import type { Entry } from '../../src/storage/types.js';

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-hints-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function entry(i: number, extra: Partial<Entry> = {}): Entry {
  return { ts: 1000 + i, node: 'n1', value: Buffer.from(`value-${i}`), ...extra };
}

/** A fake clock whose sleep advances it, so rate limits cost no real time. */
function fakeTime(start = 1_764_000_000_000): { now: () => number; sleep: (ms: number) => Promise<void>; slept: () => number; advance: (ms: number) => void } {
  let t = start;
  let slept = 0;
  return {
    now: () => t,
    sleep: async (ms) => {
      t += ms;
      slept += ms;
    },
    slept: () => slept,
    advance: (ms) => (t += ms),
  };
}

async function collect(store: HintStore, target: string, options: { maxPerSec?: number } = {}): Promise<Map<string, Entry>> {
  const got = new Map<string, Entry>();
  await store.replay(target, async (key, e) => void got.set(key, e), { maxPerSec: 1e6, ...options });
  return got;
}

test('hints survive a reopen and replay delivers every field, tombstones included', async (t) => {
  await withDir(async (dir) => {
    const a = await HintStore.open(dir);
    await Promise.all([
      a.add('n2', 'k1', entry(1, { expiresAtMs: 99_999 })),
      a.add('n2', 'k2', { ts: 7, node: 'n3', value: null }),
      a.add('n3', 'k3', entry(3)),
    ]);
    t.is(a.pendingFor('n2'), 2);
    t.deepEqual(a.targets().sort(), ['n2', 'n3']);
    await a.close();
    await t.throwsAsync(a.add('n2', 'k', entry(0)), { instanceOf: ShoalError, message: /closed/ });

    const b = await HintStore.open(dir);
    t.is(b.pendingFor('n2'), 2);
    t.is(b.pendingFor('n3'), 1);
    t.is(b.stats().hints, 3);
    const got = await collect(b, 'n2');
    t.deepEqual(got.get('k1'), entry(1, { expiresAtMs: 99_999 }));
    t.deepEqual(got.get('k2'), { ts: 7, node: 'n3', value: null });
    t.is(b.pendingFor('n2'), 0);
    t.deepEqual(b.targets(), ['n3']);
    await b.close();

    const c = await HintStore.open(dir);
    t.is(c.pendingFor('n2'), 0, 'replayed hints stay gone after a reopen');
    t.is(c.pendingFor('n3'), 1);
    await c.close();
  });
});

test('adds of one tick share one write and fsync', async (t) => {
  await withDir(async (dir) => {
    const store = await HintStore.open(dir);
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.add('n2', `k${i}`, entry(i))));
    t.is(store.stats().added, 50);
    t.is(store.stats().batches, 1);
    await store.close();
  });
});

test('limits: hintsMax and hintBytesMax refuse with UNAVAILABLE, and replay frees room', async (t) => {
  await withDir(async (dir) => {
    const store = await HintStore.open(dir, { hintsMax: 3 });
    await Promise.all([0, 1, 2].map((i) => store.add('n2', `k${i}`, entry(i))));
    const err = await t.throwsAsync(store.add('n3', 'k9', entry(9)));
    t.is((err as ShoalError).code, 'UNAVAILABLE');
    t.is(store.stats().rejectedFull, 1);
    await collect(store, 'n2');
    await store.add('n3', 'k9', entry(9));
    t.is(store.stats().hints, 1);
    await store.close();
  });
  await withDir(async (dir) => {
    const store = await HintStore.open(dir, { hintBytesMax: 200 });
    await store.add('n2', 'small', entry(1));
    const err = await t.throwsAsync(store.add('n2', 'big', entry(2, { value: Buffer.alloc(300) })));
    t.is((err as ShoalError).code, 'UNAVAILABLE');
    t.true(store.stats().hintBytes <= 200);
    await store.close();
  });
});

test('replay removes a hint only after its send resolved: no hint is lost whatever fails', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 30 }),
      fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      async (count, failAt, reopen) => {
        await withDir(async (dir) => {
          let store = await HintStore.open(dir, { replayConcurrency: 3 });
          await Promise.all(Array.from({ length: count }, (_, i) => store.add('n2', `k${i}`, entry(i))));
          const delivered = new Set<string>();
          for (const limit of failAt) {
            let calls = 0;
            const r = await store.replay(
              'n2',
              async (key) => {
                if (calls++ >= limit) throw new ShoalError('UNAVAILABLE', 'target down');
                delivered.add(key);
              },
              { maxPerSec: 1e6 },
            );
            t.is(r.remaining, store.pendingFor('n2'));
            if (reopen) {
              await store.close();
              store = await HintStore.open(dir, { replayConcurrency: 3 });
            }
          }
          const rest = await collect(store, 'n2');
          for (const k of rest.keys()) delivered.add(k);
          t.is(delivered.size, count);
          t.is(store.pendingFor('n2'), 0);
          await store.close();
          const left = (await readdir(dir)).filter((f) => f.endsWith('.hint') || f.endsWith('.tmp'));
          t.deepEqual(left, [], 'an empty target leaves no segment behind');
        });
      },
    ),
    { numRuns: 25 },
  );
});

test('hints added during a replay are kept for the next one', async (t) => {
  await withDir(async (dir) => {
    const store = await HintStore.open(dir);
    await Promise.all([0, 1, 2].map((i) => store.add('n2', `k${i}`, entry(i))));
    const first = await store.replay('n2', async (key) => {
      if (key === 'k1') await store.add('n2', 'late', entry(10));
    }, { maxPerSec: 1e6 });
    t.is(first.sent, 3);
    t.is(store.pendingFor('n2'), 1);
    await store.close();
    const again = await HintStore.open(dir);
    t.deepEqual([...(await collect(again, 'n2')).keys()], ['late']);
    await again.close();
  });
});

test('replay is rate limited (fake clock) and drops hints older than hintTtlMs', async (t) => {
  await withDir(async (dir) => {
    const time = fakeTime();
    const options: HintStoreOptions = { now: time.now, sleep: time.sleep, hintTtlMs: 60_000 };
    const store = await HintStore.open(dir, options);
    await Promise.all(Array.from({ length: 5 }, (_, i) => store.add('n2', `old${i}`, entry(i))));
    time.advance(61_000);
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.add('n2', `new${i}`, entry(i))));
    const r = await store.replay('n2', async () => undefined, { maxPerSec: 10 });
    t.is(r.expired, 5);
    t.is(r.sent, 40);
    // 40 sends at 10/s with a burst of 1: ~3.9 s of (fake) waiting.
    t.true(time.slept() >= 3500 && time.slept() <= 4500, `slept ${time.slept()} ms`);
    t.is(store.stats().expired, 5);
    await store.close();
  });
});

test('a torn tail or a flipped byte loses only the damaged records, never the store', async (t) => {
  await withDir(async (dir) => {
    const store = await HintStore.open(dir);
    for (let i = 0; i < 5; i++) await store.add('n2', `k${i}`, entry(i)); // five batches, one segment
    await store.close();
    const [segment] = (await readdir(dir)).filter((f) => f.endsWith('.hint'));
    const path = join(dir, segment);
    const size = (await readFile(path)).length;
    await truncate(path, size - 3);
    const torn = await HintStore.open(dir);
    t.is(torn.pendingFor('n2'), 4);
    t.is(torn.stats().corruptRecords, 1);
    await torn.close();

    const bytes = await readFile(path);
    const recordBytes = (size - 8) / 5; // equal-sized records after an 8-byte header
    t.true(Number.isInteger(recordBytes));
    bytes[8 + 2 * recordBytes + 20] ^= 0xff; // inside the 3rd record's payload
    await writeFile(path, bytes);
    const flipped = await HintStore.open(dir);
    const pending = flipped.pendingFor('n2');
    t.is(pending, 2);
    const got = await collect(flipped, 'n2');
    t.is(got.size, pending);
    t.is(flipped.pendingFor('n2'), 0);
    await flipped.close();
  });
});

test('drop removes a target’s hints; bad input is refused', async (t) => {
  await withDir(async (dir) => {
    const store = await HintStore.open(dir);
    await Promise.all([0, 1].map((i) => store.add('gone', `k${i}`, entry(i))));
    await store.add('n2', 'k', entry(5));
    t.is(await store.drop('gone'), 2);
    t.is(store.pendingFor('gone'), 0);
    t.is(store.stats().hints, 1);
    await t.throwsAsync(store.add('n2', 'k', { ts: 1.5, node: 'n1', value: null }), { message: /Entry/ });
    await t.throwsAsync(store.add('n2', 'k', { ts: 1, node: 'n1', value: 'text' as unknown as Buffer }));
    await t.throwsAsync(store.add('', 'k', entry(1)), { message: /target id/ });
    t.deepEqual(await store.replay('nobody', async () => undefined), { sent: 0, failed: 0, expired: 0, remaining: 0 });
    await store.close();
    const reopened = await HintStore.open(dir);
    t.is(reopened.pendingFor('gone'), 0);
    t.is(reopened.pendingFor('n2'), 1);
    await reopened.close();
  });
});

test('close() during a replay keeps what was not sent; a leftover compaction temp file is removed', async (t) => {
  await withDir(async (dir) => {
    const store = await HintStore.open(dir, { replayConcurrency: 1 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.add('n2', `k${i}`, entry(i))));
    let closing: Promise<void> | null = null;
    const sent = new Set<string>();
    const replay = store.replay('n2', async (key) => {
      sent.add(key);
      if (sent.size === 5) closing = store.close();
    }, { maxPerSec: 1e6 });
    const r = await replay;
    await closing;
    t.is(r.sent, sent.size);
    t.true(r.sent < 20);
    await writeFile(join(dir, `${Buffer.from('n2').toString('hex')}.00000099.hint.tmp`), 'partial');
    const again = await HintStore.open(dir);
    t.is(again.pendingFor('n2'), 20 - r.sent);
    const rest = await collect(again, 'n2');
    for (const k of rest.keys()) t.false(sent.has(k));
    t.false((await readdir(dir)).some((f) => f.endsWith('.tmp')));
    await again.close();
  });
});

test('segments with nothing readable left are removed at open', async (t) => {
  await withDir(async (dir) => {
    const store = await HintStore.open(dir);
    await store.add('n2', 'k', entry(1));
    await store.close();
    const [segment] = (await readdir(dir)).filter((f) => f.endsWith('.hint'));
    await truncate(join(dir, segment), 8); // header only
    const reopened = await HintStore.open(dir);
    t.is(reopened.pendingFor('n2'), 0);
    t.deepEqual(reopened.targets(), []);
    t.deepEqual(await readdir(dir), []);
    await reopened.close();
  });
});
