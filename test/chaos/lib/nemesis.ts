/**
 * The nemesis executor: plays a schedule (schedule.ts) against a ChaosCluster, one fault at a time,
 * logging each fault's start and end in the history. `healAll` undoes whatever is in force (rules
 * flushed, paused nodes continued, stopped members restarted); run.ts calls it before convergence
 * and on every abort.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, truncateSync, writeSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { ChaosCluster } from './cluster.js';
import type { FaultKind, HistoryWriter } from './history.js';
import type { Firewall } from './nft.js';
import { prng, type ScheduleStep } from './schedule.js';

export interface NemesisOptions {
  cluster: ChaosCluster;
  firewall: Firewall | null;
  history: HistoryWriter;
  seed: number;
  log?: (line: string) => void;
}

/** Sleeps `ms`, or less when `signal` aborts; leaves no listener behind. */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Every WAL segment under a data dir (any depth), newest (highest sequence) last. */
export function walSegments(dir: string, depth = 3): string[] {
  const out: string[] = [];
  const walk = (d: string, left: number) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      if (/^wal-\d+\.log$/.test(name)) out.push(p);
      else if (left > 0 && statSync(p, { throwIfNoEntry: false })?.isDirectory()) walk(p, left - 1);
    }
  };
  walk(dir, depth);
  return out.sort((a, b) => (a.split('/').pop() as string).localeCompare(b.split('/').pop() as string));
}

/** Cuts 1..`bytesMax` bytes off the newest non-empty WAL segment (a torn tail). */
export function truncateWalTail(dir: string, rand: () => number, bytesMax = 256): string {
  const segments = walSegments(dir).filter((p) => statSync(p).size > 0);
  const file = segments[segments.length - 1];
  if (file === undefined) return `no WAL segment with data under ${dir}`;
  const size = statSync(file).size;
  const cut = Math.min(size, 1 + Math.floor(rand() * bytesMax));
  truncateSync(file, size - cut);
  return `cut ${cut} of ${size} bytes off ${file}`;
}

export class Nemesis {
  private members: string[];
  private readonly o: NemesisOptions;
  private readonly rand: () => number;
  private readonly log: (line: string) => void;
  private readonly paused = new Set<string>();
  private readonly left = new Set<string>();
  /** Nodes whose data dir is on a full tmpfs right now (healAll moves them back). */
  private readonly full = new Set<string>();

  constructor(options: NemesisOptions) {
    this.o = options;
    this.members = [...options.cluster.initial];
    this.rand = prng(options.seed ^ 0x7e57);
    this.log = options.log ?? (() => {});
  }

  /** Nodes that are members right now (clients address them, down or not). */
  currentMembers(): string[] {
    return [...this.members];
  }

  private ips(ids: readonly string[]): string[] {
    return ids.map((id) => this.o.cluster.node(id).ip);
  }

  private mark(type: 'start' | 'end', fault: FaultKind, targets: string[], detail?: string): void {
    this.o.history.append({ kind: 'fault', type, atMs: Date.now(), fault, targets, ...(detail === undefined ? {} : { detail }) });
    this.log(`${type === 'start' ? 'fault' : 'healed'} ${fault} ${targets.join(',')}${detail ? ` (${detail})` : ''}`);
  }

  private firewall(): Firewall {
    if (this.o.firewall === null) throw new Error('partition scheduled without nftables');
    return this.o.firewall;
  }

  /** Plays the steps at their offsets from `startMs`; stops early when `signal` aborts. */
  async run(steps: readonly ScheduleStep[], startMs: number, signal?: AbortSignal): Promise<void> {
    for (const step of steps) {
      await sleep(startMs + step.atMs - Date.now(), signal);
      if (signal?.aborted) return;
      await this.apply(step, signal);
    }
  }

  private async apply(step: ScheduleStep, signal?: AbortSignal): Promise<void> {
    const { cluster } = this.o;
    const [target] = step.targets;
    const others = (ids: readonly string[]) => this.members.filter((m) => !ids.includes(m));
    switch (step.fault) {
      case 'kill-one':
      case 'wal-truncate': {
        this.mark('start', step.fault, step.targets);
        await cluster.kill(target);
        await sleep(step.durationMs, signal);
        const detail = step.fault === 'wal-truncate' ? truncateWalTail(cluster.node(target).dataDir, this.rand) : undefined;
        if (detail !== undefined) this.log(detail);
        await cluster.start(target);
        this.mark('end', step.fault, step.targets, detail);
        return;
      }
      case 'disk-full': {
        // The node's data dir moves onto a small tmpfs, the node restarts on it, then the rest of the
        // tmpfs is filled: its writes fail with ENOSPC (the store turns read-only, reads go on). Heal:
        // the node is stopped, its data moved back to the real disk, and restarted.
        this.mark('start', step.fault, step.targets);
        const dir = cluster.node(target).dataDir;
        await cluster.kill(target);
        const detail = fillDataDir(dir);
        this.full.add(target);
        await cluster.start(target);
        fillRest(dir);
        await sleep(step.durationMs, signal);
        await cluster.kill(target);
        emptyDataDir(dir);
        this.full.delete(target);
        await cluster.start(target);
        this.mark('end', step.fault, step.targets, detail);
        return;
      }
      case 'kill-all': {
        this.mark('start', step.fault, step.targets);
        await Promise.all(step.targets.map((id) => cluster.kill(id)));
        await sleep(step.durationMs, signal);
        await Promise.all(step.targets.map((id) => cluster.start(id)));
        this.mark('end', step.fault, step.targets);
        return;
      }
      case 'pause-one': {
        this.mark('start', step.fault, step.targets);
        cluster.stop(target);
        this.paused.add(target);
        await sleep(step.durationMs, signal);
        cluster.cont(target);
        this.paused.delete(target);
        this.mark('end', step.fault, step.targets);
        return;
      }
      case 'seed-restart': {
        // A graceful stop of a seed (it announces its leave), then the same command again: it must
        // rejoin the cluster through the members it knew, not serve as a cluster of its own.
        this.mark('start', step.fault, step.targets);
        const graceful = await cluster.terminate(target, 10_000);
        await sleep(step.durationMs, signal);
        await cluster.start(target);
        this.mark('end', step.fault, step.targets, graceful ? 'stopped gracefully, restarted' : 'needed SIGKILL after SIGTERM; restarted');
        return;
      }
      case 'partition-one':
      case 'partition-split':
      case 'partition-long':
      case 'partition-oneway': {
        const fw = this.firewall();
        this.mark('start', step.fault, step.targets);
        if (step.fault === 'partition-one') fw.isolate(this.ips(step.targets)[0], this.ips(others(step.targets)));
        else if (step.fault === 'partition-split' || step.fault === 'partition-long') fw.split(this.ips(step.targets), this.ips(others(step.targets)));
        else fw.oneWay(this.ips(step.targets)[0], this.ips(others(step.targets)));
        await sleep(step.durationMs, signal);
        fw.heal();
        this.mark('end', step.fault, step.targets);
        return;
      }
      case 'join': {
        this.mark('start', step.fault, step.targets);
        await cluster.start(target);
        this.members.push(target);
        await sleep(step.durationMs, signal);
        this.mark('end', step.fault, step.targets);
        return;
      }
      case 'leave':
      case 'leave-rejoin': {
        this.mark('start', step.fault, step.targets);
        this.members = this.members.filter((m) => m !== target);
        this.left.add(target);
        cluster.expectExit(target);
        const client = cluster.probeClient(target, 15_000);
        let detail = 'left';
        try {
          await client.leave();
        } catch (err) {
          detail = `leave failed: ${(err as Error).message}`;
        } finally {
          await client.close();
        }
        // `shoal leave` ends the agent by itself (exit 0).
        if (!(await cluster.waitExit(target, 10_000))) detail += '; did not exit by itself';
        if (cluster.isRunning(target) && !(await cluster.terminate(target, 10_000))) detail += '; needed SIGKILL after SIGTERM';
        await sleep(step.durationMs, signal);
        if (step.fault === 'leave-rejoin') {
          // The same node, same data dir, started again: it rejoins at a higher incarnation.
          await cluster.start(target);
          this.left.delete(target);
          this.members.push(target);
          detail += '; rejoined';
        }
        this.mark('end', step.fault, step.targets, detail);
        return;
      }
    }
  }

  /** Undoes every fault in force and restarts members that are down. */
  async healAll(): Promise<void> {
    this.o.firewall?.heal();
    for (const id of this.full) {
      await this.o.cluster.kill(id);
      emptyDataDir(this.o.cluster.node(id).dataDir);
    }
    this.full.clear();
    for (const id of this.paused) this.o.cluster.cont(id);
    this.paused.clear();
    // All at once: a restarted node may wait for another member it knew before it serves.
    await Promise.all(this.members.filter((id) => !this.o.cluster.isRunning(id)).map((id) => this.o.cluster.start(id)));
  }
}

/** Headroom left on the tmpfs for the restart (lock file, a WAL segment header, logs of the open). */
const DISK_FULL_HEADROOM_BYTES = 2 * 1024 * 1024;
const FILLER = 'disk-filler';

function duBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const st = statSync(join(dir, name), { throwIfNoEntry: false });
    if (st === undefined) continue;
    total += st.isDirectory() ? duBytes(join(dir, name)) : st.size;
  }
  return total;
}

/** Null when a tmpfs can be mounted (root, a kernel that allows it), else why not. */
export function diskFullUnavailable(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root: mounting a tmpfs needs root';
  const dir = `/tmp/shoal-chaos-tmpfs-probe-${process.pid}`;
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=65536', 'tmpfs', dir], { stdio: 'pipe', timeout: 10_000 });
    execFileSync('umount', [dir], { stdio: 'pipe', timeout: 10_000 });
    return null;
  } catch (err) {
    return `mount -t tmpfs failed: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Moves `dir`'s contents onto a tmpfs mounted on `dir`, sized to them plus a little headroom. */
function fillDataDir(dir: string): string {
  const hold = `${dir}.on-disk`;
  renameSync(dir, hold);
  mkdirSync(dir);
  const bytes = duBytes(hold);
  const size = Math.ceil((bytes * 1.1 + DISK_FULL_HEADROOM_BYTES) / 4096) * 4096;
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe', timeout: 10_000 });
  cpSync(hold, dir, { recursive: true });
  return `data dir (${bytes} bytes) on a tmpfs of ${size} bytes, then filled`;
}

/** Fills what is left of the tmpfs. */
function fillRest(dir: string): void {
  const fd = openSync(join(dir, FILLER), 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (let i = 0; i < 1 << 16; i++) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  // Fill the last partial chunk too.
  try {
    const small = openSync(join(dir, `${FILLER}-2`), 'w');
    try {
      for (let i = 0; i < 1 << 16; i++) writeSync(small, Buffer.alloc(512));
    } finally {
      closeSync(small);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
}

/** Moves the data (without the filler) back to the real disk and unmounts the tmpfs. */
function emptyDataDir(dir: string): void {
  const hold = `${dir}.on-disk`;
  rmSync(join(dir, FILLER), { force: true });
  rmSync(join(dir, `${FILLER}-2`), { force: true });
  rmSync(hold, { recursive: true, force: true });
  cpSync(dir, hold, { recursive: true });
  try {
    execFileSync('umount', [dir], { stdio: 'pipe', timeout: 10_000 });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe', timeout: 10_000 });
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(hold, dir);
}
