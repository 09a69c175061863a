/** WriteRound and ReadRound without a network: replicas are functions the test controls. */
import test from 'ava';
import { ReadRound, type ReadReply, WriteRound } from '../../src/cluster/rounds.js';
import { ShoalError } from '../../src/errors.js';
import type { Entry } from '../../src/storage/types.js';

/** A promise the test settles by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

/** Rounds unref their timers (they never hold a node open); a test waiting on one keeps the loop alive. */
function keepAlive(t: { teardown: (fn: () => void) => void }): void {
  const timer = setInterval(() => undefined, 1_000);
  t.teardown(() => clearInterval(timer));
}
const e = (ts: number, node = 'n1'): Entry => ({ value: Buffer.from(`v${ts}`), ts, node });

test('write: resolves at W acks without waiting for the slowest owner', async (t) => {
  const slow = deferred<void>();
  const round = new WriteRound({
    key: 'k', owners: ['a', 'b', 'c'], need: 2, timeoutMs: 60_000, isUp: () => true,
    apply: (owner) => (owner === 'c' ? slow.promise : Promise.resolve()),
    cover: async () => false,
  });
  await round.result;
  t.true(round.settled);
  slow.resolve();
});

test('write: owners down are covered by hints; a stand-in hint counts, the coordinator\'s own does not', async (t) => {
  const covered: string[] = [];
  const ok = new WriteRound({
    key: 'k', owners: ['a', 'b', 'c'], need: 2, timeoutMs: 60_000, isUp: (id) => id === 'a',
    apply: async () => undefined,
    cover: async (owner) => {
      covered.push(owner);
      return owner === 'b'; // a stand-in took b's hint; c's stayed on the coordinator
    },
  });
  await ok.result;
  t.deepEqual(covered.sort(), ['b', 'c']);
  const short = new WriteRound({
    key: 'k', owners: ['a', 'b', 'c'], need: 2, timeoutMs: 60_000, isUp: (id) => id === 'a',
    apply: async () => undefined,
    cover: async () => false,
  });
  const err = await t.throwsAsync(short.result);
  t.is((err as ShoalError).code, 'UNAVAILABLE');
  t.regex(err?.message ?? '', /only 1 of 2 replicas answered the write \(3 replicas; b is down; c is down\)/);
  t.deepEqual((err as ShoalError).details, { answered: 1, required: 2, replicas: 3 });
});

test('write: a client fault from a replica fails the write at once; other errors fall back to a hint', async (t) => {
  const bad = new WriteRound({
    key: 'k', owners: ['a', 'b', 'c'], need: 2, timeoutMs: 60_000, isUp: () => true,
    apply: async (owner) => {
      if (owner === 'b') throw new ShoalError('VALUE_TOO_LARGE', 'too big');
    },
    cover: async () => true,
  });
  t.is(((await t.throwsAsync(bad.result)) as ShoalError).code, 'VALUE_TOO_LARGE');
  const covered: string[] = [];
  const flaky = new WriteRound({
    key: 'k', owners: ['a', 'b', 'c'], need: 3, timeoutMs: 60_000, isUp: () => true,
    apply: async (owner) => {
      if (owner === 'c') throw new ShoalError('UNAVAILABLE', 'connection lost');
    },
    cover: async (owner) => {
      covered.push(owner);
      return true;
    },
  });
  await flaky.result;
  t.deepEqual(covered, ['c']);
});

test('write: TIMEOUT when acks do not come in time', async (t) => {
  keepAlive(t);
  const never = deferred<void>();
  const round = new WriteRound({ key: 'k', owners: ['a', 'b'], need: 2, timeoutMs: 30, isUp: () => true, apply: () => never.promise, cover: async () => false });
  t.is(((await t.throwsAsync(round.result)) as ShoalError).code, 'TIMEOUT');
});

test('write: a quorum of 0 is a bug, refused loudly; more than the owners is UNAVAILABLE before anything is sent', async (t) => {
  t.throws(() => new WriteRound({ key: 'k', owners: ['a'], need: 0, timeoutMs: 1000, isUp: () => true, apply: async () => undefined, cover: async () => false }), {
    message: /at least one ack/,
  });
  let sent = 0;
  const round = new WriteRound({
    key: 'k', owners: ['a'], need: 2, timeoutMs: 1000, isUp: () => true,
    apply: async () => {
      sent += 1;
    },
    cover: async () => false,
  });
  const err = (await t.throwsAsync(round.result)) as ShoalError;
  t.is(err.code, 'UNAVAILABLE');
  t.regex(err.message, /only 0 of 2 replicas answered the write \(1 replicas; only 1 owners\)/);
  t.is(sent, 0);
});

function reader(replies: Record<string, ReadReply | Error | Promise<ReadReply>>) {
  const asked: string[] = [];
  return {
    asked,
    ask: async (node: string): Promise<ReadReply> => {
      asked.push(node);
      const r = replies[node];
      if (r instanceof Error) throw r;
      return r;
    },
  };
}

test('read: asks R replicas, answers the newest, and reports every reply once all settled', async (t) => {
  const r = reader({ a: { node: 'a', entry: e(5), syncing: false }, b: { node: 'b', entry: e(7), syncing: false }, c: { node: 'c', entry: e(9), syncing: false } });
  let settled: ReadReply[] = [];
  const round = new ReadRound({ key: 'k', targets: ['a', 'b', 'c'], n: 3, need: 2, timeoutMs: 60_000, all: false, speculativeMs: 60_000, ask: r.ask, onSettled: (_k, replies) => (settled = replies) });
  t.is((await round.result)?.ts, 7);
  t.deepEqual(r.asked, ['a', 'b'], 'only R asked');
  await tick();
  t.is(settled.length, 2);
});

test('read: a failed replica makes it ask the next one', async (t) => {
  const r = reader({ a: new ShoalError('UNAVAILABLE', 'down'), b: { node: 'b', entry: null, syncing: false }, c: { node: 'c', entry: e(3), syncing: false } });
  const round = new ReadRound({ key: 'k', targets: ['a', 'b', 'c'], n: 3, need: 2, timeoutMs: 60_000, all: false, speculativeMs: 60_000, ask: r.ask });
  t.is((await round.result)?.ts, 3);
  t.deepEqual(r.asked, ['a', 'b', 'c']);
});

test('read: a syncing replica\'s miss is not final: the next one is asked, and it counts only when nothing firmer comes', async (t) => {
  const r = reader({ a: { node: 'a', entry: null, syncing: true }, b: { node: 'b', entry: e(4), syncing: false }, c: { node: 'c', entry: e(4), syncing: false } });
  const round = new ReadRound({ key: 'k', targets: ['a', 'b', 'c'], n: 3, need: 2, timeoutMs: 60_000, all: false, speculativeMs: 60_000, ask: r.ask });
  t.is((await round.result)?.ts, 4);
  t.deepEqual(r.asked, ['a', 'b', 'c'], 'two firm replies were needed');
  const onlySyncing = reader({ a: { node: 'a', entry: null, syncing: true }, b: { node: 'b', entry: e(2), syncing: true } });
  const round2 = new ReadRound({ key: 'k', targets: ['a', 'b'], n: 2, need: 2, timeoutMs: 60_000, all: false, speculativeMs: 60_000, ask: onlySyncing.ask });
  t.is((await round2.result)?.ts, 2, 'everyone answered: syncing replies count');
});

test('read: too few replies is UNAVAILABLE naming the failures; a slow replica triggers the speculative ask', async (t) => {
  keepAlive(t);
  const r = reader({ a: new ShoalError('UNAVAILABLE', 'x'), b: new ShoalError('TIMEOUT', 'y') });
  const round = new ReadRound({ key: 'k', targets: ['a', 'b'], n: 3, need: 2, timeoutMs: 60_000, all: false, speculativeMs: 60_000, ask: r.ask });
  const err = (await t.throwsAsync(round.result)) as ShoalError;
  t.regex(err.message, /only 0 of 2 replicas answered the read \(3 replicas; a: UNAVAILABLE; b: TIMEOUT\)/);
  const slow = deferred<ReadReply>();
  const s = reader({ a: slow.promise, b: { node: 'b', entry: e(1), syncing: false }, c: { node: 'c', entry: e(1), syncing: false } });
  const spec = new ReadRound({ key: 'k', targets: ['a', 'b', 'c'], n: 3, need: 2, timeoutMs: 60_000, all: false, speculativeMs: 20, ask: s.ask });
  t.is((await spec.result)?.ts, 1);
  t.deepEqual(s.asked, ['a', 'b', 'c'], 'all remaining asked after speculativeMs');
  slow.resolve({ node: 'a', entry: null, syncing: false });
});
