/**
 * The SWIM + Lifeguard state machine, free of I/O: time comes in as `now` (ms), randomness as an
 * injected generator, and every input returns what to send (datagrams, push-pull syncs) and the
 * membership events it caused. The runtime (membership.ts) runs it over UDP; the simulator runs
 * thousands of them on a virtual clock. Call `tick(now)` at `nextDeadlineMs()` or sooner.
 */
import assert from 'node:assert/strict';
import { xxh64 } from '@node-rs/xxhash';
import { ShoalError } from '../errors.js';
import { mutant } from '../mutations.js';
import { Awareness } from './awareness.js';
import { MemberDirectory, sameTags } from './directory.js';
import { BroadcastQueue, retransmitLimit } from './broadcasts.js';
import { type MembershipConfig, resolveMembershipConfig } from './config.js';
import {
  type AliveMessage, type DeadMessage, type DropReason, type GossipMessage, type LeftMessage, type Message,
  type Packet, type SuspectMessage, type SyncState, type WireMember,
  PACKET_OVERHEAD_BYTES, WIRE_VERSION, decodePacket, memberMeta, messageBytes, metaBytes,
} from './messages.js';
import { Suspicion, expectedConfirmations, suspicionTimeouts } from './suspicion.js';
import type { Member, MembershipEvent } from './types.js';

export interface CoreSelf {
  id: string;
  gossip: string;
  rpc: string;
  zone?: string;
  tags?: Record<string, string>;
  /** Starting incarnation: the persisted one + 1 after a restart, so old news about us is refuted. */
  incarnation?: number;
}

export interface CoreOptions {
  self: CoreSelf;
  config?: Partial<MembershipConfig>;
  /** Uniform in [0, 1): Math.random-like; seeded in the simulator, crypto-backed in the runtime. */
  random: () => number;
  /**
   * Interned ids and metadata shared by many cores in one process (the simulator: n cores then hold
   * each id and address once, not n times). Default: a private one, compacted as members are reaped.
   */
  directory?: MemberDirectory;
}

export interface OutPacket {
  to: string;
  packet: Packet;
  /** Encoded size (exact): the budget is enforced on it. */
  bytes: number;
}

export interface SyncRequest {
  to: string;
  state: SyncState;
  join: boolean;
}

export interface CoreOutput {
  packets: OutPacket[];
  syncs: SyncRequest[];
  /** memberlist's TCP fallback: ping over the stream transport while the indirect probes run. */
  streamPings: StreamPing[];
  events: MembershipEvent[];
}

export interface StreamPing {
  to: string;
  /** The id we mean to reach; answer with `streamAck(now, seq)` when it acks. */
  target: string;
  seq: number;
}

export interface CoreStats {
  packetsSent: number;
  bytesSent: number;
  packetsReceived: number;
  messagesReceived: number;
  dropped: Record<DropReason | 'wrong-target' | 'members-full' | 'relays-full', number>;
  probes: number;
  probesFailed: number;
  /** Probes saved by the TCP fallback after UDP failed. */
  streamAcks: number;
  suspicionsRaised: number;
  refutations: number;
  /** Accusations about an incarnation we had already refuted, answered by announcing ours again. */
  reannouncements: number;
  /** Syncs started because a member we held dead sent us datagrams. */
  deadSyncs: number;
  syncsSent: number;
  syncsReceived: number;
  broadcastsQueued: number;
  broadcastsDropped: number;
  awareness: number;
  incarnation: number;
  members: Record<Member['state'], number>;
}

/** Member states as stored in the state array; 0 means "not known". */
const UNKNOWN = 0;
const ALIVE = 1;
const SUSPECT = 2;
const DEAD = 3;
const LEFT = 4;
const STATE_NAMES: readonly (Member['state'] | undefined)[] = [undefined, 'alive', 'suspect', 'dead', 'left'];

/** A growable list of int32 (member indexes): 4 bytes an entry, where a JS array of numbers takes 8. */
class IntList {
  data = new Int32Array(16);
  length = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length] = value;
    this.length += 1;
  }

  pop(): number {
    assert.ok(this.length > 0);
    this.length -= 1;
    return this.data[this.length];
  }

  /** Replaces the content with `values` (reusing the buffer when it is large enough). */
  assign(values: Int32Array): void {
    if (this.data.length < values.length) this.data = new Int32Array(Math.max(16, values.length));
    this.data.set(values);
    this.length = values.length;
  }

  view(): Int32Array {
    return this.data.subarray(0, this.length);
  }
}

/** A private directory is rebuilt when it holds more than this many entries beyond twice the known members. */
const DIRECTORY_SLACK_MAX = 1024;

interface Probe {
  target: string;
  addr: string;
  seq: number;
  directDeadlineMs: number;
  deadlineMs: number;
  indirectSent: boolean;
  nacksExpected: number;
  nacks: number;
}

interface Relay {
  originAddr: string;
  originSeq: number;
  deadlineMs: number;
}

const SEQ_WRAP = 0xffff_ffff;
/** Returned when an input caused nothing, to spare an allocation per call (callers only read it). */
const EMPTY_OUTPUT: CoreOutput = Object.freeze({
  packets: Object.freeze([]) as unknown as OutPacket[],
  syncs: Object.freeze([]) as unknown as SyncRequest[],
  streamPings: Object.freeze([]) as unknown as StreamPing[],
  events: Object.freeze([]) as unknown as MembershipEvent[],
});
/** Below this many members, sampling scans everyone instead of guessing random indices. */
const SAMPLE_SCAN_MAX = 64;
/** Known members (from before a restart) tried per join attempt besides every seed: bounds the burst. */
const JOIN_KNOWN_PER_ATTEMPT_MAX = 16;
/**
 * Quick push-pulls with a random member after a join: the first FACTOR gossip intervals after it,
 * then FOLLOW_UPS more at doubling gaps (with the defaults about 0.5, 1.5, 3.5, 7.5 and 15.5 s, each
 * ±25 %), before the normal interval. Many members joining at once otherwise miss some of each other
 * until the next full sync: the gossip of each join is spent on the few members known at that moment.
 */
const JOIN_FOLLOW_UP_SYNCS = 4;
const JOIN_FOLLOW_UP_FACTOR = 2.5;

export class MembershipCore {
  readonly config: MembershipConfig;
  private readonly random: () => number;
  private readonly selfId: string;
  /**
   * Per-member state in typed arrays indexed by the directory's member index (struct of arrays: one
   * object per member per core cost ~170 bytes, these ~33). A member is known when st[m] is not UNKNOWN.
   */
  private dir: MemberDirectory;
  private readonly ownsDirectory: boolean;
  private selfIdx: number;
  private st = new Uint8Array(0);
  private inc = new Float64Array(0);
  private changed = new Float64Array(0);
  private metaOf = new Int32Array(0);
  /** Position of a member in `known` (for swap-remove on reap). */
  private pos = new Int32Array(0);
  /** All known member indexes except self, for O(1) random sampling (swap-remove on reap). */
  private known = new IntList();
  /** Known members, self included. */
  private recordCount = 1;
  /** Dead and left members, in the order they were buried (so reaping stops at the first young one). */
  private dead = new Set<number>();
  private liveCount = 1;
  private probeOrder = new IntList();
  private probeIndex = 0;
  private probe: Probe | null = null;
  private readonly relays = new Map<number, Relay>();
  private readonly suspicions = new Map<string, Suspicion>();
  /** Earliest suspicion deadline, kept so that nextDeadlineMs and tick stay O(1) with many suspects. */
  private suspicionNextMs = Infinity;
  private suspicionNextStale = false;
  private readonly broadcasts: BroadcastQueue;
  private readonly awareness: Awareness;
  private seq = 0;
  private badInput = 0;
  private lastDrop = '';
  private started = false;
  private leaving = false;
  private joining = false;
  /** Gossip addresses of the members we knew before this start (join: a joining one may answer). */
  private knownAddrs = new Set<string>();
  private joinSeeds: string[] = [];
  /** Gossip addresses of the members this node knew before it (re)started (the persisted snapshot). */
  private joinKnown: string[] = [];
  private joinAttempts = 0;
  /** Follow-up push-pulls still due after the join (see JOIN_FOLLOW_UP_SYNCS). */
  private followUpSyncs = 0;
  private nextJoinAtMs = Infinity;
  private nextProbeAtMs = 0;
  private nextGossipAtMs = 0;
  private nextPushPullAtMs = 0;
  private nextReconnectAtMs = 0;
  private nextReapAtMs = 0;
  private out: CoreOutput = { packets: [], syncs: [], streamPings: [], events: [] };
  private readonly counters: Omit<CoreStats, 'awareness' | 'incarnation' | 'members' | 'broadcastsQueued' | 'broadcastsDropped'> = {
    packetsSent: 0, bytesSent: 0, packetsReceived: 0, messagesReceived: 0,
    dropped: { 'too-large': 0, malformed: 0, version: 0, 'wrong-target': 0, 'members-full': 0, 'relays-full': 0 },
    probes: 0, probesFailed: 0, streamAcks: 0, suspicionsRaised: 0, refutations: 0, reannouncements: 0, deadSyncs: 0, syncsSent: 0, syncsReceived: 0,
  };
  /** When a sync with a talking dead member was last started, by id (syncWithTalkingDead). */
  private readonly deadSyncAtMs = new Map<string, number>();
  /** Gossip address → id of members buried dead (entries are checked on use; reaping removes them). */
  private readonly deadByAddr = new Map<string, string>();

  constructor(options: CoreOptions) {
    this.config = resolveMembershipConfig(options.config);
    this.random = options.random;
    const { self } = options;
    const bytes = metaBytes(memberMeta(self));
    if (bytes > this.config.metaBytesMax) {
      throw new ShoalError('CONFIG', `member metadata is ${bytes} bytes, over metaBytesMax ${this.config.metaBytesMax}`);
    }
    this.ownsDirectory = options.directory === undefined;
    this.dir = options.directory ?? new MemberDirectory();
    this.selfId = self.id;
    this.selfIdx = this.dir.intern(self.id);
    this.ensureCapacity(this.selfIdx + 1);
    this.st[this.selfIdx] = ALIVE;
    this.inc[this.selfIdx] = self.incarnation ?? 1;
    this.changed[this.selfIdx] = 0;
    this.metaOf[this.selfIdx] = this.dir.meta(this.selfIdx, self.gossip, self.rpc, self.zone, self.tags);
    this.pos[this.selfIdx] = -1;
    this.broadcasts = new BroadcastQueue(this.config.broadcastQueueMax);
    this.awareness = new Awareness(this.config.awarenessMaxMultiplier);
  }

  // ---- inputs ---------------------------------------------------------------------------------

  /**
   * Starts joining through `seeds` and the members this node `known` before a restart (gossip
   * addresses): push-pull with all seeds and up to JOIN_KNOWN_PER_ATTEMPT_MAX known members per
   * attempt, with backoff, until one answers. With neither, this node starts a new cluster.
   */
  /**
   * `known`: addresses to join through beside the seeds (members known before a restart). `knew`:
   * the addresses of every member known before this start (default `known`), whose answer completes
   * the join even while they are themselves still joining (a full restart).
   */
  join(now: number, seeds: string[], known: string[] = [], knew: string[] = known): CoreOutput {
    this.ensureStarted(now);
    this.joinSeeds = this.withoutSelf(seeds);
    const seedSet = new Set(this.joinSeeds);
    this.joinKnown = this.withoutSelf(known).filter((addr) => !seedSet.has(addr));
    this.knownAddrs = new Set(this.withoutSelf(knew));
    this.enqueue(this.selfAlive());
    if (this.joinSeeds.length + this.joinKnown.length > 0) {
      this.joining = true;
      this.joinAttempts = 0;
      this.nextJoinAtMs = now;
    }
    return this.tick(now);
  }

  /**
   * Replaces the addresses a join in progress tries next (seeds re-resolved from DNS); ignored once
   * joined. An empty list keeps the old one: a name that failed to resolve is not a reason to stop.
   */
  setJoinSeeds(seeds: string[]): void {
    if (!this.joining) return;
    const next = this.withoutSelf(seeds);
    if (next.length > 0) this.joinSeeds = next;
  }

  /** A push-pull with `to` now, outside the periodic round (a seed DNS lists that no member has). */
  pushPull(now: number, to: string): CoreOutput {
    this.ensureStarted(now);
    if (!this.leaving && to !== this.selfGossip()) this.sync(now, to, false);
    return this.drain();
  }

  /** Announces that this node leaves; it stops probing. See `leaveSpread()`. */
  leave(now: number): CoreOutput {
    this.ensureStarted(now);
    if (!this.leaving) {
      this.leaving = true;
      this.joining = false;
      this.nextJoinAtMs = Infinity;
      this.probe = null;
      const message: LeftMessage = { t: 'left', id: this.selfId, i: this.inc[this.selfIdx] };
      this.st[this.selfIdx] = LEFT;
      this.changed[this.selfIdx] = now;
      this.liveCount -= 1;
      this.enqueue(message);
      this.nextGossipAtMs = now;
      // Our own view knows it too: the cluster layer stops counting us as an owner at once.
      this.emit('left', this.selfIdx);
    }
    return this.tick(now);
  }

  /**
   * The operator removed member `id` (`shoal remove`, serf's force-leave): a dead member is marked
   * left at its incarnation and the leave is gossiped on its behalf, so every member (and, through
   * push-pull, every member that was down or cut off at the time) stops counting it. A live member is
   * not touched (it would refute). If the member comes back it outbids that incarnation, as after a
   * leave of its own. Returns whether anything changed.
   */
  forceLeave(now: number, id: string): boolean {
    this.ensureStarted(now);
    const m = this.find(id);
    if (m < 0 || m === this.selfIdx || this.st[m] !== DEAD) return false;
    const message: LeftMessage = { t: 'left', id, i: this.inc[m] };
    this.bury(now, m, LEFT, this.inc[m]);
    this.enqueue(message);
    return true;
  }

  /**
   * Before the join of a restarted node: the members its data dir remembers (known-members.json) are
   * held dead, down for `deadForMs` (since it last saw them), one below their persisted incarnation,
   * so that any `alive` at the incarnation the cluster knows revives them. Until they answer, this
   * node counts them (cluster size, ring within the dead-owner grace) and tells whoever it syncs
   * with about them, as it does for any dead member: a wiped or new node that meets only this one
   * (both cut off from the rest) learns the cluster is bigger than the two of them (found by the
   * whole-cluster simulator: such a pair served with N = 2). Tombstones (`left`) are held left at
   * their own incarnation. Members down for deadReapMs or more are not held (everyone has reaped
   * them). Returns the `dead` and `left` events.
   */
  holdKnownDown(
    now: number,
    members: readonly { id: string; gossip: string; rpc: string; incarnation: number; deadForMs: number; left?: boolean }[],
  ): CoreOutput {
    let held = false;
    for (const k of members) {
      if (k.id === this.selfId || k.gossip === this.gossipOf(this.selfIdx) || this.find(k.id) >= 0) continue;
      // A tombstone (it left or was removed) is held left at its own incarnation: only a restart after
      // it (a higher incarnation) brings it back, and a stale `dead` from another file cannot.
      const wire: WireMember = k.left === true
        ? { id: k.id, s: 'left', i: k.incarnation, a: k.gossip, r: k.rpc, d: Math.max(0, k.deadForMs) }
        : { id: k.id, s: 'dead', i: Math.max(0, k.incarnation - 1), a: k.gossip, r: k.rpc, d: Math.max(0, k.deadForMs) };
      held = this.learnDead(now, wire, k.left === true ? LEFT : DEAD) || held;
    }
    if (held) this.sortDead();
    return this.drain();
  }

  /** True once the leave announcement was sent its full retransmit count (or nobody live is left to tell). */
  leaveSpread(): boolean {
    return this.leaving && (this.liveCount <= 0 || this.broadcasts.transmitsOf(this.selfId) === undefined);
  }

  /** A datagram's bytes from `from` (host:port): decoded, validated; bad input is counted and dropped. */
  receiveBytes(now: number, bytes: Buffer | Uint8Array, from: string): CoreOutput {
    const decoded = decodePacket(bytes, this.config);
    if (!decoded.ok) {
      this.counters.dropped[decoded.reason] += 1;
      this.badInput += 1;
      this.lastDrop = `${decoded.reason}: ${decoded.detail}`;
      return this.drain();
    }
    return this.receive(now, decoded.value, from);
  }

  /** A decoded datagram from `from` (host:port). */
  receive(now: number, packet: Packet, from: string): CoreOutput {
    this.ensureStarted(now);
    this.counters.packetsReceived += 1;
    if (this.dead.size > 0) this.syncWithTalkingDead(now, from);
    for (const message of packet.m) {
      this.counters.messagesReceived += 1;
      this.handle(now, message, from);
    }
    return this.drain();
  }

  /** Advances timers: probes, indirect probes, suspicions, gossip, push-pull, join retries, reaping. */
  tick(now: number): CoreOutput {
    this.ensureStarted(now);
    if (this.joining && now >= this.nextJoinAtMs) this.attemptJoin(now);
    this.tickProbe(now);
    this.tickRelays(now);
    this.tickSuspicions(now);
    if (now >= this.nextGossipAtMs) this.gossipRound(now);
    if (now >= this.nextPushPullAtMs) this.pushPullRound(now);
    if (now >= this.nextReconnectAtMs) this.reconnectRound(now);
    if (now >= this.nextReapAtMs) this.reap(now);
    return this.drain();
  }

  /** A stream (TCP) ping we were asked to send was acked. */
  streamAck(now: number, seq: number): CoreOutput {
    this.ensureStarted(now);
    if (this.probe !== null && this.probe.seq === seq) this.counters.streamAcks += 1;
    this.onAck(seq);
    return this.drain();
  }

  /** The receiving side of push-pull: merges the remote state and returns ours. */
  handleSync(now: number, state: SyncState): { reply: SyncState; output: CoreOutput } {
    this.ensureStarted(now);
    this.counters.syncsReceived += 1;
    this.merge(now, state, true);
    // A member that has joined (not one that is itself still joining) reached us: we are in its cluster.
    if (this.joining && !state.j && state.f !== this.selfId) this.joined(now);
    return { reply: this.localState(now, this.joining), output: this.drain() };
  }

  /** The answer to a push-pull request we sent (`join` = it was a join attempt). */
  handleSyncResponse(now: number, state: SyncState): CoreOutput {
    this.ensureStarted(now);
    const joinAnswer = this.joining;
    // (Requiring the same kind both ways, a restarting node refusing a fresh one's answer too, was
    // tried: it deadlocks a cluster whose members all left and restarted, where the last to leave
    // knows nobody; see docs/SIMULATION.md.)
    // An answer completes our join, unless it comes from a node that is itself joining back to the
    // members it knew (`k`: a restarted node whose cluster is out of reach) and that we did not know:
    // a fresh node must not found a new cluster with it (found by the simulator: such a pair served
    // with N = 2). Fresh nodes that list each other as seeds still form a cluster together, and the
    // members of one cluster restarting together (a full restart) still find each other.
    const responderAddr = state.k === true ? state.m.find((m) => m.id === state.f)?.a : undefined;
    const waitingForOthers = state.j && state.k === true && (responderAddr === undefined || !this.knownAddrs.has(responderAddr));
    if (this.joining && (!waitingForOthers || mutant('dead-not-synced'))) this.joined(now);
    // Members a seed tells a joiner about are news only to the joiner: do not re-gossip them.
    this.merge(now, state, !joinAnswer);
    return this.drain();
  }

  /**
   * For a simulator that starts members already joined (a converged cluster): no follow-up syncs
   * after the join, and the push-pull timer at a random phase of its steady interval, as in a cluster
   * that has run for a while. Without it, n bootstrapped members would all sync 5 times in 15 s.
   */
  assumeSteadyState(now: number): void {
    assert.ok(!this.joining, 'assumeSteadyState after the join');
    this.followUpSyncs = 0;
    this.nextPushPullAtMs = now + this.pushPullIntervalMs() * this.random();
  }

  /** When `tick` next has work to do. */
  nextDeadlineMs(): number {
    let next = Math.min(this.nextPushPullAtMs, this.nextJoinAtMs);
    if (!this.leaving) next = Math.min(next, this.nextProbeAtMs);
    if (this.probe !== null) {
      next = Math.min(next, this.probe.indirectSent ? this.probe.deadlineMs : this.probe.directDeadlineMs);
    }
    for (const relay of this.relays.values()) next = Math.min(next, relay.deadlineMs);
    next = Math.min(next, this.earliestSuspicionMs());
    if (this.broadcasts.size > 0) next = Math.min(next, this.nextGossipAtMs);
    if (this.dead.size > 0) next = Math.min(next, this.nextReconnectAtMs, this.nextReapAtMs);
    return next;
  }

  // ---- views ----------------------------------------------------------------------------------

  /** Every known member, self first. */
  members(): Member[] {
    const list = [this.snapshot(this.selfIdx)];
    for (const m of this.known.view()) list.push(this.snapshot(m));
    return list;
  }

  member(id: string): Member | undefined {
    const m = this.find(id);
    return m < 0 ? undefined : this.snapshot(m);
  }

  /** How long (ms) before `now` member `id` was buried dead here; undefined unless it is dead. */
  deadForMs(now: number, id: string): number | undefined {
    const m = this.find(id);
    return m < 0 || this.st[m] !== DEAD ? undefined : Math.max(0, now - this.changed[m]);
  }

  /** State of one member without copying (for the simulator's hot loops). */
  stateOf(id: string): Member['state'] | undefined {
    const m = this.find(id);
    return m < 0 ? undefined : STATE_NAMES[this.st[m]];
  }

  self(): Member {
    return this.snapshot(this.selfIdx);
  }

  get id(): string {
    return this.selfId;
  }

  get incarnation(): number {
    return this.inc[this.selfIdx];
  }

  /** Members known (self included): what membersMax bounds. */
  get knownMembers(): number {
    return this.recordCount;
  }

  /** Members currently suspected. */
  get suspectCount(): number {
    return this.suspicions.size;
  }

  /** Datagrams dropped because they were oversized, malformed or of an unknown version. */
  get badInputDropped(): number {
    return this.badInput;
  }

  get lastDropDetail(): string {
    return this.lastDrop;
  }

  get isJoining(): boolean {
    return this.joining;
  }

  /** Members alive or suspect, self included: the n of the timing formulas. */
  get liveMembers(): number {
    return this.liveCount;
  }

  /** xxh64 hex over the sorted (id, state, incarnation) of every known member. */
  checksum(): string {
    const lines = this.members().map((rec) => `${rec.id}\t${rec.state}\t${rec.incarnation}\n`).sort();
    return xxh64(lines.join('')).toString(16).padStart(16, '0');
  }

  stats(): CoreStats {
    const members: CoreStats['members'] = { alive: 0, suspect: 0, dead: 0, left: 0 };
    members[STATE_NAMES[this.st[this.selfIdx]] as Member['state']] += 1;
    for (const m of this.known.view()) members[STATE_NAMES[this.st[m]] as Member['state']] += 1;
    return {
      ...this.counters,
      dropped: { ...this.counters.dropped },
      broadcastsQueued: this.broadcasts.size,
      broadcastsDropped: this.broadcasts.dropped,
      awareness: this.awareness.score,
      incarnation: this.inc[this.selfIdx],
      members,
    };
  }

  /** Our full state for push-pull at `now` (bounded by syncMembersMax, self first; dead members with their age). */
  localState(now: number, join: boolean): SyncState {
    const list: WireMember[] = [this.toWire(this.selfIdx)];
    const known = this.known.view();
    for (let i = 0; i < known.length && list.length < this.config.syncMembersMax; i += 1) {
      const m = known[i];
      const wire = this.toWire(m);
      if (this.st[m] === DEAD) wire.d = Math.max(0, Math.floor(now - this.changed[m]));
      list.push(wire);
    }
    const state: SyncState = { v: WIRE_VERSION, f: this.selfId, j: join, m: list };
    if (this.joining && this.knownAddrs.size > 0) state.k = true;
    return state;
  }

  // ---- message handling -----------------------------------------------------------------------

  private handle(now: number, message: Message, from: string): void {
    switch (message.t) {
      case 'ping':
        if (message.n !== this.selfId) {
          this.counters.dropped['wrong-target'] += 1;
          return;
        }
        this.send(from, [{ t: 'ack', s: message.s }]);
        return;
      case 'ack':
        this.onAck(message.s);
        return;
      case 'nack':
        if (this.probe !== null && this.probe.seq === message.s) this.probe.nacks += 1;
        return;
      case 'ping-req':
        this.onPingReq(now, message.s, message.n, message.a, from);
        return;
      case 'alive':
        this.applyAlive(now, message, true);
        return;
      case 'suspect':
        this.applySuspect(now, message);
        return;
      case 'dead':
        this.applyDead(now, message);
        return;
      case 'left':
        this.applyLeft(now, message);
        return;
    }
  }

  private onAck(seq: number): void {
    if (this.probe !== null && this.probe.seq === seq) {
      this.probe = null;
      if (this.config.lifeguard) this.awareness.apply(-1);
      return;
    }
    const relay = this.relays.get(seq);
    if (relay !== undefined) {
      this.relays.delete(seq);
      this.send(relay.originAddr, [{ t: 'ack', s: relay.originSeq }]);
    }
  }

  private onPingReq(now: number, originSeq: number, target: string, targetAddr: string, from: string): void {
    if (this.relays.size >= this.config.relaysMax) {
      this.counters.dropped['relays-full'] += 1;
      return;
    }
    const seq = this.nextSeq();
    this.relays.set(seq, { originAddr: from, originSeq, deadlineMs: now + this.config.probeTimeoutMs });
    this.send(targetAddr, [{ t: 'ping', s: seq, n: target }]);
  }

  // ---- state transitions (SWIM precedence on incarnation numbers) -------------------------------

  private applyAlive(now: number, message: AliveMessage, gossipNew: boolean): void {
    if (message.id === this.selfId) {
      // Someone spreads a newer version of us (an older process, a forged update): outbid it.
      const incarnation = this.inc[this.selfIdx];
      const newer = message.i > incarnation;
      if (newer || (message.i === incarnation && !this.sameMeta(this.selfIdx, message))) this.refute(message.i);
      return;
    }
    let m = this.find(message.id);
    if (m < 0) {
      if (this.recordCount >= this.config.membersMax) {
        this.counters.dropped['members-full'] += 1;
        return;
      }
      m = this.dir.intern(message.id);
      this.ensureCapacity(m + 1);
      assert.equal(this.st[m], UNKNOWN);
      this.st[m] = ALIVE;
      this.inc[m] = message.i;
      this.changed[m] = now;
      this.metaOf[m] = this.dir.meta(m, message.a, message.r, message.z, message.g);
      this.pos[m] = this.known.length;
      this.known.push(m);
      this.recordCount += 1;
      // Into a random not-yet-probed slot of this round (O(1): append, then swap).
      const order = this.probeOrder;
      order.push(m);
      const slot = this.probeIndex + Math.floor(this.random() * (order.length - this.probeIndex));
      const last = order.length - 1;
      order.data[last] = order.data[slot];
      order.data[slot] = m;
      this.liveCount += 1;
      this.emit('joined', m);
      if (gossipNew) this.enqueue(message);
      return;
    }
    if (message.i <= this.inc[m]) return;
    const before = this.st[m];
    const meta = this.dir.meta(m, message.a, message.r, message.z, message.g);
    const changed = meta !== this.metaOf[m];
    this.inc[m] = message.i;
    this.metaOf[m] = meta;
    this.st[m] = ALIVE;
    this.changed[m] = now;
    if (before === SUSPECT) {
      this.dropSuspicion(message.id);
      this.emit('alive', m);
    } else if (before === DEAD || before === LEFT) {
      this.dead.delete(m);
      this.liveCount += 1;
      this.emit('alive', m);
    } else if (changed) {
      this.emit('updated', m);
    }
    this.enqueue(message);
  }

  private applySuspect(now: number, message: SuspectMessage): void {
    const m = this.find(message.id);
    if (m < 0) return;
    if (m === this.selfIdx) {
      this.answerAccusation(message.i);
      return;
    }
    if (message.i < this.inc[m] || this.st[m] === DEAD || this.st[m] === LEFT) return;
    if (this.st[m] === SUSPECT && message.i === this.inc[m]) {
      const suspicion = this.suspicions.get(message.id);
      if (suspicion !== undefined && suspicion.confirm(message.f)) {
        this.suspicionNextMs = Math.min(this.suspicionNextMs, suspicion.deadlineMs());
        this.enqueue(message);
      }
      return;
    }
    // A new suspicion, or one about a newer incarnation (we missed the refutation in between): the
    // timer starts afresh, never carrying an older suspicion's elapsed time over to the new incarnation.
    const wasSuspect = this.st[m] === SUSPECT;
    this.st[m] = SUSPECT;
    this.inc[m] = message.i;
    this.changed[m] = now;
    this.startSuspicion(now, message.id, message.f);
    if (!wasSuspect) this.emit('suspect', m);
    this.enqueue(message);
  }

  private startSuspicion(now: number, id: string, accuser: string): void {
    const n = this.liveCount;
    const timeouts = suspicionTimeouts(this.config, n);
    if (!this.config.lifeguard) timeouts.maxMs = timeouts.minMs;
    const k = this.config.lifeguard ? expectedConfirmations(this.config.suspicionMult, n) : 0;
    this.dropSuspicion(id);
    const suspicion = new Suspicion(now, accuser, k, timeouts);
    this.suspicions.set(id, suspicion);
    this.suspicionNextMs = Math.min(this.suspicionNextMs, suspicion.deadlineMs());
  }

  private dropSuspicion(id: string): void {
    const suspicion = this.suspicions.get(id);
    if (suspicion === undefined) return;
    this.suspicions.delete(id);
    if (suspicion.deadlineMs() <= this.suspicionNextMs) this.suspicionNextStale = true;
  }

  private earliestSuspicionMs(): number {
    if (this.suspicionNextStale) {
      this.suspicionNextStale = false;
      this.suspicionNextMs = Infinity;
      for (const suspicion of this.suspicions.values()) this.suspicionNextMs = Math.min(this.suspicionNextMs, suspicion.deadlineMs());
    }
    return this.suspicionNextMs;
  }

  private applyDead(now: number, message: DeadMessage): void {
    const m = this.find(message.id);
    if (m < 0) return;
    if (m === this.selfIdx) {
      this.answerAccusation(message.i);
      return;
    }
    if (this.st[m] === DEAD) {
      this.raiseDownIncarnation(m, message.i);
      return;
    }
    // Left outranks dead; a dead about a newer life than the one that left is not taken either: the
    // `alive` of that life (a restart after the leave) must still win.
    if (this.st[m] === LEFT || message.i < this.inc[m]) return;
    this.bury(now, m, DEAD, message.i);
    this.enqueue(message);
  }

  /**
   * A member we hold dead is said dead at a newer incarnation (it lived again and died again out of
   * our sight), or one we hold left is said left at a newer one: same state, newer incarnation, taken
   * silently (no event, no gossip), so that every member's checksum agrees. Members held down from the
   * known-members file start one below their persisted incarnation (holdKnownDown) and rise here.
   */
  private raiseDownIncarnation(m: number, incarnation: number): void {
    if (incarnation > this.inc[m]) this.inc[m] = incarnation;
  }

  private applyLeft(now: number, message: LeftMessage): void {
    const m = this.find(message.id);
    if (m < 0) return;
    if (m === this.selfIdx) {
      this.answerAccusation(message.i);
      return;
    }
    if (this.st[m] === LEFT) {
      this.raiseDownIncarnation(m, message.i);
      return;
    }
    if (message.i < this.inc[m]) {
      // A `left` about an older life of a member we hold dead at a newer one: an operator's `remove`
      // from a member that missed its last restart (found by the simulator, seed 683: the remover held
      // it left at incarnation 1, everyone else dead at 2, and the two kept different rings for good).
      // Among members that are down, left outranks dead whatever the incarnations, as serf's
      // force-leave does: we mark it left at the incarnation we know and gossip that, so every member
      // converges on left. A member alive or suspect at a newer incarnation is a newer life: ignored.
      if (this.st[m] !== DEAD) return;
      const incarnation = this.inc[m];
      this.bury(now, m, LEFT, incarnation);
      this.enqueue({ t: 'left', id: message.id, i: incarnation });
      return;
    }
    this.bury(now, m, LEFT, message.i);
    this.enqueue(message);
  }

  private bury(now: number, m: number, state: typeof DEAD | typeof LEFT, incarnation: number): void {
    if (this.st[m] === ALIVE || this.st[m] === SUSPECT) this.liveCount -= 1;
    this.dropSuspicion(this.dir.ids[m]);
    // Re-added at the end, so that the set stays in burial order (reap relies on it).
    this.dead.delete(m);
    this.dead.add(m);
    if (state === DEAD) this.deadByAddr.set(this.gossipOf(m), this.dir.ids[m]);
    this.st[m] = state;
    this.inc[m] = incarnation;
    this.changed[m] = now;
    this.emit(state === DEAD ? 'dead' : 'left', m);
  }

  /**
   * Someone says we are suspect, dead or left. About our current incarnation (or a newer one): refute.
   * About an older one: we refuted already, but whoever still gossips it has not heard; our refutation
   * may have been lost (a one-way partition drops it until its retransmits run out), so announce our
   * current incarnation again.
   */
  private answerAccusation(incarnation: number): void {
    if (this.leaving) return;
    if (incarnation >= this.inc[this.selfIdx]) {
      this.refute(incarnation);
      return;
    }
    this.counters.reannouncements += 1;
    this.enqueue(this.selfAlive());
  }

  /** Someone says we are suspect, dead or left: outbid that incarnation and tell everyone. */
  private refute(incarnation: number): void {
    if (this.leaving) return;
    this.inc[this.selfIdx] = Math.max(this.inc[this.selfIdx], incarnation) + 1;
    this.counters.refutations += 1;
    // Lifeguard: being suspected hints that we are the slow one.
    if (this.config.lifeguard) this.awareness.apply(1);
    this.enqueue(this.selfAlive());
  }

  private merge(now: number, state: SyncState, gossipNew: boolean): void {
    let learnedDead = false;
    for (const wire of state.m) {
      if (wire.s === 'alive' && wire.id !== this.selfId) {
        // Fast path (a sync carries every member, nearly all of them already known at this incarnation):
        // exactly what applyAlive would decide, without building the message.
        const m = this.find(wire.id);
        if (m >= 0 && wire.i <= this.inc[m]) continue;
      }
      switch (wire.s) {
        case 'alive': {
          const message: AliveMessage = { t: 'alive', id: wire.id, i: wire.i, a: wire.a, r: wire.r };
          if (wire.z !== undefined) message.z = wire.z;
          if (wire.g !== undefined) message.g = wire.g;
          this.applyAlive(now, message, gossipNew || wire.id === state.f);
          break;
        }
        case 'suspect':
        case 'dead': {
          // Looked up once: self is always found, so `unknown` never holds for it.
          const m = this.find(wire.id);
          if (wire.s === 'dead' && m >= 0 && m !== this.selfIdx && this.st[m] === DEAD) {
            this.raiseDownIncarnation(m, wire.i);
            break;
          }
          const unknown = m < 0 && !mutant('dead-not-synced');
          if (wire.s === 'dead' && wire.d !== undefined && unknown) {
            // A member we never heard of that the sender holds dead (it died before we joined): ours
            // too, dead since the same moment, so that we count it and reap it when everyone does.
            learnedDead = this.learnDead(now, wire) || learnedDead;
          } else if (wire.s === 'suspect' && unknown) {
            // A member we never heard of that the sender suspects (it is failing as we join): we take
            // it as the sender last knew it, alive at that incarnation (not gossiped: no news), then
            // suspect it ourselves, so it counts in our cluster size and ring like everyone else's and
            // our own suspicion timer decides (found by the simulator: a node that joined while two
            // members were suspect counted N = 2).
            const message: AliveMessage = { t: 'alive', id: wire.id, i: wire.i, a: wire.a, r: wire.r };
            if (wire.z !== undefined) message.z = wire.z;
            if (wire.g !== undefined) message.g = wire.g;
            this.applyAlive(now, message, false);
            this.applySuspect(now, { t: 'suspect', id: wire.id, i: wire.i, f: state.f });
          } else {
            // Like memberlist: a remote "dead" only makes us suspect, so we probe it ourselves first
            // (and an unknown suspect, or an unknown dead from an older peer without `d`, is ignored).
            this.applySuspect(now, { t: 'suspect', id: wire.id, i: wire.i, f: state.f });
          }
          break;
        }
        case 'left':
          this.applyLeft(now, { t: 'left', id: wire.id, i: wire.i });
          break;
      }
    }
    if (learnedDead) this.sortDead();
  }

  /**
   * Adds `wire`, an unknown member dead for `wire.d` ms on the sender, as dead since now − d: no
   * suspicion, no gossip (it is no news: everyone who knew it buried it), no probes. Not after
   * deadReapMs: the sender is about to reap it too, and whoever did must not be taught it again.
   * Returns whether it was added (the caller restores the burial order of `dead` afterwards).
   */
  private learnDead(now: number, wire: WireMember, state: typeof DEAD | typeof LEFT = DEAD): boolean {
    const deadForMs = wire.d as number;
    if (deadForMs >= this.config.deadReapMs) return false;
    if (this.recordCount >= this.config.membersMax) {
      this.counters.dropped['members-full'] += 1;
      return false;
    }
    const m = this.dir.intern(wire.id);
    this.ensureCapacity(m + 1);
    assert.equal(this.st[m], UNKNOWN);
    this.st[m] = state;
    this.inc[m] = wire.i;
    this.changed[m] = now - deadForMs;
    this.metaOf[m] = this.dir.meta(m, wire.a, wire.r, wire.z, wire.g);
    this.pos[m] = this.known.length;
    this.known.push(m);
    this.recordCount += 1;
    // Appended here; merge sorts `dead` back into burial order once it is done (sortDead).
    this.dead.add(m);
    if (state === DEAD) this.deadByAddr.set(wire.a, wire.id);
    this.emit(state === DEAD ? 'dead' : 'left', m, state === DEAD ? deadForMs : undefined);
    return true;
  }

  /**
   * Restores the burial order of `dead` (reap stops at the first member not old enough) after
   * learnDead appended members buried before others: a stable sort by burial time, O(dead log dead),
   * only after a sync that taught us dead members (at the join, nearly always).
   */
  private sortDead(): void {
    const changed = this.changed;
    this.dead = new Set([...this.dead].sort((a, b) => changed[a] - changed[b]));
  }

  // ---- timers ---------------------------------------------------------------------------------

  private ensureStarted(now: number): void {
    if (this.started) return;
    this.started = true;
    const c = this.config;
    this.changed[this.selfIdx] = now;
    // Random phases so that members started together do not probe and sync in lockstep.
    this.nextProbeAtMs = now + this.random() * c.probeIntervalMs;
    this.nextGossipAtMs = now + this.random() * c.gossipIntervalMs;
    this.nextPushPullAtMs = now + c.pushPullIntervalMs * (0.5 + this.random() * 0.5);
    this.nextReconnectAtMs = now + c.reconnectIntervalMs * (0.5 + this.random() * 0.5);
    this.nextReapAtMs = now + this.reapCheckMs();
  }

  private scale(ms: number): number {
    return this.config.lifeguard ? this.awareness.scale(ms) : ms;
  }

  private tickProbe(now: number): void {
    const probe = this.probe;
    if (probe !== null && !probe.indirectSent && now >= probe.directDeadlineMs) {
      probe.indirectSent = true;
      const target = this.find(probe.target);
      const helpers = this.sample(this.config.indirectChecks, (m) => this.st[m] === ALIVE && m !== target);
      for (const helper of helpers) this.send(this.gossipOf(helper), [{ t: 'ping-req', s: probe.seq, n: probe.target, a: probe.addr }]);
      probe.nacksExpected = this.config.lifeguard ? helpers.length : 0;
      if (this.config.streamPing) this.out.streamPings.push({ to: probe.addr, target: probe.target, seq: probe.seq });
    }
    if (probe !== null && now >= probe.deadlineMs) {
      this.probe = null;
      this.counters.probesFailed += 1;
      if (this.config.lifeguard) {
        // Lifeguard: missing nacks mean our own links or CPU are the problem, not only the target.
        this.awareness.apply(probe.nacksExpected > 0 ? Math.max(0, probe.nacksExpected - probe.nacks) : 1);
      }
      const m = this.find(probe.target);
      if (m >= 0 && (this.st[m] === ALIVE || this.st[m] === SUSPECT)) {
        if (this.st[m] === ALIVE) this.counters.suspicionsRaised += 1;
        this.applySuspect(now, { t: 'suspect', id: probe.target, i: this.inc[m], f: this.selfId });
      }
    }
    if (!this.leaving && this.probe === null && now >= this.nextProbeAtMs) this.startProbe(now);
  }

  private startProbe(now: number): void {
    const interval = this.scale(this.config.probeIntervalMs);
    this.nextProbeAtMs = now + interval;
    const m = this.nextProbeTarget();
    if (m < 0) return;
    this.counters.probes += 1;
    const seq = this.nextSeq();
    const id = this.dir.ids[m];
    const addr = this.gossipOf(m);
    this.probe = {
      target: id, addr, seq,
      directDeadlineMs: now + this.scale(this.config.probeTimeoutMs),
      deadlineMs: now + interval,
      indirectSent: false, nacksExpected: 0, nacks: 0,
    };
    const messages: Message[] = [{ t: 'ping', s: seq, n: id }];
    if (this.config.lifeguard && this.st[m] === SUSPECT) {
      // Lifeguard's buddy system: tell a suspect directly, so it can refute at once.
      messages.push({ t: 'suspect', id, i: this.inc[m], f: this.selfId });
    }
    this.send(addr, messages);
  }

  /** Shuffled round-robin: every live member once per round, in a fresh random order each round. */
  private nextProbeTarget(): number {
    for (let attempts = 0; attempts <= this.known.length + 1; attempts += 1) {
      if (this.probeIndex >= this.probeOrder.length) {
        if (this.known.length === 0) return -1;
        this.probeOrder.assign(this.known.view());
        shuffle(this.probeOrder.view(), this.random);
        this.probeIndex = 0;
      }
      const m = this.probeOrder.data[this.probeIndex];
      this.probeIndex += 1;
      if (this.st[m] === ALIVE || this.st[m] === SUSPECT) return m;
    }
    return -1;
  }

  private tickRelays(now: number): void {
    for (const [seq, relay] of this.relays) {
      if (now < relay.deadlineMs) continue;
      this.relays.delete(seq);
      // Lifeguard: the nack tells the prober that we, its helper, are fine and tried.
      if (this.config.lifeguard) this.send(relay.originAddr, [{ t: 'nack', s: relay.originSeq }]);
    }
  }

  private tickSuspicions(now: number): void {
    if (now < this.earliestSuspicionMs()) return;
    const expired: string[] = [];
    for (const [id, suspicion] of this.suspicions) if (now >= suspicion.deadlineMs()) expired.push(id);
    for (const id of expired) {
      this.dropSuspicion(id);
      const m = this.find(id);
      if (m < 0 || this.st[m] !== SUSPECT) continue;
      this.applyDead(now, { t: 'dead', id, i: this.inc[m], f: this.selfId });
    }
  }

  private gossipRound(now: number): void {
    this.nextGossipAtMs = now + this.config.gossipIntervalMs;
    if (this.broadcasts.size === 0) return;
    const deadlineMs = now - this.config.gossipToTheDeadMs;
    const targets = this.sample(
      this.config.gossipNodes,
      (m) => this.st[m] === ALIVE || this.st[m] === SUSPECT || (this.st[m] === DEAD && this.changed[m] > deadlineMs),
    );
    for (const target of targets) {
      if (this.broadcasts.size === 0) break;
      this.send(this.gossipOf(target), []);
    }
  }

  private pushPullRound(now: number): void {
    this.nextPushPullAtMs = now + this.pushPullIntervalMs();
    if (this.followUpSyncs > 0) {
      // Right after a join: a few quick syncs pick up members that joined at the same moment, whose
      // alive gossip spent its retransmits on the few members we knew then.
      const k = JOIN_FOLLOW_UP_SYNCS - this.followUpSyncs;
      this.followUpSyncs -= 1;
      this.nextPushPullAtMs = now + this.config.gossipIntervalMs * JOIN_FOLLOW_UP_FACTOR * 2 ** (k + 1) * (0.75 + 0.5 * this.random());
    }
    if (this.leaving || this.joining) return;
    const [peer] = this.sample(1, (m) => this.st[m] === ALIVE);
    if (peer !== undefined) this.sync(now, this.gossipOf(peer), false);
  }

  /**
   * memberlist's pushPullScale: beyond 32 members, sync less often so that the cluster-wide rate of
   * full syncs stays about flat: interval × (ceil(log2 n − log2 32) + 1).
   */
  private pushPullIntervalMs(): number {
    return pushPullIntervalMs(this.config.pushPullIntervalMs, this.liveCount);
  }

  /**
   * A member we hold dead is sending us datagrams: it is back (typically after a one-way partition,
   * where its refutation was lost while its accusers' broadcasts ran out). Waiting for push-pull or
   * reconnect would keep a live node dead for up to 30 s; a sync with it now settles both views.
   * At most once per probe interval per member.
   */
  private syncWithTalkingDead(now: number, from: string): void {
    const id = this.deadByAddr.get(from);
    if (id === undefined) return;
    const m = this.find(id);
    // Entries are checked here rather than removed on every state change (a member alive again).
    if (m < 0 || this.st[m] !== DEAD || this.gossipOf(m) !== from) return;
    if (now - (this.deadSyncAtMs.get(id) ?? -Infinity) < this.config.probeIntervalMs) return;
    this.deadSyncAtMs.set(id, now);
    this.counters.deadSyncs += 1;
    if (!this.leaving) this.sync(now, from, false);
  }


  /**
   * memberlist's reconnect: a push-pull with one random dead or left member per interval. A split
   * cluster merges again once the link is back, and a member that left and came back (but reached
   * none of the members it knew) is found.
   */
  private reconnectRound(now: number): void {
    this.nextReconnectAtMs = now + this.config.reconnectIntervalMs;
    if (this.leaving || this.dead.size === 0) return;
    // Every member of `dead` is dead or left (removed on revival and on reap).
    const pick = Math.floor(this.random() * this.dead.size);
    let i = 0;
    for (const m of this.dead) {
      if (i === pick) {
        assert.ok(this.st[m] === DEAD || this.st[m] === LEFT);
        this.sync(now, this.gossipOf(m), false);
        return;
      }
      i += 1;
    }
  }

  private reapCheckMs(): number {
    return Math.max(1, Math.min(this.config.probeIntervalMs, this.config.deadReapMs));
  }

  private reap(now: number): void {
    this.nextReapAtMs = now + this.reapCheckMs();
    let reaped = 0;
    // In burial order: the first member not old enough ends the scan (O(reaped), not O(dead)).
    for (const m of this.dead) {
      if (now - this.changed[m] < this.config.deadReapMs) break;
      this.dead.delete(m);
      this.emit('reaped', m);
      const reapedId = this.dir.ids[m];
      const reapedAddr = this.gossipOf(m);
      this.deadSyncAtMs.delete(reapedId);
      if (this.deadByAddr.get(reapedAddr) === reapedId) this.deadByAddr.delete(reapedAddr);
      const index = this.pos[m];
      assert.ok(index >= 0 && this.known.data[index] === m, 'a reaped member is in the known list');
      const last = this.known.pop();
      if (last !== m) {
        this.known.data[index] = last;
        this.pos[last] = index;
      }
      this.pos[m] = -1;
      this.st[m] = UNKNOWN;
      this.recordCount -= 1;
      reaped += 1;
    }
    assert.ok(this.recordCount === this.known.length + 1);
    if (reaped > 0 && this.ownsDirectory && this.dir.size + this.dir.metaCount > 4 * this.recordCount + DIRECTORY_SLACK_MAX) {
      this.compactDirectory();
    }
  }

  /**
   * Rebuilds a private directory with the known members only: reaped ids and old addresses would
   * otherwise pile up for the life of the process. O(known members), and rare (bounded by the slack).
   */
  private compactDirectory(): void {
    const old = this.dir;
    const dir = new MemberDirectory();
    const members = [this.selfIdx, ...this.known.view()];
    const st = new Uint8Array(members.length);
    const inc = new Float64Array(members.length);
    const changed = new Float64Array(members.length);
    const metaOf = new Int32Array(members.length);
    const pos = new Int32Array(members.length);
    const mapped = new Map<number, number>();
    for (const m of members) {
      const n = dir.intern(old.ids[m]);
      const meta = this.metaOf[m];
      st[n] = this.st[m];
      inc[n] = this.inc[m];
      changed[n] = this.changed[m];
      metaOf[n] = dir.meta(n, old.gossip[meta], old.rpc[meta], old.zone[meta], old.tags[meta]);
      mapped.set(m, n);
    }
    const known = new IntList();
    for (const m of this.known.view()) {
      const n = mapped.get(m) as number;
      pos[n] = known.length;
      known.push(n);
    }
    this.dead = new Set([...this.dead].map((m) => mapped.get(m) as number));
    this.selfIdx = mapped.get(this.selfIdx) as number;
    pos[this.selfIdx] = -1;
    Object.assign(this, { dir, st, inc, changed, metaOf, pos, known });
    // The next probe starts a fresh round.
    this.probeOrder = new IntList();
    this.probeIndex = 0;
  }

  private attemptJoin(now: number): void {
    for (const seed of this.joinSeeds) this.sync(now, seed, true);
    const known = this.joinKnown.slice();
    shuffle(known, this.random);
    for (const addr of known.slice(0, JOIN_KNOWN_PER_ATTEMPT_MAX)) this.sync(now, addr, true);
    const c = this.config;
    const delay = Math.min(c.joinRetryMaxMs, c.joinRetryInitialMs * 2 ** Math.min(this.joinAttempts, 30));
    this.joinAttempts += 1;
    this.nextJoinAtMs = now + delay * (0.8 + 0.4 * this.random());
  }

  private joined(now: number): void {
    this.joining = false;
    this.nextJoinAtMs = Infinity;
    this.followUpSyncs = JOIN_FOLLOW_UP_SYNCS;
    this.nextPushPullAtMs = now + this.config.gossipIntervalMs * JOIN_FOLLOW_UP_FACTOR * (0.75 + 0.5 * this.random());
  }

  private withoutSelf(addrs: string[]): string[] {
    return [...new Set(addrs)].filter((addr) => addr !== this.selfGossip());
  }

  // ---- output ---------------------------------------------------------------------------------

  private sync(now: number, to: string, join: boolean): void {
    this.counters.syncsSent += 1;
    this.out.syncs.push({ to, state: this.localState(now, join), join });
  }

  /** Sends `messages` to `to`, filling the rest of the datagram budget with queued gossip. */
  private send(to: string, messages: Message[]): void {
    let bytes = PACKET_OVERHEAD_BYTES;
    for (const message of messages) bytes += messageBytes(message);
    const gossip = this.broadcasts.take(
      this.config.datagramBytesMax - bytes,
      this.config.compoundMessagesMax - messages.length,
      retransmitLimit(this.config.retransmitMult, this.liveCount),
    );
    if (messages.length === 0 && gossip.messages.length === 0) return;
    bytes += gossip.bytes;
    const packet: Packet = { v: WIRE_VERSION, m: messages.length === 0 ? gossip.messages : [...messages, ...gossip.messages] };
    this.counters.packetsSent += 1;
    this.counters.bytesSent += bytes;
    this.out.packets.push({ to, packet, bytes });
  }

  private enqueue(message: GossipMessage): void {
    this.broadcasts.enqueue(message.id, message, messageBytes(message));
  }

  private emit(type: MembershipEvent['type'], m: number, deadForMs?: number): void {
    const event: MembershipEvent = { type, member: this.snapshot(m) };
    if (deadForMs !== undefined) event.deadForMs = deadForMs;
    this.out.events.push(event);
  }

  private drain(): CoreOutput {
    const out = this.out;
    if (out.packets.length + out.syncs.length + out.streamPings.length + out.events.length === 0) return EMPTY_OUTPUT;
    this.out = { packets: [], syncs: [], streamPings: [], events: [] };
    return out;
  }

  private selfAlive(): AliveMessage {
    const meta = this.metaOf[this.selfIdx];
    const message: AliveMessage = { t: 'alive', id: this.selfId, i: this.inc[this.selfIdx], a: this.dir.gossip[meta], r: this.dir.rpc[meta] };
    const zone = this.dir.zone[meta];
    const tags = this.dir.tags[meta];
    if (zone !== undefined) message.z = zone;
    if (tags !== undefined) message.g = tags;
    return message;
  }

  // ---- member records (struct of arrays) -----------------------------------------------------------

  /** The member index of `id` when it is known, else −1. */
  private find(id: string): number {
    const m = this.dir.find(id);
    return m !== undefined && m < this.st.length && this.st[m] !== UNKNOWN ? m : -1;
  }

  private selfGossip(): string {
    return this.dir.gossip[this.metaOf[this.selfIdx]];
  }

  private gossipOf(m: number): string {
    return this.dir.gossip[this.metaOf[m]];
  }

  private sameMeta(m: number, message: AliveMessage): boolean {
    const meta = this.metaOf[m];
    const dir = this.dir;
    return dir.gossip[meta] === message.a && dir.rpc[meta] === message.r && dir.zone[meta] === message.z && sameTags(dir.tags[meta], message.g);
  }

  /** Grows the arrays to hold member index `size − 1` (to the directory's size at once when shared). */
  private ensureCapacity(size: number): void {
    if (this.st.length >= size) return;
    const capacity = Math.max(size, this.ownsDirectory ? Math.ceil(this.st.length * 1.5) : this.dir.size, 16);
    const grow = <T extends Uint8Array | Float64Array | Int32Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.st = grow(this.st, (n) => new Uint8Array(n));
    this.inc = grow(this.inc, (n) => new Float64Array(n));
    this.changed = grow(this.changed, (n) => new Float64Array(n));
    this.metaOf = grow(this.metaOf, (n) => new Int32Array(n));
    this.pos = grow(this.pos, (n) => new Int32Array(n));
  }

  private snapshot(m: number): Member {
    const meta = this.metaOf[m];
    const dir = this.dir;
    const member: Member = { id: dir.ids[m], gossip: dir.gossip[meta], rpc: dir.rpc[meta], state: STATE_NAMES[this.st[m]] as Member['state'], incarnation: this.inc[m] };
    const zone = dir.zone[meta];
    const tags = dir.tags[meta];
    if (zone !== undefined) member.zone = zone;
    if (tags !== undefined) member.tags = { ...tags };
    return member;
  }

  private toWire(m: number): WireMember {
    const meta = this.metaOf[m];
    const dir = this.dir;
    const wire: WireMember = { id: dir.ids[m], a: dir.gossip[meta], r: dir.rpc[meta], s: STATE_NAMES[this.st[m]] as Member['state'], i: this.inc[m] };
    const zone = dir.zone[meta];
    const tags = dir.tags[meta];
    if (zone !== undefined) wire.z = zone;
    if (tags !== undefined) wire.g = tags;
    return wire;
  }

  private nextSeq(): number {
    this.seq = this.seq >= SEQ_WRAP ? 1 : this.seq + 1;
    return this.seq;
  }

  /** Up to `k` distinct random members (never self) that pass `accept`. */
  private sample(k: number, accept: (m: number) => boolean): number[] {
    const picked: number[] = [];
    if (k <= 0) return picked;
    const known = this.known;
    if (known.length <= SAMPLE_SCAN_MAX) {
      const pool: number[] = [];
      for (let i = 0; i < known.length; i += 1) {
        const m = known.data[i];
        if (accept(m)) pool.push(m);
      }
      for (let i = 0; i < k && i < pool.length; i += 1) {
        const j = i + Math.floor(this.random() * (pool.length - i));
        [pool[i], pool[j]] = [pool[j], pool[i]];
        picked.push(pool[i]);
      }
      return picked;
    }
    for (let attempts = 0; attempts < k * 8 && picked.length < k; attempts += 1) {
      const m = known.data[Math.floor(this.random() * known.length)];
      if (accept(m) && !picked.includes(m)) picked.push(m);
    }
    return picked;
  }
}

/** memberlist's pushPullScale: the push-pull interval for n live members (see docs/MEMBERSHIP.md). */
export function pushPullIntervalMs(baseMs: number, members: number): number {
  const scale = members <= 32 ? 1 : Math.ceil(Math.log2(members) - Math.log2(32)) + 1;
  return baseMs * scale;
}

function shuffle<T>(items: { length: number; [index: number]: T }, random: () => number): void {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}
