/**
 * The datagram seam of the membership runtime: `UdpFactory.bind(host, port)` gives a `UdpEndpoint`
 * the runtime sends and receives gossip datagrams through. The default, `dgramUdp`, is a node:dgram
 * socket; the whole-cluster simulator (src/sim/) gives each node an endpoint on its simulated network
 * (delay, loss, duplication, partitions). This file and sync.ts (TCP push-pull) are the only ones of
 * src/membership/ that touch real sockets (eslint.config.js keeps it so).
 */
import dgram from 'node:dgram';
import net from 'node:net';

/** Where a datagram came from. */
export interface UdpRemote {
  address: string;
  port: number;
}

/** One bound datagram endpoint (a UDP socket). */
export interface UdpEndpoint {
  /** The address actually bound (the port the OS chose when 0 was asked). */
  address(): UdpRemote;
  /** Sends one datagram; `done` is told of a failure (never thrown). */
  send(bytes: Buffer, port: number, host: string, done?: (err: Error | null) => void): void;
  /** Sets the handler of every datagram received (one handler; a later call replaces it). */
  onMessage(handler: (bytes: Buffer, from: UdpRemote) => void): void;
  /** Sets the handler of socket errors after the bind (one handler). */
  onError(handler: (err: Error) => void): void;
  /** Unbinds; nothing is delivered afterwards. */
  close(): Promise<void>;
}

export interface UdpFactory {
  /** Binds (host, port), port 0 = any free one; rejects (e.g. EADDRINUSE) when it cannot. */
  bind(host: string, port: number): Promise<UdpEndpoint>;
}

class DgramEndpoint implements UdpEndpoint {
  private messageHandler: (bytes: Buffer, from: UdpRemote) => void = () => {};
  private errorHandler: (err: Error) => void = () => {};

  constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (bytes, rinfo) => this.messageHandler(bytes, { address: rinfo.address, port: rinfo.port }));
    socket.on('error', (err) => this.errorHandler(err));
  }

  address(): UdpRemote {
    const { address, port } = this.socket.address();
    return { address, port };
  }

  send(bytes: Buffer, port: number, host: string, done?: (err: Error | null) => void): void {
    this.socket.send(bytes, port, host, (err) => done?.(err ?? null));
  }

  onMessage(handler: (bytes: Buffer, from: UdpRemote) => void): void {
    this.messageHandler = handler;
  }

  onError(handler: (err: Error) => void): void {
    this.errorHandler = handler;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** The default: a node:dgram socket (udp6 for an IPv6 host), bound exclusively. */
export const dgramUdp: UdpFactory = {
  async bind(host, port) {
    const socket = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: host, port, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new DgramEndpoint(socket);
  },
};
