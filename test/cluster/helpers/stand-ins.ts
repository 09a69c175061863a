/**
 * Stand-ins for the ring helper's Ring, Hlc and HintStore, used until those land on main: just enough
 * behaviour (consistent hashing with vnodes, a packed HLC, an in-memory bounded hint list).
 */
import { xxh64 } from '@node-rs/xxhash';
import { ShoalError } from '../../../src/errors.js';
import type { HintStoreLike, HlcLike, RingFactory, RingLike, TokenRange } from '../../../src/cluster/ports.js';
import type { Entry, Version } from '../../../src/storage/types.js';

const SPACE = 1n << 64n;

function h(text: string): bigint {
  return BigInt.asUintN(64, xxh64(text));
}

class SimpleRing implements RingLike {
  private readonly tokens: Array<{ token: bigint; id: string }>;
  constructor(private readonly ids: string[], vnodes: number) {
    this.tokens = ids.flatMap((id) => Array.from({ length: vnodes }, (_, i) => ({ token: h(`${id}#${i}`), id })));
    this.tokens.sort((a, b) => (a.token < b.token ? -1 : a.token > b.token ? 1 : 0));
  }
  private walk(index: number, n: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.tokens.length && out.length < n; i++) {
      const id = this.tokens[(index + i) % this.tokens.length].id;
      if (!out.includes(id)) out.push(id);
    }
    return out;
  }
  private indexFor(token: bigint): number {
    let lo = 0;
    let hi = this.tokens.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.tokens[mid].token < token) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.tokens.length ? 0 : lo;
  }
  preferenceList(key: string, n: number): string[] {
    return this.replicasForToken(h(key), n);
  }
  replicasForToken(token: bigint, n: number): string[] {
    if (this.tokens.length === 0) return [];
    return this.walk(this.indexFor(token), n);
  }
  rangesFor(nodeId: string, n: number): TokenRange[] {
    const out: TokenRange[] = [];
    this.tokens.forEach((t, i) => {
      if (this.walk(i, n).includes(nodeId)) {
        out.push({ start: this.tokens[(i - 1 + this.tokens.length) % this.tokens.length].token, end: t.token });
      }
    });
    return out;
  }
  ownership(): Map<string, number> {
    const m = new Map<string, number>(this.ids.map((id) => [id, 0]));
    this.tokens.forEach((t, i) => {
      const prev = this.tokens[(i - 1 + this.tokens.length) % this.tokens.length].token;
      const width = (((t.token - prev) % SPACE) + SPACE) % SPACE || SPACE;
      m.set(t.id, (m.get(t.id) ?? 0) + Number(width) / Number(SPACE));
    });
    return m;
  }
  checksum(): string {
    return h([...this.ids].sort().join(',')).toString(16);
  }
  members(): string[] {
    return [...this.ids].sort();
  }
}

export const simpleRingFactory: RingFactory = {
  build: (members, options) => new SimpleRing(members.map((m) => m.id), options?.vnodes ?? 64),
  hashKey: h,
};

export class SimpleHlc implements HlcLike {
  private last = 0;
  constructor(private readonly node: string, private readonly clock: () => number = Date.now) {}
  now(): Version {
    this.last = Math.max(this.last + 1, this.clock() * 4096);
    return { ts: this.last, node: this.node };
  }
  observe(ts: number): void {
    this.last = Math.max(this.last, ts);
  }
}

export class MemoryHints implements HintStoreLike {
  private readonly byTarget = new Map<string, Array<{ key: string; entry: Entry }>>();
  constructor(private readonly hintsMax = 100_000) {}
  async add(targetId: string, key: string, entry: Entry): Promise<void> {
    if (this.total() >= this.hintsMax) throw new ShoalError('UNAVAILABLE', 'hint store full');
    const list = this.byTarget.get(targetId) ?? [];
    list.push({ key, entry });
    this.byTarget.set(targetId, list);
  }
  pendingFor(targetId: string): number {
    return this.byTarget.get(targetId)?.length ?? 0;
  }
  targets(): string[] {
    return [...this.byTarget.keys()].filter((t) => this.pendingFor(t) > 0);
  }
  async replay(targetId: string, send: (key: string, entry: Entry) => Promise<void>): Promise<{ sent: number; failed: number }> {
    const list = this.byTarget.get(targetId) ?? [];
    let sent = 0;
    while (list.length > 0) {
      try {
        await send(list[0].key, list[0].entry);
      } catch {
        return { sent, failed: 1 };
      }
      list.shift();
      sent += 1;
    }
    return { sent, failed: 0 };
  }
  stats(): object {
    return { hints: this.total() };
  }
  async close(): Promise<void> {}
  private total(): number {
    let n = 0;
    for (const l of this.byTarget.values()) n += l.length;
    return n;
  }
}
