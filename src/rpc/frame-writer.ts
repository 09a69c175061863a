/**
 * Coalesces the frames written to one socket during one event-loop turn into a single socket write
 * (one syscall instead of one per pipelined response). Used by the server and the client.
 */
import type { Socket } from 'node:net';
import { pack } from '../codec.js';
import { ShoalError } from '../errors.js';
import { FRAME_HEADER_BYTES } from './framing.js';

/** Up to this many queued bytes are copied into one buffer; more are written as a vector. */
const COPY_BYTES_MAX = 64 * 1024;

export class FrameWriter {
  /** Encoded frame bodies; the 4-byte headers are written at flush. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  /** Total bytes handed to the socket. */
  bytesOut = 0;

  constructor(
    private readonly socket: Socket,
    private readonly frameBytesMax: number,
    /** Called after each socket write (the server checks backpressure here). */
    private readonly afterFlush: () => void = () => {},
  ) {}

  /**
   * Encodes `value` and queues it; throws FRAME_TOO_LARGE (nothing queued) when its body is over the
   * limit, or whatever the encoder throws for a value msgpack cannot carry.
   */
  send(value: unknown): void {
    const body = pack(value);
    if (body.length > this.frameBytesMax) {
      throw new ShoalError('FRAME_TOO_LARGE', `frame of ${body.length} bytes exceeds the limit of ${this.frameBytesMax}`);
    }
    this.pending.push(body);
    this.pendingBytes += FRAME_HEADER_BYTES + body.length;
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushBound);
    }
  }

  private readonly flushBound = (): void => this.flush();

  /** Bytes queued here and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.pendingBytes;
  }

  /** Writes everything queued now (also called before ending a connection). */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const bodies = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.socket.destroyed || !this.socket.writable) return;
    this.bytesOut += bytes;
    if (bytes <= COPY_BYTES_MAX) {
      // Headers and bodies copied into one buffer: one allocation and one write for the whole turn.
      const out = Buffer.allocUnsafe(bytes);
      let offset = 0;
      for (const body of bodies) {
        out.writeUInt32BE(body.length, offset);
        offset += FRAME_HEADER_BYTES;
        offset += body.copy(out, offset);
      }
      this.socket.write(out);
    } else {
      // Large output: one vectored write of the parts instead of copying them together.
      this.socket.cork();
      for (const body of bodies) {
        const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
        header.writeUInt32BE(body.length, 0);
        this.socket.write(header);
        this.socket.write(body);
      }
      this.socket.uncork();
    }
    this.afterFlush();
  }
}
