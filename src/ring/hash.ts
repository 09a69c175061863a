/**
 * The ring's hash: XXH3-64 from @node-rs/xxhash, unseeded. Measured on this machine (short keys such as
 * `user:123:profile`, string input): xxh3 ≈ 220 ns per call against ≈ 370 ns for xxh64 and ≈ 300 ns for
 * xxh32, and it returns the full 64 bits as a bigint, so ring tokens and key hashes share one domain.
 *
 * Tokens are hashes of `${memberId}/${vnodeIndex}` rather than xxh3(memberId, seed = vnodeIndex): for
 * inputs of 1–3 bytes XXH3 folds the seed in linearly, so short ids such as "n1" and "n2" produced
 * colliding token sets (a 100-node ring of ids n1..n100 had members owning 0 %). Hashing the
 * concatenation keeps every input distinct and needs no seed. The string is unambiguous because the
 * vnode index is the decimal digits after the last "/".
 */
import { xxh3 } from '@node-rs/xxhash';

/** 2^64: the size of the token space. Tokens are unsigned 64-bit integers in [0, 2^64). */
export const TOKEN_SPACE = 1n << 64n;
export const TOKEN_MAX = TOKEN_SPACE - 1n;

/** The ring position of a key. */
export function hashKey(key: string): bigint {
  return xxh3.xxh64(key);
}

/** The token of virtual node `index` of member `memberId`; depends on nothing else. */
export function vnodeToken(memberId: string, index: number): bigint {
  return xxh3.xxh64(`${memberId}/${index}`);
}

/** A short hex rendering of a 64-bit value (16 digits), for checksums and logs. */
export function hex64(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}

/** Any string → 64-bit hash (used for checksums and digests, never for placement). */
export function hashString(text: string): bigint {
  return xxh3.xxh64(text);
}

/** Any bytes → 64-bit hash (checksums of digests). */
export function hashBytes(bytes: Uint8Array): bigint {
  return xxh3.xxh64(bytes);
}
