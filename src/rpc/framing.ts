/**
 * TCP framing: a 4-byte big-endian length, then that many bytes of one msgpack value.
 * Used by the RPC protocol and by membership's push-pull sync. See docs/PROTOCOL.md.
 */
import { ShoalError } from '../errors.js';
import { pack, unpackPlain } from '../codec.js';

export const FRAME_HEADER_BYTES = 4;

export function encodeFrame(value: unknown): Buffer {
  const body = pack(value);
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/**
 * A frame that decoded but carries a msgpack extension value: refused for its request alone (`id`,
 * when the frame had a usable one), the connection goes on (framing is intact).
 */
export class RefusedFrame {
  constructor(
    readonly id: unknown,
    readonly error: ShoalError,
  ) {}
}

/**
 * Incremental decoder: feed it socket chunks, get whole decoded values back (a RefusedFrame for one
 * carrying an extension value). Throws ShoalError FRAME_TOO_LARGE when a header announces more than
 * `frameBytesMax` (before buffering it), and BAD_REQUEST when a frame body is not valid msgpack.
 * After a throw the stream is unusable: close it.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly frameBytesMax: number) {}

  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: unknown[] = [];
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const head = this.peek(FRAME_HEADER_BYTES);
      const length = head.readUInt32BE(0);
      if (length > this.frameBytesMax) {
        throw new ShoalError('FRAME_TOO_LARGE', `frame of ${length} bytes exceeds the limit of ${this.frameBytesMax}`);
      }
      if (this.buffered < FRAME_HEADER_BYTES + length) break;
      const frame = this.take(FRAME_HEADER_BYTES + length).subarray(FRAME_HEADER_BYTES);
      let decoded: { value: unknown; extensionType: number | null };
      try {
        decoded = unpackPlain(frame);
      } catch (err) {
        throw new ShoalError('BAD_REQUEST', `frame body is not valid msgpack: ${(err as Error).message}`);
      }
      if (decoded.extensionType === null) out.push(decoded.value);
      else {
        const value = decoded.value as { id?: unknown } | null;
        const id = typeof value === 'object' && value !== null ? value.id : undefined;
        const kind = decoded.extensionType === -1 ? ' (timestamp)' : '';
        out.push(
          new RefusedFrame(id, new ShoalError('BAD_REQUEST', `msgpack extension type ${decoded.extensionType}${kind} is not part of the protocol (plain msgpack types only)`)),
        );
      }
    }
    return out;
  }

  /** Bytes received but not yet part of a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const first = this.peek(n);
    const taken = first.subarray(0, n);
    const rest = first.subarray(n);
    this.chunks[0] = rest;
    if (rest.length === 0) this.chunks.shift();
    this.buffered -= n;
    return taken;
  }
}
