/**
 * CRC32C (Castagnoli) of a byte range without allocating. Short ranges use a slice-by-8 table in
 * JavaScript (about 3× faster than the native call for a typical 150-byte record, whose cost is
 * mostly call overhead plus a subarray); long ranges use @node-rs/crc32's hardware implementation.
 * Both compute the same standard CRC32C.
 */
import { crc32c } from '@node-rs/crc32';

/** Below this many bytes the table loop beats the native call. */
const NATIVE_BYTES_MIN = 512;
const POLY_REFLECTED = 0x82f63b78;

const TABLE = new Int32Array(256 * 8);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1;
  TABLE[i] = c;
}
for (let i = 0; i < 256; i++) {
  for (let t = 1; t < 8; t++) {
    const prev = TABLE[(t - 1) * 256 + i];
    TABLE[t * 256 + i] = (prev >>> 8) ^ TABLE[prev & 255];
  }
}

/** CRC32C of buf[start, end), as an unsigned 32-bit number. */
export function crc32cRange(buf: Buffer, start: number, end: number): number {
  if (end - start >= NATIVE_BYTES_MIN) return crc32c(buf.subarray(start, end));
  const t = TABLE;
  let c = ~0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
    c =
      t[1792 + (a & 255)] ^
      t[1536 + ((a >>> 8) & 255)] ^
      t[1280 + ((a >>> 16) & 255)] ^
      t[1024 + (a >>> 24)] ^
      t[768 + buf[i + 4]] ^
      t[512 + buf[i + 5]] ^
      t[256 + buf[i + 6]] ^
      t[buf[i + 7]];
  }
  for (; i < end; i++) c = t[(c ^ buf[i]) & 255] ^ (c >>> 8);
  return ~c >>> 0;
}
