/**
 * Mutations of valid encodings, the way a broken or hostile peer (or a damaged disk) changes bytes:
 * bit flips, interesting byte values, truncation, extension, deleted / duplicated / inserted ranges,
 * splices with another valid input, and edits of length fields.
 */
import type { Rng } from './rng.js';

export interface MutateOptions {
  /** Offsets of known length fields (u32), e.g. a frame header at 0 or a WAL record header. */
  lengthOffsets?: number[];
  /** Byte order of those length fields. */
  littleEndian?: boolean;
  /** Other valid inputs to splice with. */
  donors?: Buffer[];
  /** Mutations stacked on one input: 1..stackMax. */
  stackMax?: number;
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc6, 0xc7, 0xcf, 0xd4, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x90, 0x9f, 0x80, 0x8f, 0xa0, 0xbf];

function interestingLength(rng: Rng, length: number): number {
  return rng.pick([0, 1, 2, 3, 4, 15, 16, 255, 256, 65_535, 65_536, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, Math.max(0, length - 1), length + 1, rng.int(0x1_0000_0000)]);
}

type Mutation = (rng: Rng, input: Buffer, options: MutateOptions) => Buffer;

const flipBits: Mutation = (rng, input) => {
  if (input.length === 0) return rng.bytes(1);
  const out = Buffer.from(input);
  const flips = rng.range(1, 4);
  for (let i = 0; i < flips; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
  return out;
};

const setByte: Mutation = (rng, input) => {
  if (input.length === 0) return Buffer.from([rng.pick(INTERESTING_BYTES)]);
  const out = Buffer.from(input);
  out[rng.int(out.length)] = rng.chance(0.7) ? rng.pick(INTERESTING_BYTES) : rng.int(256);
  return out;
};

const truncate: Mutation = (rng, input) => input.subarray(0, rng.int(Math.max(1, input.length)));

const extend: Mutation = (rng, input) => Buffer.concat([input, rng.bytes(rng.range(1, 64))]);

const deleteRange: Mutation = (rng, input) => {
  if (input.length < 2) return Buffer.alloc(0);
  const start = rng.int(input.length);
  const end = Math.min(input.length, start + rng.range(1, 32));
  return Buffer.concat([input.subarray(0, start), input.subarray(end)]);
};

const duplicateRange: Mutation = (rng, input) => {
  if (input.length === 0) return rng.bytes(4);
  const start = rng.int(input.length);
  const piece = input.subarray(start, Math.min(input.length, start + rng.range(1, 64)));
  const at = rng.int(input.length + 1);
  return Buffer.concat([input.subarray(0, at), piece, input.subarray(at)]);
};

const insertRandom: Mutation = (rng, input) => {
  const at = rng.int(input.length + 1);
  return Buffer.concat([input.subarray(0, at), rng.bytes(rng.range(1, 16)), input.subarray(at)]);
};

const splice: Mutation = (rng, input, options) => {
  const donors = options.donors ?? [];
  if (donors.length === 0) return duplicateRange(rng, input, options);
  const donor = rng.pick(donors);
  return Buffer.concat([input.subarray(0, rng.int(input.length + 1)), donor.subarray(rng.int(donor.length + 1))]);
};

const editLength: Mutation = (rng, input, options) => {
  if (input.length < 4) return extend(rng, input, options);
  const known = (options.lengthOffsets ?? []).filter((off) => off + 4 <= input.length);
  const off = known.length > 0 && rng.chance(0.8) ? rng.pick(known) : rng.int(input.length - 3);
  const out = Buffer.from(input);
  const value = interestingLength(rng, input.length);
  if (rng.chance(0.5) ? options.littleEndian === true : options.littleEndian !== true) out.writeUInt32LE(value, off);
  else out.writeUInt32BE(value, off);
  return out;
};

/** A msgpack-aware edit: a 16-bit length (str16/bin16/array16/map16 payloads) set to an interesting value. */
const editShortLength: Mutation = (rng, input) => {
  if (input.length < 3) return setByte(rng, input, {});
  const out = Buffer.from(input);
  out.writeUInt16BE(rng.pick([0, 1, 0xff, 0x100, 0xffff, rng.int(0x10000)]), rng.int(input.length - 1));
  return out;
};

const MUTATIONS: Mutation[] = [flipBits, flipBits, setByte, truncate, extend, deleteRange, duplicateRange, insertRandom, splice, editLength, editLength, editShortLength];

/** One to `stackMax` (default 3) mutations of `input`. The result may rarely equal the input. */
export function mutate(rng: Rng, input: Buffer, options: MutateOptions = {}): Buffer {
  let out = input;
  const n = rng.range(1, options.stackMax ?? 3);
  for (let i = 0; i < n; i++) out = rng.pick(MUTATIONS)(rng, out, options);
  return out;
}

/** Index of the first byte where `a` and `b` differ (the shorter length if one is a prefix of the other). */
export function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
