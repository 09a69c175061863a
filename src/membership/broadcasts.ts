/**
 * The transmit-limited broadcast queue: membership updates waiting to be piggybacked on outgoing
 * datagrams. Each update is sent `limit` times (retransmitLimit), fewest-sent first and newest first
 * among equals; a newer update about the same member replaces the queued one. Buckets by transmit
 * count keep `take` proportional to what it returns, not to the queue length.
 */
import assert from 'node:assert/strict';
import type { GossipMessage } from './messages.js';

/** memberlist's retransmit rule: λ · ceil(log10(n + 1)). */
export function retransmitLimit(retransmitMult: number, members: number): number {
  return retransmitMult * Math.max(1, Math.ceil(Math.log10(members + 1)));
}

interface Item {
  key: string;
  message: GossipMessage;
  bytes: number;
  transmits: number;
  live: boolean;
}

/** No message is smaller than this; below it a datagram is full. */
const MESSAGE_BYTES_MIN = 12;

export class BroadcastQueue {
  private readonly buckets: Item[][] = [];
  private readonly stale: number[] = [];
  private readonly byKey = new Map<string, Item>();
  private droppedCount = 0;

  constructor(private readonly queueMax: number) {
    assert.ok(queueMax > 0);
  }

  /** Queues `message` about `key`, replacing any queued update about the same key. */
  enqueue(key: string, message: GossipMessage, bytes: number): void {
    const old = this.byKey.get(key);
    if (old !== undefined) this.retire(old);
    const item: Item = { key, message, bytes, transmits: 0, live: true };
    this.byKey.set(key, item);
    this.bucket(0).push(item);
    while (this.byKey.size > this.queueMax) this.dropMostSent();
  }

  /**
   * Takes updates that fit in `bytesAvailable` (at most `countMax`), counts one transmission for
   * each, and forgets those that reached `limit` transmissions.
   */
  take(bytesAvailable: number, countMax: number, limit: number): { messages: GossipMessage[]; bytes: number } {
    const taken: Item[] = [];
    let budget = bytesAvailable;
    for (let t = 0; t < this.buckets.length && budget >= MESSAGE_BYTES_MIN && taken.length < countMax; t += 1) {
      const bucket = this.buckets[t];
      this.trimTail(t);
      for (let i = bucket.length - 1; i >= 0 && budget >= MESSAGE_BYTES_MIN && taken.length < countMax; i -= 1) {
        const item = bucket[i];
        if (!item.live || item.transmits !== t || item.bytes > budget) continue;
        taken.push(item);
        budget -= item.bytes;
      }
    }
    const messages: GossipMessage[] = taken.map((item) => item.message);
    // Oldest first into the next bucket, so that newest-first order survives the move.
    for (let i = taken.length - 1; i >= 0; i -= 1) {
      const item = taken[i];
      this.markStale(item.transmits);
      item.transmits += 1;
      if (item.transmits >= limit) {
        item.live = false;
        this.byKey.delete(item.key);
      } else {
        this.bucket(item.transmits).push(item);
      }
    }
    return { messages, bytes: bytesAvailable - budget };
  }

  /** Transmissions so far of the queued update about `key`, or undefined when none is queued. */
  transmitsOf(key: string): number | undefined {
    return this.byKey.get(key)?.transmits;
  }

  /** The queued update about `key`, if any. */
  peek(key: string): GossipMessage | undefined {
    return this.byKey.get(key)?.message;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Updates dropped because the queue was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Forgets queued updates beyond `limit` transmissions (after the cluster shrank, say). */
  prune(limit: number): void {
    for (let t = limit; t < this.buckets.length; t += 1) {
      for (const item of this.buckets[t]) {
        if (item.live && item.transmits === t) this.retire(item);
      }
    }
  }

  private bucket(t: number): Item[] {
    while (this.buckets.length <= t) {
      this.buckets.push([]);
      this.stale.push(0);
    }
    return this.buckets[t];
  }

  private retire(item: Item): void {
    item.live = false;
    this.byKey.delete(item.key);
    this.markStale(item.transmits);
  }

  private markStale(t: number): void {
    this.stale[t] += 1;
    const bucket = this.buckets[t];
    if (this.stale[t] > 32 && this.stale[t] * 2 > bucket.length) {
      this.buckets[t] = bucket.filter((item) => item.live && item.transmits === t);
      this.stale[t] = 0;
    }
  }

  private trimTail(t: number): void {
    const bucket = this.buckets[t];
    while (bucket.length > 0) {
      const last = bucket[bucket.length - 1];
      if (last.live && last.transmits === t) break;
      bucket.pop();
      this.stale[t] = Math.max(0, this.stale[t] - 1);
    }
  }

  private dropMostSent(): void {
    for (let t = this.buckets.length - 1; t >= 0; t -= 1) {
      const victim = this.buckets[t].find((item) => item.live && item.transmits === t);
      if (victim !== undefined) {
        this.retire(victim);
        this.droppedCount += 1;
        return;
      }
    }
  }
}
