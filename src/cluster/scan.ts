/**
 * Walking the whole store without blocking the event loop: background tasks (anti-entropy, streaming,
 * clean-up) visit entries in chunks and yield between them, so gossip and client requests keep flowing
 * while a million keys are scanned.
 */
import { type Clock, systemClock, yieldTurn } from '../clock.js';
import type { Entry, Store } from '../storage/types.js';

/** Entries visited between two yields to the event loop. */
export const SCAN_CHUNK_ENTRIES = 4_096;

/** Calls `visit` for every entry; `visit` returns false to stop early. Yields on `clock`'s event loop. */
export async function scanStore(store: Store, visit: (key: string, entry: Entry) => boolean | void, clock: Clock = systemClock): Promise<void> {
  let inChunk = 0;
  for (const [key, entry] of store.entries()) {
    if (visit(key, entry) === false) return;
    inChunk += 1;
    if (inChunk >= SCAN_CHUNK_ENTRIES) {
      inChunk = 0;
      await yieldTurn(clock);
    }
  }
}
