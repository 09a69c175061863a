/**
 * The recent membership events a node has seen (for `shoal status`, the status page and the log):
 * a bounded list, newest last, each with the member's state before the event. A member that comes
 * back after it was declared dead is logged as such, which membership itself does not say.
 */
import type { Logger } from '../log.js';
import type { MembershipEvent, MemberState } from '../membership/types.js';

/** Events kept. */
export const MEMBER_EVENTS_MAX = 50;

export interface MemberEventRecord {
  atMs: number;
  member: string;
  type: string;
  /** The state before this event; null for a member seen for the first time. */
  from: MemberState | null;
  incarnation: number;
}

export class MemberEvents {
  private readonly events: MemberEventRecord[] = [];
  private readonly states = new Map<string, MemberState>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  record(event: MembershipEvent): void {
    const { member } = event;
    const from = this.states.get(member.id) ?? null;
    if (event.type === 'reaped') this.states.delete(member.id);
    else this.states.set(member.id, member.state);
    if (event.type === 'updated') return; // address or tag changes are not state changes
    if (event.type === 'alive' && from === 'dead') {
      this.logger.info(`member ${member.id} is back (it was dead)`, { member: member.id, incarnation: member.incarnation });
    } else if (event.type === 'alive' && from === 'left') {
      this.logger.info(`member ${member.id} rejoined after leaving`, { member: member.id, incarnation: member.incarnation });
    } else if (event.type === 'joined' && from === null) {
      this.logger.info(`member ${member.id} joined`, { member: member.id, incarnation: member.incarnation });
    }
    this.events.push({ atMs: this.now(), member: member.id, type: event.type, from, incarnation: member.incarnation });
    if (this.events.length > MEMBER_EVENTS_MAX) this.events.shift();
  }

  /** Newest last. */
  list(): MemberEventRecord[] {
    return [...this.events];
  }
}
