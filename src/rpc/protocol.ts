/**
 * The RPC protocol's message shapes and their runtime validation (no I/O). Every frame that arrives
 * from a socket is untrusted: it is checked here before any handler sees it. docs/PROTOCOL.md is the
 * human-readable contract; the names and rules below are its source of truth.
 */
import { ShoalError, isErrorCode, type ErrorCode } from '../errors.js';

/** Bumped only for incompatible changes; a mismatch fails the handshake. */
export const PROTOCOL_VERSION = 1;

/** The op of the first frame on every connection. */
export const HELLO_OP = 'hello';

/** The request id the clients use for the handshake (any valid id is accepted). */
export const HELLO_ID = 0;

/** Largest request id: ids must stay exact in every language's msgpack integer types. */
export const REQUEST_ID_MAX = 2 ** 32 - 1;

/** Op names longer than this are refused (they are counted per name in stats). */
export const OP_BYTES_MAX = 128;

export type RpcArgs = Record<string, unknown>;

export interface RpcRequest {
  id: number;
  op: string;
  args: RpcArgs;
}

export interface WireError {
  code: ErrorCode;
  message: string;
  /** A failed put/del: the version it was stamped with (it may have reached some replicas). */
  version?: { ts: number; node: string };
}

export type RpcResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number | null; ok: false; error: WireError };

export interface HelloArgs {
  version: number;
  cluster: string;
  /** Node id of the caller on node-to-node connections; absent for clients. */
  peer?: string;
}

export interface HelloResult {
  version: number;
  cluster: string;
  node: string;
}

/** A plain msgpack map (decoded to a plain object), not an array, Buffer or extension value. */
export function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

export function isRequestId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= REQUEST_ID_MAX;
}

export type ParsedRequest =
  | { ok: true; request: RpcRequest }
  /** `id` is null when the frame carries no usable id: the connection must then be closed. */
  | { ok: false; id: number | null; error: ShoalError };

/** Validates one decoded frame as a request. Never throws. */
export function parseRequest(frame: unknown): ParsedRequest {
  if (!isPlainMap(frame)) {
    return { ok: false, id: null, error: new ShoalError('BAD_REQUEST', 'a request must be a msgpack map') };
  }
  const { id, op, args } = frame;
  if (!isRequestId(id)) {
    return {
      ok: false,
      id: null,
      error: new ShoalError('BAD_REQUEST', `request id must be an integer in [0, ${REQUEST_ID_MAX}]`),
    };
  }
  if (typeof op !== 'string' || op.length === 0 || op.length > OP_BYTES_MAX) {
    return { ok: false, id, error: new ShoalError('BAD_REQUEST', `op must be a non-empty string of at most ${OP_BYTES_MAX} characters`) };
  }
  if (args === undefined || args === null) return { ok: true, request: { id, op, args: {} } };
  if (!isPlainMap(args)) return { ok: false, id, error: new ShoalError('BAD_REQUEST', 'args must be a msgpack map') };
  return { ok: true, request: { id, op, args } };
}

/**
 * Validates a response frame on the client side. Returns null when the frame is not a response at
 * all (the connection is then unusable).
 */
export function parseResponse(frame: unknown): RpcResponse | null {
  if (!isPlainMap(frame)) return null;
  const { id, ok } = frame;
  if (ok === true) {
    if (!isRequestId(id)) return null;
    return { id, ok: true, result: frame.result ?? null };
  }
  if (ok !== false || !(id === null || isRequestId(id))) return null;
  const error = frame.error;
  if (!isPlainMap(error)) return null;
  const code: ErrorCode = isErrorCode(error.code) ? error.code : 'INTERNAL';
  const message = typeof error.message === 'string' ? error.message : String(error.code);
  const version = error.version;
  if (isPlainMap(version) && typeof version.ts === 'number' && Number.isSafeInteger(version.ts) && typeof version.node === 'string') {
    return { id, ok: false, error: { code, message, version: { ts: version.ts, node: version.node } } };
  }
  return { id, ok: false, error: { code, message } };
}

export function okResponse(id: number, result: unknown): RpcResponse {
  return { id, ok: true, result: result === undefined ? null : result };
}

export function errorResponse(id: number | null, err: ShoalError): RpcResponse {
  return { id, ok: false, error: err.toWire() };
}

/** Checks hello args against this server's version and cluster; throws BAD_HANDSHAKE. */
export function checkHello(args: RpcArgs, clusterName: string): HelloArgs {
  const { version, cluster, peer } = args;
  if (version !== PROTOCOL_VERSION) {
    throw new ShoalError('BAD_HANDSHAKE', `protocol version ${String(version)} is not supported (this node speaks ${PROTOCOL_VERSION})`);
  }
  if (typeof cluster !== 'string') throw new ShoalError('BAD_HANDSHAKE', 'hello args.cluster must be a string');
  if (cluster !== clusterName) {
    throw new ShoalError('BAD_HANDSHAKE', `cluster name mismatch: this node is in cluster "${clusterName}", not "${cluster}"`);
  }
  if (peer !== undefined && peer !== null && (typeof peer !== 'string' || peer.length > OP_BYTES_MAX)) {
    throw new ShoalError('BAD_HANDSHAKE', `hello args.peer must be a string of at most ${OP_BYTES_MAX} characters`);
  }
  return typeof peer === 'string' ? { version, cluster, peer } : { version, cluster };
}

// ---- Per-op argument validators, shared by every layer that serves ops (same messages everywhere).

function badArg(name: string, expected: string, value: unknown): ShoalError {
  const got = value === null ? 'nil' : Buffer.isBuffer(value) ? 'bin' : Array.isArray(value) ? 'array' : typeof value;
  return new ShoalError('BAD_REQUEST', `args.${name} must be ${expected}, got ${got}`);
}

/** A required string argument, optionally capped in UTF-8 bytes (KEY_TOO_LARGE for `key`). */
export function requireString(args: RpcArgs, name: string, options: { bytesMax?: number; nonEmpty?: boolean } = {}): string {
  const value = args[name];
  if (typeof value !== 'string') throw badArg(name, 'a string', value);
  if (options.nonEmpty && value.length === 0) throw new ShoalError('BAD_REQUEST', `args.${name} must not be empty`);
  if (options.bytesMax !== undefined && Buffer.byteLength(value) > options.bytesMax) {
    const code = name === 'key' ? 'KEY_TOO_LARGE' : 'BAD_REQUEST';
    throw new ShoalError(code, `args.${name} is over ${options.bytesMax} bytes`);
  }
  return value;
}

export function optionalString(args: RpcArgs, name: string): string | undefined {
  const value = args[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badArg(name, 'a string', value);
  return value;
}

/**
 * A required msgpack bin argument. Returns a copy: decoded bins are views into the socket's receive
 * buffer, and keeping a small view alive would pin the whole chunk in memory.
 */
export function requireBin(args: RpcArgs, name: string, options: { bytesMax?: number } = {}): Buffer {
  const value = args[name];
  if (!(value instanceof Uint8Array)) throw badArg(name, 'bin (msgpack binary)', value);
  if (options.bytesMax !== undefined && value.length > options.bytesMax) {
    const code = name === 'value' ? 'VALUE_TOO_LARGE' : 'BAD_REQUEST';
    throw new ShoalError(code, `args.${name} is ${value.length} bytes, over the limit of ${options.bytesMax}`);
  }
  return Buffer.from(value);
}

export interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
}

function checkNumber(name: string, value: unknown, rule: NumberRule): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw badArg(name, 'a finite number', value);
  if (rule.integer && !Number.isInteger(value)) throw badArg(name, 'an integer', value);
  if (rule.min !== undefined && value < rule.min) throw new ShoalError('BAD_REQUEST', `args.${name} must be ≥ ${rule.min}`);
  if (rule.max !== undefined && value > rule.max) throw new ShoalError('BAD_REQUEST', `args.${name} must be ≤ ${rule.max}`);
  return value;
}

export function requireNumber(args: RpcArgs, name: string, rule: NumberRule = {}): number {
  return checkNumber(name, args[name], rule);
}

/** nil or absent → undefined. */
export function optionalNumber(args: RpcArgs, name: string, rule: NumberRule = {}): number | undefined {
  const value = args[name];
  if (value === undefined || value === null) return undefined;
  return checkNumber(name, value, rule);
}

/** nil or absent → undefined; otherwise one of `allowed`. */
export function optionalEnum<T extends string>(args: RpcArgs, name: string, allowed: readonly T[]): T | undefined {
  const value = args[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ShoalError('BAD_REQUEST', `args.${name} must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

export const CONSISTENCY_LEVELS = ['one', 'quorum', 'all'] as const;
export type Consistency = (typeof CONSISTENCY_LEVELS)[number];

/** Validated args of the three data ops, so every layer that serves them checks them the same way. */
export interface GetArgs {
  key: string;
  consistency?: Consistency;
}
export interface PutArgs {
  key: string;
  value: Buffer;
  ttlMs?: number;
  consistency?: Consistency;
  seenTs?: number;
}
export interface DelArgs {
  key: string;
  consistency?: Consistency;
  seenTs?: number;
}

export interface DataArgLimits {
  keyBytesMax?: number;
  valueBytesMax?: number;
  /** The longest TTL a put may ask for. */
  ttlMsMax?: number;
}

/** The arguments each data op knows; any other is refused (a typo such as `ttl` must not be ignored). */
const DATA_ARGS = {
  get: ['key', 'consistency'],
  put: ['key', 'value', 'ttlMs', 'consistency', 'seenTs'],
  del: ['key', 'consistency', 'seenTs'],
} as const;

function rejectUnknownArgs(op: keyof typeof DATA_ARGS, args: RpcArgs): void {
  const known: readonly string[] = DATA_ARGS[op];
  for (const name of Object.keys(args)) {
    if (!known.includes(name)) {
      throw new ShoalError('BAD_REQUEST', `${op}: unknown argument "${name}" (known: ${known.join(', ')})`);
    }
  }
}

function commonArgs(args: RpcArgs, limits: DataArgLimits): GetArgs {
  const key = requireString(args, 'key', { bytesMax: limits.keyBytesMax, nonEmpty: true });
  // msgpack decoders replace invalid UTF-8 with U+FFFD, so two different byte strings would name the
  // same key; a key holding U+FFFD is refused (whether it came from bad bytes or was sent as such).
  if (key.includes('\uFFFD')) {
    throw new ShoalError('BAD_REQUEST', 'args.key must be valid UTF-8 (U+FFFD, the replacement character, is not allowed in keys)');
  }
  const consistency = optionalEnum(args, 'consistency', CONSISTENCY_LEVELS);
  return consistency === undefined ? { key } : { key, consistency };
}

function withSeenTs<T extends object>(base: T, args: RpcArgs): T & { seenTs?: number } {
  const seenTs = optionalNumber(args, 'seenTs', { min: 0, integer: true });
  return seenTs === undefined ? base : { ...base, seenTs };
}

export function parseGetArgs(args: RpcArgs, limits: DataArgLimits = {}): GetArgs {
  rejectUnknownArgs('get', args);
  return commonArgs(args, limits);
}

export function parsePutArgs(args: RpcArgs, limits: DataArgLimits = {}): PutArgs {
  rejectUnknownArgs('put', args);
  const base: PutArgs = { ...commonArgs(args, limits), value: requireBin(args, 'value', { bytesMax: limits.valueBytesMax }) };
  const ttlMs = optionalNumber(args, 'ttlMs', { min: 1, max: limits.ttlMsMax, integer: true });
  if (ttlMs !== undefined) base.ttlMs = ttlMs;
  return withSeenTs(base, args);
}

export function parseDelArgs(args: RpcArgs, limits: DataArgLimits = {}): DelArgs {
  rejectUnknownArgs('del', args);
  return withSeenTs(commonArgs(args, limits), args);
}
