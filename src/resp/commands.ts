/**
 * The command table: every Redis command Shoal answers, its arity and key positions (for COMMAND and
 * for the connection's per-key ordering), and its handler. Handlers map commands onto the cluster
 * layer's operations (RespData): a read is a quorum read, a write a quorum write, with the
 * connection's consistency level. Multi-key commands fan out to the keys' owners in parallel and are
 * not atomic; read-modify-write options (NX, XX, GET, GETSET, EXPIRE's conditions) read first and
 * then write, with no compare-and-set in between (docs/RESP.md gives each command's exact guarantee).
 */
import { isUtf8 } from 'node:buffer';
import type { Consistency } from '../cluster/config.js';
import { globMatcher, SCAN_PAGE_KEYS_MAX } from '../cluster/cluster-scan.js';
import type { Entry } from '../storage/types.js';
import type { RespData, RespNodeInfo } from './backend.js';
import { arity, err, fromShoalError, invalidExpire, NOAUTH, NOT_INTEGER, SYNTAX, WRONGPASS } from './errors.js';
import {
  ErrorReply,
  MapReply,
  OK,
  PONG,
  SetReply,
  SimpleString,
  VerbatimReply,
  type ProtocolVersion,
  type Reply,
} from './reply.js';

/** What Shoal reports as its Redis version (the command set follows Redis 7.0). */
export const REDIS_VERSION_COMPAT = '7.0.0';

/** Per-connection state commands read and change. */
export interface ClientState {
  id: number;
  name: string | null;
  libName: string | null;
  libVersion: string | null;
  proto: ProtocolVersion;
  consistency: Consistency | undefined;
  authenticated: boolean;
  remote: string;
  local: string;
  createdAtMs: number;
  lastCommand: string;
  /** Set by QUIT: close once the reply is written. */
  closeAfterReply: boolean;
}

export interface RespSettings {
  /** "" = no password (every connection is the default user). */
  password: string;
  /** FLUSHALL and FLUSHDB are refused unless true. */
  flushAllEnabled: boolean;
  /** KEYS answers at most this many keys; past it an error points to SCAN. */
  keysMax: number;
}

export interface ServerView {
  clients(): ClientState[];
  stats(): { connections: number; connectionsTotal: number; connectionsRejected: number; commandsTotal: number; bytesIn: number; bytesOut: number };
}

export interface CommandContext {
  data: RespData;
  info: () => RespNodeInfo;
  settings: RespSettings;
  client: ClientState;
  server: ServerView;
}

type Handler = (ctx: CommandContext, args: Buffer[]) => Reply | Promise<Reply>;

export interface CommandSpec {
  name: string;
  /** Redis arity: n = exactly n arguments with the name, -n = at least n. */
  arity: number;
  flags: string[];
  firstKey: number;
  lastKey: number;
  step: number;
  /** Waits for every earlier command of the connection (SCAN, KEYS, FLUSHALL). */
  barrier?: boolean;
  /** Runs before authentication (AUTH, HELLO, QUIT). */
  noAuth?: boolean;
  summary: string;
  handler: Handler;
  subcommands?: string[];
}

// ---- argument helpers

function lower(b: Buffer): string {
  return b.toString('latin1').toLowerCase();
}

/** Strict integer as Redis parses it: optional '-', digits, no leading '+' or spaces, within ±2^63. */
function parseInteger(b: Buffer): number | null {
  const s = b.toString('latin1');
  if (!/^-?\d{1,19}$/.test(s)) return null;
  const n = Number(s);
  if (!Number.isSafeInteger(n)) return null; // beyond 2^53: out of range for Shoal's arithmetic
  if (s.length > 1 && (s.startsWith('0') || s.startsWith('-0'))) return null;
  return n;
}

class KeyError extends Error {
  constructor(readonly reply: ErrorReply) {
    super(reply.text);
  }
}

/** A key as a Shoal key: non-empty valid UTF-8 within keyBytesMax. */
function keyOf(ctx: CommandContext, b: Buffer): string {
  if (b.length === 0) throw new KeyError(err('empty keys are not supported by Shoal'));
  if (b.length > ctx.data.dataLimits.keyBytesMax) {
    throw new KeyError(err(`key is ${b.length} bytes, over the limit of ${ctx.data.dataLimits.keyBytesMax} (storage.keyBytesMax)`));
  }
  if (!isUtf8(b)) throw new KeyError(err('keys must be valid UTF-8 in Shoal (values may be any bytes)'));
  return b.toString('utf8');
}

/** A value to store: copied out of the receive buffer (a view would pin the whole chunk). */
function valueOf(ctx: CommandContext, b: Buffer): Buffer {
  if (b.length > ctx.data.dataLimits.valueBytesMax) {
    throw new KeyError(err(`value is ${b.length} bytes, over the limit of ${ctx.data.dataLimits.valueBytesMax} (storage.valueBytesMax)`));
  }
  return Buffer.from(b);
}

function remainingTtlMs(entry: Entry, nowMs: number): number | undefined {
  return entry.expiresAtMs === undefined ? undefined : Math.max(0, entry.expiresAtMs - nowMs);
}

type ExpiryUnit = 'EX' | 'PX' | 'EXAT' | 'PXAT';

/** Absolute expiry in ms for an EX/PX/EXAT/PXAT amount; null when out of range (an error for the caller). */
function absoluteExpiry(ctx: CommandContext, unit: ExpiryUnit, amount: number, allowPast: boolean): number | null {
  const nowMs = ctx.data.nowMs();
  const ms = unit === 'EX' || unit === 'EXAT' ? amount * 1000 : amount;
  const at = unit === 'EX' || unit === 'PX' ? nowMs + ms : ms;
  if (!Number.isSafeInteger(at)) return null;
  if (!allowPast && amount <= 0) return null;
  if (at - nowMs > ctx.data.dataLimits.ttlMsMax) return null;
  return at;
}

const consistency = (ctx: CommandContext): Consistency | undefined => ctx.client.consistency;

async function read(ctx: CommandContext, key: string): Promise<Entry | null> {
  return ctx.data.readLive(key, consistency(ctx));
}

/** Writes (or, for an expiry in the past, deletes) the key; settles when the cluster acknowledged it. */
function write(ctx: CommandContext, key: string, value: Buffer, expiresAtMs: number | undefined): Promise<unknown> {
  if (expiresAtMs !== undefined && expiresAtMs <= ctx.data.nowMs()) {
    // A time in the past: the key is gone at once, as in Redis.
    return ctx.data.deleteKey(key, consistency(ctx));
  }
  return ctx.data.writeValue(key, value, expiresAtMs, consistency(ctx));
}

const replyValue = (entry: Entry | null): Reply => (entry === null ? null : entry.value);
const replyOk = (): Reply => OK;

// ---- string commands

// GET and plain SET are the hot path: no async layers; GET answers without a promise when this node
// alone gives the answer (RespData.readLiveNow), which lets the connection reply in the same turn.
function cmdGet(ctx: CommandContext, args: Buffer[]): Reply | Promise<Reply> {
  const key = keyOf(ctx, args[1]);
  const now = ctx.data.readLiveNow?.(key, consistency(ctx));
  if (now !== undefined) return now === null ? null : now.value;
  return ctx.data.readLive(key, consistency(ctx)).then(replyValue);
}

function cmdSet(ctx: CommandContext, args: Buffer[]): Reply | Promise<Reply> {
  const key = keyOf(ctx, args[1]);
  const value = valueOf(ctx, args[2]);
  if (args.length === 3) return write(ctx, key, value, undefined).then(replyOk);
  return setWithOptions(ctx, args, key, value);
}

async function setWithOptions(ctx: CommandContext, args: Buffer[], key: string, value: Buffer): Promise<Reply> {
  let condition: 'NX' | 'XX' | null = null;
  let unit: ExpiryUnit | null = null;
  let amount = 0;
  let keepTtl = false;
  let get = false;
  for (let i = 3; i < args.length; i++) {
    const opt = args[i].toString('latin1').toUpperCase();
    if ((opt === 'NX' || opt === 'XX') && condition === null) condition = opt;
    else if (opt === 'GET' && !get) get = true;
    else if (opt === 'KEEPTTL' && unit === null && !keepTtl) keepTtl = true;
    else if ((opt === 'EX' || opt === 'PX' || opt === 'EXAT' || opt === 'PXAT') && unit === null && !keepTtl && i + 1 < args.length) {
      unit = opt;
      const n = parseInteger(args[++i]);
      if (n === null) return NOT_INTEGER;
      amount = n;
    } else return SYNTAX;
  }
  let expiresAtMs: number | undefined;
  if (unit !== null) {
    const at = absoluteExpiry(ctx, unit, amount, false);
    if (at === null) return invalidExpire('set');
    expiresAtMs = at;
  }
  // Best effort (docs/RESP.md): the read and the write are two steps, not a compare-and-set.
  const needRead = condition !== null || get || keepTtl;
  const old = needRead ? await read(ctx, key) : null;
  if ((condition === 'NX' && old !== null) || (condition === 'XX' && old === null)) return get ? (old?.value ?? null) : null;
  if (keepTtl && old !== null) expiresAtMs = old.expiresAtMs;
  await write(ctx, key, value, expiresAtMs);
  return get ? (old?.value ?? null) : OK;
}

function setWithExpiry(name: string, unit: ExpiryUnit): Handler {
  return async (ctx, args) => {
    const key = keyOf(ctx, args[1]);
    const n = parseInteger(args[2]);
    if (n === null) return NOT_INTEGER;
    const at = absoluteExpiry(ctx, unit, n, false);
    if (at === null) return invalidExpire(name);
    await write(ctx, key, valueOf(ctx, args[3]), at);
    return OK;
  };
}

async function cmdSetNx(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const key = keyOf(ctx, args[1]);
  const value = valueOf(ctx, args[2]);
  if ((await read(ctx, key)) !== null) return 0;
  await write(ctx, key, value, undefined);
  return 1;
}

async function cmdGetDel(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const key = keyOf(ctx, args[1]);
  const old = await read(ctx, key);
  if (old === null) return null;
  await ctx.data.deleteKey(key, consistency(ctx));
  return old.value;
}

async function cmdGetSet(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const key = keyOf(ctx, args[1]);
  const value = valueOf(ctx, args[2]);
  const old = await read(ctx, key);
  await write(ctx, key, value, undefined);
  return old === null ? null : old.value;
}

async function cmdGetEx(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const key = keyOf(ctx, args[1]);
  let unit: ExpiryUnit | null = null;
  let amount = 0;
  let persist = false;
  for (let i = 2; i < args.length; i++) {
    const opt = args[i].toString('latin1').toUpperCase();
    if (opt === 'PERSIST' && unit === null && !persist) persist = true;
    else if ((opt === 'EX' || opt === 'PX' || opt === 'EXAT' || opt === 'PXAT') && unit === null && !persist && i + 1 < args.length) {
      unit = opt;
      const n = parseInteger(args[++i]);
      if (n === null) return NOT_INTEGER;
      amount = n;
    } else return SYNTAX;
  }
  let expiresAtMs: number | undefined;
  if (unit !== null) {
    const at = absoluteExpiry(ctx, unit, amount, false);
    if (at === null) return invalidExpire('getex');
    expiresAtMs = at;
  }
  const entry = await read(ctx, key);
  if (entry === null || entry.value === null) return null;
  if (unit !== null || (persist && entry.expiresAtMs !== undefined)) await write(ctx, key, entry.value, expiresAtMs);
  return entry.value;
}

async function cmdMGet(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const keys = args.slice(1).map((b) => keyOf(ctx, b));
  const entries = await Promise.all(keys.map((k) => read(ctx, k)));
  return entries.map((e) => (e === null ? null : e.value));
}

async function cmdMSet(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  if (args.length % 2 !== 1) return arity('mset');
  const pairs: Array<[string, Buffer]> = [];
  for (let i = 1; i < args.length; i += 2) pairs.push([keyOf(ctx, args[i]), valueOf(ctx, args[i + 1])]);
  // Not atomic: each key is its own quorum write; an error means some keys may have been written.
  await Promise.all(pairs.map(([k, v]) => write(ctx, k, v, undefined)));
  return OK;
}

async function cmdDel(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const keys = [...new Set(args.slice(1).map((b) => keyOf(ctx, b)))];
  // The count is of keys that had a live value when read just before the delete (best effort).
  const existed = await Promise.all(
    keys.map(async (k) => {
      const old = await read(ctx, k);
      await ctx.data.deleteKey(k, consistency(ctx));
      return old !== null;
    }),
  );
  return existed.filter(Boolean).length;
}

async function cmdExists(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const keys = args.slice(1).map((b) => keyOf(ctx, b));
  const entries = await Promise.all(keys.map((k) => read(ctx, k)));
  return entries.filter((e) => e !== null).length;
}

async function cmdType(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const entry = await read(ctx, keyOf(ctx, args[1]));
  return new SimpleString(entry === null ? 'none' : 'string');
}

async function cmdStrLen(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const entry = await read(ctx, keyOf(ctx, args[1]));
  return entry?.value?.length ?? 0;
}

function cmdExpire(name: string, unit: ExpiryUnit): Handler {
  return async (ctx, args) => {
    const key = keyOf(ctx, args[1]);
    const n = parseInteger(args[2]);
    if (n === null) return NOT_INTEGER;
    const flags = new Set<string>();
    for (const a of args.slice(3)) {
      const f = a.toString('latin1').toUpperCase();
      if (f !== 'NX' && f !== 'XX' && f !== 'GT' && f !== 'LT') return err(`Unsupported option ${a.toString('latin1')}`);
      flags.add(f);
    }
    if (flags.has('NX') && (flags.has('XX') || flags.has('GT') || flags.has('LT'))) {
      return err('NX and XX, GT or LT options at the same time are not compatible');
    }
    if (flags.has('GT') && flags.has('LT')) return err('GT and LT options at the same time are not compatible');
    const at = absoluteExpiry(ctx, unit, n, true);
    if (at === null) return invalidExpire(name);
    const entry = await read(ctx, key);
    if (entry === null || entry.value === null) return 0;
    const current = entry.expiresAtMs;
    if (flags.has('NX') && current !== undefined) return 0;
    if (flags.has('XX') && current === undefined) return 0;
    // No expiry counts as an infinite one: GT never passes, LT always does.
    if (flags.has('GT') && (current === undefined || at <= current)) return 0;
    if (flags.has('LT') && current !== undefined && at >= current) return 0;
    await write(ctx, key, entry.value, at);
    return 1;
  };
}

function cmdTtl(ms: boolean): Handler {
  return async (ctx, args) => {
    const entry = await read(ctx, keyOf(ctx, args[1]));
    if (entry === null) return -2;
    const left = remainingTtlMs(entry, ctx.data.nowMs());
    if (left === undefined) return -1;
    return ms ? left : Math.round(left / 1000);
  };
}

async function cmdPersist(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const key = keyOf(ctx, args[1]);
  const entry = await read(ctx, key);
  if (entry === null || entry.value === null || entry.expiresAtMs === undefined) return 0;
  await write(ctx, key, entry.value, undefined);
  return 1;
}

function notSupported(name: string, why: string): Handler {
  return () => err(`${name.toUpperCase()} is not supported by Shoal: ${why}`);
}

const NO_CAS = 'values are last-writer-wins without compare-and-set, so a read-modify-write could lose a concurrent update; compute the new value in the client and SET it';
const NO_TX = 'Shoal has no transactions; each command is applied on its own (see docs/RESP.md)';

// ---- keyspace commands

const TYPE_NAMES = new Set(['string', 'list', 'set', 'zset', 'hash', 'stream']);

async function cmdScan(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const cursorText = args[1].toString('latin1');
  if (!/^\d{1,20}$/.test(cursorText) || BigInt(cursorText) >= 1n << 64n) return err('invalid cursor');
  let count = 10;
  let match: string | undefined;
  let type: string | undefined;
  for (let i = 2; i < args.length; i++) {
    const opt = lower(args[i]);
    if (i + 1 >= args.length) return SYNTAX;
    if (opt === 'count') {
      const n = parseInteger(args[++i]);
      if (n === null) return NOT_INTEGER;
      if (n < 1) return SYNTAX;
      count = Math.min(n, SCAN_PAGE_KEYS_MAX);
    } else if (opt === 'match') {
      match = args[++i].toString('utf8');
    } else if (opt === 'type') {
      type = lower(args[++i]);
    } else return SYNTAX;
  }
  // Every Shoal key is a string: any other type matches nothing.
  if (type !== undefined && type !== 'string') {
    if (!TYPE_NAMES.has(type)) return err(`unknown type name '${type}'`);
    return ['0', []];
  }
  const page = await ctx.data.scanPage(BigInt(cursorText), { count, match: match === '*' ? undefined : match, consistency: consistency(ctx) });
  return [page.cursor.toString(), page.keys];
}

/** Calls `visit` with every page of a whole-cluster scan. */
async function scanAll(ctx: CommandContext, match: string | undefined, visit: (keys: string[]) => void): Promise<void> {
  let cursor = 0n;
  do {
    const page = await ctx.data.scanPage(cursor, { count: 1000, match, consistency: consistency(ctx) });
    visit(page.keys);
    cursor = page.cursor;
  } while (cursor !== 0n);
}

class TooManyKeys extends Error {}

async function cmdKeys(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const pattern = args[1].toString('utf8');
  const max = ctx.settings.keysMax;
  const out: string[] = [];
  try {
    await scanAll(ctx, pattern === '*' ? undefined : pattern, (keys) => {
      for (const k of keys) out.push(k);
      if (out.length > max) throw new TooManyKeys();
    });
  } catch (e) {
    if (e instanceof TooManyKeys) {
      return err(`KEYS would return more than ${max} keys (resp.keysMax); use SCAN with a cursor instead`);
    }
    throw e;
  }
  return out;
}

async function cmdDbSize(ctx: CommandContext): Promise<Reply> {
  let n = 0;
  await scanAll(ctx, undefined, (keys) => (n += keys.length));
  return n;
}

async function cmdFlushAll(ctx: CommandContext, args: Buffer[]): Promise<Reply> {
  const name = lower(args[0]);
  for (const a of args.slice(1)) {
    const opt = lower(a);
    if (opt !== 'sync' && opt !== 'async') return SYNTAX;
  }
  if (!ctx.settings.flushAllEnabled) {
    return err(`${name.toUpperCase()} is disabled on this node (set resp.flushAllEnabled to true to allow it)`);
  }
  // Not atomic: deletes every key found by a scan; keys written meanwhile may survive.
  let cursor = 0n;
  do {
    const page = await ctx.data.scanPage(cursor, { count: 1000, consistency: consistency(ctx) });
    await Promise.all(page.keys.map((k) => ctx.data.deleteKey(k, consistency(ctx))));
    cursor = page.cursor;
  } while (cursor !== 0n);
  return OK;
}

// ---- connection and server commands

function cmdPing(_ctx: CommandContext, args: Buffer[]): Reply {
  if (args.length > 2) return arity('ping');
  return args.length === 2 ? args[1] : PONG;
}

function cmdSelect(_ctx: CommandContext, args: Buffer[]): Reply {
  const n = parseInteger(args[1]);
  if (n === null) return NOT_INTEGER;
  return n === 0 ? OK : err('DB index is out of range (Shoal has one database, 0)');
}

function checkPassword(ctx: CommandContext, user: string | null, pass: string): ErrorReply | null {
  const password = ctx.settings.password;
  if (user !== null && user !== 'default') return WRONGPASS;
  if (password === '') {
    if (user === null) {
      return err('AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
    }
    return null; // the default user without a password accepts any (Redis's nopass)
  }
  return pass === password ? null : WRONGPASS;
}

function cmdAuth(ctx: CommandContext, args: Buffer[]): Reply {
  if (args.length > 3) return SYNTAX;
  const user = args.length === 3 ? args[1].toString('utf8') : null;
  const problem = checkPassword(ctx, user, args[args.length - 1].toString('utf8'));
  if (problem) return problem;
  ctx.client.authenticated = true;
  return OK;
}

const CLIENT_NAME_OK = /^[\x21-\x7e]*$/;

function cmdHello(ctx: CommandContext, args: Buffer[]): Reply {
  let proto: ProtocolVersion = ctx.client.proto;
  let i = 1;
  if (args.length >= 2) {
    const v = parseInteger(args[1]);
    if (v === null) return err('Protocol version is not an integer or out of range');
    if (v !== 2 && v !== 3) return new ErrorReply('NOPROTO unsupported protocol version');
    proto = v;
    i = 2;
  }
  let name: string | undefined;
  for (; i < args.length; i++) {
    const opt = lower(args[i]);
    if (opt === 'auth' && i + 2 < args.length) {
      const problem = checkPassword(ctx, args[i + 1].toString('utf8'), args[i + 2].toString('utf8'));
      if (problem) return problem;
      ctx.client.authenticated = true;
      i += 2;
    } else if (opt === 'setname' && i + 1 < args.length) {
      name = args[++i].toString('utf8');
      if (!CLIENT_NAME_OK.test(name)) return err('Client names cannot contain spaces, newlines or special characters.');
    } else {
      return err(`Syntax error in HELLO option '${args[i].toString('utf8')}'`);
    }
  }
  if (!ctx.client.authenticated) return NOAUTH;
  ctx.client.proto = proto;
  if (name !== undefined) ctx.client.name = name === '' ? null : name;
  return new MapReply([
    ['server', 'redis'],
    ['version', REDIS_VERSION_COMPAT],
    ['proto', proto],
    ['id', ctx.client.id],
    ['mode', 'standalone'],
    ['role', 'master'],
    ['modules', []],
  ]);
}

function clientLine(c: ClientState, nowMs: number): string {
  return [
    `id=${c.id}`,
    `addr=${c.remote}`,
    `laddr=${c.local}`,
    `name=${c.name ?? ''}`,
    `age=${Math.floor((nowMs - c.createdAtMs) / 1000)}`,
    'db=0',
    `cmd=${c.lastCommand}`,
    'user=default',
    `lib-name=${c.libName ?? ''}`,
    `lib-ver=${c.libVersion ?? ''}`,
    `resp=${c.proto}`,
    `consistency=${c.consistency ?? 'default'}`,
  ].join(' ');
}

function cmdClient(ctx: CommandContext, args: Buffer[]): Reply {
  const sub = lower(args[1]);
  const c = ctx.client;
  switch (sub) {
    case 'setname': {
      if (args.length !== 3) return arity('client|setname');
      const name = args[2].toString('utf8');
      if (!CLIENT_NAME_OK.test(name)) return err('Client names cannot contain spaces, newlines or special characters.');
      c.name = name === '' ? null : name;
      return OK;
    }
    case 'getname':
      return c.name;
    case 'id':
      return c.id;
    case 'setinfo': {
      if (args.length !== 4) return arity('client|setinfo');
      const attr = lower(args[2]);
      const value = args[3].toString('utf8');
      if (!CLIENT_NAME_OK.test(value)) return err(`${attr} cannot contain spaces, newlines or special characters.`);
      if (attr === 'lib-name') c.libName = value;
      else if (attr === 'lib-ver') c.libVersion = value;
      else return err(`Unrecognized option '${args[2].toString('utf8')}'`);
      return OK;
    }
    case 'info':
      return new VerbatimReply(`${clientLine(c, Date.now())}\n`);
    case 'list':
      return new VerbatimReply(ctx.server.clients().map((x) => `${clientLine(x, Date.now())}\n`).join(''));
    default:
      return err(`unknown subcommand '${args[1].toString('utf8')}'. Try CLIENT HELP.`);
  }
}

function cmdEcho(_ctx: CommandContext, args: Buffer[]): Reply {
  return args[1];
}

function cmdTime(): Reply {
  const us = BigInt(Date.now()) * 1000n + BigInt(Math.floor((performance.now() * 1000) % 1000));
  return [(us / 1_000_000n).toString(), (us % 1_000_000n).toString()];
}

function cmdQuit(ctx: CommandContext): Reply {
  ctx.client.closeAfterReply = true;
  return OK;
}

/** CONFIG GET: the few settings clients and redis-benchmark read, with Shoal's values. */
function configValues(ctx: CommandContext): Array<[string, string]> {
  const info = ctx.info();
  return [
    ['save', ''],
    ['appendonly', info.fsync === 'none' ? 'no' : 'yes'],
    ['appendfsync', info.fsync === 'always' ? 'always' : info.fsync === 'interval' ? 'everysec' : 'no'],
    ['databases', '1'],
    ['maxmemory', '0'],
    ['maxmemory-policy', 'noeviction'],
    ['port', String(info.respPort)],
    ['proto-max-bulk-len', String(ctx.data.dataLimits.valueBytesMax)],
    ['cluster-enabled', 'no'],
    ['timeout', '0'],
  ];
}

function cmdConfig(ctx: CommandContext, args: Buffer[]): Reply {
  const sub = lower(args[1]);
  if (sub === 'get') {
    if (args.length < 3) return arity('config|get');
    const patterns = args.slice(2).map((a) => globMatcher(a.toString('utf8').toLowerCase()));
    return new MapReply(configValues(ctx).filter(([k]) => patterns.some((m) => m(k))));
  }
  if (sub === 'set' || sub === 'resetstat' || sub === 'rewrite') {
    return err(`CONFIG ${sub.toUpperCase()} is not supported by Shoal: settings come from its config file (docs/CONFIG.md)`);
  }
  return err(`unknown subcommand '${args[1].toString('utf8')}'. Try CONFIG HELP.`);
}

function infoText(ctx: CommandContext, wanted: Set<string>): string {
  const info = ctx.info();
  const stats = ctx.server.stats();
  const all = wanted.size === 0 || wanted.has('all') || wanted.has('everything') || wanted.has('default');
  const out: string[] = [];
  const section = (name: string, title: string, lines: Array<[string, string | number]>) => {
    if (!all && !wanted.has(name)) return;
    if (out.length > 0) out.push('');
    out.push(`# ${title}`);
    for (const [k, v] of lines) out.push(`${k}:${v}`);
  };
  section('server', 'Server', [
    ['redis_version', REDIS_VERSION_COMPAT],
    ['shoal_version', '0.1.0'],
    ['redis_mode', 'standalone'],
    ['os', `${process.platform} ${process.arch}`],
    ['process_id', process.pid],
    ['tcp_port', info.respPort],
    ['uptime_in_seconds', Math.floor(info.uptimeMs / 1000)],
    ['uptime_in_days', Math.floor(info.uptimeMs / 86_400_000)],
    ['node_id', ctx.data.id],
    ['cluster_name', info.clusterName],
  ]);
  section('clients', 'Clients', [
    ['connected_clients', stats.connections],
    ['maxclients', 0],
  ]);
  section('persistence', 'Persistence', [
    ['loading', 0],
    ['aof_enabled', info.fsync === 'none' ? 0 : 1],
    ['shoal_fsync', info.fsync],
  ]);
  section('stats', 'Stats', [
    ['total_connections_received', stats.connectionsTotal],
    ['total_commands_processed', stats.commandsTotal],
    ['rejected_connections', stats.connectionsRejected],
    ['total_net_input_bytes', stats.bytesIn],
    ['total_net_output_bytes', stats.bytesOut],
  ]);
  section('replication', 'Replication', [
    ['role', 'master'],
    ['connected_slaves', 0],
    ['shoal_replication_factor', info.replication.n],
    ['shoal_write_quorum', info.replication.w],
    ['shoal_read_quorum', info.replication.r],
  ]);
  // An estimate from this node's store (keys here × owners / N); DBSIZE counts exactly, with a scan.
  const owners = Math.max(1, info.ring.owners);
  const estimate = Math.round((info.localKeys * owners) / Math.max(1, Math.min(info.replication.n, owners)));
  section('keyspace', 'Keyspace', estimate > 0 ? [['db0', `keys=${estimate},expires=0,avg_ttl=0`]] : []);
  section('shoal', 'Shoal', [
    ['node', ctx.data.id],
    ['rpc', info.rpc],
    ['ring_checksum', info.ring.checksum],
    ['ring_owners', info.ring.owners],
    ['members', info.members.length],
    ...info.members.map((m, i): [string, string] => [`member${i}`, `id=${m.id},state=${m.state},rpc=${m.rpc}${m.owns === undefined ? '' : `,owns=${m.owns}`}`]),
    ['local_keys', info.localKeys],
    ['consistency', ctx.client.consistency ?? 'default'],
  ]);
  return out.join('\r\n') + '\r\n';
}

function cmdInfo(ctx: CommandContext, args: Buffer[]): Reply {
  const wanted = new Set(args.slice(1).map(lower));
  return new VerbatimReply(infoText(ctx, wanted));
}

function cmdConsistency(ctx: CommandContext, args: Buffer[]): Reply {
  if (args.length === 1) return ctx.client.consistency ?? 'default';
  const level = lower(args[1]);
  if (level === 'default') ctx.client.consistency = undefined;
  else if (level === 'one' || level === 'quorum' || level === 'all') ctx.client.consistency = level;
  else return err("consistency must be one of one, quorum, all, default");
  return OK;
}

// ---- COMMAND

function commandInfo(spec: CommandSpec): Reply {
  return [
    spec.name,
    spec.arity,
    new SetReply(spec.flags.map((f) => new SimpleString(f))),
    spec.firstKey,
    spec.lastKey,
    spec.step,
    new SetReply([]),
    [],
    [],
    (spec.subcommands ?? []).map((s) => [`${spec.name}|${s}`, -2, new SetReply([]), 0, 0, 0, new SetReply([]), [], [], []]),
  ];
}

function cmdCommand(_ctx: CommandContext, args: Buffer[]): Reply {
  if (args.length === 1) return [...COMMANDS.values()].map(commandInfo);
  const sub = lower(args[1]);
  switch (sub) {
    case 'count':
      return COMMANDS.size;
    case 'info': {
      const names = args.length === 2 ? [...COMMANDS.keys()] : args.slice(2).map(lower);
      return names.map((n) => {
        const spec = COMMANDS.get(n);
        return spec === undefined ? null : commandInfo(spec);
      });
    }
    case 'docs': {
      const names = args.length === 2 ? [...COMMANDS.keys()] : args.slice(2).map(lower);
      const entries: Array<[Reply, Reply]> = [];
      for (const n of names) {
        const spec = COMMANDS.get(n);
        if (spec === undefined) continue;
        entries.push([n, new MapReply([
          ['summary', spec.summary],
          ['since', '1.0.0'],
          ['group', spec.firstKey > 0 ? 'string' : 'connection'],
        ])]);
      }
      return new MapReply(entries);
    }
    case 'list':
      return [...COMMANDS.keys()];
    default:
      return err(`unknown subcommand '${args[1].toString('utf8')}'. Try COMMAND HELP.`);
  }
}

// ---- the table

function spec(
  name: string,
  arityN: number,
  flags: string[],
  keys: [number, number, number],
  summary: string,
  handler: Handler,
  extra: Partial<CommandSpec> = {},
): CommandSpec {
  return { name, arity: arityN, flags, firstKey: keys[0], lastKey: keys[1], step: keys[2], summary, handler, ...extra };
}

const NO_KEYS: [number, number, number] = [0, 0, 0];
const KEY1: [number, number, number] = [1, 1, 1];
const ALL_KEYS: [number, number, number] = [1, -1, 1];
const W = ['write'];
const R = ['readonly', 'fast'];
const C = ['fast', 'loading', 'stale'];

const SPECS: CommandSpec[] = [
  spec('get', 2, R, KEY1, 'Returns the string value of a key.', cmdGet),
  spec('set', -3, W, KEY1, 'Sets the string value of a key, with an optional expiry and condition (best effort).', cmdSet),
  spec('setex', 4, W, KEY1, 'Sets a value and its expiry in seconds.', setWithExpiry('setex', 'EX')),
  spec('psetex', 4, W, KEY1, 'Sets a value and its expiry in milliseconds.', setWithExpiry('psetex', 'PX')),
  spec('setnx', 3, W, KEY1, 'Sets a value only when the key does not exist (best effort).', cmdSetNx),
  spec('getdel', 2, W, KEY1, 'Returns a value and deletes the key.', cmdGetDel),
  spec('getex', -2, W, KEY1, 'Returns a value and changes its expiry.', cmdGetEx),
  spec('getset', 3, W, KEY1, 'Sets a value and returns the previous one (best effort).', cmdGetSet),
  spec('mget', -2, R, ALL_KEYS, 'Returns the values of several keys (not atomic).', cmdMGet),
  spec('mset', -3, W, [1, -1, 2], 'Sets several keys (not atomic).', cmdMSet),
  spec('del', -2, W, ALL_KEYS, 'Deletes keys.', cmdDel),
  spec('unlink', -2, W, ALL_KEYS, 'Deletes keys (the same as DEL in Shoal).', cmdDel),
  spec('exists', -2, R, ALL_KEYS, 'Counts the keys that exist.', cmdExists),
  spec('type', 2, R, KEY1, 'Returns the type of a key (always string or none).', cmdType),
  spec('strlen', 2, R, KEY1, 'Returns the length of a value.', cmdStrLen),
  spec('expire', -3, W, KEY1, 'Sets an expiry in seconds.', cmdExpire('expire', 'EX')),
  spec('pexpire', -3, W, KEY1, 'Sets an expiry in milliseconds.', cmdExpire('pexpire', 'PX')),
  spec('expireat', -3, W, KEY1, 'Sets an expiry as a Unix time in seconds.', cmdExpire('expireat', 'EXAT')),
  spec('pexpireat', -3, W, KEY1, 'Sets an expiry as a Unix time in milliseconds.', cmdExpire('pexpireat', 'PXAT')),
  spec('ttl', 2, R, KEY1, 'Returns the time to live in seconds.', cmdTtl(false)),
  spec('pttl', 2, R, KEY1, 'Returns the time to live in milliseconds.', cmdTtl(true)),
  spec('persist', 2, W, KEY1, 'Removes the expiry of a key.', cmdPersist),
  spec('incr', 2, W, KEY1, 'Not supported (no compare-and-set).', notSupported('incr', NO_CAS)),
  spec('decr', 2, W, KEY1, 'Not supported (no compare-and-set).', notSupported('decr', NO_CAS)),
  spec('incrby', 3, W, KEY1, 'Not supported (no compare-and-set).', notSupported('incrby', NO_CAS)),
  spec('decrby', 3, W, KEY1, 'Not supported (no compare-and-set).', notSupported('decrby', NO_CAS)),
  spec('incrbyfloat', 3, W, KEY1, 'Not supported (no compare-and-set).', notSupported('incrbyfloat', NO_CAS)),
  spec('append', 3, W, KEY1, 'Not supported (no compare-and-set).', notSupported('append', NO_CAS)),
  spec('setrange', 4, W, KEY1, 'Not supported (no compare-and-set).', notSupported('setrange', NO_CAS)),
  spec('multi', 1, ['fast'], NO_KEYS, 'Not supported (no transactions).', notSupported('multi', NO_TX)),
  spec('exec', 1, ['fast'], NO_KEYS, 'Not supported (no transactions).', notSupported('exec', NO_TX)),
  spec('watch', -2, ['fast'], NO_KEYS, 'Not supported (no transactions).', notSupported('watch', NO_TX)),
  spec('scan', -2, ['readonly'], NO_KEYS, 'Iterates over the keys of the whole cluster with a cursor.', cmdScan, { barrier: true }),
  spec('keys', 2, ['readonly'], NO_KEYS, 'Returns the keys matching a pattern (bounded by resp.keysMax).', cmdKeys, { barrier: true }),
  spec('dbsize', 1, ['readonly'], NO_KEYS, 'Counts the keys of the whole cluster (a scan).', cmdDbSize, { barrier: true }),
  spec('flushall', -1, W, NO_KEYS, 'Deletes every key (only when resp.flushAllEnabled; not atomic).', cmdFlushAll, { barrier: true }),
  spec('flushdb', -1, W, NO_KEYS, 'The same as FLUSHALL (one database).', cmdFlushAll, { barrier: true }),
  spec('ping', -1, C, NO_KEYS, 'Returns PONG or the message.', cmdPing),
  spec('echo', 2, C, NO_KEYS, 'Returns the message.', cmdEcho),
  spec('quit', -1, C, NO_KEYS, 'Closes the connection.', cmdQuit, { noAuth: true }),
  spec('select', 2, C, NO_KEYS, 'Selects database 0 (the only one).', cmdSelect),
  spec('auth', -2, ['noscript', 'loading', 'stale', 'fast'], NO_KEYS, 'Authenticates the connection.', cmdAuth, { noAuth: true }),
  spec('hello', -1, ['noscript', 'loading', 'stale', 'fast'], NO_KEYS, 'Chooses RESP2 or RESP3, optionally authenticates and names the connection.', cmdHello, { noAuth: true }),
  spec('client', -2, ['loading', 'stale'], NO_KEYS, 'Connection commands: SETNAME, GETNAME, ID, SETINFO, INFO, LIST.', cmdClient, {
    subcommands: ['setname', 'getname', 'id', 'setinfo', 'info', 'list'],
  }),
  spec('command', -1, ['loading', 'stale'], NO_KEYS, 'Describes the commands: COUNT, INFO, DOCS, LIST.', cmdCommand, { subcommands: ['count', 'info', 'docs', 'list'] }),
  spec('info', -1, ['loading', 'stale'], NO_KEYS, 'Server, clients, keyspace, replication and shoal sections.', cmdInfo),
  spec('config', -2, ['loading', 'stale'], NO_KEYS, 'CONFIG GET of the settings clients read.', cmdConfig, { subcommands: ['get'] }),
  spec('time', 1, C, NO_KEYS, "Returns this node's time.", cmdTime),
  spec('shoal.consistency', -1, C, NO_KEYS, 'Gets or sets this connection\'s consistency: one, quorum, all or default.', cmdConsistency),
];

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(SPECS.map((s) => [s.name, s]));

/** The keys a command touches (per-key ordering within a connection). */
export function commandKeys(spec: CommandSpec, args: Buffer[]): Buffer[] {
  if (spec.firstKey === 0) return [];
  const last = spec.lastKey < 0 ? args.length + spec.lastKey : spec.lastKey;
  const keys: Buffer[] = [];
  for (let i = spec.firstKey; i <= last && i < args.length; i += spec.step) keys.push(args[i]);
  return keys;
}

/** Arity check as Redis does it; null when fine. */
export function arityProblem(spec: CommandSpec, args: Buffer[]): ErrorReply | null {
  const n = args.length;
  if ((spec.arity > 0 && n !== spec.arity) || (spec.arity < 0 && n < -spec.arity)) return arity(spec.name);
  return null;
}

export function unknownCommand(args: Buffer[]): ErrorReply {
  const shown = args.slice(1, 20).map((a) => `'${a.toString('utf8').slice(0, 128)}'`).join(' ');
  return err(`unknown command '${args[0].toString('utf8').slice(0, 128)}', with args beginning with: ${shown}${shown === '' ? '' : ' '}`);
}

/**
 * Runs a handler. A synchronous throw becomes its Redis error here; a rejected promise is left to the
 * caller, which maps it with toReplyError (one promise less per command).
 */
export function runCommand(spec: CommandSpec, ctx: CommandContext, args: Buffer[]): Reply | Promise<Reply> {
  try {
    return spec.handler(ctx, args);
  } catch (e) {
    return toReplyError(e);
  }
}

/** Key errors and Shoal errors (anything thrown by a command) as Redis errors. */
export function toReplyError(e: unknown): ErrorReply {
  if (e instanceof KeyError) return e.reply;
  return fromShoalError(e);
}

export { NOAUTH };
