/** Read repair: stale and missing replicas get the newest entry; bounded, counted, never throws. */
import test from 'ava';
import { BackgroundTasks } from '../../src/background.js';
import type { Transport } from '../../src/cluster/ports.js';
import { ReadRepair } from '../../src/cluster/read-repair.js';
import type { ReadReply } from '../../src/cluster/rounds.js';
import { ShoalError } from '../../src/errors.js';
import { nullLogger } from '../../src/log.js';
import type { Entry } from '../../src/storage/types.js';

const e = (ts: number, node = 'n1'): Entry => ({ value: Buffer.from(`v${ts}`), ts, node });

function setup(options: { inFlightMax?: number; fail?: (node: string) => boolean; hold?: Promise<void> } = {}) {
  const sent: Array<{ node: string; key: string; ts: number }> = [];
  const transport: Transport = {
    async call(node, _op, args) {
      await options.hold;
      if (options.fail?.(node)) throw new ShoalError('UNAVAILABLE', `${node} down`);
      sent.push({ node, key: args.key as string, ts: (args.entry as { ts: number }).ts });
      return { applied: true };
    },
  };
  const tasks = new BackgroundTasks({ logger: nullLogger });
  const repair = new ReadRepair({ transport, inFlightMax: options.inFlightMax ?? 64, timeoutMs: 1_000, logger: nullLogger, tasks });
  return { repair, sent, tasks };
}

test('replicas that answered an older version or nothing get the newest; up-to-date ones are left alone', async (t) => {
  const { repair, sent, tasks } = setup();
  const replies: ReadReply[] = [
    { node: 'a', entry: e(9), syncing: false },
    { node: 'b', entry: e(5), syncing: false },
    { node: 'c', entry: null, syncing: false },
    { node: 'd', entry: e(9), syncing: false },
  ];
  t.is(repair.check('k', replies), 2);
  await tasks.idle();
  t.deepEqual(sent.sort((x, y) => x.node.localeCompare(y.node)), [{ node: 'b', key: 'k', ts: 9 }, { node: 'c', key: 'k', ts: 9 }]);
  t.like(repair.stats(), { inFlight: 0, repaired: 2, failed: 0, dropped: 0 });
});

test('a tombstone is the newest too: it is written back over an older value', async (t) => {
  const { repair, sent, tasks } = setup();
  repair.check('k', [{ node: 'a', entry: { value: null, ts: 10, node: 'n2' }, syncing: false }, { node: 'b', entry: e(3), syncing: false }]);
  await tasks.idle();
  t.deepEqual(sent, [{ node: 'b', key: 'k', ts: 10 }]);
});

test('nothing to repair when no reply holds an entry', (t) => {
  const { repair } = setup();
  t.is(repair.check('k', [{ node: 'a', entry: null, syncing: false }, { node: 'b', entry: null, syncing: false }]), 0);
});

test('past readRepairInFlightMax repairs are dropped and counted; failures are counted, not thrown', async (t) => {
  let release!: () => void;
  const hold = new Promise<void>((r) => (release = r));
  const { repair, tasks } = setup({ inFlightMax: 2, hold, fail: (node) => node === 'x' });
  const stale = (node: string): ReadReply => ({ node, entry: e(1), syncing: false });
  t.is(repair.check('k1', [{ node: 'a', entry: e(5), syncing: false }, stale('x'), stale('y'), stale('z')]), 2);
  t.like(repair.stats(), { inFlight: 2, dropped: 1 });
  release();
  await tasks.idle();
  t.like(repair.stats(), { inFlight: 0, repaired: 1, failed: 1, dropped: 1 });
  t.deepEqual(tasks.stats().failed, { 'read-repair': 0 }, 'a replica that is down is not a task failure');
});
