/** The membership types other layers code against (see CONTRACTS.md). */
import type { ShoalError } from '../errors.js';

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

export const MEMBER_STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

export interface Member {
  id: string;
  /** UDP (and push-pull TCP) address, host:port. */
  gossip: string;
  /** The member's RPC address, host:port. */
  rpc: string;
  zone?: string;
  tags?: Record<string, string>;
  state: MemberState;
  incarnation: number;
}

export type MembershipEventType = 'joined' | 'alive' | 'suspect' | 'dead' | 'left' | 'updated' | 'reaped';

export type MembershipEvent = {
  type: MembershipEventType;
  member: Member;
  /**
   * On a 'dead' event for a member first heard of as dead in a peer's push-pull state: how long ago
   * (ms) it died there. The cluster view starts its dead-owner grace that far back, as the others did.
   */
  deadForMs?: number;
};

/** Carries push-pull state to another member and brings back its answer (default: TCP frames). */
export interface SyncTransport {
  request(gossipAddr: string, state: unknown): Promise<unknown>;
}

/** The listening side of push-pull as the runtime hands it to a SyncListenerFactory. */
export interface SyncHandler {
  /**
   * Merges a remote state and returns ours (or answers a stream ping with its ack); throws (a
   * ShoalError) to refuse: the initiator's request then fails.
   */
  answer(state: unknown, remote: string): unknown;
  /** Told of every exchange that failed on the listening side (counted as a sync error). */
  onError(err: ShoalError, remote: string): void;
}

/** A push-pull listener that is listening. */
export interface SyncServer {
  /** Connections refused because syncConnectionsMax were open. */
  readonly rejected: number;
  /** Stops listening and drops open exchanges. */
  close(): Promise<void>;
}

/** Starts push-pull listeners (default: TCP on the gossip port, sync.ts). */
export interface SyncListenerFactory {
  /** Listens on (host, port) and passes every received state to `handler`; rejects when the port is taken. */
  listen(host: string, port: number, handler: SyncHandler): Promise<SyncServer>;
}
