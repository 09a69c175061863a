/**
 * The logging surface every layer takes. Layers depend on this interface, not on winston; the node
 * wires in winston child loggers (src/node/logging.ts). Fields are structured, never interpolated.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** Discards everything: the default for libraries and tests. */
export const nullLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return nullLogger;
  },
};

/**
 * Wraps a logger so that at most `perWindow` lines per key are written per `windowMs`; the rest are
 * counted and summarised when the window rolls. For bad-input logging that attackers could flood.
 */
export function rateLimited(logger: Logger, windowMs = 10_000, perWindow = 5, now: () => number = Date.now) {
  const windows = new Map<string, { start: number; count: number; suppressed: number }>();
  return (key: string, message: string, fields?: LogFields): void => {
    const t = now();
    let w = windows.get(key);
    if (!w || t - w.start >= windowMs) {
      if (w && w.suppressed > 0) logger.warn(`${key}: ${w.suppressed} similar messages suppressed`, { key });
      w = { start: t, count: 0, suppressed: 0 };
      windows.set(key, w);
      if (windows.size > 1000) windows.delete(windows.keys().next().value as string);
    }
    if (w.count < perWindow) {
      w.count += 1;
      logger.warn(message, fields);
    } else {
      w.suppressed += 1;
    }
  };
}
