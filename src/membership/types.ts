/** The membership types other layers code against (see CONTRACTS.md). */

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

export type MembershipEvent = { type: MembershipEventType; member: Member };

/** Carries push-pull state to another member and brings back its answer (default: TCP frames). */
export interface SyncTransport {
  request(gossipAddr: string, state: unknown): Promise<unknown>;
}
