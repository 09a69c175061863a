/** Test fixtures for the RPC layer: an in-memory handler, a started server and a raw socket peer. */
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { ShoalError } from '../../src/errors.js';
import { encodeFrame, FrameDecoder } from '../../src/rpc/framing.js';
import { RpcServer, type RpcContext, type RpcHandler } from '../../src/rpc/server.js';
import { parseDelArgs, parseGetArgs, parsePutArgs } from '../../src/rpc/protocol.js';
import type { RpcLimits } from '../../src/rpc/limits.js';

export const CLUSTER = 'test';

/** A get/put/del handler over a Map, with a log of what it applied (to prove bad input changed nothing). */
export function memoryHandler() {
  const data = new Map<string, { value: Buffer; ts: number }>();
  const applied: string[] = [];
  const contexts: RpcContext[] = [];
  let ts = 1000;
  const handler: RpcHandler = async (op, args, ctx) => {
    contexts.push(ctx);
    switch (op) {
      case 'get': {
        const { key } = parseGetArgs(args);
        const entry = data.get(key);
        return entry ? { value: entry.value, version: { ts: entry.ts, node: 'n1' } } : null;
      }
      case 'put': {
        const { key, value, seenTs } = parsePutArgs(args, { keyBytesMax: 64, valueBytesMax: 1 << 20 });
        ts = Math.max(ts, seenTs ?? 0) + 1;
        data.set(key, { value, ts });
        applied.push(`put ${key}`);
        return { version: { ts, node: 'n1' } };
      }
      case 'del': {
        const { key, seenTs } = parseDelArgs(args);
        ts = Math.max(ts, seenTs ?? 0) + 1;
        data.delete(key);
        applied.push(`del ${key}`);
        return { version: { ts, node: 'n1' } };
      }
      case 'health':
        return { ok: true, node: 'n1' };
      default:
        throw new ShoalError('BAD_REQUEST', `unknown op "${op}"`);
    }
  };
  return { handler, data, applied, contexts };
}

export async function startServer(handler: RpcHandler, limits: Partial<RpcLimits> = {}, nodeId = 'n1') {
  const server = new RpcServer({ host: '127.0.0.1', port: 0, nodeId, clusterName: CLUSTER, handler, limits });
  const { port } = await server.listen();
  return { server, port, addr: `127.0.0.1:${port}` };
}

/** A hand-driven client socket: send frames or raw bytes, read decoded frames one by one. */
export class RawPeer {
  readonly socket: Socket;
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024);
  private readonly frames: unknown[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.frames.push(...this.decoder.push(chunk));
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async open(port: number, hello = true): Promise<RawPeer> {
    const socket = connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    const peer = new RawPeer(socket);
    if (hello) {
      peer.send({ id: 0, op: 'hello', args: { version: 1, cluster: CLUSTER } });
      const reply = (await peer.next()) as { ok: boolean };
      if (!reply.ok) throw new Error('hello failed');
    }
    return peer;
  }

  send(value: unknown): void {
    this.socket.write(encodeFrame(value));
  }

  sendBytes(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next frame, or null once the connection is closed with nothing left. Bounded wait. */
  async next(timeoutMs = 5000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0 && !this.closed) {
      if (Date.now() > deadline) throw new Error('no frame in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.frames.length > 0 ? this.frames.shift() : null;
  }

  async nextN(n: number): Promise<unknown[]> {
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next());
    return out;
  }

  /** Resolves when the server has closed the connection (bounded). */
  async closedByServer(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

export function frameHeader(length: number): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length);
  return header;
}

/** Polls `condition` every 10 ms for at most `timeoutMs`; returns its last value. */
export async function eventually(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/**
 * `count` distinct loopback TCP ports that were free a moment ago (bound together, then released):
 * for processes that need their port before they start, and for "nothing listens here" tests.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const s = createServer();
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
      return s;
    }),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map(async (s) => {
    s.close();
    await once(s, 'close');
  }));
  return ports;
}
