/**
 * What the cluster layer needs from its neighbours, as narrow interfaces. The real implementations
 * (Ring, Hlc, HintStore, Membership, RpcPool) satisfy them structurally; tests substitute in-memory
 * ones so that many ClusterNodes can run in one process over a fault-injecting transport.
 */
import type { Entry, Version } from '../storage/types.js';

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

/** The part of a membership Member the cluster uses. */
export interface MemberInfo {
  id: string;
  rpc: string;
  zone?: string;
  state: MemberState;
  incarnation?: number;
}

export interface MembershipEventInfo {
  type: string;
  member: MemberInfo;
  /** A dead member first heard of from a peer: how long ago it died (its dead-owner grace started then). */
  deadForMs?: number;
}

/** A membership view source: the Membership runtime or a test double. */
export interface MembershipSource {
  members(): MemberInfo[];
  self(): MemberInfo;
  on(event: 'event', listener: (e: MembershipEventInfo) => void): unknown;
  off?(event: 'event', listener: (e: MembershipEventInfo) => void): unknown;
  leave?(options?: { timeoutMs?: number }): Promise<void>;
  /** How long ago (ms) a dead member died: the view built after it died starts its grace then. */
  deadForMs?(id: string): number | undefined;
  /** Members persisted as known (not left, not reaped): counted when N is clamped to the cluster's size. */
  knownMemberIds?(): string[];
  /** Forget a member for good (operator removal). */
  forget?(id: string): void;
  /** Operator removal of a dead member, gossiped to every member (membership's force-leave). */
  forceLeave?(id: string): boolean;
}

export interface TokenRange {
  start: bigint;
  end: bigint;
}

export interface RingLike {
  preferenceList(key: string, n: number): string[];
  replicasForToken(token: bigint, n: number): string[];
  rangesFor(nodeId: string, n: number): TokenRange[];
  ownership(): Map<string, number>;
  checksum(): string;
  members(): string[];
}

/** Builds rings and hashes keys the same way the ring does. */
export interface RingFactory {
  build(members: Array<{ id: string; zone?: string }>, options?: { vnodes?: number }): RingLike;
  hashKey(key: string): bigint;
}

export interface HlcLike {
  now(): Version;
  observe(ts: number): void;
}

export interface HintStoreLike {
  add(targetId: string, key: string, entry: Entry): Promise<void>;
  pendingFor(targetId: string): number;
  targets(): string[];
  replay(
    targetId: string,
    send: (key: string, entry: Entry) => Promise<void>,
    options?: { maxPerSec?: number },
  ): Promise<{ sent: number; failed: number }>;
  stats(): object;
  close(): Promise<void>;
}

/** Node-to-node calls by node id (the real one maps ids to rpc addresses through membership). */
export interface Transport {
  call(nodeId: string, op: string, args: Record<string, unknown>, options: { timeoutMs: number }): Promise<unknown>;
}

/** The part of RpcPool the cluster uses. */
export interface RpcPoolLike {
  call(addr: string, op: string, args: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<unknown>;
  /** Largest frame the pool sends (node-to-node batches are bounded by a share of it). */
  readonly frameBytesMax?: number;
}

/** Optional metrics sink; the agent adapts it to prom-client. */
export interface ClusterMetrics {
  inc(name: string, labels?: Record<string, string>, value?: number): void;
  observeMs(name: string, valueMs: number, labels?: Record<string, string>): void;
}
