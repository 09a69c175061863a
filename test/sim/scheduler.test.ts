import test from 'ava';
import { SimScheduler } from '../../src/sim/scheduler.js';

test('events run in time order, promises settle between events, a killed clock never fires', async (t) => {
  const s = new SimScheduler(1);
  const a = s.clock();
  const b = s.clock({ driftPpm: 1000 });
  const trace: string[] = [];
  a.setTimeout(() => {
    trace.push(`a1@${s.timeMs}`);
    void Promise.resolve().then(() => Promise.resolve()).then(() => trace.push(`a1-chain@${s.timeMs}`));
  }, 10);
  b.setTimeout(() => trace.push(`b@${s.timeMs}`), 10);
  const iv = a.setInterval(() => trace.push(`iv@${s.timeMs}`), 4);
  a.setTimeout(() => a.clearInterval(iv), 13);
  const killed = s.clock();
  killed.setTimeout(() => trace.push('never'), 5);
  killed.kill();
  t.is(await s.run({ untilMs: 100 }), 'empty');
  t.deepEqual(trace, ['iv@4', 'iv@8', `b@${10 / 1.001}`, 'a1@10', 'a1-chain@10', 'iv@12']);
  t.true(b.monotonicMs() > a.monotonicMs());
  b.jump(5000);
  t.true(b.now() - a.now() >= 5000);
});

test('the same seed gives the same random streams', (t) => {
  const draw = (seed: number) => {
    const s = new SimScheduler(seed);
    const c1 = s.clock();
    const c2 = s.clock();
    return [s.random(), c1.random(), c2.random()];
  };
  t.deepEqual(draw(7), draw(7));
  t.notDeepEqual(draw(7), draw(8));
  const [w, c1, c2] = draw(7);
  t.not(c1, c2);
  t.not(w, c1);
});
