/**
 * Member ids and member metadata (gossip and rpc addresses, zone, tags) interned to small integers.
 * A core keeps its per-member state in typed arrays indexed by these integers instead of one object
 * and one Map entry per member: about 33 bytes per known member instead of ~170. The simulator shares
 * one directory among all its cores, so that n cores knowing n members hold n², not n² strings; a
 * core in the runtime owns a private one and compacts it when reaped members dominate it.
 */
import assert from 'node:assert/strict';

export type Tags = Record<string, string>;

export class MemberDirectory {
  private readonly index = new Map<string, number>();
  /** Member index → id. */
  readonly ids: string[] = [];
  /** Member index → the meta indexes seen for it (usually one). */
  private readonly metasOf: number[][] = [];
  /** Meta index → fields. */
  readonly gossip: string[] = [];
  readonly rpc: string[] = [];
  readonly zone: (string | undefined)[] = [];
  readonly tags: (Tags | undefined)[] = [];

  /** Members interned so far (an upper bound on every index). */
  get size(): number {
    return this.ids.length;
  }

  get metaCount(): number {
    return this.gossip.length;
  }

  find(id: string): number | undefined {
    return this.index.get(id);
  }

  intern(id: string): number {
    let member = this.index.get(id);
    if (member === undefined) {
      member = this.ids.length;
      this.index.set(id, member);
      this.ids.push(id);
      this.metasOf.push([]);
    }
    return member;
  }

  /** The meta index of these fields for `member`, reusing an equal one seen before. */
  meta(member: number, gossip: string, rpc: string, zone: string | undefined, tags: Tags | undefined): number {
    const seen = this.metasOf[member];
    assert.ok(seen !== undefined, `member ${member} is not interned`);
    for (const meta of seen) {
      if (this.gossip[meta] === gossip && this.rpc[meta] === rpc && this.zone[meta] === zone && sameTags(this.tags[meta], tags)) return meta;
    }
    const meta = this.gossip.length;
    this.gossip.push(gossip);
    this.rpc.push(rpc);
    this.zone.push(zone);
    this.tags.push(tags === undefined ? undefined : Object.freeze({ ...tags }));
    seen.push(meta);
    return meta;
  }
}

export function sameTags(a: Tags | undefined, b: Tags | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
