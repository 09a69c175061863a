/**
 * Errors with stable string codes. The same codes travel on the wire ({ code, message }) and decide
 * the CLI's exit status, so a code, once published in docs/PROTOCOL.md, never changes meaning.
 */

export const ERROR_CODES = [
  'NOT_FOUND', // the key has no live value
  'KEY_TOO_LARGE', // key bytes over the configured limit
  'VALUE_TOO_LARGE', // value bytes over the configured limit
  'FRAME_TOO_LARGE', // a wire frame over the configured limit
  'BAD_REQUEST', // malformed request: wrong types, missing fields, unknown operation
  'UNAVAILABLE', // not enough replicas or the node is not serving
  'TIMEOUT', // the operation did not complete in time
  'READ_ONLY', // writes are refused (durability failure, disk full)
  'BAD_HANDSHAKE', // protocol version or cluster name mismatch
  'TOO_MANY_REQUESTS', // in-flight or connection limit reached
  'CORRUPT', // on-disk data failed its checksum
  'CLOSED', // the store, connection or node is closed / shutting down
  'LOCKED', // a data dir is in use by another process
  'CONFIG', // a configuration value is invalid
  'INTERNAL', // a bug: reported, never expected
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

export class ShoalError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ShoalError';
    this.code = code;
    if (details !== undefined) this.details = details;
  }

  /**
   * The wire form: plain msgpack types only. A failed write carries the version it was stamped with
   * (`version`): it may have reached some replicas, so a client passes it as seenTs next time and its
   * later writes still win (docs/CLUSTER.md, "Versions").
   */
  toWire(): { code: ErrorCode; message: string; version?: { ts: number; node: string } } {
    const version = this.details?.version as { ts?: unknown; node?: unknown } | undefined;
    if (version !== undefined && typeof version.ts === 'number' && typeof version.node === 'string') {
      return { code: this.code, message: this.message, version: { ts: version.ts, node: version.node } };
    }
    return { code: this.code, message: this.message };
  }
}

/** Turns anything thrown into a ShoalError; unknown errors become INTERNAL. */
export function toShoalError(err: unknown): ShoalError {
  if (err instanceof ShoalError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ShoalError('INTERNAL', message);
}
