/**
 * The agent's last-resort handler. Background work runs through BackgroundTasks, which catches and
 * logs; a rejection or exception that escapes anyway is a bug. Node 20 would exit at once, possibly in
 * the middle of a write. Instead: log it loudly (with the stack), then stop the node the graceful way
 * (close the RPC server, flush and close the store), exiting non-zero. A second one while stopping
 * only logs: the stop is already under way, bounded by shutdown.timeoutMs.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';

export interface LastResortOptions {
  logger: Logger;
  /** Starts the graceful stop (called at most once). */
  stop: (reason: string) => void;
}

/** Installs the handlers on `proc` (process); returns a function that removes them. */
export function installLastResort(proc: EventEmitter, options: LastResortOptions): () => void {
  let fired = false;
  const handle = (kind: string, err: unknown): void => {
    const e = err instanceof Error ? err : new Error(String(err));
    options.logger.error(`${kind}: a bug; stopping the node cleanly`, { error: e.message, stack: e.stack });
    if (fired) return;
    fired = true;
    options.stop(kind);
  };
  const onRejection = (reason: unknown): void => handle('unhandled promise rejection', reason);
  const onException = (err: unknown): void => handle('uncaught exception', err);
  proc.on('unhandledRejection', onRejection);
  proc.on('uncaughtException', onException);
  return () => {
    proc.off('unhandledRejection', onRejection);
    proc.off('uncaughtException', onException);
  };
}
