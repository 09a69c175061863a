/** A tiny hand-cranked network of cores for unit tests: no latency, explicit drops, a fake clock. */
import { MembershipCore, type CoreOutput } from '../../src/membership/core.js';
import type { MembershipConfig } from '../../src/membership/config.js';
import type { MembershipEvent } from '../../src/membership/types.js';
import { mulberry32 } from '../../src/membership/sim/random.js';

export interface Sent {
  from: string;
  to: string;
  types: string[];
}

export class Net {
  now = 0;
  readonly cores = new Map<string, MembershipCore>();
  readonly events: Array<MembershipEvent & { at: string }> = [];
  readonly sent: Sent[] = [];
  readonly down = new Set<string>();
  /** One-way cut: what these members send is dropped (they still receive), like an egress firewall rule. */
  readonly muted = new Set<string>();
  /**
   * A two-way partition: these members still tick and talk among themselves, but nothing passes
   * between them and the others (datagrams or push-pull) until they are taken out of the set.
   */
  readonly cut = new Set<string>();
  private queue: Array<{ from: string; to: string; out: CoreOutput['packets'][number] }> = [];

  constructor(private readonly config: Partial<MembershipConfig> = {}, private readonly seed = 1) {}

  add(id: string, extra: Partial<MembershipConfig> = {}): MembershipCore {
    const core = new MembershipCore({
      self: { id, gossip: `${id}:7000`, rpc: `${id}:8000` },
      config: { ...this.config, ...extra },
      random: mulberry32(this.seed * 7919 + this.cores.size),
    });
    this.cores.set(`${id}:7000`, core);
    return core;
  }

  core(id: string): MembershipCore {
    return this.cores.get(`${id}:7000`) as MembershipCore;
  }

  /** Joins every core through the first one and lets push-pull and gossip settle. */
  joinAll(): void {
    const [first, ...rest] = [...this.cores.values()];
    this.take(first, first.join(this.now, []));
    for (const core of rest) this.take(core, core.join(this.now, [first.self().gossip]));
    this.flush();
  }

  take(core: MembershipCore, out: CoreOutput): void {
    const from = core.self().gossip;
    for (const e of out.events) this.events.push({ ...e, at: core.id });
    for (const p of out.packets) {
      this.sent.push({ from: core.id, to: p.to.split(':')[0], types: p.packet.m.map((m) => m.t) });
      this.queue.push({ from, to: p.to, out: p });
    }
    for (const s of out.syncs) {
      const peer = this.cores.get(s.to);
      if (peer === undefined || this.down.has(peer.id) || this.down.has(core.id) || this.muted.has(core.id) || this.muted.has(peer.id)) continue;
      if (this.severed(core.id, peer.id)) continue;
      const { reply, output } = peer.handleSync(this.now, s.state);
      this.take(peer, output);
      this.take(core, core.handleSyncResponse(this.now, reply));
    }
  }

  /** Delivers everything in flight (and what that causes) at the current time. */
  flush(limit = 100_000): void {
    for (let i = 0; i < limit && this.queue.length > 0; i += 1) {
      const { from, to, out } = this.queue.shift() as (typeof this.queue)[number];
      const target = this.cores.get(to);
      const fromId = from.split(':')[0];
      if (target === undefined || this.down.has(target.id) || this.down.has(fromId) || this.muted.has(fromId)) continue;
      if (this.severed(fromId, target.id)) continue;
      this.take(target, target.receive(this.now, out.packet, from));
    }
  }

  /** Advances the clock in steps of stepMs, ticking every live core and delivering at once. */
  advance(ms: number, stepMs = 10): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + stepMs);
      for (const core of this.cores.values()) {
        if (!this.down.has(core.id)) this.take(core, core.tick(this.now));
      }
      this.flush();
    }
  }

  /** True when a partition (`cut`) lies between members a and b. */
  severed(a: string, b: string): boolean {
    return this.cut.has(a) !== this.cut.has(b);
  }

  stateAt(observer: string, subject: string): string | undefined {
    return this.core(observer).stateOf(subject);
  }
}
