/**
 * One coordinated write or read as a small object (the coordinator computes the owners and how many
 * replies are needed; a round does the rest). A round talks to replicas only through the functions
 * it is given, so it is tested without a network (test/cluster/rounds.test.ts).
 *
 * WriteRound: sends the entry to every owner at once; an owner that is down or fails is covered by
 * `cover` (a stand-in's hint, which may count, or the coordinator's own, which does not). Resolves as
 * soon as `need` attempts counted; rejects with UNAVAILABLE once the rest cannot make up the number,
 * with the first client fault (every replica would refuse the same request) at once, or TIMEOUT.
 *
 * ReadRound: asks `need` of the targets (this node first when it is one), then one more whenever one
 * fails or answers while still syncing, and all the rest after `speculativeMs` without enough
 * replies. Answers with the newest entry among the replies once `need` firm (not syncing) replies are
 * in, or, when everyone has answered, with syncing replies counted too. `onSettled` sees every reply
 * once all the asked replicas settled (read repair).
 */
import assert from 'node:assert/strict';
import { type Clock, systemClock } from '../clock.js';
import { ShoalError, toShoalError } from '../errors.js';
import type { Entry } from '../storage/types.js';
import { compareVersion } from '../storage/types.js';

/** Errors that are the request's fault: every replica would say the same, so fail at once. */
export const CLIENT_FAULTS = new Set(['KEY_TOO_LARGE', 'VALUE_TOO_LARGE', 'BAD_REQUEST']);

export interface ReadReply {
  node: string;
  entry: Entry | null;
  /** The replica is still streaming in ranges it newly owns: a miss may just not have arrived yet. */
  syncing: boolean;
}

export function newest(replies: ReadReply[]): Entry | null {
  let best: Entry | null = null;
  for (const r of replies) {
    if (r.entry && (best === null || compareVersion(r.entry, best) > 0)) best = r.entry;
  }
  return best;
}

export function unavailable(what: string, got: number, need: number, n: number, detail: string): ShoalError {
  return new ShoalError(
    'UNAVAILABLE',
    `only ${got} of ${need} replicas answered the ${what} (${n} replicas${detail})`,
    { answered: got, required: need, replicas: n },
  );
}

function failureDetail(failures: string[]): string {
  return failures.length ? `; ${failures.slice(0, 3).join('; ')}` : '';
}

export interface WriteRoundOptions {
  key: string;
  owners: string[];
  /** The replication factor N (default: the owners): owners fewer than N are replicas not in the ring. */
  n?: number;
  need: number;
  timeoutMs: number;
  isUp: (id: string) => boolean;
  /** Sends the entry to one owner (rejects when it did not take it). */
  apply: (owner: string) => Promise<void>;
  /** An owner that cannot take the write: true if a hint held for it counts towards `need`. */
  cover: (owner: string) => Promise<boolean>;
  /** Arms the timeout (default systemClock). */
  clock?: Clock;
}

export class WriteRound {
  private acks = 0;
  private pending = 0;
  private done = false;
  private readonly failures: string[] = [];
  /** Every attempt, settled or not (the coordinator waits for them before reporting idle). */
  readonly attempts: Array<Promise<boolean>>;
  readonly result: Promise<void>;

  constructor(private readonly o: WriteRoundOptions) {
    assert.ok(Number.isInteger(o.need) && o.need >= 1, `a write needs at least one ack, not ${o.need}`);
    let resolve!: () => void;
    let reject!: (err: ShoalError) => void;
    this.result = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const clock = o.clock ?? systemClock;
    const timer = clock.setTimeout(() => this.finish(new ShoalError('TIMEOUT', `write of "${o.key}" timed out after ${o.timeoutMs} ms`)), o.timeoutMs);
    timer.unref();
    this.finish = (err?: ShoalError): void => {
      if (this.done) return;
      this.done = true;
      clock.clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const n = o.n ?? o.owners.length;
    assert.ok(o.owners.length <= n, `${o.owners.length} owners for ${n} replicas`);
    if (n > o.owners.length) this.failures.push(`${n - o.owners.length} of ${n} replicas are not in the ring`);
    if (o.need > o.owners.length) {
      // Fewer owners than the quorum (members out of the ring): refused before anything is sent.
      this.attempts = [];
      this.finish(unavailable('write', 0, o.need, n, this.failures.length > 0 ? failureDetail(this.failures) : `; only ${o.owners.length} owners`));
      return;
    }
    this.attempts = o.owners.map((owner) => this.send(owner));
    for (const attempt of this.attempts) this.track(attempt);
    this.check();
  }

  get settled(): boolean {
    return this.done;
  }

  private finish: (err?: ShoalError) => void;

  private track(attempt: Promise<boolean>): void {
    this.pending += 1;
    attempt.then(
      (counted) => {
        this.pending -= 1;
        if (counted) this.acks += 1;
        assert.ok(this.acks <= this.o.owners.length && this.pending >= 0, `write of "${this.o.key}": ${this.acks} acks, ${this.pending} pending`);
        this.check();
      },
      (err: unknown) => {
        this.pending -= 1;
        this.finish(toShoalError(err));
      },
    );
  }

  private check(): void {
    if (this.done) return;
    if (this.acks >= this.o.need) this.finish();
    else if (this.pending === 0) this.finish(unavailable('write', this.acks, this.o.need, this.o.n ?? this.o.owners.length, failureDetail(this.failures)));
  }

  private async send(owner: string): Promise<boolean> {
    if (!this.o.isUp(owner)) {
      this.failures.push(`${owner} is down`);
      return this.o.cover(owner);
    }
    try {
      await this.o.apply(owner);
      return true;
    } catch (err) {
      const e = toShoalError(err);
      if (CLIENT_FAULTS.has(e.code)) throw e;
      this.failures.push(`${owner}: ${e.code}`);
      return this.o.cover(owner);
    }
  }
}

export interface ReadRoundOptions {
  key: string;
  /** Up replicas in the order to ask them (this node first when it is one). */
  targets: string[];
  /** The key's replica count (for messages). */
  n: number;
  need: number;
  timeoutMs: number;
  /** Ask every target at once. */
  all: boolean;
  speculativeMs: number;
  /** Reads one replica's entry (rejects when it could not). */
  ask: (node: string) => Promise<ReadReply>;
  onSettled?: (key: string, replies: ReadReply[]) => void;
  /** Told about every replica call started (the coordinator waits for them before reporting idle). */
  track?: (call: Promise<void>) => void;
  /** Arms the timeout and the speculative timer (default systemClock). */
  clock?: Clock;
}

export class ReadRound {
  readonly replies: ReadReply[] = [];
  readonly result: Promise<Entry | null>;
  /** The replica calls started so far (the coordinator waits for them before reporting idle). */
  readonly calls: Array<Promise<void>> = [];
  private launched = 0;
  private settledCount = 0;
  private done = false;
  private reported = false;
  private readonly failures: string[] = [];
  private finish: (err?: ShoalError) => void = () => undefined;

  constructor(private readonly o: ReadRoundOptions) {
    assert.ok(Number.isInteger(o.need) && o.need >= 1, `a read needs at least one reply, not ${o.need}`);
    const clock = o.clock ?? systemClock;
    this.result = new Promise<Entry | null>((resolve, reject) => {
      const timer = clock.setTimeout(() => this.finish(new ShoalError('TIMEOUT', `read of "${o.key}" timed out after ${o.timeoutMs} ms`)), o.timeoutMs);
      timer.unref();
      const speculative = o.all || o.need >= o.targets.length ? null : clock.setTimeout(() => this.launch(o.targets.length), o.speculativeMs);
      speculative?.unref();
      this.finish = (err?: ShoalError): void => {
        if (this.done) return;
        this.done = true;
        clock.clearTimeout(timer);
        if (speculative) clock.clearTimeout(speculative);
        if (err) reject(err);
        else resolve(newest(this.replies));
      };
    });
    if (o.need > o.targets.length) {
      // Fewer replicas up than the quorum: refused before anything is sent.
      this.finish(unavailable('read', 0, o.need, o.n, `; only ${o.targets.length} up`));
      return;
    }
    this.launch(o.all ? o.targets.length : o.need);
  }

  get settled(): boolean {
    return this.done;
  }

  private firm(): number {
    return this.replies.filter((r) => !r.syncing).length;
  }

  private check(): void {
    const { targets, need } = this.o;
    if (this.firm() >= need) this.finish();
    else if (this.settledCount === this.launched && this.launched < targets.length && !this.done) this.launch(this.launched + 1);
    // Replies of syncing replicas count only when nothing firmer is coming.
    else if (this.settledCount === targets.length && this.replies.length >= need) this.finish();
    else if (this.settledCount === targets.length) this.finish(unavailable('read', this.replies.length, need, this.o.n, failureDetail(this.failures)));
    if (this.settledCount === this.launched && this.done && !this.reported) {
      this.reported = true;
      this.o.onSettled?.(this.o.key, this.replies);
    }
  }

  private askOne(id: string): Promise<void> {
    return this.o
      .ask(id)
      .then(
        (reply) => {
          this.replies.push(reply);
        },
        (err: unknown) => {
          const e = toShoalError(err);
          this.failures.push(`${id}: ${e.code}`);
          if (CLIENT_FAULTS.has(e.code)) this.finish(e);
        },
      )
      .finally(() => {
        this.settledCount += 1;
        assert.ok(this.settledCount <= this.launched && this.replies.length <= this.launched, `read of "${this.o.key}": more replies or settled calls than calls`);
        this.check();
      });
  }

  /** Asks targets up to index `upTo` (exclusive) that have not been asked yet. */
  private launch(upTo: number): void {
    if (this.done) return;
    while (this.launched < Math.min(upTo, this.o.targets.length)) {
      const call = this.askOne(this.o.targets[this.launched++]);
      this.calls.push(call);
      this.o.track?.(call);
    }
  }
}
