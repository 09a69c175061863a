/**
 * The cluster's view of who owns what: members from membership, the ring built over the owners, and
 * the stand-ins for owners that are down.
 *
 * Owners are alive and suspect members, and dead ones until they have been dead for deadOwnerGraceMs
 * (a crash is usually a restart; hints cover it) or are removed by an operator. Members that left do
 * not own. The ring is rebuilt whenever the owner set changes and listeners see (old, new).
 *
 * Ring changes are settled and coalesced: a membership event only marks the ring stale, and the
 * ring is rebuilt once per burst, when no event has come for ringQuietMs (and at most ringWaitMsMax
 * after the first), or at once when someone reads it (ring(), owners(), …), so reads are never stale.
 * Listeners hear one (old, new) per burst, not one per event. A push-pull that brings 100 members is
 * 100 events in one task; a rolling start brings one member every 100 ms for a minute, and a rebuild
 * per member (a ring of 1,024 vnodes per member, ~10 ms at 100 members, and the replica tables and
 * ownership on top) starved the event loops the probes run on (docs/MEMBERSHIP.md).
 *
 * The replication factor N is never clamped to the members that happen to be alive: only to the size
 * of the cluster, the members it has (alive, suspect or dead, in this view or persisted as known by
 * membership) minus those that left or were removed. So a node cut off from the others cannot reach
 * W replicas and refuses writes (UNAVAILABLE) instead of taking them as a cluster of one, while
 * `shoal local --nodes 1` (N = 1) and a 2-node cluster (N = 2) still work (docs/CLUSTER.md).
 */
import assert from 'node:assert/strict';
import { type Clock, type ClockTimer, systemClock } from '../clock.js';
import type { Logger } from '../log.js';
import { mutant } from '../mutations.js';
import type { MemberInfo, MembershipEventInfo, MembershipSource, RingFactory, RingLike } from './ports.js';

export interface ViewOptions {
  membership: MembershipSource;
  ringFactory: RingFactory;
  replicationFactor: number;
  vnodes: number;
  deadOwnerGraceMs: number;
  /** Dead-owner grace is measured on its monotonic time; its timers settle the ring. Default systemClock. */
  clock?: Clock;
  /** Rebuild the ring once no membership event came for this long. Default VIEW_DEFAULTS.ringQuietMs. */
  ringQuietMs?: number;
  /** …and at most this long after the first event of a burst. Default VIEW_DEFAULTS.ringWaitMsMax. */
  ringWaitMsMax?: number;
  logger: Logger;
}

export type RingListener = (oldRing: RingLike, newRing: RingLike) => void;

export const VIEW_DEFAULTS = {
  /** A join gossips a few events within a probe period; 200 ms takes a burst in and is short beside it. */
  ringQuietMs: 200,
  /** Under steady churn (a rolling start) still rebuild once a second: listeners (streaming) act late by at most this. */
  ringWaitMsMax: 1_000,
} as const;

export class ClusterView {
  readonly selfId: string;
  private readonly opts: ViewOptions;
  private readonly clock: Clock;
  private readonly members = new Map<string, MemberInfo>();
  private readonly deadSinceMs = new Map<string, number>();
  private readonly removed = new Set<string>();
  private readonly listeners: RingListener[] = [];
  private ownerKey = '';
  private currentRing: RingLike;
  private graceTimer: ClockTimer | null = null;
  /** clusterSize(), recomputed on the first read after a membership event or removal (it is read per request). */
  private clusterSizeCached = 0;
  private clusterSizeStale = false;
  /** Events since the ring was last settled (see settleRing), and the first one's type for the log. */
  private ringStaleEvents = 0;
  private ringStaleReason = '';
  private settleTimer: ClockTimer | null = null;
  /** Monotonic time of the first event since the last settle (bounds the wait by ringWaitMsMax). */
  private ringStaleSinceMs = 0;
  private readonly ringQuietMs: number;
  private readonly ringWaitMsMax: number;
  /** Rings built for membership changes (not ringWithoutSelf or other callers of buildRing). */
  private ringRebuilds = 0;
  private readonly onEvent = (e: MembershipEventInfo): void => this.handleEvent(e);

  constructor(opts: ViewOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.ringQuietMs = opts.ringQuietMs ?? VIEW_DEFAULTS.ringQuietMs;
    this.ringWaitMsMax = opts.ringWaitMsMax ?? VIEW_DEFAULTS.ringWaitMsMax;
    assert.ok(this.ringQuietMs >= 0 && this.ringWaitMsMax >= this.ringQuietMs, 'ring settle: 0 ≤ ringQuietMs ≤ ringWaitMsMax');
    this.selfId = opts.membership.self().id;
    this.track(opts.membership.self());
    // Members already dead (a join's push-pull can teach them before the view exists): grace from their death.
    for (const m of opts.membership.members()) this.track(m, m.state === 'dead' ? opts.membership.deadForMs?.(m.id) : undefined);
    this.currentRing = this.buildRing(this.ownerIds());
    this.ownerKey = this.ownerSignature();
    this.clusterSizeCached = this.countClusterSize();
    opts.membership.on('event', this.onEvent);
    this.scheduleGraceCheck();
  }

  ring(): RingLike {
    this.settleRing();
    return this.currentRing;
  }

  /**
   * The ring as last settled, without applying membership events still settling: at most
   * ringWaitMsMax behind. For figures shown to operators at a poll rate (`members`), never for
   * deciding who owns a key (ring() does that).
   */
  settledRing(): RingLike {
    return this.currentRing;
  }

  onRingChange(listener: RingListener): void {
    this.listeners.push(listener);
  }

  member(id: string): MemberInfo | undefined {
    return this.members.get(id);
  }

  allMembers(): MemberInfo[] {
    return [...this.members.values()];
  }

  /** Reachable enough to send to: alive or suspect (a suspect often answers). */
  isUp(id: string): boolean {
    if (id === this.selfId) return true;
    const state = this.members.get(id)?.state;
    return state === 'alive' || state === 'suspect';
  }

  isAlive(id: string): boolean {
    return id === this.selfId || this.members.get(id)?.state === 'alive';
  }

  isRemoved(id: string): boolean {
    return this.removed.has(id);
  }

  /**
   * Replicas per key: N clamped to the size of the cluster (clusterSize), never to the live members.
   * The ring may hold fewer owners than this (members down past their grace): those replicas are
   * missing, and a request that needs them is UNAVAILABLE.
   */
  replicas(): number {
    // Mutation 'n-clamped-to-live' (src/mutations.ts): the old bug, N clamped to the members up now.
    const size = mutant('n-clamped-to-live') ? this.allMembers().filter((m) => !this.removed.has(m.id) && this.isUp(m.id)).length : this.clusterSize();
    const n = Math.max(1, Math.min(this.opts.replicationFactor, size));
    assert.ok(n >= 1 && n <= this.opts.replicationFactor);
    return n;
  }

  /**
   * Members the cluster has: this node, every member of the view that has not left, and the members
   * membership persisted as known, minus operator removals. Members that left are not counted: a
   * leave is the operator shrinking the cluster on purpose.
   */
  clusterSize(): number {
    if (this.clusterSizeStale) {
      this.clusterSizeStale = false;
      this.clusterSizeCached = this.countClusterSize();
    }
    return this.clusterSizeCached;
  }

  private countClusterSize(): number {
    const ids = new Set<string>([this.selfId]);
    for (const m of this.members.values()) if (m.state !== 'left' && !this.removed.has(m.id)) ids.add(m.id);
    for (const id of this.opts.membership.knownMemberIds?.() ?? []) {
      if (!this.removed.has(id) && this.members.get(id)?.state !== 'left') ids.add(id);
    }
    return ids.size;
  }

  /** The key's owners in preference order: N of them, or every ring member when the ring is smaller. */
  owners(key: string): string[] {
    return this.ring().preferenceList(key, this.replicas());
  }

  /**
   * Whether this node is one of the key's owners: owners(key).includes(selfId), without hashing the
   * key when the ring has no more members than N (then every member owns every key: one node, or
   * three at N = 3), which is the fast read path's question on every GET.
   */
  ownsKey(key: string): boolean {
    const ring = this.ring();
    if (ring !== this.ownsAllRing) {
      this.ownsAllRing = ring;
      const members = ring.members();
      this.ringSize = members.length;
      this.selfInRing = members.includes(this.selfId);
    }
    if (this.ringSize <= this.replicas()) return this.selfInRing;
    return ring.preferenceList(key, this.replicas()).includes(this.selfId);
  }

  /** ownsKey's memo of the current ring: its size and whether this node is in it. */
  private ownsAllRing: RingLike | null = null;
  private ringSize = 0;
  private selfInRing = false;

  /**
   * Up members after the owners, clockwise: the stand-ins for owners that are down. At most `count`,
   * never one of `exclude`.
   */
  standIns(key: string, count: number, exclude: Iterable<string>): string[] {
    if (count <= 0) return [];
    const skip = new Set(exclude);
    const ring = this.ring();
    const order = ring.preferenceList(key, ring.members().length);
    const result: string[] = [];
    for (const id of order.slice(this.replicas())) {
      if (result.length >= count) break;
      if (!skip.has(id) && this.isAlive(id)) result.push(id);
    }
    return result;
  }

  /** Operator removal (`shoal remove ID`): stop treating a dead member as an owner right away. */
  remove(id: string): boolean {
    if (id === this.selfId || this.removed.has(id)) return false;
    this.removed.add(id);
    this.opts.membership.forget?.(id);
    this.opts.membership.forceLeave?.(id);
    this.clusterSizeStale = true;
    this.opts.logger.info('member removed by operator', { member: id });
    this.settleRing();
    this.rebuildIfChanged('remove');
    return true;
  }

  /** The ring as it will be once this node has left (used to stream data out before leaving). */
  ringWithoutSelf(): RingLike {
    return this.buildRing(this.ownerIds().filter((id) => id !== this.selfId));
  }

  buildRing(ids: string[]): RingLike {
    const members = ids.map((id) => {
      const zone = this.members.get(id)?.zone;
      return zone === undefined ? { id } : { id, zone };
    });
    return this.opts.ringFactory.build(members, { vnodes: this.opts.vnodes });
  }

  /** Re-checks dead-owner grace (the timer calls this; tests may too). */
  refresh(): void {
    this.settleRing();
    this.rebuildIfChanged('grace');
    this.scheduleGraceCheck();
  }

  close(): void {
    this.clock.clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.clock.clearTimeout(this.settleTimer);
    this.settleTimer = null;
    this.opts.membership.off?.('event', this.onEvent);
  }

  ownerIds(): string[] {
    const now = this.clock.monotonicMs();
    const ids: string[] = [];
    for (const m of this.members.values()) {
      if (this.removed.has(m.id)) continue;
      if (m.id === this.selfId) {
        if (m.state !== 'left') ids.push(m.id);
        continue;
      }
      if (m.state === 'alive' || m.state === 'suspect') ids.push(m.id);
      else if (m.state === 'dead') {
        const since = this.deadSinceMs.get(m.id) ?? now;
        if (now - since < this.opts.deadOwnerGraceMs) ids.push(m.id);
      }
    }
    return ids.sort();
  }

  /** `deadForMs`: a dead member learned from a peer died that long ago (the grace counts from then). */
  private track(m: MemberInfo, deadForMs = 0): void {
    const prev = this.members.get(m.id);
    this.members.set(m.id, { ...m });
    if (m.state === 'dead') {
      if (prev?.state !== 'dead' || !this.deadSinceMs.has(m.id)) this.deadSinceMs.set(m.id, this.clock.monotonicMs() - deadForMs);
    } else {
      this.deadSinceMs.delete(m.id);
    }
  }

  private handleEvent(e: MembershipEventInfo): void {
    if (e.type === 'reaped') {
      this.members.delete(e.member.id);
      this.deadSinceMs.delete(e.member.id);
    } else {
      this.track(e.member, e.deadForMs);
      // A removed member that comes back alive is a member again.
      if (e.member.state === 'alive' && this.removed.delete(e.member.id)) {
        this.opts.logger.info('removed member is alive again', { member: e.member.id });
      }
      // Removed while still suspect here: membership could not mark it left then (only a dead member
      // can be); now that it is dead, it is, so the removal reaches every member through gossip (found
      // by the simulator: a removal during a long suspicion never reached a node cut off at the time).
      // Deferred a turn: not from inside membership's own event dispatch.
      if (e.member.state === 'dead' && this.removed.has(e.member.id)) {
        const id = e.member.id;
        this.clock.setImmediate(() => {
          if (this.removed.has(id)) this.opts.membership.forceLeave?.(id);
        });
      }
    }
    this.clusterSizeStale = true;
    this.markRingStale(e.type);
  }

  /** Rings rebuilt for membership changes so far (tests, stats). */
  get ringRebuildCount(): number {
    return this.ringRebuilds;
  }

  /**
   * The ring may have changed: rebuild it once the events have been quiet for ringQuietMs (at most
   * ringWaitMsMax after the first), or at the next read, whichever is first.
   */
  private markRingStale(reason: string): void {
    const now = this.clock.monotonicMs();
    if (this.ringStaleEvents === 0) {
      this.ringStaleReason = reason;
      this.ringStaleSinceMs = now;
    }
    this.ringStaleEvents += 1;
    const delayMs = Math.max(0, Math.min(this.ringQuietMs, this.ringStaleSinceMs + this.ringWaitMsMax - now));
    this.clock.clearTimeout(this.settleTimer);
    this.settleTimer = this.clock.setTimeout(() => {
      this.settleTimer = null;
      this.settleRing();
    }, delayMs);
    this.settleTimer.unref();
  }

  /** Applies the events since the last settle: one owner check, one rebuild, one notification. */
  private settleRing(): void {
    if (this.ringStaleEvents === 0) return;
    const events = this.ringStaleEvents;
    this.ringStaleEvents = 0;
    this.clock.clearTimeout(this.settleTimer);
    this.settleTimer = null;
    this.rebuildIfChanged(events === 1 ? this.ringStaleReason : `${this.ringStaleReason} (+${events - 1} events)`);
    this.scheduleGraceCheck();
  }

  private ownerSignature(): string {
    return this.ownerIds()
      .map((id) => `${id}@${this.members.get(id)?.zone ?? ''}`)
      .join(',');
  }

  private rebuildIfChanged(reason: string): void {
    const signature = this.ownerSignature();
    if (signature === this.ownerKey) return;
    const oldRing = this.currentRing;
    this.ownerKey = signature;
    this.currentRing = this.buildRing(this.ownerIds());
    this.ringRebuilds += 1;
    this.opts.logger.info('ring changed', { reason, owners: this.currentRing.members().length, checksum: this.currentRing.checksum() });
    for (const listener of this.listeners) listener(oldRing, this.currentRing);
  }

  private scheduleGraceCheck(): void {
    this.clock.clearTimeout(this.graceTimer);
    this.graceTimer = null;
    const now = this.clock.monotonicMs();
    let next = Infinity;
    for (const [id, since] of this.deadSinceMs) {
      const expiresMs = since + this.opts.deadOwnerGraceMs;
      if (!this.removed.has(id) && expiresMs > now) next = Math.min(next, expiresMs);
    }
    if (next === Infinity) return;
    const delayMs = Math.max(0, Math.min(next - now + 1, 2 ** 31 - 1));
    this.graceTimer = this.clock.setTimeout(() => this.refresh(), delayMs);
    this.graceTimer.unref();
  }
}
