/**
 * The one msgpack configuration used for frames, datagrams and WAL records: plain msgpack types only
 * (no records, no library extensions), so any language's msgpack library can read what Shoal writes.
 * Binary values are msgpack bin (Buffer); maps decode to plain objects.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({
  useRecords: false, // no msgpackr record extension
  moreTypes: false, // no extension types beyond the msgpack spec
  bundleStrings: false,
  mapsAsObjects: true,
  int64AsType: 'number', // decode 64-bit ints as numbers (all our integers are < 2^53)
  useTimestamp32: false,
  encodeUndefinedAsNil: true, // a field left undefined travels as nil, never as msgpackr's ext 0
});

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpack(bytes: Buffer | Uint8Array): unknown {
  return packr.unpack(bytes);
}
