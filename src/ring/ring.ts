/**
 * The consistent-hash ring. Every member places `vnodes` tokens at hash(`${id}/${i}`); a key belongs to
 * the first token clockwise from hash(key) (ranges are (previous token, token]); its preference list is
 * the first n distinct members met walking clockwise from there, preferring members of zones not yet
 * used when members carry zones.
 *
 * The ring is a pure function of the member set (ids and zones) and the vnode count: the same set in
 * any order gives the same tokens, the same preference lists and the same checksum on every node. A
 * member's tokens depend only on its own id, so a join moves only the ranges the newcomer takes (its
 * share, ≈ 1/(n+1) of the keys) and a leave only the leaver's ranges. Why 1024 vnodes by default and
 * not a token-allocation scheme: see docs/RING.md (measurements from bench/ring.ts).
 *
 * Lookups are a binary search over the sorted tokens (split into two Uint32Arrays so the search
 * compares numbers, not bigints) plus a read from a per-n replica table computed lazily once per ring.
 */
import assert from 'node:assert/strict';
import { ShoalError } from '../errors.js';
import { hashKey, hashString, hex64, vnodeToken } from './hash.js';
import type { TokenRange } from './ranges.js';

export { hashKey } from './hash.js';
export type { TokenRange } from './ranges.js';

export interface RingMember {
  id: string;
  zone?: string;
}

export interface RingOptions {
  /** Virtual nodes (tokens) per member. Default 1024: see RING_DEFAULTS. */
  vnodes?: number;
}

export const RING_DEFAULTS = {
  /**
   * 1024 tokens per member keeps the most loaded of 10 members at ≈ 1.05× the mean share (worst of 40
   * random id sets 1.09×) and of 100 members at ≈ 1.08×; 256 gives ≈ 1.10× at 10 members, half of the
   * id sets over the 1.10 goal. docs/RING.md has the table.
   */
  vnodes: 1024,
} as const;

export const RING_LIMITS = {
  /** Upper bound on vnodes per member (tokens cost 12 bytes each plus 4·n per cached replica table). */
  vnodesMax: 16_384,
  /** Upper bound on all tokens of a ring (members × vnodes): 4 Mi tokens ≈ 50 MB. */
  tokensMax: 1 << 22,
  /** Member ids are bounded like keys. */
  memberIdBytesMax: 256,
  /** Replica tables are cached for at most this many distinct n per ring. */
  replicaTablesMax: 8,
} as const;

const MASK32 = 0xffffffffn;

/** A member's tokens, split into high and low 32-bit halves. */
interface MemberTokens {
  hi: Uint32Array;
  lo: Uint32Array;
}

/** Per-member token arrays, cached across rebuilds (membership changes rebuild the ring often). */
const tokenCache = new Map<string, MemberTokens>();
const TOKEN_CACHE_MEMBERS_MAX = 1024; // 8 KiB each at 1024 vnodes: ≤ 8 MiB

function memberTokens(id: string, vnodes: number): MemberTokens {
  const cacheKey = `${vnodes}\u0000${id}`;
  let tokens = tokenCache.get(cacheKey);
  if (tokens === undefined) {
    const raw = new BigUint64Array(vnodes);
    for (let i = 0; i < vnodes; i++) raw[i] = vnodeToken(id, i);
    tokens = { hi: new Uint32Array(vnodes), lo: new Uint32Array(vnodes) };
    for (let i = 0; i < vnodes; i++) {
      tokens.hi[i] = Number(raw[i] >> 32n);
      tokens.lo[i] = Number(raw[i] & MASK32);
    }
    if (tokenCache.size >= TOKEN_CACHE_MEMBERS_MAX) tokenCache.delete(tokenCache.keys().next().value as string);
    tokenCache.set(cacheKey, tokens);
  }
  return tokens;
}

/**
 * Sorts all members' tokens by (token, member index) with an LSD radix sort over four 16-bit digits
 * (stable, so equal tokens stay in member order): O(T), a few ms for 100 members × 1024 vnodes where a
 * comparator sort took ~100 ms. Equal tokens (never seen in practice) keep only the smallest member.
 */
/** Below this many tokens mergeTokens sorts by comparison, above it by radix (measured crossover ~10 000). */
const RADIX_SORT_TOKENS_MIN = 8192;

function mergeTokens(lists: MemberTokens[]): { hi: Uint32Array; lo: Uint32Array; owner: Uint32Array } {
  let total = 0;
  for (const l of lists) total += l.hi.length;
  const hiAll = new Uint32Array(total);
  const loAll = new Uint32Array(total);
  const ownerAll = new Uint32Array(total);
  let k = 0;
  for (let m = 0; m < lists.length; m++) {
    hiAll.set(lists[m].hi, k);
    loAll.set(lists[m].lo, k);
    ownerAll.fill(m, k, k + lists[m].hi.length);
    k += lists[m].hi.length;
  }
  let order = new Uint32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  if (total <= RADIX_SORT_TOKENS_MIN) {
    // Small rings: a comparison sort beats four passes over 65 536 radix buckets.
    order.sort((a, b) => hiAll[a] - hiAll[b] || loAll[a] - loAll[b]);
  } else {
    let spare = new Uint32Array(total);
    const counts = new Uint32Array(65_537);
    const digits: Array<[Uint32Array, number]> = [[loAll, 0], [loAll, 16], [hiAll, 0], [hiAll, 16]];
    for (const [source, shift] of digits) {
      counts.fill(0);
      for (let i = 0; i < total; i++) counts[((source[i] >>> shift) & 0xffff) + 1]++;
      for (let d = 1; d <= 65_536; d++) counts[d] += counts[d - 1];
      for (let i = 0; i < total; i++) {
        const idx = order[i];
        spare[counts[(source[idx] >>> shift) & 0xffff]++] = idx;
      }
      [order, spare] = [spare, order];
    }
  }
  const hi = new Uint32Array(total);
  const lo = new Uint32Array(total);
  const owner = new Uint32Array(total);
  let n = 0;
  for (let i = 0; i < total; i++) {
    const idx = order[i];
    if (n > 0 && hiAll[idx] === hi[n - 1] && loAll[idx] === lo[n - 1]) continue;
    hi[n] = hiAll[idx];
    lo[n] = loAll[idx];
    owner[n] = ownerAll[idx];
    n++;
  }
  return { hi: hi.subarray(0, n), lo: lo.subarray(0, n), owner: owner.subarray(0, n) };
}

/**
 * Rings built lately, newest first. A membership change rebuilds the ring with one member more or less,
 * and streaming builds the ring without one member (its base): such a ring is derived from a recent one
 * in one pass (drop the leavers' tokens, merge in the newcomers' sorted tokens) instead of sorting
 * every token again. The result is the same as a full build (test/ring/ring.test.ts checks it).
 */
interface RingParts {
  vnodes: number;
  ids: readonly string[];
  hi: Uint32Array;
  lo: Uint32Array;
  owner: Uint32Array;
  duplicateTokens: boolean;
}
/** Only the token arrays (shared with the rings, so no copy), not the rings and their replica tables. */
const recentRings: RingParts[] = [];
const RECENT_RINGS_MAX = 2;
/** Derive only when at most this many members differ (each newcomer's 1,024 tokens are sorted alone). */
const DERIVE_MEMBERS_CHANGED_MAX = 8;

/** Rings built by deriving from a recent one, and by sorting every token (tests, benchmarks). */
export const ringBuildCounts = { derived: 0, sorted: 0 };

/** Forgets the recent rings: the next build sorts every token (tests compare both ways). */
export function forgetRecentRings(): void {
  recentRings.length = 0;
}

/** A member's tokens sorted by (hi, lo), cached beside memberTokens. */
const sortedTokenCache = new Map<string, MemberTokens>();

function sortedMemberTokens(id: string, vnodes: number): MemberTokens {
  const cacheKey = `${vnodes}\u0000${id}`;
  let sorted = sortedTokenCache.get(cacheKey);
  if (sorted === undefined) {
    const raw = memberTokens(id, vnodes);
    const order = Array.from({ length: raw.hi.length }, (_, i) => i).sort((a, b) => raw.hi[a] - raw.hi[b] || raw.lo[a] - raw.lo[b]);
    sorted = { hi: Uint32Array.from(order, (i) => raw.hi[i]), lo: Uint32Array.from(order, (i) => raw.lo[i]) };
    if (sortedTokenCache.size >= TOKEN_CACHE_MEMBERS_MAX) sortedTokenCache.delete(sortedTokenCache.keys().next().value as string);
    sortedTokenCache.set(cacheKey, sorted);
  }
  return sorted;
}

/**
 * The sorted tokens of the member set `ids` (sorted) from those of `previous`, or null when too many
 * members differ. Same output as mergeTokens: sorted by (token, member index), equal tokens keep the
 * smallest member index.
 */
function deriveTokens(prev: RingParts, ids: readonly string[], vnodes: number): { hi: Uint32Array; lo: Uint32Array; owner: Uint32Array } | null {
  if (prev.ids.length === 0) return null;
  // Old member index → new index (-1: gone); newcomers by new index.
  const remap = new Int32Array(prev.ids.length).fill(-1);
  const added: number[] = [];
  let i = 0;
  let j = 0;
  let kept = 0;
  while (j < ids.length) {
    if (i < prev.ids.length && prev.ids[i] === ids[j]) {
      remap[i++] = j++;
      kept++;
    } else if (i < prev.ids.length && prev.ids[i] < ids[j]) i++;
    else added.push(j++);
  }
  const removed = prev.ids.length - kept;
  if (removed + added.length > DERIVE_MEMBERS_CHANGED_MAX || kept === 0) return null;
  // Equal tokens keep one member; if the one kept leaves, the other's token is not in `previous`.
  if (removed > 0 && prev.duplicateTokens) return null;
  // The newcomers' tokens, each list sorted, merged into one sorted list of (hi, lo, new index).
  let addHi: Uint32Array = new Uint32Array(0);
  let addLo: Uint32Array = new Uint32Array(0);
  let addOwner: Uint32Array = new Uint32Array(0);
  for (const m of added) {
    const t = sortedMemberTokens(ids[m], vnodes);
    const merged = mergeSorted(
      { hi: addHi, lo: addLo, owner: addOwner, skip: null },
      { hi: t.hi, lo: t.lo, owner: new Uint32Array(t.hi.length).fill(m), skip: null },
    );
    addHi = merged.hi;
    addLo = merged.lo;
    addOwner = merged.owner;
  }
  const oldOwner = new Uint32Array(prev.owner.length);
  for (let k = 0; k < prev.owner.length; k++) oldOwner[k] = remap[prev.owner[k]] < 0 ? 0xffffffff : remap[prev.owner[k]];
  return mergeSorted({ hi: prev.hi, lo: prev.lo, owner: oldOwner, skip: 0xffffffff }, { hi: addHi, lo: addLo, owner: addOwner, skip: null });
}

/**
 * Merges two token lists sorted by (hi, lo, owner), dropping entries whose owner is `skip`, and of
 * equal tokens keeping the smallest owner (mergeTokens' rule).
 */
function mergeSorted(
  a: { hi: Uint32Array; lo: Uint32Array; owner: Uint32Array; skip: number | null },
  b: { hi: Uint32Array; lo: Uint32Array; owner: Uint32Array; skip: number | null },
): { hi: Uint32Array; lo: Uint32Array; owner: Uint32Array } {
  const total = a.hi.length + b.hi.length;
  const hi = new Uint32Array(total);
  const lo = new Uint32Array(total);
  const owner = new Uint32Array(total);
  let n = 0;
  let i = 0;
  let j = 0;
  const push = (h: number, l: number, o: number): void => {
    if (n > 0 && hi[n - 1] === h && lo[n - 1] === l) {
      if (o < owner[n - 1]) owner[n - 1] = o;
      return;
    }
    hi[n] = h;
    lo[n] = l;
    owner[n] = o;
    n++;
  };
  while (i < a.hi.length || j < b.hi.length) {
    if (i < a.hi.length && a.owner[i] === a.skip) {
      i++;
      continue;
    }
    if (j < b.hi.length && b.owner[j] === b.skip) {
      j++;
      continue;
    }
    const takeA = j >= b.hi.length || (i < a.hi.length && (a.hi[i] < b.hi[j] || (a.hi[i] === b.hi[j] && (a.lo[i] < b.lo[j] || (a.lo[i] === b.lo[j] && a.owner[i] <= b.owner[j])))));
    if (takeA) {
      push(a.hi[i], a.lo[i], a.owner[i]);
      i++;
    } else {
      push(b.hi[j], b.lo[j], b.owner[j]);
      j++;
    }
  }
  return { hi: hi.subarray(0, n), lo: lo.subarray(0, n), owner: owner.subarray(0, n) };
}

export class Ring {
  /** Vnodes per member this ring was built with. */
  readonly vnodes: number;
  /** Member ids, sorted; a member's index in this array is its number in `owners`. */
  private readonly ids: string[];
  private readonly zoneOfMember: Uint32Array;
  private readonly zoneCount: number;
  private readonly zoneNames: string[];
  /** Sorted tokens, split into high and low 32-bit halves for the search (as bigints: `tokens`). */
  private readonly tokenHi: Uint32Array;
  private readonly tokenLo: Uint32Array;
  /** owners[i] = member index owning tokens[i]. */
  private readonly owners: Uint32Array;
  private readonly replicaTables = new Map<number, Uint32Array>();
  /** ownership(n) per n, computed once per ring (a `members` or `stats` call asks for it each time). */
  private readonly ownershipCache = new Map<number, Float64Array>();
  private readonly checksumHex: string;
  /** The sorted tokens as bigints, made at first use (ranges, ownership): a rebuild only sorts. */
  private tokensCached: BigUint64Array | null = null;

  private constructor(members: RingMember[], vnodes: number, previous: readonly RingParts[] = []) {
    this.vnodes = vnodes;
    const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.ids = sorted.map((m) => m.id);
    this.zoneNames = [...new Set(sorted.map((m) => m.zone ?? ''))].sort();
    this.zoneCount = this.zoneNames.length;
    this.zoneOfMember = Uint32Array.from(sorted, (m) => this.zoneNames.indexOf(m.zone ?? ''));

    let merged: { hi: Uint32Array; lo: Uint32Array; owner: Uint32Array } | null = null;
    for (const recent of previous) if (merged === null && recent.vnodes === vnodes) merged = deriveTokens(recent, this.ids, vnodes);
    if (merged === null) {
      merged = mergeTokens(sorted.map((m) => memberTokens(m.id, vnodes)));
      ringBuildCounts.sorted += 1;
    } else ringBuildCounts.derived += 1;
    this.tokenHi = merged.hi;
    this.tokenLo = merged.lo;
    this.owners = merged.owner;
    const canonical = sorted.map((m) => `${m.id}\u0000${m.zone ?? ''}`).join('\n');
    this.checksumHex = hex64(hashString(`shoal-ring/1;vnodes=${vnodes};\n${canonical}`));
  }

  private get tokens(): BigUint64Array {
    if (this.tokensCached === null) {
      const hi = this.tokenHi;
      const lo = this.tokenLo;
      const tokens = new BigUint64Array(hi.length);
      for (let i = 0; i < hi.length; i++) tokens[i] = (BigInt(hi[i]) << 32n) | BigInt(lo[i]);
      this.tokensCached = tokens;
    }
    return this.tokensCached;
  }

  /** Builds the ring of a member set. Member order does not matter; ids must be distinct. */
  static build(members: RingMember[], opts: RingOptions = {}): Ring {
    const vnodes = opts.vnodes ?? RING_DEFAULTS.vnodes;
    if (!Number.isInteger(vnodes) || vnodes < 1 || vnodes > RING_LIMITS.vnodesMax) {
      throw new ShoalError('CONFIG', `ring vnodes must be an integer in 1..${RING_LIMITS.vnodesMax}, got ${vnodes}`);
    }
    if (members.length * vnodes > RING_LIMITS.tokensMax) {
      throw new ShoalError(
        'CONFIG',
        `ring of ${members.length} members × ${vnodes} vnodes is over ${RING_LIMITS.tokensMax} tokens; lower vnodes`,
      );
    }
    const seen = new Set<string>();
    for (const m of members) {
      if (typeof m.id !== 'string' || m.id.length === 0 || Buffer.byteLength(m.id) > RING_LIMITS.memberIdBytesMax) {
        throw new ShoalError('CONFIG', `ring member id must be 1..${RING_LIMITS.memberIdBytesMax} bytes: "${m.id}"`);
      }
      if (seen.has(m.id)) throw new ShoalError('CONFIG', `ring member id "${m.id}" appears twice`);
      seen.add(m.id);
    }
    const ring = new Ring(members, vnodes, recentRings);
    recentRings.unshift(ring.parts);
    if (recentRings.length > RECENT_RINGS_MAX) recentRings.pop();
    return ring;
  }

  /** Sorted tokens, owners and ids, for deriving a ring that differs by a few members (deriveTokens). */
  private get parts(): RingParts {
    return { vnodes: this.vnodes, ids: this.ids, hi: this.tokenHi, lo: this.tokenLo, owner: this.owners, duplicateTokens: this.tokenHi.length < this.ids.length * this.vnodes };
  }

  /** Member ids, sorted. */
  members(): string[] {
    return [...this.ids];
  }

  get size(): number {
    return this.ids.length;
  }

  /** Number of distinct tokens on the ring. */
  get tokenCount(): number {
    return this.tokenHi.length;
  }

  /** The zone of a member ('' when it has none), or undefined for a non-member. */
  zoneOf(id: string): string | undefined {
    const m = this.memberIndex(id);
    return m < 0 ? undefined : this.zoneNames[this.zoneOfMember[m]];
  }

  /** Same on every node with the same member set (ids, zones) and vnode count. 16 hex digits. */
  checksum(): string {
    return this.checksumHex;
  }

  /** The n replicas of a key, primary first. Fewer than n only when the ring has fewer members. */
  preferenceList(key: string, n: number): string[] {
    return this.replicasForToken(hashKey(key), n);
  }

  /** The n replicas of the range containing `token`, primary first. */
  replicasForToken(token: bigint, n: number): string[] {
    if (this.tokenHi.length === 0) return [];
    const width = this.width(n);
    const table = this.replicaTable(width);
    const base = this.tokenIndexFor(token) * width;
    const out = new Array<string>(width);
    for (let r = 0; r < width; r++) out[r] = this.ids[table[base + r]];
    return out;
  }

  /**
   * Share of the key space per member, summing to 1. With n = 1 the primary ranges (what
   * `nodetool status` calls Owns for one replica); with n > 1 the share of all (key, replica) pairs.
   */
  ownership(n = 1): Map<string, number> {
    let shares = this.ownershipCache.get(n);
    if (shares === undefined) {
      shares = new Float64Array(this.ids.length);
      const his = this.tokenHi;
      const los = this.tokenLo;
      const T = his.length;
      if (T > 0) {
        const width = this.width(n);
        const table = this.replicaTable(width);
        // Spans as doubles from the 32-bit halves (exact to 2^-52 of the ring, plenty for a share).
        const at = (i: number): number => his[i] * 2 ** 32 + los[i];
        for (let i = 0; i < T; i++) {
          const span = T === 1 ? 2 ** 64 : i === 0 ? at(0) + 2 ** 64 - at(T - 1) : at(i) - at(i - 1);
          const fraction = span / 2 ** 64 / width;
          for (let r = 0; r < width; r++) shares[table[i * width + r]] += fraction;
        }
      }
      if (this.ownershipCache.size >= RING_LIMITS.replicaTablesMax) this.ownershipCache.delete(this.ownershipCache.keys().next().value as number);
      this.ownershipCache.set(n, shares);
    }
    const out = shares;
    return new Map(this.ids.map((id, m) => [id, out[m]]));
  }

  /**
   * The token ranges (start, end] for which `nodeId` is one of the n replicas, adjacent ranges merged,
   * in token order (a range wrapping past 2^64-1 comes last). Empty for a non-member; one whole-ring
   * range (start === end) when it replicates everything.
   */
  rangesFor(nodeId: string, n: number): TokenRange[] {
    const m = this.memberIndex(nodeId);
    if (m < 0) return [];
    return this.rangesWhere(n, (table, base, width) => {
      for (let r = 0; r < width; r++) if (table[base + r] === m) return true;
      return false;
    });
  }

  /** Ranges for which both members are among the n replicas: what two replicas compare in anti-entropy. */
  sharedRanges(a: string, b: string, n: number): TokenRange[] {
    const ma = this.memberIndex(a);
    const mb = this.memberIndex(b);
    if (ma < 0 || mb < 0) return [];
    return this.rangesWhere(n, (table, base, width) => {
      let found = 0;
      for (let r = 0; r < width; r++) if (table[base + r] === ma || table[base + r] === mb) found++;
      return found === (ma === mb ? 1 : 2);
    });
  }

  /** Index of the token owning `token`: the first token ≥ it, wrapping to 0. */
  tokenIndexFor(token: bigint): number {
    const hi = Number(token >> 32n);
    const lo = Number(token & MASK32);
    const his = this.tokenHi;
    const los = this.tokenLo;
    let a = 0;
    let b = his.length;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (his[mid] < hi || (his[mid] === hi && los[mid] < lo)) a = mid + 1;
      else b = mid;
    }
    return a === his.length ? 0 : a;
  }

  /** The sorted tokens (a copy). */
  sortedTokens(): BigUint64Array {
    return this.tokens.slice();
  }

  /** The sorted tokens and their owners, for tools and tests (copies). */
  tokenTable(): Array<{ token: bigint; owner: string }> {
    return Array.from(this.tokens, (token, i) => ({ token, owner: this.ids[this.owners[i]] }));
  }

  private memberIndex(id: string): number {
    let a = 0;
    let b = this.ids.length - 1;
    while (a <= b) {
      const mid = (a + b) >>> 1;
      const v = this.ids[mid];
      if (v === id) return mid;
      if (v < id) a = mid + 1;
      else b = mid - 1;
    }
    return -1;
  }

  private width(n: number): number {
    if (!Number.isInteger(n) || n < 1) throw new ShoalError('BAD_REQUEST', `replica count must be a positive integer, got ${n}`);
    return Math.min(n, this.ids.length);
  }

  private rangesWhere(n: number, pick: (table: Uint32Array, base: number, width: number) => boolean): TokenRange[] {
    const T = this.tokens.length;
    if (T === 0) return [];
    const width = this.width(n);
    const table = this.replicaTable(width);
    const included = new Uint8Array(T);
    let count = 0;
    for (let i = 0; i < T; i++) {
      if (pick(table, i * width, width)) {
        included[i] = 1;
        count++;
      }
    }
    if (count === 0) return [];
    if (count === T) return [{ start: this.tokens[T - 1], end: this.tokens[T - 1] }];
    // Runs of included token indices; range of index i is (tokens[i-1], tokens[i]].
    const out: TokenRange[] = [];
    let i = 0;
    // Skip a run that starts at 0 if it continues a run wrapping from the end: it is emitted last.
    const wraps = included[0] === 1 && included[T - 1] === 1;
    let wrapEnd = -1;
    if (wraps) {
      while (i < T && included[i] === 1) i++;
      wrapEnd = i - 1;
    }
    while (i < T) {
      if (included[i] === 0) {
        i++;
        continue;
      }
      const first = i;
      while (i < T && included[i] === 1) i++;
      const last = i - 1;
      const start = first === 0 ? this.tokens[T - 1] : this.tokens[first - 1];
      const end = wraps && last === T - 1 ? this.tokens[wrapEnd] : this.tokens[last];
      out.push({ start, end });
    }
    return out;
  }

  /**
   * replicaTable(width)[i * width + r] = member index of replica r for the range ending at token i.
   * Walks clockwise from i collecting distinct members: first those whose zone is not yet used (until
   * all zones are used or width are picked), then, if still short, the skipped members in clockwise
   * order. Without zones (all members in zone '') this is simply the first width distinct members.
   */
  private replicaTable(width: number): Uint32Array {
    let table = this.replicaTables.get(width);
    if (table !== undefined) return table;
    // One replica: the owner of each range, whatever the zones.
    if (width === 1) return this.owners;
    const T = this.tokenHi.length;
    const M = this.ids.length;
    table = new Uint32Array(T * width);
    const memberStamp = new Uint32Array(M);
    const zoneStamp = new Uint32Array(this.zoneCount);
    const skipped: number[] = [];
    const zonesWanted = Math.min(width, this.zoneCount);
    for (let i = 0; i < T; i++) {
      const stamp = i + 1;
      let picked = 0;
      let distinct = 0;
      skipped.length = 0;
      const base = i * width;
      for (let step = 0; step < T && (picked < zonesWanted || distinct < width); step++) {
        const j = i + step < T ? i + step : i + step - T;
        const m = this.owners[j];
        if (memberStamp[m] === stamp) continue;
        memberStamp[m] = stamp;
        distinct++;
        const z = this.zoneOfMember[m];
        if (picked < zonesWanted && zoneStamp[z] !== stamp) {
          zoneStamp[z] = stamp;
          table[base + picked++] = m;
        } else skipped.push(m);
      }
      for (let s = 0; picked < width; s++) table[base + picked++] = skipped[s];
      assert.equal(picked, width);
    }
    if (this.replicaTables.size >= RING_LIMITS.replicaTablesMax) {
      this.replicaTables.delete(this.replicaTables.keys().next().value as number);
    }
    this.replicaTables.set(width, table);
    return table;
  }
}
