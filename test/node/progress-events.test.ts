import test from 'ava';
import { PROGRESS_LOG_MS, Progress, progressText } from '../../src/cluster/progress.js';
import type { Logger } from '../../src/log.js';
import type { Member } from '../../src/membership/types.js';
import { MEMBER_EVENTS_MAX, MemberEvents } from '../../src/node/member-events.js';
import { RecentOps } from '../../src/node/recent.js';

function captureLogger(lines: string[]): Logger {
  const logger: Logger = { debug: () => {}, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), child: () => logger };
  return logger;
}

test('progress: a line every PROGRESS_LOG_MS with keys, MiB, MiB/s and the share done, then a done line', (t) => {
  const lines: string[] = [];
  let now = 0;
  const p = new Progress('streaming', captureLogger(lines), () => now);
  p.expect(1000);
  p.add(100, 1024 * 1024);
  t.deepEqual(lines, [], 'nothing before the first interval');
  now = PROGRESS_LOG_MS;
  p.add(150, 1024 * 1024);
  t.deepEqual(lines, ['streaming: 25% of 1000 keys: 250 keys, 2 MiB, 0.4 MiB/s']);
  now += 1000;
  p.add(10, 0);
  t.is(lines.length, 1, 'at most one line per interval');
  now = 2 * PROGRESS_LOG_MS;
  p.add(740, 8 * 1024 * 1024);
  t.is(lines[1], 'streaming: 100% of 1000 keys: 1000 keys, 10 MiB, 1 MiB/s');
  t.is(p.ratio(), 1);
  p.done();
  t.is(lines[2], 'streaming done in 10 s: 1000 keys, 10 MiB, 1 MiB/s');
  t.is(progressText({ keys: 5, bytes: 0, keysTotal: 0, elapsedMs: 0 }), '5 keys, 0 MiB, 0 MiB/s');
  t.throws(() => p.add(-1, 0));
});

const member = (id: string, state: Member['state'], incarnation = 1): Member => ({ id, gossip: 'g', rpc: 'r', state, incarnation });

test('member events: a member back from dead is logged; the list is bounded, newest last', (t) => {
  const lines: string[] = [];
  let now = 1000;
  const events = new MemberEvents(captureLogger(lines), () => now);
  events.record({ type: 'joined', member: member('n2', 'alive') });
  events.record({ type: 'suspect', member: member('n2', 'suspect') });
  events.record({ type: 'dead', member: member('n2', 'dead') });
  now = 2000;
  events.record({ type: 'alive', member: member('n2', 'alive', 2) });
  t.deepEqual(lines, ['member n2 joined', 'member n2 is back (it was dead)']);
  const list = events.list();
  t.deepEqual(list.map((e) => [e.type, e.from]), [['joined', null], ['suspect', 'alive'], ['dead', 'suspect'], ['alive', 'dead']]);
  t.is(list[3].atMs, 2000);
  events.record({ type: 'alive', member: member('n2', 'alive', 3) });
  t.is(lines.length, 2, 'alive after alive is not news');
  for (let i = 0; i < MEMBER_EVENTS_MAX + 10; i++) events.record({ type: 'suspect', member: member(`m${i}`, 'suspect') });
  t.is(events.list().length, MEMBER_EVENTS_MAX);
  t.is(events.list().at(-1)?.member, `m${MEMBER_EVENTS_MAX + 9}`);
});

test('recent ops: requests per second over the last 10 s and the p99 over the last minute', (t) => {
  let now = 100_000;
  const recent = new RecentOps(() => now);
  t.is(recent.p99Ms(), null);
  for (let s = 0; s < 10; s++) {
    for (let i = 0; i < 200; i++) recent.record(i === 0 ? 200 : 1);
    now += 1000;
  }
  t.is(recent.perSec(), 200);
  const p99 = recent.p99Ms() ?? 0;
  t.true(p99 >= 1 && p99 < 2, `p99 ${p99} is in the 1 ms bucket (0.5% of requests are slow)`);
  for (let i = 0; i < 100; i++) recent.record(200);
  t.true((recent.p99Ms() ?? 0) >= 200);
  now += 61_000;
  t.is(recent.perSec(), 0);
  t.is(recent.p99Ms(), null, 'a minute later the window is empty');
});
