import test from 'ava';
import { mulberry32 } from '../../src/membership/sim/random.js';
import { SimDisk, type SimDiskOptions, type SimFs } from '../../src/sim/disk.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import { fsyncDir, writeFully } from '../../src/storage/fsio.js';
import { advance, drive } from './drive.js';

function world(seed = 1, options: SimDiskOptions = {}) {
  const sched = new SimScheduler(seed);
  const disk = new SimDisk({ random: mulberry32(seed), ...options });
  const fs = disk.process(sched.clock());
  const run = <T>(p: Promise<T>): Promise<T> => drive(sched, p);
  return { sched, disk, fs, run };
}

async function writeFile(run: <T>(p: Promise<T>) => Promise<T>, fs: SimFs, p: string, data: string, sync: boolean): Promise<void> {
  const fd = await run(fs.open(p, 'w'));
  const buf = Buffer.from(data);
  await run(writeFully(fs, fd, buf, 0, buf.length, 0));
  if (sync) await run(fs.fdatasync(fd));
  await run(fs.close(fd));
}

const text = (m: Map<string, Buffer>, p: string): string | undefined => m.get(p)?.toString();

test('a new file needs both its fdatasync and its directory fsync to survive a crash', async (t) => {
  for (const [dataSync, dirSync, expected] of [
    [false, false, undefined],
    [true, false, undefined],
    [false, true, ''],
    [true, true, 'hello'],
  ] as const) {
    const { sched, disk, fs, run } = world(1, { tornWrites: false });
    await run(fs.mkdir('/d'));
    await writeFile(run, fs, '/d/f', 'hello', dataSync);
    if (dirSync) await run(fsyncDir(fs, '/d'));
    t.is(text(disk.files('volatile'), '/d/f'), 'hello', 'reads see the page cache');
    disk.crash();
    const after = disk.process(sched.clock());
    const label = `fdatasync ${dataSync}, dir fsync ${dirSync}`;
    t.is(text(disk.files('volatile'), '/d/f'), expected, label);
    if (expected === undefined) {
      const err = await t.throwsAsync(run(after.readFile('/d/f')));
      t.is((err as NodeJS.ErrnoException).code, 'ENOENT', label);
    } else {
      t.is((await run(after.readFile('/d/f'))).toString(), expected, label);
    }
  }
});

test('rename and unlink are durable only once the directory is fsynced', async (t) => {
  const { sched, disk, fs, run } = world();
  await run(fs.mkdir('/d'));
  await writeFile(run, fs, '/d/a', 'A', true);
  await writeFile(run, fs, '/d/old', 'O', true);
  await run(fsyncDir(fs, '/d'));
  await run(fs.rename('/d/a', '/d/b'));
  await run(fs.unlink('/d/old'));
  t.deepEqual([...disk.files('volatile').keys()], ['/d/b']);
  t.deepEqual([...disk.files('durable').keys()], ['/d/a', '/d/old']);
  disk.crash();
  t.deepEqual([...disk.files('volatile').keys()], ['/d/a', '/d/old'], 'the crash undid the rename and the unlink');

  const fs2 = disk.process(sched.clock());
  await run(fs2.rename('/d/a', '/d/b'));
  await run(fs2.unlink('/d/old'));
  await run(fsyncDir(fs2, '/d'));
  disk.crash();
  t.deepEqual([...disk.files('volatile').keys()], ['/d/b']);
  t.is(text(disk.files('volatile'), '/d/b'), 'A', 'the data moved with the name');
});

test('an overwrite not fsynced reverts to the durable content; an fsynced one survives', async (t) => {
  const { sched, disk, fs, run } = world(3, { tornWrites: false });
  await run(fs.mkdir('/d'));
  await writeFile(run, fs, '/d/f', 'first', true);
  await run(fsyncDir(fs, '/d'));
  const fd = await run(fs.open('/d/f', 'r+'));
  await run(fs.write(fd, Buffer.from('XY'), 0, 2, 1));
  await run(fs.write(fd, Buffer.from('++'), 0, 2, 5));
  t.is(text(disk.files('volatile'), '/d/f'), 'fXYst++');
  t.is(text(disk.files('durable'), '/d/f'), 'first');
  disk.crash();
  t.is(text(disk.files('volatile'), '/d/f'), 'first');
  const fs2 = disk.process(sched.clock());
  const fd2 = await run(fs2.open('/d/f', 'r+'));
  await run(fs2.ftruncate(fd2, 3));
  await run(fs2.fdatasync(fd2));
  disk.crash();
  t.is(text(disk.files('volatile'), '/d/f'), 'fir');
});

test('torn writes: after a crash the unsynced appends survive as an in-order prefix, the last possibly cut, never a hole', async (t) => {
  const outcomes = new Set<string>();
  for (let seed = 1; seed <= 60; seed++) {
    const { disk, fs, run } = world(seed);
    await run(fs.mkdir('/d'));
    const fd = await run(fs.open('/d/wal', 'w'));
    await run(fsyncDir(fs, '/d'));
    await run(fs.write(fd, Buffer.from('AAAA'), 0, 4, 0));
    await run(fs.fdatasync(fd));
    await run(fs.write(fd, Buffer.from('BBBBBBBB'), 0, 8, 4)); // unsynced
    disk.crash();
    const after = text(disk.files('volatile'), '/d/wal') as string;
    t.true(after.startsWith('AAAA'), `seed ${seed}: the synced part is intact (${after})`);
    t.regex(after, /^AAAAB{0,8}$/, `seed ${seed}: only a prefix of the unsynced write`);
    outcomes.add(after.length === 4 ? 'none' : after.length === 12 ? 'whole' : 'torn');
  }
  t.deepEqual([...outcomes].sort(), ['none', 'torn', 'whole'], 'the seed decides; every case happens');

  // A rewrite in the middle, not an append: the bytes that survive are the new ones or the old ones.
  for (let seed = 1; seed <= 20; seed++) {
    const { disk, fs, run } = world(seed);
    await run(fs.mkdir('/d'));
    await writeFile(run, fs, '/d/f', '0123456789', true);
    await run(fsyncDir(fs, '/d'));
    const fd = await run(fs.open('/d/f', 'r+'));
    await run(fs.write(fd, Buffer.from('abcd'), 0, 4, 3));
    disk.crash();
    t.regex(text(disk.files('volatile'), '/d/f') as string, /^012(abcd|abc6|ab56|a456|3456)789$/, `seed ${seed}`);
  }
});

test('the same seed gives the same disk after the same crashes', async (t) => {
  const play = async (seed: number) => {
    const { sched, disk, fs, run } = world(seed);
    await run(fs.mkdir('/d'));
    let cur = fs;
    for (let round = 0; round < 5; round++) {
      const fd = await run(cur.open(`/d/f${round}`, 'w'));
      await run(fsyncDir(cur, '/d'));
      for (let i = 0; i < 5; i++) {
        const b = Buffer.alloc(7 + i, 65 + i);
        await run(cur.write(fd, b, 0, b.length, i * 20));
        if (i === 2) await run(cur.fdatasync(fd));
      }
      disk.crash();
      cur = disk.process(sched.clock());
    }
    return [...disk.files('volatile')].map(([p, b]) => `${p}:${b.toString('hex')}`);
  };
  t.deepEqual(await play(11), await play(11));
  const seeds = new Set<string>();
  for (let s = 1; s <= 8; s++) seeds.add(JSON.stringify(await play(s)));
  t.true(seeds.size > 1, 'different seeds tear differently');
});

test('ENOSPC: a write past the capacity is short, the next fails with ENOSPC; deleting makes room', async (t) => {
  const { disk, fs, run } = world(1, { capacityBytes: 100 });
  await run(fs.mkdir('/d'));
  const fd = await run(fs.open('/d/a', 'w'));
  t.is(await run(fs.write(fd, Buffer.alloc(80, 1), 0, 80, 0)), 80);
  t.is(await run(fs.write(fd, Buffer.alloc(40, 2), 0, 40, 80)), 20, 'short write: what fits');
  const err = await t.throwsAsync(run(fs.write(fd, Buffer.alloc(1), 0, 1, 100)));
  t.is((err as NodeJS.ErrnoException).code, 'ENOSPC');
  t.regex(err?.message ?? '', /^ENOSPC: no space left on device, write '\/d\/a'$/);
  t.is(disk.usedBytes, 100);
  t.is(await run(fs.write(fd, Buffer.alloc(10, 3), 0, 10, 0)), 10, 'an overwrite needs no room');
  const full = await t.throwsAsync(run(writeFully(fs, fd, Buffer.alloc(5), 0, 5, 100)));
  t.is((full as NodeJS.ErrnoException).code, 'ENOSPC');
  await run(fs.close(fd));
  await run(fs.unlink('/d/a'));
  t.is(disk.usedBytes, 0);
  const fd2 = await run(fs.open('/d/b', 'w'));
  t.is(await run(fs.write(fd2, Buffer.alloc(60), 0, 60, 0)), 60);
  // An unlinked file still open keeps its space until it is closed.
  await run(fs.unlink('/d/b'));
  t.is(disk.usedBytes, 60);
  await run(fs.close(fd2));
  t.is(disk.usedBytes, 0);
});

test('EIO on demand: failNext fails one matching operation; the fault predicate every one it names', async (t) => {
  const { disk, fs, run } = world();
  await run(fs.mkdir('/d'));
  await run(fs.mkdir('/e'));
  const fd = await run(fs.open('/d/a', 'w'));
  disk.failNext('fdatasync', '/d/', 'EIO');
  const e1 = await t.throwsAsync(run(fs.fdatasync(fd)));
  t.is((e1 as NodeJS.ErrnoException).code, 'EIO');
  await t.notThrowsAsync(run(fs.fdatasync(fd)), 'once only');
  disk.failNext('write', '/e/', 'EIO');
  t.is(await run(fs.write(fd, Buffer.from('x'), 0, 1, 0)), 1, 'another path prefix is not affected');
  disk.fault = (op, p) => (op === 'rename' && p.endsWith('.tmp') ? 'EIO' : null);
  const e2 = await t.throwsAsync(run(fs.rename('/d/a.tmp', '/d/b')));
  t.is((e2 as NodeJS.ErrnoException).code, 'EIO');
  await t.notThrowsAsync(run(fs.rename('/d/a', '/d/b')));
  disk.fault = (op) => (op === 'open' ? 'EIO' : null);
  t.is(((await t.throwsAsync(run(fs.open('/d/c', 'w')))) as NodeJS.ErrnoException).code, 'EIO');
  t.is(disk.stats.faults, 3);
});

test('errors carry node codes: ENOENT, EEXIST, ENOTDIR, EISDIR, EBADF', async (t) => {
  const { fs, run } = world();
  const code = async (p: Promise<unknown>) => ((await t.throwsAsync(run(p))) as NodeJS.ErrnoException).code;
  t.is(await code(fs.open('/nope/f', 'w')), 'ENOENT');
  t.is(await code(fs.open('/f', 'r')), 'ENOENT');
  await run(fs.mkdir('/a/b/c'));
  t.deepEqual(await run(fs.readdir('/a')), ['b']);
  const fd = await run(fs.open('/a/f', 'wx'));
  t.is(await code(fs.open('/a/f', 'wx')), 'EEXIST');
  t.is(await code(fs.open('/a/f/g', 'w')), 'ENOTDIR');
  t.is(await code(fs.readdir('/a/f')), 'ENOTDIR');
  t.is(await code(fs.open('/a/b', 'w')), 'EISDIR');
  t.is(await code(fs.readFile('/a/b')), 'EISDIR');
  t.is(await code(fs.link('/a/f', '/a/b')), 'EEXIST');
  t.is(await code(fs.read(fd, Buffer.alloc(1), 0, 1, 0)), 'EBADF', 'opened write-only');
  await run(fs.close(fd));
  t.is(await code(fs.write(fd, Buffer.alloc(1), 0, 1, 0)), 'EBADF');
  t.is(await code(fs.close(fd)), 'EBADF');
  await t.notThrowsAsync(run(fs.unlink('/a/missing')), 'unlink of a missing file is not an error');
  t.deepEqual(await run(fs.stat('/a/b')), { size: 0, isDirectory: true });
  await run(fs.link('/a/f', '/a/g'));
  t.deepEqual(await run(fs.readdir('/a')), ['b', 'f', 'g']);
  await run(fs.rmRecursive('/a/b'));
  t.deepEqual(await run(fs.readdir('/a')), ['f', 'g']);
});

test('operations complete on the clock: fdatasync after its latency; a dead incarnation never settles again', async (t) => {
  const { sched, disk, fs, run } = world(1, { fsyncLatencyMs: 5 });
  await run(fs.mkdir('/d'));
  const fd = await run(fs.open('/d/f', 'w'));
  const t0 = sched.timeMs;
  await run(fs.fdatasync(fd));
  t.is(sched.timeMs - t0, 5);

  // A crash while an fdatasync is in flight: it never settles, and the write before it is not durable.
  await run(fsyncDir(fs, '/d'));
  await run(fs.write(fd, Buffer.from('lost'), 0, 4, 0));
  let settled = false;
  fs.fdatasync(fd).then(
    () => (settled = true),
    () => (settled = true),
  );
  await advance(sched, 2);
  disk.crash();
  await advance(sched, 100);
  t.false(settled, 'the in-flight fdatasync of the dead process never settles');
  t.true(fs.dead);
  let late = false;
  fs.write(fd, Buffer.from('zombie'), 0, 6, 0).then(
    () => (late = true),
    () => (late = true),
  );
  await advance(sched, 100);
  t.false(late, 'a dead incarnation cannot write');
  t.is(text(disk.files('volatile'), '/d/f')?.includes('zombie'), false);

  // A process crash (kill -9) without power loss: the page cache stays.
  const fs2 = disk.process(sched.clock());
  const fd2 = await run(fs2.open('/d/g', 'w'));
  await run(fs2.write(fd2, Buffer.from('cached'), 0, 6, 0));
  fs2.kill();
  const fs3 = disk.process(sched.clock());
  t.is((await run(fs3.readFile('/d/g'))).toString(), 'cached');
});

test('wipe removes a data dir durably; mkdir is durable at once', async (t) => {
  const { sched, disk, fs, run } = world();
  await run(fs.mkdir('/data/n1/hints'));
  await writeFile(run, fs, '/data/n1/x', 'x', true);
  await run(fsyncDir(fs, '/data/n1'));
  disk.crash();
  const fs2 = disk.process(sched.clock());
  t.deepEqual(await run(fs2.readdir('/data/n1')), ['hints', 'x']);
  disk.wipe('/data/n1');
  disk.crash();
  t.deepEqual(await run(disk.process(sched.clock()).readdir('/data')), []);
});
