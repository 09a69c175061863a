/** Perfect-information membership for in-process tests: the test sets states, every node hears it. */
import { EventEmitter } from 'node:events';
import type { MemberInfo, MemberState, MembershipEventInfo, MembershipSource } from '../../../src/cluster/ports.js';

export class MembershipWorld {
  private readonly members = new Map<string, MemberInfo>();
  private readonly bus = new EventEmitter();
  /** Members that see only themselves and that the others do not see yet (a node running alone). */
  private readonly isolated = new Set<string>();
  private readonly wrappers = new Map<(e: MembershipEventInfo) => void, (e: MembershipEventInfo) => void>();

  constructor() {
    this.bus.setMaxListeners(100);
  }

  add(id: string, zone?: string, options: { isolated?: boolean } = {}): void {
    const member: MemberInfo = { id, rpc: `mem:${id}`, state: 'alive', incarnation: 0 };
    if (zone !== undefined) member.zone = zone;
    this.members.set(id, member);
    if (options.isolated) this.isolated.add(id);
    else this.emit({ type: 'joined', member });
  }

  /** An isolated member joins: everyone hears of it, and it hears of everyone. */
  connect(id: string): void {
    this.isolated.delete(id);
    for (const m of this.members.values()) if (!this.isolated.has(m.id)) this.emit({ type: 'joined', member: { ...m } });
  }

  set(id: string, state: MemberState): void {
    const m = this.members.get(id);
    if (!m) throw new Error(`unknown member ${id}`);
    m.state = state;
    m.incarnation = (m.incarnation ?? 0) + 1;
    this.emit({ type: state, member: { ...m } });
  }

  /**
   * Whether the sources' forceLeave acts (the operator's removal gossiped to every member). Off by
   * default: then a removal reaches only the members the cluster layer's internal.remove RPC reaches,
   * as tests of rings that differ for a while need.
   */
  forceLeaveGossiped = false;

  /**
   * Operator removal of a dead member as membership's force-leave does it: marked left at its
   * incarnation and, this world having perfect gossip, every member hears it at once (whether or not
   * the cluster layer's RPCs reach it). A member that is not dead is not touched.
   */
  forceLeave(id: string): boolean {
    const m = this.members.get(id);
    if (!m || m.state !== 'dead') return false;
    m.state = 'left';
    this.emit({ type: 'left', member: { ...m } });
    return true;
  }

  source(id: string): MembershipSource {
    return {
      members: () =>
        [...this.members.values()]
          .filter((m) => (this.isolated.has(id) ? m.id === id : !this.isolated.has(m.id)))
          .map((m) => ({ ...m })),
      self: () => ({ ...(this.members.get(id) as MemberInfo) }),
      on: (_event, listener) => {
        const wrapped = (e: MembershipEventInfo): void => {
          if (!this.isolated.has(id) && !this.isolated.has(e.member.id)) listener(e);
        };
        this.wrappers.set(listener, wrapped);
        return this.bus.on('event', wrapped);
      },
      off: (_event, listener) => this.bus.off('event', this.wrappers.get(listener) ?? listener),
      leave: async () => this.set(id, 'left'),
      forceLeave: (member) => this.forceLeaveGossiped && this.forceLeave(member),
    };
  }

  private emit(e: MembershipEventInfo): void {
    this.bus.emit('event', e);
  }
}
