/**
 * The known-bug mutations of the cluster layer (src/mutations.ts) do what they say when on, and
 * nothing when off: each test runs the same case both ways. The simulator (docs/SIMULATION.md) relies
 * on these flags to prove it finds the bugs they re-introduce.
 */
import test from 'ava';
import { BackgroundTasks } from '../../src/background.js';
import { cutBatches } from '../../src/cluster/batch.js';
import type { Transport } from '../../src/cluster/ports.js';
import { ReadRepair } from '../../src/cluster/read-repair.js';
import { StreamSource } from '../../src/cluster/stream-source.js';
import { ClusterView } from '../../src/cluster/view.js';
import { ShoalError } from '../../src/errors.js';
import { nullLogger } from '../../src/log.js';
import { type MutationName, setMutations } from '../../src/mutations.js';
import { rangeToWire } from '../../src/ring/ranges.js';
import { hashKey, Ring } from '../../src/ring/ring.js';
import type { Entry } from '../../src/storage/types.js';
import { startCluster } from './helpers/harness.js';
import { MembershipWorld } from './helpers/membership.js';
import { MemoryStore } from './helpers/memory-store.js';

const ringFactory = { build: (members: Array<{ id: string; zone?: string }>, opts?: { vnodes?: number }) => Ring.build(members, opts), hashKey };

/** Runs `body` with no mutation, then with `name` on; the flags are off again afterwards. */
async function bothWays<T>(name: MutationName, body: () => T | Promise<T>): Promise<{ off: T; on: T }> {
  try {
    setMutations([]);
    const off = await body();
    setMutations([name]);
    const on = await body();
    return { off, on };
  } finally {
    setMutations([]);
  }
}

test.serial('n-clamped-to-live: N follows the members up instead of the cluster size', async (t) => {
  const { off, on } = await bothWays('n-clamped-to-live', () => {
    const world = new MembershipWorld();
    for (const id of ['n1', 'n2', 'n3', 'n4']) world.add(id);
    const view = new ClusterView({ membership: world.source('n1'), ringFactory, replicationFactor: 3, vnodes: 16, deadOwnerGraceMs: 60_000, logger: nullLogger });
    const before = view.replicas();
    world.set('n3', 'dead');
    world.set('n4', 'dead');
    const after = view.replicas();
    view.close();
    return [before, after];
  });
  t.deepEqual(off, [3, 3], 'N stays 3 with two of four members dead');
  t.deepEqual(on, [3, 2], 'the mutation clamps N to the two members up');
});

test.serial('read-repair-older: the older value is written over the newer one on every replica', async (t) => {
  const old: Entry = { value: Buffer.from('old'), ts: 100, node: 'n1' };
  const fresh: Entry = { value: Buffer.from('new'), ts: 200, node: 'n2' };
  const { off, on } = await bothWays('read-repair-older', async () => {
    const stores = new Map([
      ['a', new MemoryStore()],
      ['b', new MemoryStore()],
    ]);
    await stores.get('a')!.apply('k', old);
    await stores.get('b')!.apply('k', fresh);
    const transport: Transport = {
      async call(node, _op, args) {
        const e = args.entry as { value: Uint8Array; ts: number; node: string };
        return { applied: await stores.get(node)!.apply(args.key as string, { value: Buffer.from(e.value), ts: e.ts, node: e.node }) };
      },
    };
    const tasks = new BackgroundTasks({ logger: nullLogger });
    const repair = new ReadRepair({ transport, inFlightMax: 8, timeoutMs: 1_000, logger: nullLogger, tasks });
    repair.check('k', [
      { node: 'a', entry: old, syncing: false },
      { node: 'b', entry: fresh, syncing: false },
    ]);
    await tasks.idle(5_000);
    return [...stores].map(([id, s]) => `${id}=${s.getEntry('k')?.value?.toString()}`);
  });
  t.deepEqual(off, ['a=new', 'b=new'], 'the stale replica gets the newest value');
  t.deepEqual(on, ['a=old', 'b=old'], 'the mutation overwrites the newest value with the older one');
});

test.serial('repair-batch-keys-only: batches ignore the byte bound', async (t) => {
  const items = Array.from({ length: 10 }, (_, i) => i);
  const cut = await bothWays('repair-batch-keys-only', () => cutBatches(items, () => 100, { bytesMax: 250, itemsMax: 1000 }).map((b) => b.length));
  t.deepEqual(cut.off, [2, 2, 2, 2, 2]);
  t.deepEqual(cut.on, [10], 'one batch of 1000 bytes for a bound of 250');
  // The stream source's pages: a byte budget of one large value per page, or every key at once.
  const pages = await bothWays('repair-batch-keys-only', async () => {
    const store = new MemoryStore();
    const keys = ['a', 'b', 'c', 'd'];
    for (const [i, key] of keys.entries()) await store.apply(key, { value: Buffer.alloc(10_000, 1), ts: i + 1, node: 'n1' });
    const source = new StreamSource({ selfId: 'n1', store, ringFactory, sessionsMax: 4, sessionIdleMs: 60_000, batchBytesMax: 15_000, logger: nullLogger });
    // n2 owns every token in a ring of its own; in the base ring (n1 alone) n1 is the source of all.
    const ranges = ringFactory.build([{ id: 'n2' }], { vnodes: 16 }).rangesFor('n2', 1).map(rangeToWire);
    const request = { puller: 'n2', n: 1, vnodes: 16, exclude: [], ranges, base: [{ id: 'n1' }], limit: 1000 };
    const first = (await source.handle(request)) as { entries: unknown[]; done: boolean };
    return first.entries.length;
  });
  t.is(pages.off, 1, 'one 10 kB value per 15 kB page');
  t.is(pages.on, 4, 'every key in one 40 kB page');
});

test.serial('cleanup-floating-promise: a clean-up failure escapes as an unhandled rejection instead of being caught and counted', async (t) => {
  const { off, on } = await bothWays('cleanup-floating-promise', async () => {
    const c = await startCluster(2, { cleanupDelayMs: 10 });
    const node = c.get('n1').node;
    node.cleanup.runOnce = () => Promise.reject(new ShoalError('INTERNAL', 'EIO while scanning'));
    const escaped: string[] = [];
    const saved = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    process.on('unhandledRejection', (reason) => escaped.push(String(reason)));
    try {
      (node as unknown as { scheduleCleanup(): void }).scheduleCleanup();
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      process.removeAllListeners('unhandledRejection');
      for (const listener of saved) process.on('unhandledRejection', listener);
    }
    const failed = node.tasks.stats().failed['clean-up'] ?? 0;
    await c.close();
    return { escaped, failed };
  });
  t.deepEqual(off, { escaped: [], failed: 1 }, 'caught, logged and counted by BackgroundTasks');
  t.is(on.failed, 0);
  t.is(on.escaped.length, 1);
  t.regex(on.escaped[0], /EIO while scanning/);
});
