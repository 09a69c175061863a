/**
 * The RESP request parser (no I/O): bytes in, commands out. A command is an array of arguments, each
 * a Buffer that is a view into the received chunk (no copy); a command split across chunks is
 * completed by joining only the unparsed tail with what follows, once enough bytes have arrived.
 * Clients send multibulk arrays (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`); telnet and nc send inline
 * commands (`GET k\r\n`), split on spaces with Redis's quoting rules.
 *
 * The two commands that make up nearly all traffic, `GET key` and `SET key value` in multibulk form,
 * are handed to a sink as offsets into the received bytes (`RespSink.get` / `set`), without an
 * argument array or views: the server answers most of them without allocating for the command.
 *
 * Limits: a whole command over `requestBytesMax`, more than `argsMax` arguments or an inline line over
 * INLINE_BYTES_MAX is a protocol error (the server answers `-ERR Protocol error: ...` and closes).
 */
import assert from 'node:assert/strict';

/** Longest inline command line (Redis's own bound, PROTO_INLINE_MAX_SIZE). */
export const INLINE_BYTES_MAX = 64 * 1024;
/** Digits of a length prefix: 2^53 has 16; more is garbage. */
const LENGTH_DIGITS_MAX = 16;
/** length()'s answer when the CRLF has not arrived (a length is never this: at most 16 digits). */
const INCOMPLETE_LENGTH = -Infinity;
/** Argument offsets kept for the next command (a huge MSET's are dropped once it is parsed). */
const OFFSETS_KEPT_MAX = 2 * 1024;

const CR = 13;
const LF = 10;
const STAR = 42; // '*'
const DOLLAR = 36; // '$'

export class RespProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RespProtocolError';
  }
}

export interface ParserLimits {
  /** Largest command in bytes, all arguments and framing together. */
  requestBytesMax: number;
  /** Most arguments in one command. */
  argsMax: number;
}

/** Marks an incomplete command: parse again once at least `needBytes` are buffered. */
const INCOMPLETE = -1;

/** Where parsed commands go, in order, as soon as each is complete. */
export interface RespSink {
  /** Any command, as its arguments (views into the received bytes). */
  command(args: Buffer[]): void;
  /** `GET key` (the name in any case): the key is `buf[keyStart, keyEnd)`. */
  get(buf: Buffer, keyStart: number, keyEnd: number): void;
  /** `SET key value` without options (the name in any case): offsets into `buf` as for get. */
  set(buf: Buffer, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number): void;
}

/** The sink of push(): every command as its arguments, GET and SET included. */
class ArraySink implements RespSink {
  out: Buffer[][] = [];
  command(args: Buffer[]): void {
    this.out.push(args);
  }
  get(buf: Buffer, keyStart: number, keyEnd: number): void {
    this.out.push([GET_NAME, buf.subarray(keyStart, keyEnd)]);
  }
  set(buf: Buffer, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number): void {
    this.out.push([SET_NAME, buf.subarray(keyStart, keyEnd), buf.subarray(valueStart, valueEnd)]);
  }
}

/** The command names a sink's get() and set() stand for, as arguments (what push() returns for them). */
export const GET_NAME = Buffer.from('GET');
export const SET_NAME = Buffer.from('SET');

/** `buf[at, at + 3)` is `name` (three lower-case ASCII letters) in any case. */
function isName3(buf: Buffer, at: number, c0: number, c1: number, c2: number): boolean {
  // | 0x20 lower-cases a letter and maps no other byte onto a lower-case letter's code except that letter's capital.
  return (buf[at] | 0x20) === c0 && (buf[at + 1] | 0x20) === c1 && (buf[at + 2] | 0x20) === c2;
}

export class RespParser {
  /** Unparsed bytes: the tail of earlier chunks (copied once) or a view of the current chunk. */
  private buf: Buffer = Buffer.alloc(0);
  /** Chunks received while the buffered command is known to be incomplete, not yet joined. */
  private parked: Buffer[] = [];
  private parkedBytes = 0;
  /** Bytes the incomplete command needs before parsing it again is worthwhile. */
  private needBytes = 0;

  constructor(private readonly limits: ParserLimits) {
    assert.ok(limits.requestBytesMax > 0 && limits.argsMax > 0);
  }

  /** Bytes held for an incomplete command. */
  get bufferedBytes(): number {
    return this.buf.length + this.parkedBytes;
  }

  /** End of the last length parsed by length() (instance state: no tuple per length). */
  private lengthEnd = 0;
  /** Start and end offsets of the arguments of the command being parsed, reused across commands. */
  private offsets: number[] = [];
  private readonly arraySink = new ArraySink();

  /**
   * Adds a chunk and returns the commands it completes, in order (appended to `out`). Throws
   * RespProtocolError on bad input; the stream cannot be resynchronised after that (the commands
   * before the bad bytes are in `out`).
   */
  push(chunk: Buffer, out: Buffer[][] = []): Buffer[][] {
    const sink = this.arraySink;
    sink.out = out;
    try {
      this.feed(chunk, sink);
    } finally {
      sink.out = [];
    }
    return out;
  }

  /**
   * Adds a chunk and hands every command it completes to `sink`, in order, each as soon as it is
   * parsed. Throws RespProtocolError on bad input (after handing over the commands before it).
   */
  feed(chunk: Buffer, sink: RespSink): void {
    if (this.buf.length === 0 && this.parkedBytes === 0) {
      this.buf = chunk;
    } else {
      this.parked.push(chunk);
      this.parkedBytes += chunk.length;
      const have = this.buf.length + this.parkedBytes;
      if (have > this.limits.requestBytesMax) {
        throw new RespProtocolError(`request over ${this.limits.requestBytesMax} bytes`);
      }
      if (have < this.needBytes) return;
      this.buf = Buffer.concat([this.buf, ...this.parked], have);
      this.parked = [];
      this.parkedBytes = 0;
    }
    let pos = 0;
    const buf = this.buf;
    while (pos < buf.length) {
      const end = buf[pos] === STAR ? this.multibulk(buf, pos, sink) : this.inline(buf, pos, sink);
      if (end === INCOMPLETE) break;
      assert.ok(end > pos, 'the parser must make progress');
      pos = end;
    }
    if (pos >= buf.length) {
      this.buf = Buffer.alloc(0);
      this.needBytes = 0;
    } else {
      // Keep only the tail; it is copied when the next chunk arrives (so the old chunk is released).
      this.buf = buf.subarray(pos);
      if (this.buf.length > this.limits.requestBytesMax) throw new RespProtocolError(`request over ${this.limits.requestBytesMax} bytes`);
    }
  }

  /**
   * Parses a decimal length ending in CRLF at `pos`: returns the value and sets `lengthEnd` to the
   * position after the CRLF, or returns INCOMPLETE_LENGTH when the CRLF has not arrived.
   */
  private length(buf: Buffer, pos: number, what: string): number {
    let value = 0;
    let i = pos;
    let negative = false;
    if (i < buf.length && buf[i] === 45) {
      negative = true;
      i++;
    }
    const digitsStart = i;
    while (i < buf.length && buf[i] !== CR) {
      const d = buf[i] - 48;
      if (d < 0 || d > 9 || i - digitsStart >= LENGTH_DIGITS_MAX) throw new RespProtocolError(`invalid ${what} length`);
      value = value * 10 + d;
      i++;
    }
    if (i + 1 >= buf.length) {
      if (i - pos > LENGTH_DIGITS_MAX + 1) throw new RespProtocolError(`invalid ${what} length`);
      return INCOMPLETE_LENGTH;
    }
    if (buf[i + 1] !== LF || i === digitsStart) throw new RespProtocolError(`invalid ${what} length`);
    this.lengthEnd = i + 2;
    return negative ? -value : value;
  }

  private multibulk(buf: Buffer, start: number, sink: RespSink): number {
    const count = this.length(buf, start + 1, 'multibulk');
    if (count === INCOMPLETE_LENGTH) return this.incomplete(buf, start, buf.length + 1);
    if (count > this.limits.argsMax) throw new RespProtocolError(`invalid multibulk length (over ${this.limits.argsMax} arguments)`);
    if (count <= 0) return this.lengthEnd; // "*0" and "*-1" are empty commands: skipped, as Redis does
    const offsets = this.offsets;
    let pos = this.lengthEnd;
    for (let n = 0; n < count; n++) {
      if (pos >= buf.length) return this.incomplete(buf, start, pos + 1);
      if (buf[pos] !== DOLLAR) throw new RespProtocolError(`expected '$', got '${String.fromCharCode(buf[pos])}'`);
      const len = this.length(buf, pos + 1, 'bulk');
      if (len === INCOMPLETE_LENGTH) return this.incomplete(buf, start, buf.length + 1);
      if (len < 0 || len > this.limits.requestBytesMax) throw new RespProtocolError('invalid bulk length');
      const dataStart = this.lengthEnd;
      const dataEnd = dataStart + len;
      if (dataEnd + 2 > buf.length) return this.incomplete(buf, start, dataEnd + 2 + (count - n - 1) * 4);
      if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) throw new RespProtocolError('bulk not terminated by CRLF');
      offsets[2 * n] = dataStart;
      offsets[2 * n + 1] = dataEnd;
      pos = dataEnd + 2;
    }
    // The whole command is in: GET and plain SET go to the sink as offsets, the rest as views.
    if (count <= 3 && offsets[1] - offsets[0] === 3) {
      const name = offsets[0];
      if (count === 2 && isName3(buf, name, 103, 101, 116)) {
        sink.get(buf, offsets[2], offsets[3]);
        return pos;
      }
      if (count === 3 && isName3(buf, name, 115, 101, 116)) {
        sink.set(buf, offsets[2], offsets[3], offsets[4], offsets[5]);
        return pos;
      }
    }
    const args: Buffer[] = new Array<Buffer>(count);
    for (let n = 0; n < count; n++) args[n] = buf.subarray(offsets[2 * n], offsets[2 * n + 1]);
    if (offsets.length > OFFSETS_KEPT_MAX) this.offsets = [];
    sink.command(args);
    return pos;
  }

  private inline(buf: Buffer, start: number, sink: RespSink): number {
    const lf = buf.indexOf(LF, start);
    if (lf === -1) {
      if (buf.length - start > INLINE_BYTES_MAX) throw new RespProtocolError('too big inline request');
      return this.incomplete(buf, start, buf.length + 1);
    }
    if (lf - start > INLINE_BYTES_MAX) throw new RespProtocolError('too big inline request');
    const lineEnd = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
    const args = splitInline(buf.subarray(start, lineEnd));
    if (args.length > this.limits.argsMax) throw new RespProtocolError(`invalid multibulk length (over ${this.limits.argsMax} arguments)`);
    if (args.length > 0) sink.command(args); // an empty line is skipped (telnet users press return)
    return lf + 1;
  }

  private incomplete(buf: Buffer, start: number, needEnd: number): number {
    const need = needEnd - start;
    if (need > this.limits.requestBytesMax) throw new RespProtocolError(`request over ${this.limits.requestBytesMax} bytes`);
    this.needBytes = need;
    void buf;
    return INCOMPLETE;
  }
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const ESCAPES: Record<number, number> = { 110: 10, 114: 13, 116: 9, 98: 8, 97: 7 }; // \n \r \t \b \a

/**
 * Splits an inline command into arguments the way redis-cli and Redis do: spaces separate; "double
 * quotes" allow \n \r \t \b \a \\ \" and \xHH escapes; 'single quotes' allow only \'. An unbalanced
 * quote is a protocol error.
 */
export function splitInline(line: Buffer): Buffer[] {
  const args: Buffer[] = [];
  let i = 0;
  const n = line.length;
  const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12;
  while (true) {
    while (i < n && isSpace(line[i])) i++;
    if (i >= n) return args;
    const quote = line[i] === 34 ? 34 : line[i] === 39 ? 39 : 0;
    if (quote === 0) {
      const s = i;
      while (i < n && !isSpace(line[i])) i++;
      args.push(line.subarray(s, i));
      continue;
    }
    i++;
    const bytes: number[] = [];
    let closed = false;
    while (i < n) {
      const c = line[i];
      if (quote === 34 && c === 92 && i + 1 < n) {
        const next = line[i + 1];
        if (next === 120 && i + 3 < n && hexDigit(line[i + 2]) >= 0 && hexDigit(line[i + 3]) >= 0) {
          bytes.push(hexDigit(line[i + 2]) * 16 + hexDigit(line[i + 3]));
          i += 4;
          continue;
        }
        bytes.push(ESCAPES[next] ?? next);
        i += 2;
        continue;
      }
      if (quote === 39 && c === 92 && i + 1 < n && line[i + 1] === 39) {
        bytes.push(39);
        i += 2;
        continue;
      }
      if (c === quote) {
        closed = true;
        i++;
        break;
      }
      bytes.push(c);
      i++;
    }
    // A closing quote must be followed by a space or the end (Redis: "unbalanced quotes").
    if (!closed || (i < n && !isSpace(line[i]))) throw new RespProtocolError('unbalanced quotes in request');
    args.push(Buffer.from(bytes));
  }
}
