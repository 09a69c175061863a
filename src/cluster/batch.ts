/**
 * Node-to-node batches bounded in bytes as well as in items. Every path that moves many entries in
 * one call (anti-entropy pull and push, streaming, leave hand-off, clean-up) cuts its batches with
 * `cutBatches`, against a byte budget derived from the frame limit (`batchBytesMax`): the frame minus
 * room for the envelope (request id, operation, field names, a session id). A batch always holds at
 * least one item, so progress is guaranteed; the config requires frameBytesMax ≥ valueBytesMax +
 * keyBytesMax + 1024, so the largest single entry still fits in one frame.
 *
 * Sizes are estimates from above (`entryWireBytes`): msgpack headers of a [key, {value, ts, node,
 * expiresAtMs}] pair never exceed ENTRY_OVERHEAD_BYTES beyond the key, value and node id bytes.
 */
import assert from 'node:assert/strict';
import { mutant } from '../mutations.js';
import type { Entry } from '../storage/types.js';

/** Bytes of a frame kept free for the envelope around a batch. */
export const FRAME_ENVELOPE_BYTES = 4 * 1024;
/** Upper bound of the msgpack overhead of one [key, entry] pair (array, map, field names, ts, expiresAtMs). */
export const ENTRY_OVERHEAD_BYTES = 96;
/** Upper bound of the msgpack overhead of one version row [key, ts, node, tombstone]. */
export const ROW_OVERHEAD_BYTES = 32;
/** Most items one batch call may carry or ask for (the receiving side refuses more). */
export const BATCH_ITEMS_MAX = 10_000;

/**
 * Mutation 'repair-batch-keys-only' (src/mutations.ts): repair, anti-entropy, streaming, leave and
 * clean-up batches are cut by key count only, the byte bound ignored (the old bug: a batch of large
 * values exceeds the frame limit). Checked where the byte bound is: cutBatches, BatchAccumulator, the
 * stream source's pages and the replica's readBatch replies.
 */
export function keysOnlyMutant(): boolean {
  return mutant('repair-batch-keys-only');
}

/** The byte budget of one batch for a frame limit. */
export function batchBytesMax(frameBytesMax: number): number {
  assert.ok(Number.isInteger(frameBytesMax) && frameBytesMax > 2 * FRAME_ENVELOPE_BYTES, `frameBytesMax ${frameBytesMax} too small for batches`);
  return frameBytesMax - FRAME_ENVELOPE_BYTES;
}

/** An upper bound of the wire size of one [key, entry] pair. */
export function entryWireBytes(key: string, entry: Entry): number {
  return Buffer.byteLength(key) + (entry.value?.length ?? 0) + Buffer.byteLength(entry.node) + ENTRY_OVERHEAD_BYTES;
}

/** An upper bound of the wire size of one version row. */
export function rowWireBytes(key: string, node: string): number {
  return Buffer.byteLength(key) + Buffer.byteLength(node) + ROW_OVERHEAD_BYTES;
}

/**
 * Cuts `items` into consecutive batches of at most `itemsMax` items and at most `bytesMax` bytes
 * (by `sizeOf`); an item larger than bytesMax travels alone.
 */
export function cutBatches<T>(items: readonly T[], sizeOf: (item: T) => number, options: { bytesMax: number; itemsMax: number }): T[][] {
  const { bytesMax, itemsMax } = options;
  assert.ok(bytesMax > 0 && itemsMax > 0, 'batch limits must be positive');
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    assert.ok(size > 0, 'an item has a positive size');
    if (current.length > 0 && (current.length >= itemsMax || (bytes + size > bytesMax && !keysOnlyMutant()))) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Accumulates items per destination and says when a destination's batch is full (streaming, leave). */
export class BatchAccumulator<T> {
  private readonly batches = new Map<string, { items: T[]; bytes: number }>();

  constructor(private readonly limits: { bytesMax: number; itemsMax: number }) {}

  /** Adds an item; returns the batch to send first if adding it would overflow the destination's batch. */
  add(dest: string, item: T, size: number): T[] | null {
    const b = this.batches.get(dest) ?? { items: [], bytes: 0 };
    this.batches.set(dest, b);
    let full: T[] | null = null;
    if (b.items.length > 0 && (b.items.length >= this.limits.itemsMax || (b.bytes + size > this.limits.bytesMax && !keysOnlyMutant()))) {
      full = b.items;
      b.items = [];
      b.bytes = 0;
    }
    b.items.push(item);
    b.bytes += size;
    return full;
  }

  /** Takes every non-empty batch left. */
  drain(): Array<[string, T[]]> {
    const out: Array<[string, T[]]> = [];
    for (const [dest, b] of this.batches) if (b.items.length > 0) out.push([dest, b.items]);
    this.batches.clear();
    return out;
  }
}
