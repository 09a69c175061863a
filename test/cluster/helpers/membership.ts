/** Perfect-information membership for in-process tests: the test sets states, every node hears it. */
import { EventEmitter } from 'node:events';
import type { MemberInfo, MemberState, MembershipEventInfo, MembershipSource } from '../../../src/cluster/ports.js';

export class MembershipWorld {
  private readonly members = new Map<string, MemberInfo>();
  private readonly bus = new EventEmitter();

  constructor() {
    this.bus.setMaxListeners(100);
  }

  add(id: string, zone?: string): void {
    const member: MemberInfo = { id, rpc: `mem:${id}`, state: 'alive', incarnation: 0 };
    if (zone !== undefined) member.zone = zone;
    this.members.set(id, member);
    this.emit({ type: 'joined', member });
  }

  set(id: string, state: MemberState): void {
    const m = this.members.get(id);
    if (!m) throw new Error(`unknown member ${id}`);
    m.state = state;
    m.incarnation = (m.incarnation ?? 0) + 1;
    this.emit({ type: state, member: { ...m } });
  }

  source(id: string): MembershipSource {
    return {
      members: () => [...this.members.values()].map((m) => ({ ...m })),
      self: () => ({ ...(this.members.get(id) as MemberInfo) }),
      on: (_event, listener) => this.bus.on('event', listener),
      off: (_event, listener) => this.bus.off('event', listener),
      leave: async () => this.set(id, 'left'),
    };
  }

  private emit(e: MembershipEventInfo): void {
    this.bus.emit('event', e);
  }
}
