/**
 * The hint store's durability order and its behaviour on a full disk, through its file-I/O seam.
 */
import test from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackgroundTasks } from '../../src/background.js';
import { Handoff } from '../../src/cluster/handoff.js';
import { HintStore } from '../../src/cluster/hints.js';
import type { Transport } from '../../src/cluster/ports.js';
import type { ClusterView } from '../../src/cluster/view.js';
import { ShoalError } from '../../src/errors.js';
import { nullLogger } from '../../src/log.js';
import type { Entry } from '../../src/storage/types.js';
import { opIndex, recordingIo } from '../storage/helpers.js';

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-hints-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function entry(i: number): Entry {
  return { ts: 1000 + i, node: 'n1', value: Buffer.alloc(100 + i, i) };
}

test('compaction: the kept hints are fsynced, renamed and the directory fsynced before the sealed segments are deleted', async (t) => {
  await withDir(async (dir) => {
    const io = recordingIo(dir);
    const store = await HintStore.open(dir, { io, fsync: true });
    for (let i = 0; i < 20; i++) await store.add('n2', `k${i}`, entry(i));
    const sealed = (await readdir(dir)).filter((n) => n.endsWith('.hint'));
    t.true(sealed.length >= 1);
    io.ops.length = 0;
    let sent = 0;
    const r = await store.replay('n2', async () => {
      if (++sent > 5) throw new ShoalError('UNAVAILABLE', 'gone again');
    }, { maxPerSec: 1e6 });
    t.true(r.sent >= 5 && r.sent < 20);
    t.is(store.pendingFor('n2'), 20 - r.sent);
    const ops = io.ops;
    const tmp = opIndex(ops, /^open .*\.hint\.tmp$/);
    const fileSync = opIndex(ops, /^fdatasync .*\.hint\.tmp$/, tmp);
    const renamed = opIndex(ops, /^rename .*\.hint\.tmp .*\.hint$/, fileSync);
    const dirSync = opIndex(ops, /^fdatasync DIR$/, renamed);
    const firstDelete = opIndex(ops, /^unlink /);
    t.true(tmp >= 0 && fileSync > tmp && renamed > fileSync, ops.join('\n'));
    t.true(dirSync > renamed, `the directory is fsynced after the rename:\n${ops.join('\n')}`);
    t.true(firstDelete > dirSync, `sources are deleted only after the rename is durable:\n${ops.join('\n')}`);
    for (const name of sealed) t.true(ops.includes(`unlink ${name}`));
    await store.close();
    const again = await HintStore.open(dir, { fsync: true });
    t.is(again.pendingFor('n2'), 20 - r.sent, 'the kept hints survive a reopen');
    await again.close();
  });
});

test('replay on a full disk: keeping the unsent hints fails, the replay rejects (no unhandled rejection) and no hint is lost', async (t) => {
  await withDir(async (dir) => {
    const io = recordingIo(dir);
    const store = await HintStore.open(dir, { io, fsync: true });
    for (let i = 0; i < 30; i++) await store.add('n2', `k${i}`, entry(i));
    io.failWrites = true; // the disk is full from now on
    let sent = 0;
    const err = await t.throwsAsync(
      store.replay('n2', async () => {
        if (++sent > 3) throw new ShoalError('UNAVAILABLE', 'gone again');
      }, { maxPerSec: 1e6 }),
    );
    t.regex(err?.message ?? '', /ENOSPC/);
    t.true(store.pendingFor('n2') >= 27, `hints not acknowledged are still pending (${store.pendingFor('n2')})`);
    io.failWrites = false;
    const got = new Set<string>();
    const r = await store.replay('n2', async (key) => void got.add(key), { maxPerSec: 1e6 });
    t.is(r.failed, 0);
    for (let i = 4; i < 30; i++) t.true(got.has(`k${i}`), `k${i} replayed once the disk has room`);
    t.is(store.pendingFor('n2'), 0);
    await store.close();
  });
});

test('a hint replay that fails on a full disk is caught by the background helper, logged and counted', async (t) => {
  await withDir(async (dir) => {
    const io = recordingIo(dir);
    const hints = await HintStore.open(dir, { io, fsync: true });
    for (let i = 0; i < 10; i++) await hints.add('n2', `k${i}`, entry(i));
    io.failWrites = true;
    const warnings: string[] = [];
    const logger = { ...nullLogger, warn: (m: string) => void warnings.push(m), child: () => logger };
    const tasks = new BackgroundTasks({ logger });
    let calls = 0;
    const transport: Transport = {
      async call() {
        if (++calls > 2) throw new ShoalError('READ_ONLY', 'disk full (ENOSPC)');
        return {};
      },
    };
    const view = { selfId: 'n1', isAlive: () => true, isUp: () => true, ring: () => ({ members: () => ['n1', 'n2'] }) } as unknown as ClusterView;
    const handoff = new Handoff({ hints, view, transport, intervalMs: 0, perSecMax: 1e6, timeoutMs: 100, logger, tasks });
    handoff.runInBackground();
    await tasks.idle();
    // The failure was logged by Handoff's own handler; nothing escaped as an unhandled rejection.
    t.true(warnings.some((w) => w.includes('hint replay failed')), warnings.join('; '));
    t.is(tasks.stats().started['hint-replay'], 1);
    t.true(hints.pendingFor('n2') >= 8);
    io.failWrites = false;
    await hints.close();
  });
});
