/**
 * The SWIM + Lifeguard state machine, free of I/O: time comes in as `now` (ms), randomness as an
 * injected generator, and every input returns what to send (datagrams, push-pull syncs) and the
 * membership events it caused. The runtime (membership.ts) runs it over UDP; the simulator runs
 * thousands of them on a virtual clock. Call `tick(now)` at `nextDeadlineMs()` or sooner.
 */
import assert from 'node:assert/strict';
import { xxh64 } from '@node-rs/xxhash';
import { ShoalError } from '../errors.js';
import { Awareness } from './awareness.js';
import { BroadcastQueue, retransmitLimit } from './broadcasts.js';
import { type MembershipConfig, resolveMembershipConfig } from './config.js';
import {
  type AliveMessage, type DeadMessage, type DropReason, type GossipMessage, type LeftMessage, type Message,
  type Packet, type SuspectMessage, type SyncState, type WireMember,
  PACKET_OVERHEAD_BYTES, WIRE_VERSION, decodePacket, memberMeta, memberToWire, messageBytes, metaBytes,
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

/** Every field always present (never `delete`d) so that records keep one hidden class: hot in the simulator. */
interface MemberRecord {
  id: string;
  gossip: string;
  rpc: string;
  zone: string | undefined;
  tags: Record<string, string> | undefined;
  state: Member['state'];
  incarnation: number;
  changedMs: number;
}

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
  private readonly selfRec: MemberRecord;
  private readonly records = new Map<string, MemberRecord>();
  /** All member ids except self, for O(1) random sampling (swap-remove on reap). */
  private readonly ids: string[] = [];
  private readonly idIndex = new Map<string, number>();
  private readonly dead = new Set<string>();
  private liveCount = 1;
  private probeOrder: string[] = [];
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
    const rec: MemberRecord = {
      id: self.id, gossip: self.gossip, rpc: self.rpc, zone: self.zone, tags: self.tags === undefined ? undefined : { ...self.tags },
      state: 'alive', incarnation: self.incarnation ?? 1, changedMs: 0,
    };
    const bytes = metaBytes(memberMeta(rec));
    if (bytes > this.config.metaBytesMax) {
      throw new ShoalError('CONFIG', `member metadata is ${bytes} bytes, over metaBytesMax ${this.config.metaBytesMax}`);
    }
    this.selfRec = rec;
    this.records.set(rec.id, rec);
    this.broadcasts = new BroadcastQueue(this.config.broadcastQueueMax);
    this.awareness = new Awareness(this.config.awarenessMaxMultiplier);
  }

  // ---- inputs ---------------------------------------------------------------------------------

  /**
   * Starts joining through `seeds` and the members this node `known` before a restart (gossip
   * addresses): push-pull with all seeds and up to JOIN_KNOWN_PER_ATTEMPT_MAX known members per
   * attempt, with backoff, until one answers. With neither, this node starts a new cluster.
   */
  join(now: number, seeds: string[], known: string[] = []): CoreOutput {
    this.ensureStarted(now);
    this.joinSeeds = this.withoutSelf(seeds);
    const seedSet = new Set(this.joinSeeds);
    this.joinKnown = this.withoutSelf(known).filter((addr) => !seedSet.has(addr));
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
    if (!this.leaving && to !== this.selfRec.gossip) this.sync(to, false);
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
      const message: LeftMessage = { t: 'left', id: this.selfRec.id, i: this.selfRec.incarnation };
      this.selfRec.state = 'left';
      this.selfRec.changedMs = now;
      this.liveCount -= 1;
      this.enqueue(message);
      this.nextGossipAtMs = now;
      // Our own view knows it too: the cluster layer stops counting us as an owner at once.
      this.emit('left', this.selfRec);
    }
    return this.tick(now);
  }

  /** True once the leave announcement was sent its full retransmit count (or nobody live is left to tell). */
  leaveSpread(): boolean {
    return this.leaving && (this.liveCount <= 0 || this.broadcasts.transmitsOf(this.selfRec.id) === undefined);
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
    if (this.joining && !state.j && state.f !== this.selfRec.id) this.joined(now);
    return { reply: this.localState(this.joining), output: this.drain() };
  }

  /** The answer to a push-pull request we sent (`join` = it was a join attempt). */
  handleSyncResponse(now: number, state: SyncState): CoreOutput {
    this.ensureStarted(now);
    const joinAnswer = this.joining;
    if (this.joining) this.joined(now);
    // Members a seed tells a joiner about are news only to the joiner: do not re-gossip them.
    this.merge(now, state, !joinAnswer);
    return this.drain();
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

  members(): Member[] {
    return [...this.records.values()].map(snapshot);
  }

  member(id: string): Member | undefined {
    const rec = this.records.get(id);
    return rec === undefined ? undefined : snapshot(rec);
  }

  /** State of one member without copying (for the simulator's hot loops). */
  stateOf(id: string): Member['state'] | undefined {
    return this.records.get(id)?.state;
  }

  self(): Member {
    return snapshot(this.selfRec);
  }

  get id(): string {
    return this.selfRec.id;
  }

  get incarnation(): number {
    return this.selfRec.incarnation;
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
    const lines = [...this.records.values()].map((rec) => `${rec.id}\t${rec.state}\t${rec.incarnation}\n`).sort();
    return xxh64(lines.join('')).toString(16).padStart(16, '0');
  }

  stats(): CoreStats {
    const members: CoreStats['members'] = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const rec of this.records.values()) members[rec.state] += 1;
    return {
      ...this.counters,
      dropped: { ...this.counters.dropped },
      broadcastsQueued: this.broadcasts.size,
      broadcastsDropped: this.broadcasts.dropped,
      awareness: this.awareness.score,
      incarnation: this.selfRec.incarnation,
      members,
    };
  }

  /** Our full state for push-pull (bounded by syncMembersMax, self first). */
  localState(join: boolean): SyncState {
    const list: WireMember[] = [memberToWire(this.selfRec)];
    for (const rec of this.records.values()) {
      if (list.length >= this.config.syncMembersMax) break;
      if (rec !== this.selfRec) list.push(memberToWire(rec));
    }
    return { v: WIRE_VERSION, f: this.selfRec.id, j: join, m: list };
  }

  // ---- message handling -----------------------------------------------------------------------

  private handle(now: number, message: Message, from: string): void {
    switch (message.t) {
      case 'ping':
        if (message.n !== this.selfRec.id) {
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
    const self = this.selfRec;
    if (message.id === self.id) {
      // Someone spreads a newer version of us (an older process, a forged update): outbid it.
      const newer = message.i > self.incarnation;
      if (newer || (message.i === self.incarnation && !sameAddressAndMeta(self, message))) this.refute(message.i);
      return;
    }
    let rec = this.records.get(message.id);
    if (rec === undefined) {
      if (this.records.size >= this.config.membersMax) {
        this.counters.dropped['members-full'] += 1;
        return;
      }
      rec = {
        id: message.id, gossip: message.a, rpc: message.r, zone: message.z, tags: message.g === undefined ? undefined : { ...message.g },
        state: 'alive', incarnation: message.i, changedMs: now,
      };
      this.records.set(rec.id, rec);
      this.idIndex.set(rec.id, this.ids.length);
      this.ids.push(rec.id);
      // Into a random not-yet-probed slot of this round (O(1): append, then swap).
      this.probeOrder.push(rec.id);
      const slot = this.probeIndex + Math.floor(this.random() * (this.probeOrder.length - this.probeIndex));
      const last = this.probeOrder.length - 1;
      [this.probeOrder[slot], this.probeOrder[last]] = [this.probeOrder[last], this.probeOrder[slot]];
      this.liveCount += 1;
      this.emit('joined', rec);
      if (gossipNew) this.enqueue(message);
      return;
    }
    if (message.i <= rec.incarnation) return;
    const before = rec.state;
    const changed = !sameAddressAndMeta(rec, message);
    rec.incarnation = message.i;
    rec.gossip = message.a;
    rec.rpc = message.r;
    setMeta(rec, message);
    rec.state = 'alive';
    rec.changedMs = now;
    if (before === 'suspect') {
      this.dropSuspicion(rec.id);
      this.emit('alive', rec);
    } else if (before === 'dead' || before === 'left') {
      this.dead.delete(rec.id);
      this.liveCount += 1;
      this.emit('alive', rec);
    } else if (changed) {
      this.emit('updated', rec);
    }
    this.enqueue(message);
  }

  private applySuspect(now: number, message: SuspectMessage): void {
    const rec = this.records.get(message.id);
    if (rec === this.selfRec) {
      this.answerAccusation(message.i);
      return;
    }
    if (rec === undefined || message.i < rec.incarnation || rec.state === 'dead' || rec.state === 'left') return;
    if (rec.state === 'suspect' && message.i === rec.incarnation) {
      const suspicion = this.suspicions.get(rec.id);
      if (suspicion !== undefined && suspicion.confirm(message.f)) {
        this.suspicionNextMs = Math.min(this.suspicionNextMs, suspicion.deadlineMs());
        this.enqueue(message);
      }
      return;
    }
    // A new suspicion, or one about a newer incarnation (we missed the refutation in between): the
    // timer starts afresh, never carrying an older suspicion's elapsed time over to the new incarnation.
    const wasSuspect = rec.state === 'suspect';
    rec.state = 'suspect';
    rec.incarnation = message.i;
    rec.changedMs = now;
    this.startSuspicion(now, rec, message.f);
    if (!wasSuspect) this.emit('suspect', rec);
    this.enqueue(message);
  }

  private startSuspicion(now: number, rec: MemberRecord, accuser: string): void {
    const n = this.liveCount;
    const timeouts = suspicionTimeouts(this.config, n);
    if (!this.config.lifeguard) timeouts.maxMs = timeouts.minMs;
    const k = this.config.lifeguard ? expectedConfirmations(this.config.suspicionMult, n) : 0;
    this.dropSuspicion(rec.id);
    const suspicion = new Suspicion(now, accuser, k, timeouts);
    this.suspicions.set(rec.id, suspicion);
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
    const rec = this.records.get(message.id);
    if (rec === this.selfRec) {
      this.answerAccusation(message.i);
      return;
    }
    if (rec === undefined || message.i < rec.incarnation || rec.state === 'dead' || rec.state === 'left') return;
    this.bury(now, rec, 'dead', message.i);
    this.enqueue(message);
  }

  private applyLeft(now: number, message: LeftMessage): void {
    const rec = this.records.get(message.id);
    if (rec === this.selfRec) {
      this.answerAccusation(message.i);
      return;
    }
    if (rec === undefined || message.i < rec.incarnation || rec.state === 'left') return;
    this.bury(now, rec, 'left', message.i);
    this.enqueue(message);
  }

  private bury(now: number, rec: MemberRecord, state: 'dead' | 'left', incarnation: number): void {
    if (rec.state === 'alive' || rec.state === 'suspect') this.liveCount -= 1;
    this.dropSuspicion(rec.id);
    this.dead.add(rec.id);
    if (state === 'dead') this.deadByAddr.set(rec.gossip, rec.id);
    rec.state = state;
    rec.incarnation = incarnation;
    rec.changedMs = now;
    this.emit(state, rec);
  }

  /**
   * Someone says we are suspect, dead or left. About our current incarnation (or a newer one): refute.
   * About an older one: we refuted already, but whoever still gossips it has not heard; our refutation
   * may have been lost (a one-way partition drops it until its retransmits run out), so announce our
   * current incarnation again.
   */
  private answerAccusation(incarnation: number): void {
    if (this.leaving) return;
    if (incarnation >= this.selfRec.incarnation) {
      this.refute(incarnation);
      return;
    }
    this.counters.reannouncements += 1;
    this.enqueue(this.selfAlive());
  }

  /** Someone says we are suspect, dead or left: outbid that incarnation and tell everyone. */
  private refute(incarnation: number): void {
    if (this.leaving) return;
    this.selfRec.incarnation = Math.max(this.selfRec.incarnation, incarnation) + 1;
    this.counters.refutations += 1;
    // Lifeguard: being suspected hints that we are the slow one.
    if (this.config.lifeguard) this.awareness.apply(1);
    this.enqueue(this.selfAlive());
  }

  private merge(now: number, state: SyncState, gossipNew: boolean): void {
    for (const wire of state.m) {
      switch (wire.s) {
        case 'alive': {
          const message: AliveMessage = { t: 'alive', id: wire.id, i: wire.i, a: wire.a, r: wire.r };
          if (wire.z !== undefined) message.z = wire.z;
          if (wire.g !== undefined) message.g = wire.g;
          this.applyAlive(now, message, gossipNew || wire.id === state.f);
          break;
        }
        case 'suspect':
        case 'dead':
          // Like memberlist: a remote "dead" only makes us suspect, so we probe it ourselves first.
          this.applySuspect(now, { t: 'suspect', id: wire.id, i: wire.i, f: state.f });
          break;
        case 'left':
          this.applyLeft(now, { t: 'left', id: wire.id, i: wire.i });
          break;
      }
    }
  }

  // ---- timers ---------------------------------------------------------------------------------

  private ensureStarted(now: number): void {
    if (this.started) return;
    this.started = true;
    const c = this.config;
    this.selfRec.changedMs = now;
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
      const helpers = this.sample(this.config.indirectChecks, (rec) => rec.state === 'alive' && rec.id !== probe.target);
      for (const helper of helpers) this.send(helper.gossip, [{ t: 'ping-req', s: probe.seq, n: probe.target, a: probe.addr }]);
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
      const rec = this.records.get(probe.target);
      if (rec !== undefined && (rec.state === 'alive' || rec.state === 'suspect')) {
        if (rec.state === 'alive') this.counters.suspicionsRaised += 1;
        this.applySuspect(now, { t: 'suspect', id: rec.id, i: rec.incarnation, f: this.selfRec.id });
      }
    }
    if (!this.leaving && this.probe === null && now >= this.nextProbeAtMs) this.startProbe(now);
  }

  private startProbe(now: number): void {
    const interval = this.scale(this.config.probeIntervalMs);
    this.nextProbeAtMs = now + interval;
    const target = this.nextProbeTarget();
    if (target === undefined) return;
    this.counters.probes += 1;
    const seq = this.nextSeq();
    this.probe = {
      target: target.id, addr: target.gossip, seq,
      directDeadlineMs: now + this.scale(this.config.probeTimeoutMs),
      deadlineMs: now + interval,
      indirectSent: false, nacksExpected: 0, nacks: 0,
    };
    const messages: Message[] = [{ t: 'ping', s: seq, n: target.id }];
    if (this.config.lifeguard && target.state === 'suspect') {
      // Lifeguard's buddy system: tell a suspect directly, so it can refute at once.
      messages.push({ t: 'suspect', id: target.id, i: target.incarnation, f: this.selfRec.id });
    }
    this.send(target.gossip, messages);
  }

  /** Shuffled round-robin: every live member once per round, in a fresh random order each round. */
  private nextProbeTarget(): MemberRecord | undefined {
    for (let attempts = 0; attempts <= this.ids.length + 1; attempts += 1) {
      if (this.probeIndex >= this.probeOrder.length) {
        if (this.ids.length === 0) return undefined;
        this.probeOrder = this.ids.slice();
        shuffle(this.probeOrder, this.random);
        this.probeIndex = 0;
      }
      const rec = this.records.get(this.probeOrder[this.probeIndex]);
      this.probeIndex += 1;
      if (rec !== undefined && (rec.state === 'alive' || rec.state === 'suspect')) return rec;
    }
    return undefined;
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
      const rec = this.records.get(id);
      if (rec === undefined || rec.state !== 'suspect') continue;
      this.applyDead(now, { t: 'dead', id, i: rec.incarnation, f: this.selfRec.id });
    }
  }

  private gossipRound(now: number): void {
    this.nextGossipAtMs = now + this.config.gossipIntervalMs;
    if (this.broadcasts.size === 0) return;
    const deadlineMs = now - this.config.gossipToTheDeadMs;
    const targets = this.sample(
      this.config.gossipNodes,
      (rec) => rec.state === 'alive' || rec.state === 'suspect' || (rec.state === 'dead' && rec.changedMs > deadlineMs),
    );
    for (const target of targets) {
      if (this.broadcasts.size === 0) break;
      this.send(target.gossip, []);
    }
  }

  private pushPullRound(now: number): void {
    const n = this.liveCount;
    // memberlist's pushPullScale: beyond 32 members, sync less often so the cluster-wide rate stays flat.
    const scale = n <= 32 ? 1 : Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
    this.nextPushPullAtMs = now + this.config.pushPullIntervalMs * scale;
    if (this.followUpSyncs > 0) {
      // Right after a join: a few quick syncs pick up members that joined at the same moment, whose
      // alive gossip spent its retransmits on the few members we knew then.
      const k = JOIN_FOLLOW_UP_SYNCS - this.followUpSyncs;
      this.followUpSyncs -= 1;
      this.nextPushPullAtMs = now + this.config.gossipIntervalMs * JOIN_FOLLOW_UP_FACTOR * 2 ** (k + 1) * (0.75 + 0.5 * this.random());
    }
    if (this.leaving || this.joining) return;
    const [peer] = this.sample(1, (rec) => rec.state === 'alive');
    if (peer !== undefined) this.sync(peer.gossip, false);
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
    const rec = this.records.get(id);
    // Entries are checked here rather than removed on every state change (a member alive again).
    if (rec === undefined || rec.state !== 'dead' || rec.gossip !== from) return;
    if (now - (this.deadSyncAtMs.get(id) ?? -Infinity) < this.config.probeIntervalMs) return;
    this.deadSyncAtMs.set(id, now);
    this.counters.deadSyncs += 1;
    if (!this.leaving) this.sync(rec.gossip, false);
  }

  /**
   * memberlist's reconnect: a push-pull with one random dead or left member per interval. A split
   * cluster merges again once the link is back, and a member that left and came back (but reached
   * none of the members it knew) is found.
   */
  private reconnectRound(now: number): void {
    this.nextReconnectAtMs = now + this.config.reconnectIntervalMs;
    if (this.leaving || this.dead.size === 0) return;
    const candidates = [...this.dead].filter((id) => {
      const state = this.records.get(id)?.state;
      return state === 'dead' || state === 'left';
    });
    if (candidates.length === 0) return;
    const rec = this.records.get(candidates[Math.floor(this.random() * candidates.length)]);
    if (rec !== undefined) this.sync(rec.gossip, false);
  }

  private reapCheckMs(): number {
    return Math.max(1, Math.min(this.config.probeIntervalMs, this.config.deadReapMs));
  }

  private reap(now: number): void {
    this.nextReapAtMs = now + this.reapCheckMs();
    for (const id of this.dead) {
      const rec = this.records.get(id);
      if (rec === undefined || now - rec.changedMs < this.config.deadReapMs) continue;
      this.dead.delete(id);
      this.records.delete(id);
      this.deadSyncAtMs.delete(id);
      if (this.deadByAddr.get(rec.gossip) === id) this.deadByAddr.delete(rec.gossip);
      const index = this.idIndex.get(id);
      assert.ok(index !== undefined);
      const last = this.ids.pop() as string;
      if (last !== id) {
        this.ids[index] = last;
        this.idIndex.set(last, index);
      }
      this.idIndex.delete(id);
      this.emit('reaped', rec);
    }
  }

  private attemptJoin(now: number): void {
    for (const seed of this.joinSeeds) this.sync(seed, true);
    const known = this.joinKnown.slice();
    shuffle(known, this.random);
    for (const addr of known.slice(0, JOIN_KNOWN_PER_ATTEMPT_MAX)) this.sync(addr, true);
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
    return [...new Set(addrs)].filter((addr) => addr !== this.selfRec.gossip);
  }

  // ---- output ---------------------------------------------------------------------------------

  private sync(to: string, join: boolean): void {
    this.counters.syncsSent += 1;
    this.out.syncs.push({ to, state: this.localState(join), join });
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

  private emit(type: MembershipEvent['type'], rec: MemberRecord): void {
    this.out.events.push({ type, member: snapshot(rec) });
  }

  private drain(): CoreOutput {
    const out = this.out;
    if (out.packets.length + out.syncs.length + out.streamPings.length + out.events.length === 0) return EMPTY_OUTPUT;
    this.out = { packets: [], syncs: [], streamPings: [], events: [] };
    return out;
  }

  private selfAlive(): AliveMessage {
    const self = this.selfRec;
    const message: AliveMessage = { t: 'alive', id: self.id, i: self.incarnation, a: self.gossip, r: self.rpc };
    if (self.zone !== undefined) message.z = self.zone;
    if (self.tags !== undefined) message.g = self.tags;
    return message;
  }

  private nextSeq(): number {
    this.seq = this.seq >= SEQ_WRAP ? 1 : this.seq + 1;
    return this.seq;
  }

  /** Up to `k` distinct random members (never self) that pass `accept`. */
  private sample(k: number, accept: (rec: MemberRecord) => boolean): MemberRecord[] {
    const picked: MemberRecord[] = [];
    if (k <= 0) return picked;
    if (this.ids.length <= SAMPLE_SCAN_MAX) {
      const pool: MemberRecord[] = [];
      for (const id of this.ids) {
        const rec = this.records.get(id) as MemberRecord;
        if (accept(rec)) pool.push(rec);
      }
      for (let i = 0; i < k && i < pool.length; i += 1) {
        const j = i + Math.floor(this.random() * (pool.length - i));
        [pool[i], pool[j]] = [pool[j], pool[i]];
        picked.push(pool[i]);
      }
      return picked;
    }
    for (let attempts = 0; attempts < k * 8 && picked.length < k; attempts += 1) {
      const rec = this.records.get(this.ids[Math.floor(this.random() * this.ids.length)]) as MemberRecord;
      if (accept(rec) && !picked.includes(rec)) picked.push(rec);
    }
    return picked;
  }
}

function snapshot(rec: MemberRecord): Member {
  const member: Member = { id: rec.id, gossip: rec.gossip, rpc: rec.rpc, state: rec.state, incarnation: rec.incarnation };
  if (rec.zone !== undefined) member.zone = rec.zone;
  if (rec.tags !== undefined) member.tags = { ...rec.tags };
  return member;
}

function setMeta(rec: MemberRecord, message: AliveMessage): void {
  rec.zone = message.z;
  rec.tags = message.g === undefined ? undefined : { ...message.g };
}

function sameAddressAndMeta(rec: MemberRecord, message: AliveMessage): boolean {
  return rec.gossip === message.a && rec.rpc === message.r && rec.zone === message.z && sameTags(rec.tags, message.g);
}

function sameTags(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}
