/**
 * The members this node knows, persisted in its data dir (serf's snapshot): id, gossip address and
 * last incarnation of every member that has not left. On start the node joins through its seeds
 * *and* these, so a node whose every seed is down (or that is the seed) finds its cluster again, and
 * the cluster layer counts them when it clamps the replication factor (docs/CLUSTER.md).
 *
 * Durability order: write the temp file, fsync it, rename it over `known-members.json`, fsync the
 * directory. A crash leaves the old file or the new one, never a torn one. A file that does not parse
 * is a CORRUPT error naming it (delete it to start without known members). Every file access goes
 * through an FsIo (default node:fs), the simulator's disk in src/sim/.
 */
import path from 'node:path';
import { ShoalError } from '../errors.js';
import { type FsIo, fsyncDir, nodeFsIo, writeFileSynced } from '../storage/fsio.js';
import type { Member, MembershipEvent } from './types.js';

export const KNOWN_MEMBERS_FILE = 'known-members.json';
const FILE_VERSION = 1;
/** Members kept at most: the default membersMax (the protocol's own bound). */
export const KNOWN_MEMBERS_MAX = 16_384;

export interface KnownMember {
  id: string;
  gossip: string;
  incarnation: number;
  /** Its RPC address (absent from files written before it was kept: such a member is a join target only). */
  rpc?: string;
  /** Wall-clock ms when this node saw it die; absent while it was alive here. */
  deadAtMs?: number;
  /**
   * Wall-clock ms when it left or was removed: a tombstone, kept until it is reaped (deadReapMs), so
   * that a restarted node still knows it left and a stale file elsewhere cannot bring it back.
   * Tombstones are neither join targets nor counted (list() and ids() leave them out).
   */
  leftAtMs?: number;
  /**
   * On read only: wall-clock ms since when the member is down as far as this node knows: deadAtMs,
   * or the moment the file was written (this node last saw it alive then). Absent for older files.
   */
  downSinceMs?: number;
}

function isKnownMember(value: unknown): value is KnownMember {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.id === 'string' && v.id !== '' && typeof v.gossip === 'string' && v.gossip !== '' &&
    typeof v.incarnation === 'number' && Number.isSafeInteger(v.incarnation) && v.incarnation >= 0 &&
    (v.rpc === undefined || (typeof v.rpc === 'string' && v.rpc !== '')) &&
    (v.deadAtMs === undefined || (typeof v.deadAtMs === 'number' && Number.isFinite(v.deadAtMs))) &&
    (v.leftAtMs === undefined || (typeof v.leftAtMs === 'number' && Number.isFinite(v.leftAtMs)));
}

/** The persisted members of `dataDir` (empty when there is no file yet). */
export async function readKnownMembers(dataDir: string, io: FsIo = nodeFsIo): Promise<KnownMember[]> {
  const file = path.join(dataDir, KNOWN_MEMBERS_FILE);
  let text: string;
  try {
    text = (await io.readFile(file)).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ShoalError('CORRUPT', `${file} is not JSON; delete it to start without known members (the seeds still work)`);
  }
  const members = (parsed as { members?: unknown } | null)?.members;
  if (!Array.isArray(members) || !members.every(isKnownMember)) {
    throw new ShoalError('CORRUPT', `${file} holds no valid member list; delete it to start without known members (the seeds still work)`);
  }
  const savedAtMs = (parsed as { savedAtMs?: unknown }).savedAtMs;
  return members.slice(0, KNOWN_MEMBERS_MAX).map((m) => {
    if (m.leftAtMs !== undefined) return m;
    const downSinceMs = m.deadAtMs ?? (typeof savedAtMs === 'number' && Number.isFinite(savedAtMs) ? savedAtMs : undefined);
    return downSinceMs === undefined ? m : { ...m, downSinceMs };
  });
}

/** Writes `value` as JSON durably: temp file, fsync, rename, fsync the directory. */
export async function writeJsonDurably(dataDir: string, name: string, value: unknown, io: FsIo = nodeFsIo): Promise<void> {
  const file = path.join(dataDir, name);
  const temp = `${file}.${process.pid}.tmp`;
  await writeFileSynced(io, temp, Buffer.from(JSON.stringify(value)));
  await io.rename(temp, file);
  await fsyncDir(io, dataDir);
}

/**
 * The in-memory set, updated from membership events: every member that has not been reaped (dead
 * members stay: they may come back, and they still count for the replication factor; members that
 * left stay as tombstones, neither listed nor counted). `forget` makes one a tombstone (an
 * operator's `shoal remove`). `dirty` tells the runtime to persist.
 */
export class KnownMembers {
  private readonly byId = new Map<string, KnownMember>();
  private changed = false;

  constructor(private readonly selfId: string, initial: KnownMember[] = []) {
    for (const m of initial) {
      if (m.id === selfId) continue;
      const { downSinceMs: _, ...kept } = m;
      this.byId.set(m.id, kept);
    }
  }

  /**
   * Applies one membership event at wall-clock `nowMs`; true when the persisted set changed. A member
   * held down from this file at start keeps its persisted incarnation (the core holds it one below).
   */
  apply(event: MembershipEvent, nowMs: number): boolean {
    const m: Member = event.member;
    if (m.id === this.selfId) return false;
    if (event.type === 'reaped') {
      if (!this.byId.delete(m.id)) return false;
      this.changed = true;
      return true;
    }
    const old = this.byId.get(m.id);
    if (event.type === 'left') {
      if (old?.leftAtMs !== undefined && old.incarnation >= m.incarnation) return false;
      if (old === undefined && this.byId.size >= KNOWN_MEMBERS_MAX) return false;
      const tombstone: KnownMember = { id: m.id, gossip: m.gossip, incarnation: Math.max(m.incarnation, old?.incarnation ?? 0), leftAtMs: nowMs };
      if (m.rpc !== '') tombstone.rpc = m.rpc;
      this.byId.set(m.id, tombstone);
      this.changed = true;
      return true;
    }
    const deadAtMs = event.type === 'dead' ? nowMs - (event.deadForMs ?? 0) : m.state === 'dead' ? old?.deadAtMs : undefined;
    const incarnation = event.type === 'dead' && old !== undefined && old.gossip === m.gossip ? Math.max(old.incarnation, m.incarnation) : m.incarnation;
    if (old !== undefined && old.gossip === m.gossip && old.incarnation === incarnation && old.rpc === m.rpc &&
      (old.deadAtMs === undefined) === (deadAtMs === undefined) && old.leftAtMs === undefined) return false;
    if (old === undefined && this.byId.size >= KNOWN_MEMBERS_MAX) return false;
    const next: KnownMember = { id: m.id, gossip: m.gossip, incarnation, rpc: m.rpc };
    if (deadAtMs !== undefined) next.deadAtMs = deadAtMs;
    this.byId.set(m.id, next);
    this.changed = true;
    return true;
  }

  /** An operator's removal at wall-clock `nowMs`: the member becomes a tombstone. */
  forget(id: string, nowMs: number): boolean {
    const old = this.byId.get(id);
    if (old === undefined || old.leftAtMs !== undefined) return false;
    const { deadAtMs: _, ...rest } = old;
    this.byId.set(id, { ...rest, leftAtMs: nowMs });
    this.changed = true;
    return true;
  }

  /** The members that have not left: join targets, counted for the replication factor. */
  list(): KnownMember[] {
    return [...this.byId.values()].filter((m) => m.leftAtMs === undefined).map((m) => ({ ...m }));
  }

  ids(): string[] {
    return this.list().map((m) => m.id);
  }

  /** Members that left (or were removed) and are not reaped yet. */
  tombstones(): KnownMember[] {
    return [...this.byId.values()].filter((m) => m.leftAtMs !== undefined).map((m) => ({ ...m }));
  }

  get dirty(): boolean {
    return this.changed;
  }

  /** The file's content at wall-clock `nowMs` (members alive here were last seen then); clears `dirty`. */
  takeSnapshot(nowMs: number): { v: number; savedAtMs: number; members: KnownMember[] } {
    this.changed = false;
    return { v: FILE_VERSION, savedAtMs: nowMs, members: [...this.byId.values()].map((m) => ({ ...m })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
  }
}
