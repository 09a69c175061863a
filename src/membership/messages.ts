/**
 * Membership wire messages. A datagram is one msgpack map `{ v: 1, m: [message, ...] }` (a compound
 * packet: probe traffic with gossip piggybacked, packed within the datagram byte budget). Every message
 * is a map with a type `t`. The decoder validates every field and reports, never throws, so a bad
 * datagram is counted and dropped. Push-pull sync state uses the same member encoding.
 */
import { pack, unpack } from '../codec.js';
import type { Member, MemberState } from './types.js';

export const WIRE_VERSION = 1;

/** Bytes of an id, address, zone, tag key or tag value on the wire. */
export const ID_BYTES_MAX = 128;
export const ADDR_BYTES_MAX = 262; // 255-byte host name + ':' + 5-digit port + brackets
export const TAGS_MAX = 64;
const INCARNATION_MAX = Number.MAX_SAFE_INTEGER;
const SEQ_MAX = 0xffff_ffff;
/** A dead member's age on the wire (`d`, ms). */
const DEAD_FOR_MS_MAX = Number.MAX_SAFE_INTEGER;

export interface MemberMeta {
  rpc: string;
  zone?: string;
  tags?: Record<string, string>;
}

export interface PingMessage {
  t: 'ping';
  s: number; // sequence number, echoed in the ack
  n: string; // the id the sender means to probe; a different member at that address ignores it
}
export interface AckMessage {
  t: 'ack';
  s: number;
}
export interface NackMessage {
  t: 'nack';
  s: number;
}
export interface PingReqMessage {
  t: 'ping-req';
  s: number;
  n: string; // target id
  a: string; // target gossip address
}
export interface AliveMessage {
  t: 'alive';
  id: string;
  i: number; // incarnation
  a: string; // gossip address
  r: string; // rpc address
  z?: string;
  g?: Record<string, string>;
}
export interface SuspectMessage {
  t: 'suspect';
  id: string;
  i: number;
  f: string; // accuser id
}
export interface DeadMessage {
  t: 'dead';
  id: string;
  i: number;
  f: string;
}
export interface LeftMessage {
  t: 'left';
  id: string;
  i: number;
}

export type ProbeMessage = PingMessage | AckMessage | NackMessage | PingReqMessage;
export type GossipMessage = AliveMessage | SuspectMessage | DeadMessage | LeftMessage;
export type Message = ProbeMessage | GossipMessage;

export interface Packet {
  v: number;
  m: Message[];
}

/** A member in push-pull state. */
export interface WireMember {
  id: string;
  a: string;
  r: string;
  z?: string;
  g?: Record<string, string>;
  s: MemberState;
  i: number;
  /**
   * Dead members only: milliseconds since the sender buried it (relative, so clocks need not agree).
   * A receiver that does not know the member adds it as dead, buried that long ago, so that every
   * member counts it and reaps it at the same moment. Absent from older peers (then ignored, as before).
   */
  d?: number;
}

export interface SyncState {
  v: number;
  f: string; // sender id
  j: boolean; // sent while joining
  /**
   * Sent while joining back to the members it knew (a restart): not free to found a cluster with a
   * fresh node (core.ts handleSyncResponse). Absent = false (older peers).
   */
  k?: boolean;
  m: WireMember[];
}

export type DropReason = 'too-large' | 'malformed' | 'version';

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: DropReason; detail: string };

/** Encoded size of a packet's envelope with an empty list (+2 for a 16-bit array header). */
export const PACKET_OVERHEAD_BYTES = pack({ v: WIRE_VERSION, m: [] }).length + 2;

/**
 * Exact msgpack size of a message as src/codec.ts encodes it (msgpackr: objects get a 16-bit map
 * header, smallest integer forms), computed without encoding: the hot path of every send.
 */
export function messageBytes(message: Message): number {
  return valueBytes(message);
}

function valueBytes(value: unknown): number {
  switch (typeof value) {
    case 'string': {
      const n = Buffer.byteLength(value);
      return n + (n < 32 ? 1 : n < 256 ? 2 : n < 65_536 ? 3 : 5);
    }
    case 'number':
      return intBytes(value);
    case 'boolean':
      return 1;
    case 'object': {
      if (value === null) return 1;
      if (Array.isArray(value)) {
        let bytes = value.length < 16 ? 1 : value.length < 65_536 ? 3 : 5;
        for (const item of value) bytes += valueBytes(item);
        return bytes;
      }
      let bytes = 3;
      for (const key in value) {
        const item = (value as Record<string, unknown>)[key];
        if (item !== undefined) bytes += valueBytes(key) + valueBytes(item);
      }
      return bytes;
    }
    default:
      return pack(value).length;
  }
}

function intBytes(n: number): number {
  if (!Number.isInteger(n)) return 9;
  if (n >= 0) return n < 128 ? 1 : n < 256 ? 2 : n < 65_536 ? 3 : n < 4_294_967_296 ? 5 : 9;
  return n >= -32 ? 1 : n >= -128 ? 2 : n >= -32_768 ? 3 : n >= -2_147_483_648 ? 5 : 9;
}

export function encodePacket(packet: Packet): Buffer {
  return pack(packet);
}

export function metaBytes(meta: MemberMeta): number {
  return pack(meta).length;
}

/** A member's metadata with absent fields left out. */
export function memberMeta(member: { rpc: string; zone?: string; tags?: Record<string, string> }): MemberMeta {
  const meta: MemberMeta = { rpc: member.rpc };
  if (member.zone !== undefined) meta.zone = member.zone;
  if (member.tags !== undefined) meta.tags = member.tags;
  return meta;
}

/**
 * The most bytes one member can take in an encoded push-pull state: a map header, the id (≤
 * ID_BYTES_MAX), the gossip address (≤ ADDR_BYTES_MAX), the metadata (rpc, zone and tags: ≤
 * metaBytesMax, whose keys are longer than the wire's one-letter ones), the state, the
 * incarnation and a dead member's age `d`, each with its key and msgpack header. syncBytesMax must hold syncMembersMax of these.
 */
export function memberWireBytesMax(metaBytesMax: number): number {
  return 1 + (3 + 2 + ID_BYTES_MAX) + (2 + 3 + ADDR_BYTES_MAX) + metaBytesMax + (2 + 8) + (2 + 9) + (2 + 9);
}

/** Bytes of a push-pull state's envelope besides its members (v, f, j, the array header), rounded up. */
export const SYNC_STATE_OVERHEAD_BYTES = 256;

export function memberToWire(member: Member): WireMember {
  const wire: WireMember = { id: member.id, a: member.gossip, r: member.rpc, s: member.state, i: member.incarnation };
  if (member.zone !== undefined) wire.z = member.zone;
  if (member.tags !== undefined) wire.g = member.tags;
  return wire;
}

// ---- validation --------------------------------------------------------------------------------

class Invalid extends Error {}

function fail(detail: string): never {
  throw new Invalid(detail);
}

type Fields = Record<string, unknown>;

function isPlainObject(value: unknown): value is Fields {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function str(fields: Fields, key: string, bytesMax: number): string {
  const value = Object.hasOwn(fields, key) ? fields[key] : undefined;
  if (typeof value !== 'string' || value.length === 0) fail(`field ${key} must be a non-empty string`);
  if (Buffer.byteLength(value) > bytesMax) fail(`field ${key} longer than ${bytesMax} bytes`);
  return value;
}

function optStr(fields: Fields, key: string, bytesMax: number): string | undefined {
  if (!Object.hasOwn(fields, key) || fields[key] === undefined || fields[key] === null) return undefined;
  return str(fields, key, bytesMax);
}

function int(fields: Fields, key: string, max: number): number {
  const value = Object.hasOwn(fields, key) ? fields[key] : undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    fail(`field ${key} must be an integer in 0..${max}`);
  }
  return value;
}

function addr(fields: Fields, key: string): string {
  const value = str(fields, key, ADDR_BYTES_MAX);
  const colon = value.lastIndexOf(':');
  const port = Number(value.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65_535) fail(`field ${key} must be host:port`);
  return value;
}

function tags(fields: Fields, key: string): Record<string, string> | undefined {
  if (!Object.hasOwn(fields, key) || fields[key] === undefined || fields[key] === null) return undefined;
  const value = fields[key];
  if (!isPlainObject(value)) fail(`field ${key} must be a map`);
  const entries = Object.entries(value);
  if (entries.length > TAGS_MAX) fail(`field ${key} has more than ${TAGS_MAX} tags`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (typeof v !== 'string' || Buffer.byteLength(k) > ID_BYTES_MAX || Buffer.byteLength(v) > ID_BYTES_MAX) {
      fail(`field ${key} must map short strings to short strings`);
    }
    out[k] = v;
  }
  return out;
}

function withMeta<T extends { z?: string; g?: Record<string, string> }>(base: T, fields: Fields): T {
  const zone = optStr(fields, 'z', ID_BYTES_MAX);
  const tagMap = tags(fields, 'g');
  if (zone !== undefined) base.z = zone;
  if (tagMap !== undefined) base.g = tagMap;
  return base;
}

function state(fields: Fields, key: string): MemberState {
  const value = fields[key];
  if (value !== 'alive' && value !== 'suspect' && value !== 'dead' && value !== 'left') fail(`field ${key} is not a member state`);
  return value;
}

function validateMessage(raw: unknown, metaBytesMax: number): Message {
  if (!isPlainObject(raw)) fail('message is not a map');
  switch (raw.t) {
    case 'ping':
      return { t: 'ping', s: int(raw, 's', SEQ_MAX), n: str(raw, 'n', ID_BYTES_MAX) };
    case 'ack':
      return { t: 'ack', s: int(raw, 's', SEQ_MAX) };
    case 'nack':
      return { t: 'nack', s: int(raw, 's', SEQ_MAX) };
    case 'ping-req':
      return { t: 'ping-req', s: int(raw, 's', SEQ_MAX), n: str(raw, 'n', ID_BYTES_MAX), a: addr(raw, 'a') };
    case 'alive': {
      const message = withMeta<AliveMessage>(
        { t: 'alive', id: str(raw, 'id', ID_BYTES_MAX), i: int(raw, 'i', INCARNATION_MAX), a: addr(raw, 'a'), r: addr(raw, 'r') },
        raw,
      );
      if (metaBytes(memberMeta({ rpc: message.r, zone: message.z, tags: message.g })) > metaBytesMax) fail(`metadata over ${metaBytesMax} bytes`);
      return message;
    }
    case 'suspect':
      return { t: 'suspect', id: str(raw, 'id', ID_BYTES_MAX), i: int(raw, 'i', INCARNATION_MAX), f: str(raw, 'f', ID_BYTES_MAX) };
    case 'dead':
      return { t: 'dead', id: str(raw, 'id', ID_BYTES_MAX), i: int(raw, 'i', INCARNATION_MAX), f: str(raw, 'f', ID_BYTES_MAX) };
    case 'left':
      return { t: 'left', id: str(raw, 'id', ID_BYTES_MAX), i: int(raw, 'i', INCARNATION_MAX) };
    default:
      return fail(`unknown message type ${JSON.stringify(String(raw.t)).slice(0, 40)}`);
  }
}


function guarded<T>(bytes: Buffer | Uint8Array, bytesMax: number, body: (raw: Fields) => T): Decoded<T> {
  if (bytes.length > bytesMax) return { ok: false, reason: 'too-large', detail: `${bytes.length} bytes > ${bytesMax}` };
  let raw: unknown;
  try {
    raw = unpack(bytes);
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: `not msgpack: ${(err as Error).message}`.slice(0, 200) };
  }
  return validated(raw, body);
}

function validated<T>(raw: unknown, body: (raw: Fields) => T): Decoded<T> {
  try {
    if (!isPlainObject(raw)) fail('not a map');
    if (raw.v !== WIRE_VERSION) {
      return { ok: false, reason: 'version', detail: `version ${JSON.stringify(raw.v ?? null).slice(0, 20)}` };
    }
    return { ok: true, value: body(raw) };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: 'malformed', detail: err.message };
    return { ok: false, reason: 'malformed', detail: `unexpected: ${(err as Error).message}`.slice(0, 200) };
  }
}

/** Decodes and validates one datagram. Never throws. */
export function decodePacket(
  bytes: Buffer | Uint8Array,
  limits: { datagramBytesMax: number; compoundMessagesMax: number; metaBytesMax: number },
): Decoded<Packet> {
  return guarded(bytes, limits.datagramBytesMax, (raw) => {
    const list = raw.m;
    if (!Array.isArray(list) || list.length === 0) fail('field m must be a non-empty array');
    if (list.length > limits.compoundMessagesMax) fail(`more than ${limits.compoundMessagesMax} messages`);
    return { v: WIRE_VERSION, m: list.map((item) => validateMessage(item, limits.metaBytesMax)) };
  });
}

/** Validates push-pull state already unpacked from a frame. Never throws. */
export function validateSyncState(raw: unknown, limits: { syncMembersMax: number; metaBytesMax: number }): Decoded<SyncState> {
  return validated(raw, (fields) => {
    const list = fields.m;
    if (!Array.isArray(list)) fail('field m must be an array');
    if (list.length > limits.syncMembersMax) fail(`more than ${limits.syncMembersMax} members`);
    if (typeof fields.j !== 'boolean') fail('field j must be a boolean');
    const members = list.map((item): WireMember => {
      if (!isPlainObject(item)) fail('member is not a map');
      const member = withMeta<WireMember>(
        { id: str(item, 'id', ID_BYTES_MAX), a: addr(item, 'a'), r: addr(item, 'r'), s: state(item, 's'), i: int(item, 'i', INCARNATION_MAX) },
        item,
      );
      // The age of a death: kept on dead members only (meaningless on the others, and ignored there).
      if (Object.hasOwn(item, 'd') && item.d !== undefined && item.d !== null) {
        const deadForMs = int(item, 'd', DEAD_FOR_MS_MAX);
        if (member.s === 'dead') member.d = deadForMs;
      }
      if (metaBytes(memberMeta({ rpc: member.r, zone: member.z, tags: member.g })) > limits.metaBytesMax) fail(`metadata of ${member.id} over ${limits.metaBytesMax} bytes`);
      return member;
    });
    if (fields.k !== undefined && fields.k !== null && typeof fields.k !== 'boolean') fail('field k must be a boolean');
    const sync: SyncState = { v: WIRE_VERSION, f: str(fields, 'f', ID_BYTES_MAX), j: fields.j, m: members };
    if (fields.k === true) sync.k = true;
    return sync;
  });
}
