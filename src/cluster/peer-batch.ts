/**
 * `internal.batch`: the per-key node-to-node calls a coordinator makes (replica writes, replica reads,
 * hints for stand-ins, and the read repairs and hint replays that use the same ops) to one peer
 * within one event-loop turn travel in ONE frame and are answered with per-item results.
 *
 * Sender (PeerBatcher): calls are queued per address and sent when the turn ends (the clock's setImmediate:
 * after the poll phase has handled every readable socket, so one frame carries the work of every
 * client request read in that turn). A queue is sent early when the next item would take it past
 * the byte bound (batchBytesMax of batch.ts: the frame limit less room for the envelope) or the
 * item bound. A queue of one item goes as the plain op (no wrapping). A peer that does
 * not know `internal.batch` (an older node) gets plain calls from then on.
 *
 * Receiver (runBatch): every item is started at once, in order, so that the store's group commit
 * (one WAL write and, with fsync always, one fdatasync for everything appended in one turn) covers
 * all the writes of the frame; the answer waits for all of them. Read results are bounded in bytes:
 * the reads past the response bound are answered "too large" and the sender re-asks them one by one.
 *
 * Wire form: args `{ items: [[op, args], ...] }`, result `{ results: [{ r: result } | { e: { code,
 * message } }, ...] }` in item order (docs/CLUSTER.md).
 */
import assert from 'node:assert/strict';
import { type Clock, systemClock } from '../clock.js';
import { isErrorCode, ShoalError, toShoalError } from '../errors.js';
import type { Args } from './args.js';
import { ENTRY_OVERHEAD_BYTES } from './batch.js';

export const BATCH_OP = 'internal.batch';

/** The ops that ride in a batch: per-key, answered from the local store, small requests. */
export const BATCHABLE_OPS: ReadonlySet<string> = new Set(['internal.apply', 'internal.read', 'internal.hint']);

/**
 * Most items one batch carries. 1024: far more than one turn of a busy node produces per peer
 * (the in-flight limit per client connection is 1024), and bounds the receiver's work per frame.
 */
export const PEER_BATCH_ITEMS_MAX = 1024;

/** Bytes an item costs on the wire beyond its key and value (op name, field names, version). */
const ITEM_OVERHEAD_BYTES = ENTRY_OVERHEAD_BYTES;

function bytesOfValue(value: unknown): number {
  if (value instanceof Uint8Array) return value.length;
  if (typeof value === 'string') return value.length * 3; // UTF-16 units to UTF-8 bytes, at most
  return 0;
}

/** An upper estimate of an item's encoded size: its strings and binary values plus a fixed overhead. */
export function itemBytes(args: Args): number {
  let bytes = ITEM_OVERHEAD_BYTES;
  for (const field in args) {
    const value = args[field];
    if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
      for (const inner in value as Args) bytes += bytesOfValue((value as Args)[inner]) + 16;
    } else {
      bytes += bytesOfValue(value) + 16;
    }
  }
  return bytes;
}

type Send = (addr: string, op: string, args: Args, timeoutMs: number) => Promise<unknown>;

interface Item {
  op: string;
  args: Args;
  timeoutMs: number;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

interface Queue {
  items: Item[];
  bytes: number;
}

export interface PeerBatcherStats {
  /** Batch frames sent (each carrying two or more items). */
  batches: number;
  /** Items sent inside batch frames. */
  batchedItems: number;
  /** Calls sent as plain ops (alone in their turn, too large, or to a peer without internal.batch). */
  single: number;
}

/** Queues per-key calls per address and sends each turn's calls to one address as one frame. */
export class PeerBatcher {
  private readonly queues = new Map<string, Queue>();
  /** Addresses that answered that they do not know internal.batch. */
  private readonly plainOnly = new Set<string>();
  private scheduled = false;
  readonly counters: PeerBatcherStats = { batches: 0, batchedItems: 0, single: 0 };

  constructor(
    private readonly send: Send,
    private readonly bytesMax: number,
    private readonly itemsMax: number = PEER_BATCH_ITEMS_MAX,
    /** Whose event loop "the end of the turn" is (default systemClock; the simulator's node clock). */
    private readonly clock: Clock = systemClock,
  ) {
    assert.ok(bytesMax > ITEM_OVERHEAD_BYTES, 'a batch must hold at least one item');
    assert.ok(Number.isInteger(itemsMax) && itemsMax >= 2, 'a batch holds at least two items');
  }

  call(addr: string, op: string, args: Args, timeoutMs: number): Promise<unknown> {
    const bytes = itemBytes(args);
    if (!BATCHABLE_OPS.has(op) || bytes > this.bytesMax || this.plainOnly.has(addr)) {
      this.counters.single += 1;
      return this.send(addr, op, args, timeoutMs);
    }
    let queue = this.queues.get(addr);
    if (queue !== undefined && (queue.bytes + bytes > this.bytesMax || queue.items.length >= this.itemsMax)) {
      this.queues.delete(addr);
      this.sendQueue(addr, queue);
      queue = undefined;
    }
    if (queue === undefined) {
      queue = { items: [], bytes: 0 };
      this.queues.set(addr, queue);
    }
    const q = queue;
    q.bytes += bytes;
    if (!this.scheduled) {
      this.scheduled = true;
      this.clock.setImmediate(this.flushBound);
    }
    return new Promise((resolve, reject) => {
      q.items.push({ op, args, timeoutMs, resolve, reject });
    });
  }

  private readonly flushBound = (): void => this.flush();

  /** Sends every queue now. */
  flush(): void {
    this.scheduled = false;
    for (const [addr, queue] of this.queues) this.sendQueue(addr, queue);
    this.queues.clear();
  }

  private sendQueue(addr: string, queue: Queue): void {
    const items = queue.items;
    assert.ok(items.length <= this.itemsMax, 'a batch never holds more than itemsMax items');
    if (items.length === 0) return;
    if (items.length === 1) {
      const item = items[0];
      this.counters.single += 1;
      this.send(addr, item.op, item.args, item.timeoutMs).then(item.resolve, item.reject);
      return;
    }
    this.counters.batches += 1;
    this.counters.batchedItems += items.length;
    let timeoutMs = 0;
    const wire = new Array<[string, Args]>(items.length);
    for (let i = 0; i < items.length; i++) {
      wire[i] = [items[i].op, items[i].args];
      if (items[i].timeoutMs > timeoutMs) timeoutMs = items[i].timeoutMs;
    }
    this.send(addr, BATCH_OP, { items: wire }, timeoutMs).then(
      (reply) => this.settle(addr, items, reply),
      (err: unknown) => {
        if (isUnknownBatchOp(err)) {
          this.plainOnly.add(addr);
          this.resendPlain(addr, items);
          return;
        }
        for (const item of items) item.reject(err);
      },
    );
  }

  private settle(addr: string, items: Item[], reply: unknown): void {
    const results = (reply as { results?: unknown } | null)?.results;
    if (!Array.isArray(results) || results.length !== items.length) {
      const err = new ShoalError('INTERNAL', `${BATCH_OP} to ${addr}: the answer does not have one result per item`, { addr });
      for (const item of items) item.reject(err);
      return;
    }
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const result = results[i] as { r?: unknown; e?: { code?: unknown; message?: unknown } } | null;
      if (result !== null && typeof result === 'object' && 'r' in result) {
        item.resolve(result.r);
        continue;
      }
      const e = result?.e;
      const code = isErrorCode(e?.code) ? e.code : 'INTERNAL';
      if (code === 'FRAME_TOO_LARGE') {
        // Past the receiver's response bound: asked again alone.
        this.counters.single += 1;
        this.send(addr, item.op, item.args, item.timeoutMs).then(item.resolve, item.reject);
        continue;
      }
      const message = typeof e?.message === 'string' ? e.message : `${BATCH_OP} item ${i} failed without a reason`;
      item.reject(new ShoalError(code, message, { addr }));
    }
  }

  private resendPlain(addr: string, items: Item[]): void {
    for (const item of items) {
      this.counters.single += 1;
      this.send(addr, item.op, item.args, item.timeoutMs).then(item.resolve, item.reject);
    }
  }
}

/** The answer of a node that predates internal.batch. */
function isUnknownBatchOp(err: unknown): boolean {
  return err instanceof ShoalError && err.code === 'BAD_REQUEST' && err.message.includes(`"${BATCH_OP}"`);
}

/** Bytes of the values a read result carries (what the response bound counts). */
function resultBytes(result: unknown): number {
  const entry = (result as { entry?: { value?: unknown } | null } | null)?.entry;
  return entry?.value instanceof Uint8Array ? entry.value.length + ITEM_OVERHEAD_BYTES : ITEM_OVERHEAD_BYTES;
}

/**
 * Runs the items of one internal.batch with `handle` (all started before any is awaited, so that
 * their store writes share one group commit) and answers per item. Reads past `responseBytesMax`
 * are answered FRAME_TOO_LARGE (the sender asks them again alone).
 */
export async function runBatch(args: Args, handle: (op: string, args: Args) => Promise<unknown>, responseBytesMax: number): Promise<unknown> {
  const items = args.items;
  if (!Array.isArray(items) || items.length > PEER_BATCH_ITEMS_MAX) {
    throw new ShoalError('BAD_REQUEST', `${BATCH_OP}: "items" must be an array of at most ${PEER_BATCH_ITEMS_MAX} [op, args] pairs`);
  }
  const pending = new Array<Promise<unknown>>(items.length);
  for (let i = 0; i < items.length; i++) {
    const item: unknown = items[i];
    if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== 'string' || item[1] === null || typeof item[1] !== 'object' || Array.isArray(item[1])) {
      pending[i] = Promise.reject(new ShoalError('BAD_REQUEST', `${BATCH_OP}: item ${i} must be [op, args]`));
      continue;
    }
    const op = item[0];
    if (!BATCHABLE_OPS.has(op)) {
      pending[i] = Promise.reject(new ShoalError('BAD_REQUEST', `${BATCH_OP}: "${op}" cannot be batched`));
      continue;
    }
    try {
      pending[i] = handle(op, item[1] as Args);
    } catch (err) {
      pending[i] = Promise.reject(err);
    }
  }
  const settled = await Promise.allSettled(pending);
  const results = new Array<{ r: unknown } | { e: { code: string; message: string } }>(settled.length);
  let bytes = 0;
  for (let i = 0; i < settled.length; i++) {
    const s = settled[i];
    if (s.status === 'rejected') {
      results[i] = { e: toShoalError(s.reason).toWire() };
      continue;
    }
    const b = resultBytes(s.value);
    if (bytes + b > responseBytesMax && i > 0) {
      results[i] = { e: { code: 'FRAME_TOO_LARGE', message: `${BATCH_OP}: answer over ${responseBytesMax} bytes; ask this item alone` } };
      continue;
    }
    bytes += b;
    results[i] = { r: s.value };
  }
  return { results };
}
