import { BackgroundTasks } from '../../src/background.js';
import test from 'ava';
import { ShoalError } from '../../src/errors.js';
import { Handoff, HANDOFF_BACKOFF_MS_MAX } from '../../src/cluster/handoff.js';
import type { HintStoreLike, Transport } from '../../src/cluster/ports.js';
import type { ClusterView } from '../../src/cluster/view.js';
import { nullLogger } from '../../src/log.js';
import type { Entry } from '../../src/storage/types.js';
import { fakeTimeClock } from './helpers/clock.js';

/** One pending hint for n2, which is alive; `refuse` decides whether n2 takes it. */
function setup(refuse: () => boolean) {
  let pending = 1;
  const attempts: number[] = [];
  let now = 1_000_000;
  const hints = {
    pendingFor: (id: string) => (id === 'n2' ? pending : 0),
    targets: () => ['n2'],
    async replay(_id: string, send: (key: string, entry: Entry) => Promise<void>) {
      attempts.push(now);
      try {
        await send('k', { value: Buffer.from('v'), ts: 1, node: 'n1' });
        pending = 0;
        return { sent: 1, failed: 0 };
      } catch {
        return { sent: 0, failed: 1 };
      }
    },
  } as unknown as HintStoreLike;
  const transport: Transport = {
    async call() {
      if (refuse()) throw new ShoalError('READ_ONLY', 'disk full (ENOSPC)');
      return true;
    },
  };
  const view = { selfId: 'n1', isAlive: () => true, isUp: () => true } as unknown as ClusterView;
  const handoff = new Handoff({ hints, view, transport, intervalMs: 1000, perSecMax: 1000, timeoutMs: 100, logger: nullLogger, tasks: new BackgroundTasks({ logger: nullLogger }), clock: fakeTimeClock(() => now) });
  return { handoff, attempts, advance: (ms: number) => (now += ms), now: () => now };
}

test('a live target that refuses every hint is retried with a doubling backoff, then at once after it takes one', async (t) => {
  let refusing = true;
  const s = setup(() => refusing);
  const tick = () => s.handoff.runOnce({ respectBackoff: true });
  await tick();
  t.is(s.attempts.length, 1);
  t.is(s.handoff.retryAtMs('n2'), s.now() + 2000);
  s.advance(1000);
  await tick();
  t.is(s.attempts.length, 1, 'still backing off: no replay, no rewrite of the hint files');
  const waits: number[] = [];
  for (let i = 0; i < 10; i++) {
    const at = s.handoff.retryAtMs('n2') as number;
    s.advance(at - s.now());
    await tick();
    waits.push((s.handoff.retryAtMs('n2') as number) - s.now());
  }
  t.deepEqual(waits.slice(0, 4), [4000, 8000, 16000, 32000]);
  t.is(Math.max(...waits), HANDOFF_BACKOFF_MS_MAX);
  t.is(s.attempts.length, 11);
  // An explicit pass (a leave, a test) ignores the backoff.
  await s.handoff.runOnce();
  t.is(s.attempts.length, 12);
  refusing = false;
  s.advance(HANDOFF_BACKOFF_MS_MAX);
  await tick();
  t.is(s.handoff.stats().replayed, 1);
  t.is(s.handoff.retryAtMs('n2'), null);
});
