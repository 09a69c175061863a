/**
 * Known members persisted by the runtime (known-members.json): what is written, that a node with no
 * seeds rejoins through them, that a member that left is dropped from the file, and that a damaged
 * file is a CORRUPT error naming it.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ShoalError } from '../../src/errors.js';
import { KNOWN_MEMBERS_FILE, KnownMembers, readKnownMembers, writeJsonDurably } from '../../src/membership/known.js';
import { Membership } from '../../src/membership/membership.js';
import { loopbackHost, waitFor } from './sockets.js';

const config = { probeIntervalMs: 200, probeTimeoutMs: 100, gossipIntervalMs: 50, pushPullIntervalMs: 2000, reconnectIntervalMs: 1000 };

test('members are persisted; two nodes restarted without seeds find each other through them; a leave drops the member', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-known-'));
  t.teardown(() => fs.rm(root, { recursive: true, force: true }));
  const hosts = [await loopbackHost(21, 1), await loopbackHost(21, 2), await loopbackHost(21, 3)];
  const running: Membership[] = [];
  t.teardown(() => Promise.all(running.map((m) => m.stop())));
  const start = async (i: number, seeds: string[], port = 0) => {
    const m = await Membership.start({ id: `k${i}`, bindHost: hosts[i], gossipPort: port, rpc: `${hosts[i]}:1`, seeds, dataDir: path.join(root, `k${i}`), config });
    running.push(m);
    return m;
  };
  const a = await start(0, []);
  const b = await start(1, [a.self().gossip]);
  const c = await start(2, [a.self().gossip]);
  const gossip = [a, b, c].map((m) => m.self().gossip);
  const ports = gossip.map((g) => Number(g.slice(g.lastIndexOf(':') + 1)));
  await waitFor('three alive everywhere', () => [a, b, c].every((m) => m.members().filter((x) => x.state === 'alive').length === 3));
  t.false(a.joining, 'a node without seeds or known members starts a cluster at once');
  for (const m of [a, b, c]) await m.stop();
  running.length = 0;

  const known = await readKnownMembers(path.join(root, 'k1'));
  t.deepEqual(known.map((m) => [m.id, m.gossip]).sort(), [['k0', gossip[0]], ['k2', gossip[2]]]);
  t.true(known.every((m) => m.incarnation >= 1));

  // Restarted without any seeds (on the same ports): each joins through what it knew.
  const a2 = await start(0, [], ports[0]);
  t.true(a2.joining, 'it has known members: it waits for one instead of starting a cluster');
  const b2 = await start(1, [], ports[1]);
  await waitFor('a and b rejoined each other', () => !a2.joining && !b2.joining && a2.members().find((m) => m.id === 'k1')?.state === 'alive');
  t.is(a2.stats().knownMembers, 2);

  // b leaves: a forgets it (after the next write of the file).
  await b2.leave({ timeoutMs: 2000 });
  await b2.stop();
  await waitFor('a sees b left', () => a2.members().find((m) => m.id === 'k1')?.state === 'left');
  t.deepEqual(a2.knownMemberIds(), ['k2']);
  await a2.stop();
  const after = await readKnownMembers(path.join(root, 'k0'));
  t.deepEqual(after.filter((m) => m.leftAtMs === undefined).map((m) => m.id), ['k2']);
  t.deepEqual(after.filter((m) => m.leftAtMs !== undefined).map((m) => m.id), ['k1'], 'the member that left is kept as a tombstone');
});

test('a damaged known-members file is a CORRUPT error naming the file; none at all is an empty list', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-known-bad-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  t.deepEqual(await readKnownMembers(dir), []);
  await fs.writeFile(path.join(dir, KNOWN_MEMBERS_FILE), '{"members": [{"id": 7}]}');
  const err = await t.throwsAsync(readKnownMembers(dir));
  t.true(err instanceof ShoalError && err.code === 'CORRUPT');
  t.regex(err?.message ?? '', /known-members\.json holds no valid member list; delete it/);
  await fs.writeFile(path.join(dir, KNOWN_MEMBERS_FILE), '{oops');
  t.is(((await t.throwsAsync(readKnownMembers(dir))) as ShoalError | undefined)?.code, 'CORRUPT');
});

test('the in-memory set: self is never kept, left members become tombstones, reaped ones are dropped, unchanged news is not a change', (t) => {
  const k = new KnownMembers('me', [{ id: 'me', gossip: 'x:1', incarnation: 3 }, { id: 'a', gossip: 'a:1', incarnation: 1 }]);
  t.deepEqual(k.ids(), ['a']);
  const member = (id: string, gossip: string, incarnation: number, state: 'alive' | 'dead' | 'left' = 'alive') => ({ id, gossip, rpc: `${gossip}r`, state, incarnation });
  t.true(k.apply({ type: 'alive', member: member('a', 'a:1', 1) }, 1000), 'a file without RPC addresses learns them');
  t.false(k.apply({ type: 'alive', member: member('a', 'a:1', 1) }, 1000), 'the same news again is no change');
  t.true(k.apply({ type: 'updated', member: member('a', 'a:2', 2) }, 1000), 'a new address replaces the old one');
  t.deepEqual(k.list(), [{ id: 'a', gossip: 'a:2', incarnation: 2, rpc: 'a:2r' }]);
  t.true(k.apply({ type: 'dead', member: member('b', 'b:1', 1, 'dead') }, 5000), 'dead members are kept');
  t.is(k.list().find((m) => m.id === 'b')?.deadAtMs, 5000, 'with the time they died');
  t.true(k.apply({ type: 'left', member: member('a', 'a:2', 2, 'left') }, 6000));
  t.false(k.apply({ type: 'joined', member: member('me', 'x:1', 4) }, 6000));
  t.deepEqual(k.ids(), ['b']);
  t.true(k.dirty);
  t.deepEqual(k.tombstones().map((m) => [m.id, m.leftAtMs]), [['a', 6000]], 'a member that left stays as a tombstone');
  const snapshot = k.takeSnapshot(7000);
  t.deepEqual(snapshot.members.map((m) => m.id), ['a', 'b']);
  t.is(snapshot.savedAtMs, 7000);
  t.false(k.dirty);
  t.true(k.apply({ type: 'alive', member: member('b', 'b:1', 2) }, 8000), 'back alive');
  t.is(k.list()[0]?.deadAtMs, undefined, 'no longer dead');
  t.true(k.apply({ type: 'reaped', member: member('a', 'a:2', 2, 'left') }, 9000));
  t.deepEqual(k.tombstones(), [], 'a reaped tombstone is gone');
  t.true(k.apply({ type: 'alive', member: member('a', 'a:2', 3) }, 9500));
  t.true(k.forget('a', 9600), "an operator's removal makes a tombstone");
  t.false(k.forget('a', 9700));
  t.deepEqual(k.ids(), ['b']);
  t.true(k.apply({ type: 'alive', member: member('a', 'a:2', 4) }, 9800), 'a restart after its removal brings it back');
  t.deepEqual(k.ids().sort(), ['a', 'b']);
});

test('known members read back say since when each is down: its death, or when the file was written', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-known-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const k = new KnownMembers('me');
  const member = (id: string, state: 'alive' | 'dead') => ({ id, gossip: `${id}:1`, rpc: `${id}:2`, state, incarnation: 4 });
  k.apply({ type: 'alive', member: member('a', 'alive') }, 1_000);
  k.apply({ type: 'dead', member: member('b', 'dead'), deadForMs: 500 }, 2_000);
  await writeJsonDurably(dir, KNOWN_MEMBERS_FILE, k.takeSnapshot(9_000));
  const read = await readKnownMembers(dir);
  t.deepEqual(read, [
    { id: 'a', gossip: 'a:1', rpc: 'a:2', incarnation: 4, downSinceMs: 9_000 },
    { id: 'b', gossip: 'b:1', rpc: 'b:2', incarnation: 4, deadAtMs: 1_500, downSinceMs: 1_500 },
  ]);
  // A held-down member (the core holds it one below its persisted incarnation) keeps the persisted one.
  const again = new KnownMembers('me', read);
  again.apply({ type: 'dead', member: { ...member('a', 'dead'), incarnation: 3 }, deadForMs: 100 }, 10_000);
  t.is(again.list().find((m) => m.id === 'a')?.incarnation, 4);
  t.is(again.list().find((m) => m.id === 'a')?.deadAtMs, 9_900);
  t.false('downSinceMs' in (again.list()[0] ?? {}), 'the read-only field is not written back');
});
