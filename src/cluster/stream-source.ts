/**
 * The sending side of range streaming (`internal.stream`). A node that newly owns token ranges asks
 * each up member of the ring it last synced with ("base") for the keys it lacks. Each source sends
 * only the keys it is the designated source for: the first member of the key's base preference list
 * that the puller did not exclude (itself, down nodes), so every key comes from one place.
 *
 * The first call builds a session: the matching keys, listed once in a chunked scan. Later calls page
 * through it in batches bounded by keys and bytes (the puller's `bytesMax`, never more than this
 * node's own frame budget; batch.ts). Sessions are bounded in number and idle time. A session id is a
 * counter and 64 random bits drawn from the injected clock (seeded in the simulator, so a seed replays
 * the same ids); the random part keeps a restarted source from taking an old id for a new session.
 */
import { type Clock, systemClock } from '../clock.js';
import { ShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import { RangeSet, rangeFromWire } from '../ring/ranges.js';
import type { Store } from '../storage/types.js';
import type { Args } from './args.js';
import { entryToWire, int, optInt, str, strArray } from './args.js';
import type { RingFactory, RingLike } from './ports.js';
import { BATCH_ITEMS_MAX, entryWireBytes, keysOnlyMutant } from './batch.js';
import { scanStore } from './scan.js';
/** Most ranges or base members a stream request may name. */
const STREAM_LIST_MAX = 1 << 20;

export interface StreamSourceOptions {
  selfId: string;
  store: Store;
  ringFactory: RingFactory;
  sessionsMax: number;
  sessionIdleMs: number;
  /** Byte budget of one batch (batch.ts batchBytesMax of this node's frame limit). */
  batchBytesMax: number;
  logger: Logger;
  /** Session idle time (monotonic) and session ids (random). Default systemClock. */
  clock?: Clock;
}

interface Session {
  keys: string[];
  position: number;
  lastUsedMs: number;
}

export class StreamSource {
  private readonly o: StreamSourceOptions;
  private readonly clock: Clock;
  private readonly sessions = new Map<string, Session>();
  private sessionSeq = 0;
  private readonly counters = { sessions: 0, emptyAnswers: 0, keysSent: 0, bytesSent: 0 };

  constructor(options: StreamSourceOptions) {
    this.o = options;
    this.clock = options.clock ?? systemClock;
  }

  /** A new session id: `<counter>-<16 hex digits>` (see the top of this file). */
  private newSessionId(): string {
    const word = (): string => Math.floor(this.clock.random() * 2 ** 32).toString(16).padStart(8, '0');
    this.sessionSeq += 1;
    return `${this.sessionSeq.toString(36)}-${word()}${word()}`;
  }

  async handle(args: Args): Promise<unknown> {
    const op = 'internal.stream';
    const limit = optInt(op, args, 'limit', 1, BATCH_ITEMS_MAX) ?? 1_000;
    const bytesMax = Math.min(optInt(op, args, 'bytesMax', 1) ?? this.o.batchBytesMax, this.o.batchBytesMax);
    this.evictIdle();
    let id = args.session === undefined || args.session === null ? null : str(op, args, 'session');
    let session: Session | undefined;
    if (id === null) {
      if (this.sessions.size >= this.o.sessionsMax) {
        throw new ShoalError('TOO_MANY_REQUESTS', `${this.sessions.size} stream sessions open (limit ${this.o.sessionsMax})`);
      }
      const keys = await this.matchingKeys(args);
      if (keys.length === 0) {
        // Nothing to send (an empty store, or no key in the wanted ranges): done at once, no session
        // to open, page or expire. A rolling start asks every member; this keeps that answer cheap.
        this.counters.emptyAnswers += 1;
        return { session: null, entries: [], done: true, total: 0 };
      }
      session = { keys, position: 0, lastUsedMs: this.clock.monotonicMs() };
      id = this.newSessionId();
      this.sessions.set(id, session);
      this.counters.sessions += 1;
    } else {
      session = this.sessions.get(id);
      if (!session) throw new ShoalError('BAD_REQUEST', `${op}: unknown or expired session ${id}`);
    }
    session.lastUsedMs = this.clock.monotonicMs();
    const entries: Array<[string, Args]> = [];
    let bytes = 0;
    while (session.position < session.keys.length && entries.length < limit) {
      const key = session.keys[session.position];
      const entry = this.o.store.getEntry(key);
      if (entry) {
        const size = entryWireBytes(key, entry);
        if (entries.length > 0 && bytes + size > bytesMax && !keysOnlyMutant()) break; // the next batch starts with it
        entries.push([key, entryToWire(entry)]);
        bytes += size;
      }
      session.position += 1;
    }
    const done = session.position >= session.keys.length;
    if (done) this.sessions.delete(id);
    this.counters.keysSent += entries.length;
    this.counters.bytesSent += bytes;
    return { session: id, entries, done, total: session.keys.length };
  }

  stats(): { open: number; sessions: number; emptyAnswers: number; keysSent: number; bytesSent: number } {
    return { open: this.sessions.size, ...this.counters };
  }

  private async matchingKeys(args: Args): Promise<string[]> {
    const op = 'internal.stream';
    const puller = str(op, args, 'puller');
    const n = int(op, args, 'n', 1, 64);
    const vnodes = int(op, args, 'vnodes', 1, 1 << 16);
    const exclude = new Set(strArray(op, args, 'exclude', STREAM_LIST_MAX));
    if (!Array.isArray(args.ranges) || args.ranges.length > STREAM_LIST_MAX) throw new ShoalError('BAD_REQUEST', `${op}: "ranges" must be an array`);
    if (!Array.isArray(args.base) || args.base.length > STREAM_LIST_MAX) throw new ShoalError('BAD_REQUEST', `${op}: "base" must be an array`);
    const wanted = new RangeSet(args.ranges.map((r) => rangeFromWire(r)));
    const baseMembers = args.base.map((m) => {
      const member = m as Args;
      const id = str(op, member, 'id');
      return typeof member.zone === 'string' ? { id, zone: member.zone } : { id };
    });
    // Built at the first key in a wanted range: a store with no such key (a rolling start's empty
    // stores) never pays for a ring of every member's vnodes.
    let base: RingLike | null = null;
    const keys: string[] = [];
    const visit = (key: string): void => {
      const token = this.o.ringFactory.hashKey(key);
      if (!wanted.has(token)) return;
      base ??= this.o.ringFactory.build(baseMembers, { vnodes });
      const owners = base.replicasForToken(token, n);
      if (owners.includes(puller)) return; // the puller already had it
      if (owners.find((id) => !exclude.has(id)) === this.o.selfId) keys.push(key);
    };
    await scanStore(this.o.store, visit, this.clock);
    return keys;
  }

  private evictIdle(): void {
    const now = this.clock.monotonicMs();
    for (const [id, s] of this.sessions) {
      if (now - s.lastUsedMs > this.o.sessionIdleMs) {
        this.sessions.delete(id);
        this.o.logger.info('stream session expired', { session: id, sent: s.position, total: s.keys.length });
      }
    }
  }
}
