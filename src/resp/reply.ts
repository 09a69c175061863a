/**
 * RESP replies and their encoding for RESP2 and RESP3 (no I/O). Command handlers return a Reply value;
 * the connection encodes the replies of one read batch, in request order, into one ReplyWriter, and
 * writes it to the socket once. Small parts are copied into a shared chunk; large bulk values are kept
 * as separate buffers and written with the rest in one vectored write.
 *
 * Mapping: `null` is the null reply (`$-1` in RESP2, `_` in RESP3), a number an integer, a Buffer or
 * string a bulk string, an array an array; the classes below cover the other types.
 */

export class SimpleString {
  private encoded: Buffer | null = null;
  constructor(readonly text: string) {}

  /** `+text\r\n`, encoded once per instance (OK and PONG are shared constants). */
  bytes(): Buffer {
    this.encoded ??= Buffer.from(`+${oneLine(this.text)}\r\n`, 'latin1');
    return this.encoded;
  }
}

/** An error reply; `text` starts with the error code (`ERR`, `WRONGTYPE`, `NOPROTO`...). */
export class ErrorReply {
  constructor(readonly text: string) {}
}

/** A map (RESP3 `%`); a flat array of key, value, ... in RESP2. */
export class MapReply {
  constructor(readonly entries: Array<[Reply, Reply]>) {}
}

/** A set (RESP3 `~`); an array in RESP2. */
export class SetReply {
  constructor(readonly items: Reply[]) {}
}

/** A double (RESP3 `,`); a bulk string in RESP2. */
export class DoubleReply {
  constructor(readonly value: number) {}
}

/** A boolean (RESP3 `#`); the integer 1 or 0 in RESP2. */
export class BoolReply {
  constructor(readonly value: boolean) {}
}

/** A verbatim string (RESP3 `=txt:`), such as INFO's text; a bulk string in RESP2. */
export class VerbatimReply {
  constructor(readonly text: string) {}
}

/** An array that is null (RESP2 `*-1`, RESP3 `_`): what a timed-out blocking command answers. */
export const NULL_ARRAY = Symbol('null-array');

export type Reply =
  | null
  | number
  | bigint
  | Buffer
  | string
  | SimpleString
  | ErrorReply
  | MapReply
  | SetReply
  | DoubleReply
  | BoolReply
  | VerbatimReply
  | typeof NULL_ARRAY
  | Reply[];

export const OK = new SimpleString('OK');
export const PONG = new SimpleString('PONG');
export const QUEUED = new SimpleString('QUEUED');

export type ProtocolVersion = 2 | 3;

/** Bulk values at least this long are written as their own buffer instead of being copied. */
const COPY_BYTES_MAX = 16 * 1024;
/** Size of the chunks small parts are copied into. */
const CHUNK_BYTES = 64 * 1024;
/** `$`, the length's digits (a bulk copied is under COPY_BYTES_MAX: at most 5) and two CRLFs, rounded up. */
const BULK_FRAMING_BYTES_MAX = 16;
const DOLLAR = 36;
const CR = 13;
const LF = 10;

/** Writes a non-negative integer's decimal digits at `at`; returns the position after them. */
function writeDecimal(buf: Buffer, at: number, value: number): number {
  if (value < 10) {
    buf[at] = 48 + value;
    return at + 1;
  }
  let digits = 0;
  for (let v = value; v > 0; v = Math.floor(v / 10)) digits += 1;
  let end = at + digits;
  for (let v = value; v > 0; v = Math.floor(v / 10)) buf[--end] = 48 + (v % 10);
  return at + digits;
}

/** Encodes replies into a list of buffers, written to the socket together. */
export class ReplyWriter {
  private parts: Buffer[] = [];
  private chunk: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;
  /** Start of the part of `chunk` not yet in `parts`. */
  private mark = 0;
  private total = 0;

  get bytes(): number {
    return this.total + this.used - this.mark;
  }

  get isEmpty(): boolean {
    return this.bytes === 0;
  }

  /** Everything encoded so far, as buffers to write in order; resets the writer. */
  take(): Buffer[] {
    this.cut();
    const parts = this.parts;
    this.parts = [];
    this.total = 0;
    return parts;
  }

  private cut(): void {
    if (this.used > this.mark) {
      this.parts.push(this.chunk.subarray(this.mark, this.used));
      this.total += this.used - this.mark;
      this.mark = this.used;
    }
  }

  private room(bytes: number): void {
    if (this.used + bytes <= this.chunk.length) return;
    this.cut();
    // The old chunk stays referenced by `parts` until written; start a new one.
    this.chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, bytes));
    this.used = 0;
    this.mark = 0;
  }

  /** ASCII text (framing, numbers, simple strings). */
  private ascii(text: string): void {
    this.room(text.length);
    this.used += this.chunk.write(text, this.used, 'latin1');
  }

  private raw(bytes: Buffer): void {
    if (bytes.length >= COPY_BYTES_MAX) {
      this.cut();
      this.parts.push(bytes);
      this.total += bytes.length;
      return;
    }
    this.room(bytes.length);
    this.used += bytes.copy(this.chunk, this.used);
  }

  bulk(value: Buffer | string): void {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    const length = bytes.length;
    if (length < COPY_BYTES_MAX) {
      // The common case (GET of a small value): header, value and CRLF copied into the chunk at once.
      this.room(length + BULK_FRAMING_BYTES_MAX);
      const chunk = this.chunk;
      let at = this.used;
      chunk[at++] = DOLLAR;
      at = writeDecimal(chunk, at, length);
      chunk[at++] = CR;
      chunk[at++] = LF;
      chunk.set(bytes, at);
      at += length;
      chunk[at++] = CR;
      chunk[at++] = LF;
      this.used = at;
      return;
    }
    this.ascii(`$${length}\r\n`);
    this.raw(bytes);
    this.ascii('\r\n');
  }

  write(reply: Reply, proto: ProtocolVersion): void {
    if (reply === null) {
      this.ascii(proto === 3 ? '_\r\n' : '$-1\r\n');
    } else if (typeof reply === 'number') {
      this.ascii(`:${reply}\r\n`);
    } else if (typeof reply === 'bigint') {
      this.ascii(`:${reply}\r\n`);
    } else if (Buffer.isBuffer(reply) || typeof reply === 'string') {
      this.bulk(reply);
    } else if (Array.isArray(reply)) {
      this.ascii(`*${reply.length}\r\n`);
      for (const item of reply) this.write(item, proto);
    } else if (reply instanceof SimpleString) {
      this.raw(reply.bytes());
    } else if (reply instanceof ErrorReply) {
      const line = `-${oneLine(reply.text)}\r\n`;
      const bytes = Buffer.from(line, 'utf8');
      this.raw(bytes);
    } else if (reply instanceof MapReply) {
      this.ascii(proto === 3 ? `%${reply.entries.length}\r\n` : `*${reply.entries.length * 2}\r\n`);
      for (const [k, v] of reply.entries) {
        this.write(k, proto);
        this.write(v, proto);
      }
    } else if (reply instanceof SetReply) {
      this.ascii(proto === 3 ? `~${reply.items.length}\r\n` : `*${reply.items.length}\r\n`);
      for (const item of reply.items) this.write(item, proto);
    } else if (reply instanceof DoubleReply) {
      const text = formatDouble(reply.value);
      if (proto === 3) this.ascii(`,${text}\r\n`);
      else this.bulk(text);
    } else if (reply instanceof BoolReply) {
      this.ascii(proto === 3 ? (reply.value ? '#t\r\n' : '#f\r\n') : reply.value ? ':1\r\n' : ':0\r\n');
    } else if (reply instanceof VerbatimReply) {
      if (proto === 3) {
        const bytes = Buffer.from(reply.text, 'utf8');
        this.ascii(`=${bytes.length + 4}\r\ntxt:`);
        this.raw(bytes);
        this.ascii('\r\n');
      } else {
        this.bulk(reply.text);
      }
    } else if (reply === NULL_ARRAY) {
      this.ascii(proto === 3 ? '_\r\n' : '*-1\r\n');
    } else {
      throw new Error(`not a reply: ${String(reply)}`);
    }
  }
}

/** Simple strings and errors cannot hold CR or LF. */
function oneLine(text: string): string {
  return /[\r\n]/.test(text) ? text.replace(/[\r\n]+/g, ' ') : text;
}

function formatDouble(value: number): string {
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (Number.isNaN(value)) return 'nan';
  return String(value);
}

/** Encodes one reply into one buffer (tests, and one-off replies such as a refusal). */
export function encodeReply(reply: Reply, proto: ProtocolVersion = 2): Buffer {
  const w = new ReplyWriter();
  w.write(reply, proto);
  return Buffer.concat(w.take());
}
