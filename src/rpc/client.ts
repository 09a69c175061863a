/**
 * The RPC client: a pool of a few pipelined connections per address, opened lazily, each starting
 * with the hello handshake. Requests carry ids; responses are matched by id in any order. A dropped
 * connection fails its in-flight requests with UNAVAILABLE and is replaced on the next call.
 * With `tls`, connections are TLS (the server's certificate checked against the CA; the client's
 * own certificate presented for mutual TLS); a failed handshake says why in its UNAVAILABLE error.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { ShoalError, toShoalError } from '../errors.js';
import { FrameDecoder } from './framing.js';
import { FrameWriter } from './frame-writer.js';
import { DEFAULT_RPC_LIMITS } from './limits.js';
import { clientConnectOptions, looksLikeTls, tlsFailureReason, type RpcTlsClientOptions } from './tls.js';
import { HELLO_ID, HELLO_OP, PROTOCOL_VERSION, REQUEST_ID_MAX, parseResponse, type HelloResult, type RpcArgs } from './protocol.js';

export interface RpcPoolOptions {
  clusterName: string;
  /** This node's id, sent in hello on node-to-node connections. */
  peer?: string;
  /** Default per-request timeout (from call to response, connecting included). Default 5 s. */
  timeoutMs?: number;
  /** Connect + handshake timeout. Default 2 s. */
  connectTimeoutMs?: number;
  /** Connections kept per address, used round-robin. Default 2. */
  connectionsPerAddr?: number;
  /** Largest frame sent or accepted. Default 8 MiB (the server's default). */
  frameBytesMax?: number;
  /** TLS on every connection (src/rpc/tls.ts loads it from PEM files). Default: plaintext. */
  tls?: RpcTlsClientOptions;
}

export interface CallOptions {
  timeoutMs?: number;
}

export interface RpcPoolStats {
  connections: number;
  inFlight: number;
  calls: number;
  connectsStarted: number;
  connectFailures: number;
  timeouts: number;
  drops: number;
}

const DEFAULTS = { timeoutMs: 5_000, connectTimeoutMs: 2_000, connectionsPerAddr: 2 };

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: ShoalError) => void;
  /** performance.now() after which the request fails with TIMEOUT. */
  deadline: number;
  op: string;
  timeoutMs: number;
}

/**
 * Request deadlines are checked by one sweep per connection this often instead of one timer per
 * request (a timer per request was a visible share of the client's CPU and garbage): a request
 * times out between timeoutMs and timeoutMs + TIMEOUT_SWEEP_MS after it was made.
 */
const TIMEOUT_SWEEP_MS = 20;

/** A transport-level failure: the address could not be reached or the connection dropped. */
export function unavailable(addr: string, message: string): ShoalError {
  return new ShoalError('UNAVAILABLE', `${addr}: ${message}`, { addr, transport: true });
}

/** A failed TLS handshake with `addr` (a transport error: another node may be tried). */
function tlsFailure(addr: string, reason: string): ShoalError {
  return new ShoalError('UNAVAILABLE', `TLS handshake with ${addr} failed: ${reason}`, { addr, transport: true, tls: true });
}

/** Socket errors that happen before any byte is exchanged: no TLS handshake was tried. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ETIMEDOUT']);

/** True for errors raised by the client because an address was unreachable (safe to try another). */
export function isTransportError(err: unknown): boolean {
  return err instanceof ShoalError && err.code === 'UNAVAILABLE' && err.details?.transport === true;
}

export function parseAddr(addr: string): { host: string; port: number } {
  const at = addr.lastIndexOf(':');
  const port = Number(addr.slice(at + 1));
  const host = addr.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new ShoalError('CONFIG', `address "${addr}" is not host:port`);
  }
  return { host, port };
}

/**
 * What a first answer that is not a Shoal frame looks like: a length prefix of "HTTP" (the metrics
 * port) or a RESP reply ("-ERR", "+OK": a Redis port) would otherwise read as a huge frame length.
 */
export function foreignProtocol(first: Buffer): string | null {
  const head = first.subarray(0, 5).toString('latin1');
  if (head.startsWith('HTTP/') || head.startsWith('<')) return 'HTTP: is it the metrics port?';
  if (/^[-+]/.test(head) && /^[-+][A-Za-z]/.test(head)) return 'Redis (RESP): is it a RESP port?';
  if (head.startsWith('SSH-')) return 'SSH';
  return null;
}

/** A connect error in plain words. */
function connectReason(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'connection refused (no node listens there: is the cluster running, on these ports?)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `host not found (${code})`;
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `no route to the host (${code})`;
  return err.message;
}

export class RpcPool {
  private readonly opts: Required<Omit<RpcPoolOptions, 'peer' | 'tls'>> & { peer?: string; tls?: RpcTlsClientOptions };
  private readonly slots = new Map<string, { conns: (ClientConnection | null)[]; next: number }>();
  private closed = false;
  readonly counters = { calls: 0, connectsStarted: 0, connectFailures: 0, timeouts: 0, drops: 0 };

  constructor(options: RpcPoolOptions) {
    this.opts = {
      ...DEFAULTS,
      frameBytesMax: DEFAULT_RPC_LIMITS.frameBytesMax,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as RpcPool['opts'];
    if (!Number.isInteger(this.opts.connectionsPerAddr) || this.opts.connectionsPerAddr < 1) {
      throw new ShoalError('CONFIG', 'connectionsPerAddr must be a positive integer');
    }
  }

  /** Largest frame sent or accepted (node-to-node batches are bounded by a share of it). */
  get frameBytesMax(): number {
    return this.opts.frameBytesMax;
  }

  /** Sends one request to `addr` ('host:port'); resolves with the result or rejects with a ShoalError. */
  call(addr: string, op: string, args: RpcArgs, options: CallOptions = {}): Promise<unknown> {
    if (this.closed) return Promise.reject(new ShoalError('CLOSED', 'the RPC pool is closed'));
    this.counters.calls += 1;
    let conn: ClientConnection;
    try {
      conn = this.pick(addr);
    } catch (err) {
      return Promise.reject(toShoalError(err));
    }
    return conn.request(op, args, options.timeoutMs ?? this.opts.timeoutMs);
  }

  /** Resolves once the hello with `addr` succeeded (opens a connection if needed). */
  async connect(addr: string): Promise<HelloResult> {
    if (this.closed) throw new ShoalError('CLOSED', 'the RPC pool is closed');
    return this.pick(addr).ready;
  }

  /** Rejects everything in flight with CLOSED and closes every connection. */
  async close(): Promise<void> {
    this.closed = true;
    const closing: Promise<void>[] = [];
    for (const { conns } of this.slots.values()) {
      for (const conn of conns) if (conn) closing.push(conn.close(new ShoalError('CLOSED', 'the RPC pool is closed')));
    }
    this.slots.clear();
    await Promise.all(closing);
  }

  stats(): RpcPoolStats {
    let connections = 0;
    let inFlight = 0;
    for (const { conns } of this.slots.values()) {
      for (const conn of conns) {
        if (!conn) continue;
        connections += 1;
        inFlight += conn.inFlightCount;
      }
    }
    return { connections, inFlight, ...this.counters };
  }

  private pick(addr: string): ClientConnection {
    let slot = this.slots.get(addr);
    if (!slot) {
      parseAddr(addr); // refuse a malformed address before keeping anything for it
      slot = { conns: new Array<ClientConnection | null>(this.opts.connectionsPerAddr).fill(null), next: 0 };
      this.slots.set(addr, slot);
    }
    const index = slot.next;
    slot.next = (index + 1) % slot.conns.length;
    const existing = slot.conns[index];
    if (existing && !existing.isClosed) return existing;
    this.counters.connectsStarted += 1;
    const conn = new ClientConnection(addr, this.opts, {
      onConnectFailure: () => (this.counters.connectFailures += 1),
      onTimeout: () => (this.counters.timeouts += 1),
      onDrop: () => (this.counters.drops += 1),
      onClosed: () => {
        if (slot.conns[index] === conn) slot.conns[index] = null;
      },
    });
    slot.conns[index] = conn;
    return conn;
  }
}

interface ConnectionEvents {
  onConnectFailure(): void;
  onTimeout(): void;
  onDrop(): void;
  onClosed(): void;
}

/** One client connection: connect, hello, then pipelined requests matched by id. */
class ClientConnection {
  readonly ready: Promise<HelloResult>;
  private readonly socket: Socket;
  private readonly writer: FrameWriter;
  private readonly decoder: FrameDecoder;
  private readonly inFlight = new Map<number, Pending>();
  /** Requests made before the handshake completed, sent once it does. */
  private waiting: { id: number; op: string; args: RpcArgs }[] = [];
  private nextId = HELLO_ID + 1;
  private open = false;
  private closed = false;
  private closedWaiters: (() => void)[] = [];
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Bytes were received (a plaintext client checks the first ones for a TLS server). */
  private received = false;

  constructor(
    private readonly addr: string,
    private readonly opts: RpcPool['opts'],
    private readonly events: ConnectionEvents,
  ) {
    const { host, port } = parseAddr(addr);
    this.decoder = new FrameDecoder(opts.frameBytesMax);
    this.socket = opts.tls ? tlsConnect(clientConnectOptions(host, port, opts.tls)) : connect({ host, port, noDelay: true });
    this.socket.setNoDelay(true);
    this.writer = new FrameWriter(this.socket, opts.frameBytesMax);
    this.ready = new Promise<HelloResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.events.onConnectFailure();
        this.shutdown(unavailable(addr, `connect and handshake timed out after ${opts.connectTimeoutMs} ms`));
      }, opts.connectTimeoutMs);
      this.inFlight.set(HELLO_ID, {
        resolve: (result) => {
          clearTimeout(timer);
          this.open = true;
          for (const { id, op, args } of this.waiting.splice(0)) this.send(id, op, args);
          resolve(result as HelloResult);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
        deadline: Infinity, // the connect timer above covers the hello
        op: HELLO_OP,
        timeoutMs: opts.connectTimeoutMs,
      });
    });
    this.ready.catch(() => {}); // observed through the requests that wait on it
    const hello: RpcArgs = { version: PROTOCOL_VERSION, cluster: opts.clusterName };
    if (opts.peer !== undefined) hello.peer = opts.peer;
    this.writer.send({ id: HELLO_ID, op: HELLO_OP, args: hello });
    this.socket.on('connect', () => this.socket.setKeepAlive(true, 30_000));
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => {
      if (this.open) {
        this.shutdown(unavailable(addr, `connection lost: ${err.message}`));
        return;
      }
      this.events.onConnectFailure();
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (opts.tls && !CONNECT_ERRORS.has(code)) this.shutdown(tlsFailure(addr, tlsFailureReason(err, 'client')));
      else this.shutdown(unavailable(addr, `cannot connect: ${connectReason(err)}`));
    });
    this.socket.on('close', () => this.shutdown(this.closedError()));
  }

  /** The error for a close by the server; before the hello is answered, with the likely reason. */
  private closedError(): ShoalError {
    if (this.open) return unavailable(this.addr, 'connection closed by the server');
    if (this.opts.tls) {
      return tlsFailure(this.addr, 'the server closed the connection (at its connection limit, or it does not accept this client)');
    }
    return unavailable(this.addr, 'connection closed by the server before the hello was answered (does it require TLS?)');
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get inFlightCount(): number {
    return this.inFlight.size - (this.open ? 0 : 1) + this.waiting.length;
  }

  request(op: string, args: RpcArgs, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(unavailable(this.addr, 'connection closed'));
    const id = this.nextId;
    this.nextId = id >= REQUEST_ID_MAX ? HELLO_ID + 1 : id + 1;
    return new Promise((resolve, reject) => {
      this.inFlight.set(id, { resolve, reject, deadline: performance.now() + timeoutMs, op, timeoutMs });
      if (this.sweepTimer === null) this.sweepTimer = setInterval(this.sweepBound, TIMEOUT_SWEEP_MS);
      if (this.open) this.send(id, op, args);
      else this.waiting.push({ id, op, args });
    });
  }

  private readonly sweepBound = (): void => this.sweep();

  /** Fails the requests past their deadline; stops itself when nothing is in flight. */
  private sweep(): void {
    const now = performance.now();
    for (const [id, pending] of this.inFlight) {
      if (pending.deadline > now) continue;
      this.inFlight.delete(id);
      if (!this.open) this.waiting = this.waiting.filter((w) => w.id !== id);
      this.events.onTimeout();
      pending.reject(new ShoalError('TIMEOUT', `${pending.op} to ${this.addr} timed out after ${pending.timeoutMs} ms`, { addr: this.addr }));
    }
    if (this.inFlight.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  close(err: ShoalError): Promise<void> {
    const closedNow = new Promise<void>((resolve) => {
      if (this.socket.destroyed && this.closed) resolve();
      else this.closedWaiters.push(resolve);
    });
    this.shutdown(err);
    return closedNow;
  }

  private send(id: number, op: string, args: RpcArgs): void {
    try {
      this.writer.send({ id, op, args });
    } catch (err) {
      this.settle(id, toShoalError(err));
    }
  }

  private settle(id: number, outcome: ShoalError | { result: unknown }): void {
    const pending = this.inFlight.get(id);
    if (!pending) return; // timed out earlier: the late answer is dropped
    this.inFlight.delete(id);
    if (outcome instanceof ShoalError) pending.reject(outcome);
    else pending.resolve(outcome.result);
  }

  private onData(chunk: Buffer): void {
    if (!this.received) {
      this.received = true;
      if (!this.opts.tls && looksLikeTls(chunk)) {
        this.shutdown(unavailable(this.addr, 'the server speaks TLS on this port: connect with TLS'));
        return;
      }
      const other = foreignProtocol(chunk);
      if (other !== null) {
        this.shutdown(unavailable(this.addr, `this is not a Shoal RPC port (it answered like ${other})`));
        return;
      }
    }
    let frames: unknown[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.shutdown(unavailable(this.addr, `bad frame from the server: ${toShoalError(err).message}`));
      return;
    }
    for (const frame of frames) {
      const response = parseResponse(frame);
      if (response === null) {
        this.shutdown(unavailable(this.addr, 'the server sent a frame that is not a response'));
        return;
      }
      if (response.ok) {
        this.settle(response.id, { result: response.result });
        continue;
      }
      const err = new ShoalError(response.error.code, response.error.message, response.error.version === undefined ? { addr: this.addr } : { addr: this.addr, version: response.error.version });
      if (response.id === null) {
        // A connection-level error (limit, malformed stream): the server closes after it.
        this.shutdown(err);
        return;
      }
      if (response.id === HELLO_ID && !this.open) {
        this.shutdown(err);
        return;
      }
      this.settle(response.id, err);
    }
  }

  /** Fails everything pending with `err` (once) and closes the socket. */
  private shutdown(err: ShoalError): void {
    if (!this.closed) {
      this.closed = true;
      if (this.open && this.inFlight.size > 0) this.events.onDrop();
      for (const id of [...this.inFlight.keys()]) this.settle(id, err);
      if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
      this.sweepTimer = null;
      this.waiting = [];
      this.events.onClosed();
      this.socket.destroy();
    }
    if (this.socket.destroyed) {
      for (const waiter of this.closedWaiters.splice(0)) waiter();
    } else {
      this.socket.once('close', () => {
        for (const waiter of this.closedWaiters.splice(0)) waiter();
      });
    }
  }
}
