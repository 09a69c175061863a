/**
 * Push-pull over TCP on the gossip port (the same number as UDP, like memberlist): the initiator sends
 * one frame with its state, the listener answers one frame with its own, and the connection closes.
 * Frames are src/rpc/framing.ts frames, bounded by syncBytesMax; each exchange by syncTimeoutMs.
 */
import net from 'node:net';
import { ShoalError, toShoalError } from '../errors.js';
import { FrameDecoder, encodeFrame } from '../rpc/framing.js';
import type { SyncTransport } from './types.js';

export interface SyncLimits {
  syncBytesMax: number;
  syncTimeoutMs: number;
  syncConnectionsMax: number;
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const colon = addr.lastIndexOf(':');
  const port = Number(addr.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ShoalError('CONFIG', `"${addr}" is not host:port`);
  }
  return { host: addr.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port };
}

/** Reads exactly one frame from `socket`, or rejects on timeout, oversize, garbage or close. */
function readOneFrame(socket: net.Socket, limits: SyncLimits): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder(limits.syncBytesMax);
    // Removes only its own listeners: the listener's 'close' handler frees the connection's slot.
    const done = (err: Error | null, value?: unknown): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', closed);
      socket.off('close', closed);
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => done(new ShoalError('TIMEOUT', 'push-pull sync timed out')), limits.syncTimeoutMs);
    const onData = (chunk: Buffer): void => {
      try {
        const frames = decoder.push(chunk);
        if (frames.length > 0) done(null, frames[0]);
      } catch (err) {
        done(toShoalError(err));
      }
    };
    const closed = (): void => done(new ShoalError('UNAVAILABLE', 'push-pull connection closed early'));
    socket.on('data', onData);
    socket.on('end', closed);
    socket.on('close', closed);
  });
}

/** The default SyncTransport: connect, send our state, read theirs. */
export class TcpSyncTransport implements SyncTransport {
  constructor(private readonly limits: SyncLimits) {}

  request(gossipAddr: string, state: unknown): Promise<unknown> {
    const { host, port } = splitHostPort(gossipAddr);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ShoalError('TIMEOUT', `push-pull with ${gossipAddr} timed out`));
      }, this.limits.syncTimeoutMs);
      socket.on('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new ShoalError('UNAVAILABLE', `push-pull with ${gossipAddr}: ${err.message}`));
      });
      socket.once('connect', () => {
        socket.write(encodeFrame(state));
        readOneFrame(socket, this.limits).then(
          (reply) => {
            clearTimeout(timer);
            socket.end();
            resolve(reply);
          },
          (err: unknown) => {
            clearTimeout(timer);
            socket.destroy();
            reject(err);
          },
        );
      });
    });
  }
}

/** Listens for push-pull on `host:port`; `answer` merges a remote state and returns ours. */
export class SyncListener {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private rejectedCount = 0;

  constructor(
    private readonly limits: SyncLimits,
    answer: (state: unknown, remote: string) => unknown,
    onError: (err: ShoalError, remote: string) => void,
  ) {
    this.server = net.createServer((socket) => {
      const remote = `${socket.remoteAddress}:${socket.remotePort}`;
      if (this.sockets.size >= limits.syncConnectionsMax) {
        this.rejectedCount += 1;
        socket.destroy();
        return;
      }
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      readOneFrame(socket, limits).then(
        (state) => {
          try {
            socket.end(encodeFrame(answer(state, remote)));
          } catch (err) {
            onError(toShoalError(err), remote);
            socket.destroy();
          }
        },
        (err: unknown) => {
          onError(toShoalError(err), remote);
          socket.destroy();
        },
      );
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  get rejected(): number {
    return this.rejectedCount;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
