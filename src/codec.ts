/**
 * The one msgpack configuration used for frames, datagrams and WAL records: plain msgpack types only
 * (no records, no library extensions), so any language's msgpack library can read what Shoal writes.
 * Binary values are msgpack bin (Buffer); maps decode to plain objects.
 *
 * Extension values are never part of the protocol. Every extension type (the spec's timestamp -1,
 * msgpackr's own, and unknown ones) decodes to a MsgpackExtension marker instead of a Date, a Set, a
 * thrown "unknown extension" or `undefined` (msgpackr's ext 0), so a frame carrying one still decodes
 * and can be refused for its request alone (`unpackPlain` reports the first one seen). The one
 * exception is msgpackr's record definition (fixext 1/2 of type 0x72), which cannot be overridden:
 * such a frame fails to decode as a whole.
 */
import { addExtension, Packr } from 'msgpackr';

/** What an extension value decodes to: never a valid argument. */
export class MsgpackExtension {
  constructor(readonly type: number) {}
}

/** The first extension type met by the unpack in progress (unpack is synchronous). */
let extensionSeen: number | null = null;
for (let unsigned = 0; unsigned < 256; unsigned++) {
  const type = unsigned > 127 ? unsigned - 256 : unsigned;
  addExtension({
    type: unsigned,
    unpack: () => {
      extensionSeen ??= type;
      return new MsgpackExtension(type);
    },
  });
}

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

/** Decodes like unpack() and says which extension type (if any) the value contained. */
export function unpackPlain(bytes: Buffer | Uint8Array): { value: unknown; extensionType: number | null } {
  extensionSeen = null;
  try {
    const value = packr.unpack(bytes);
    return { value, extensionType: extensionSeen };
  } finally {
    extensionSeen = null;
  }
}
