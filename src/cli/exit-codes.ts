/**
 * The CLI's exit statuses (docs/CLI.md, `shoal --help`). Scripts depend on them; they never change
 * meaning.
 */
import { ShoalError, toShoalError, type ErrorCode } from '../errors.js';

export const EXIT = {
  /** Success. */
  OK: 0,
  /** The key does not exist (get). */
  NOT_FOUND: 1,
  /** Bad command line or configuration. */
  USAGE: 2,
  /** The node is unreachable, not serving, or not enough replicas answered (retry may help). */
  UNAVAILABLE: 3,
  /** Any other error the server reported (e.g. VALUE_TOO_LARGE, READ_ONLY, INTERNAL). */
  ERROR: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

const UNAVAILABLE_CODES: ReadonlySet<ErrorCode> = new Set(['UNAVAILABLE', 'TIMEOUT', 'CLOSED', 'TOO_MANY_REQUESTS', 'BAD_HANDSHAKE', 'LOCKED']);

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof UsageError) return EXIT.USAGE;
  const code = toShoalError(err).code;
  if (code === 'NOT_FOUND') return EXIT.NOT_FOUND;
  if (code === 'CONFIG') return EXIT.USAGE;
  if (UNAVAILABLE_CODES.has(code)) return EXIT.UNAVAILABLE;
  return EXIT.ERROR;
}

/** A mistake on the command line: printed as one line, exit 2, never a stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The one line printed for an error (no stack: a bug shows as INTERNAL with its message). */
export function errorLine(err: unknown): string {
  if (err instanceof UsageError) return err.message;
  const e = toShoalError(err);
  if (e.code === 'CONFIG') return e.message;
  return `${e.message} (${e.code})`;
}

export { ShoalError };
