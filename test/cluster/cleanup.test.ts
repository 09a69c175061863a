/** Clean-up of copies no longer owned: batched drops (group commit) and failures that cannot crash a node. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cleanup } from '../../src/cluster/cleanup.js';
import type { Transport } from '../../src/cluster/ports.js';
import type { ClusterView } from '../../src/cluster/view.js';
import { ShoalError } from '../../src/errors.js';
import { nullLogger } from '../../src/log.js';
import { openStore } from '../../src/storage/store.js';
import { startCluster } from './helpers/harness.js';

/** A view in which n1 owns nothing and n2, n3, n4 own everything (all up). */
function fakeView(): ClusterView {
  return {
    selfId: 'n1',
    owners: () => ['n2', 'n3', 'n4'],
    isUp: () => true,
    ring: () => ({ checksum: () => 'ring-1' }),
  } as unknown as ClusterView;
}

test('clean-up drops a batch of copies with one group commit, not one fdatasync per key', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-cleanup-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = await openStore(dir, { fsync: 'always' });
  const keys = 3_000;
  for (let i = 0; i < keys; i += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, j) => store.put(`k${i + j}`, Buffer.alloc(64, j), { version: { ts: 1 + i + j, node: 'n9' } })));
  }
  const applied: number[] = [];
  const transport: Transport = {
    async call(_node, _op, args) {
      applied.push((args.entries as unknown[]).length);
      return { applied: 0 };
    },
  };
  const cleanup = new Cleanup({
    view: fakeView(),
    store,
    transport,
    batchKeysMax: 1_000,
    batchBytesMax: 8 * 1024 * 1024,
    bytesPerSecMax: 1024 ** 3,
    timeoutMs: 1_000,
    logger: nullLogger,
  });
  const fsyncsBefore = store.stats().fsyncs;
  const r = await cleanup.runOnce();
  const fsyncs = store.stats().fsyncs - fsyncsBefore;
  t.deepEqual(r, { dropped: keys, kept: 0 });
  t.is(store.stats().keys, 0);
  t.true(fsyncs <= Math.ceil(keys / 1_000) + 1, `${fsyncs} fdatasyncs for ${keys} drops`);
  t.is(applied.reduce((a, b) => a + b, 0), keys * 3, 'every owner got every key first');
  await store.close();
});

test('a clean-up that meets a read-only store fails in the background: logged and counted, the node keeps serving', async (t) => {
  const c = await startCluster(3, { cleanupDelayMs: 20, ringSettleMs: 0 });
  for (let i = 0; i < 100; i++) await c.call('n1', 'put', { key: `c-${i}`, value: 'v', consistency: 'all' });
  const n1 = c.get('n1');
  n1.store.dropCopy = async () => {
    throw new ShoalError('READ_ONLY', 'store is read-only (disk full)');
  };
  await c.add('n4');
  await c.settle(); // n4 bootstraps; each old node schedules clean-up 20 ms after its round
  const deadline = Date.now() + 10_000;
  const failed = (): number => ((n1.node.stats().background as { failed: Record<string, number> }).failed['clean-up'] ?? 0);
  while (failed() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.is(failed(), 1, 'the failed clean-up was counted');
  t.is((await c.call('n1', 'get', { key: 'c-1' }) as { value: Buffer }).value.toString(), 'v', 'n1 still serves');
  await c.close();
});

test('copies kept because an owner did not answer are dropped by a later clean-up, without another ring change', async (t) => {
  // An unreachable node's calls fail on their timeout: short here.
  const c = await startCluster(3, { cleanupDelayMs: 50, ringSettleMs: 0, internalTimeoutMs: 1_000 });
  t.teardown(() => c.close());
  for (let i = 0; i < 200; i++) await c.call('n1', 'put', { key: `r-${i}`, value: 'v', consistency: 'all' });
  // n3 is unreachable (membership still says alive): hand-offs to it fail, so clean-up keeps copies.
  c.net.down('n3');
  await c.add('n4');
  await c.settle();
  const misplaced = (): number => {
    let count = 0;
    for (const id of ['n1', 'n2', 'n4']) {
      const { node, store } = c.get(id);
      for (let i = 0; i < 200; i++) {
        const key = `r-${i}`;
        if (store.getEntry(key) && !node.view.owners(key).includes(id)) count += 1;
      }
    }
    return count;
  };
  const waitFor = async (done: () => boolean, ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return done();
  };
  const keptCopies = (): number => ['n1', 'n2'].reduce((sum, id) => sum + ((c.get(id).node.stats().cleanup as { kept?: number } | undefined)?.kept ?? 0), 0);
  t.true(await waitFor(() => keptCopies() > 0, 10_000), 'a clean-up ran and kept copies while n3 was unreachable');
  t.true(misplaced() > 0, 'copies wait on non-owners while an owner does not answer');
  const checksum = c.get('n1').node.view.ring().checksum();
  c.net.up('n3');
  t.true(await waitFor(() => misplaced() === 0, 20_000), `${misplaced()} copies still on non-owners`);
  t.is(c.get('n1').node.view.ring().checksum(), checksum, 'the ring did not change meanwhile');
});
