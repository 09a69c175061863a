/**
 * The RPC server: accepts TCP connections, runs the hello handshake, decodes pipelined requests,
 * hands them to one handler and writes responses as they complete (possibly out of order). Enforces
 * the limits of src/rpc/limits.ts and keeps serving everyone else whatever one connection sends.
 * With `tls`, every accepted socket goes through a TLS handshake first (optionally requiring a
 * client certificate); handshakeTimeoutMs bounds the TLS handshake and the hello together.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { ShoalError, toShoalError, type ErrorCode } from '../errors.js';
import { nullLogger, rateLimited, type Logger } from '../log.js';
import { FrameDecoder, RefusedFrame } from './framing.js';
import { FrameWriter } from './frame-writer.js';
import { resolveRpcLimits, type RpcLimits } from './limits.js';
import { TLS_HANDSHAKE_RECORD, tlsFailureReason, type RpcTlsServerOptions } from './tls.js';
import {
  HELLO_OP,
  PROTOCOL_VERSION,
  checkHello,
  errorResponse,
  isRequestId,
  okResponse,
  parseRequest,
  type HelloResult,
  type RpcRequest,
} from './protocol.js';

export interface RpcContext {
  /** host:port of the remote end. */
  remote: string;
  /** The caller's node id from hello (node-to-node connections), else null. */
  peer: string | null;
}

export type RpcHandler = (op: string, args: Record<string, unknown>, ctx: RpcContext) => Promise<unknown>;

export interface RpcServerOptions {
  host: string;
  /** 0 = let the OS pick (see the address listen() resolves). */
  port: number;
  nodeId: string;
  clusterName: string;
  handler: RpcHandler;
  limits?: Partial<RpcLimits>;
  logger?: Logger;
  /** TLS on every connection (src/rpc/tls.ts loads it from PEM files). Default: plaintext. */
  tls?: RpcTlsServerOptions;
}

export interface RpcServerStats {
  connections: number;
  connectionsTotal: number;
  /** Refused because connectionsMax was reached. */
  connectionsRejected: number;
  inFlight: number;
  /** Requests dispatched to the handler, by op (at most OPS_TRACKED_MAX names, then "other"). */
  requests: Record<string, number>;
  /** Error responses sent, by code. */
  errors: Partial<Record<ErrorCode, number>>;
  /** Frames that were not valid msgpack, not a request, or over the size limit. */
  malformedFrames: number;
  handshakeFailures: number;
  /** Connections closed before the TLS handshake and the hello completed within handshakeTimeoutMs. */
  handshakeTimeouts: number;
  /** TLS handshakes that failed, and clients refused for their certificate (mutual TLS). */
  tlsFailures: number;
  /** Connections still in their TLS handshake (counted against connectionsMax). */
  tlsHandshaking: number;
  idleClosed: number;
  /** Times a connection stopped being read because its output was not drained. */
  backpressurePauses: number;
  pausedConnections: number;
  bytesIn: number;
  bytesOut: number;
}

/** Distinct op names counted in stats; op names come from the network, so the map is bounded. */
const OPS_TRACKED_MAX = 64;
/** Requests dispatched per turn before yielding, so backpressure is re-checked within one big read. */
const DISPATCH_BATCH_MAX = 64;
/** How long a connection that got a final error frame may take to read it before it is destroyed. */
const CLOSE_LINGER_MS = 1_000;

type Phase = 'hello' | 'open' | 'closing';

/** The monotonic part of RpcServerStats (bytesOut here counts connections already closed). */
type Counters = Omit<RpcServerStats, 'connections' | 'inFlight' | 'pausedConnections' | 'requests' | 'tlsHandshaking'>;

/** A socket accepted in TLS mode whose handshake has not finished. */
interface TlsPending {
  raw: Socket;
  acceptedAtMs: number;
}

export class RpcServer {
  private readonly limits: RpcLimits;
  private readonly logger: Logger;
  private readonly warn: ReturnType<typeof rateLimited>;
  private readonly server: Server;
  /** Runs the TLS handshakes of accepted sockets (never listens itself); null in plaintext mode. */
  private readonly tlsServer: TlsServer | null = null;
  /** Accepted sockets in their TLS handshake, by remote address:port (how the TLS server hands them back). */
  private readonly tlsPending = new Map<string, TlsPending>();
  private readonly connections = new Set<ServerConnection>();
  private draining = false;
  private closePromise: Promise<void> | null = null;
  private drainWaiters: (() => void)[] = [];
  private readonly requestsByOp = new Map<string, number>();
  readonly counters: Counters = {
    connectionsTotal: 0,
    connectionsRejected: 0,
    errors: {},
    malformedFrames: 0,
    handshakeFailures: 0,
    handshakeTimeouts: 0,
    tlsFailures: 0,
    idleClosed: 0,
    backpressurePauses: 0,
    bytesIn: 0,
    bytesOut: 0,
  };

  constructor(readonly options: RpcServerOptions) {
    this.limits = resolveRpcLimits(options.limits);
    this.logger = (options.logger ?? nullLogger).child({ layer: 'rpc' });
    this.warn = rateLimited(this.logger);
    this.server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => this.logger.error('rpc listener error', { error: err.message }));
    const tls = options.tls;
    if (tls) {
      const clientAuth = tls.clientAuth ?? false;
      // Client certificates are checked here rather than by node (rejectUnauthorized) so that a
      // refused client gets an error frame saying why instead of a bare close.
      this.tlsServer = createTlsServer({
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        requestCert: clientAuth,
        rejectUnauthorized: false,
        handshakeTimeout: this.limits.handshakeTimeoutMs,
      });
      this.tlsServer.on('secureConnection', (socket: TLSSocket) => this.acceptSecure(socket, clientAuth));
      this.tlsServer.on('tlsClientError', (err: Error, socket: TLSSocket) => this.tlsFailed(err, socket));
    }
  }

  get rpcLimits(): Readonly<RpcLimits> {
    return this.limits;
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(new ShoalError('UNAVAILABLE', `cannot listen on ${this.options.host}:${this.options.port}: ${err.message}`));
      };
      this.server.once('error', onError);
      this.server.listen({ host: this.options.host, port: this.options.port }, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        if (address === null || typeof address === 'string') {
          reject(new ShoalError('INTERNAL', 'listener has no TCP address'));
          return;
        }
        this.logger.info('rpc listening', { host: address.address, port: address.port });
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /**
   * Stops accepting, answers requests that arrive meanwhile with CLOSED, waits up to `drainMs`
   * (default 5 s) for in-flight requests to be answered, then destroys every connection.
   */
  close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.closePromise) return this.closePromise;
    const drainMs = options.drainMs ?? 5_000;
    this.draining = true;
    const listenerClosed = new Promise<void>((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
    for (const conn of this.connections) conn.beginDrain();
    const drained = new Promise<void>((resolve) => {
      for (const { raw } of this.tlsPending.values()) raw.destroy();
      if (this.connections.size === 0) return resolve();
      const timer = setTimeout(resolve, drainMs);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.closePromise = drained.then(() => {
      for (const conn of this.connections) conn.destroy();
      return listenerClosed;
    });
    return this.closePromise;
  }

  stats(): RpcServerStats {
    let inFlight = 0;
    let paused = 0;
    let bytesOut = this.counters.bytesOut;
    for (const conn of this.connections) {
      inFlight += conn.inFlight;
      if (conn.paused) paused += 1;
      bytesOut += conn.writer.bytesOut;
    }
    return {
      ...this.counters,
      requests: Object.fromEntries(this.requestsByOp),
      errors: { ...this.counters.errors },
      connections: this.connections.size,
      inFlight,
      pausedConnections: paused,
      bytesOut,
      tlsHandshaking: this.tlsPending.size,
    };
  }

  // ---- internal, used by ServerConnection

  get isDraining(): boolean {
    return this.draining;
  }

  get rateLimitedWarn(): ReturnType<typeof rateLimited> {
    return this.warn;
  }

  countRequest(op: string): void {
    const requests = this.requestsByOp;
    const count = requests.get(op);
    if (count !== undefined) requests.set(op, count + 1);
    else if (requests.size < OPS_TRACKED_MAX) requests.set(op, 1);
    else requests.set('other', (requests.get('other') ?? 0) + 1);
  }

  countError(code: ErrorCode): void {
    this.counters.errors[code] = (this.counters.errors[code] ?? 0) + 1;
  }

  handle(request: RpcRequest, ctx: RpcContext): Promise<unknown> {
    try {
      return this.options.handler(request.op, request.args, ctx);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  helloResult(): HelloResult {
    return { version: PROTOCOL_VERSION, cluster: this.options.clusterName, node: this.options.nodeId };
  }

  forget(conn: ServerConnection): void {
    if (!this.connections.delete(conn)) return;
    this.counters.bytesOut += conn.writer.bytesOut;
    if (this.draining && this.connections.size === 0) {
      for (const waiter of this.drainWaiters.splice(0)) waiter();
    }
  }

  private accept(socket: Socket): void {
    socket.on('error', () => {}); // a reset by the peer; 'close' follows and cleans up
    if (this.draining) {
      socket.destroy();
      return;
    }
    if (this.connections.size + this.tlsPending.size >= this.limits.connectionsMax) {
      this.counters.connectionsRejected += 1;
      this.countError('TOO_MANY_REQUESTS');
      this.warn('rpc.connections', 'rpc connection refused: connection limit reached', {
        remote: socket.remoteAddress,
        connectionsMax: this.limits.connectionsMax,
      });
      // A TLS client could not read a plaintext frame, and a handshake would cost what the limit saves.
      if (this.tlsServer) socket.destroy();
      else this.refuse(socket, new ShoalError('TOO_MANY_REQUESTS', `connection limit of ${this.limits.connectionsMax} reached`));
      return;
    }
    this.counters.connectionsTotal += 1;
    if (!this.tlsServer) {
      this.connections.add(new ServerConnection(this, socket, this.limits, this.limits.handshakeTimeoutMs, false));
      return;
    }
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const pending: TlsPending = { raw: socket, acceptedAtMs: performance.now() };
    this.tlsPending.set(key, pending);
    socket.once('close', () => {
      if (this.tlsPending.get(key) === pending) this.tlsPending.delete(key);
    });
    // The TLS server wraps the socket, runs the handshake (bounded by handshakeTimeoutMs) and hands
    // it back through 'secureConnection' or 'tlsClientError'.
    this.tlsServer.emit('connection', socket);
  }

  /** Sends one connection-level error frame and closes; what the peer sends meanwhile is discarded. */
  private refuse(socket: Socket, err: ShoalError): void {
    // Reading (and dropping) is what notices the peer's close; a socket never read lingers until the timer.
    socket.resume();
    const writer = new FrameWriter(socket, this.limits.frameBytesMax);
    writer.send(errorResponse(null, err));
    writer.flush();
    socket.end();
    setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  private acceptSecure(socket: TLSSocket, clientAuth: boolean): void {
    socket.on('error', () => {});
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const pending = this.tlsPending.get(key);
    this.tlsPending.delete(key);
    if (this.draining || pending === undefined) {
      socket.destroy();
      return;
    }
    if (clientAuth && !socket.authorized) {
      this.counters.tlsFailures += 1;
      this.counters.handshakeFailures += 1;
      this.countError('BAD_HANDSHAKE');
      const reason = clientCertProblem(socket);
      this.warn('rpc.tls', 'rpc connection refused: client certificate not accepted', { remote: key, reason });
      this.refuse(socket, new ShoalError('BAD_HANDSHAKE', `client certificate refused: ${reason}`));
      return;
    }
    // What is left of handshakeTimeoutMs after the TLS handshake bounds the hello.
    const leftMs = Math.max(1, Math.round(this.limits.handshakeTimeoutMs - (performance.now() - pending.acceptedAtMs)));
    this.connections.add(new ServerConnection(this, socket, this.limits, leftMs, true));
  }

  private tlsFailed(err: Error, socket: TLSSocket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if ((err as NodeJS.ErrnoException).code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
      this.counters.handshakeTimeouts += 1;
      this.warn('rpc.handshake', 'rpc connection closed: TLS handshake not done in time', { remote });
    } else {
      this.counters.tlsFailures += 1;
      this.warn('rpc.tls', 'rpc TLS handshake failed', { remote, reason: tlsFailureReason(err, 'server') });
    }
    socket.destroy();
  }
}

/** Why an unauthorized TLS client's certificate was not accepted, in words. */
function clientCertProblem(socket: TLSSocket): string {
  const cert = socket.getPeerCertificate();
  if (cert === null || Object.keys(cert).length === 0) return 'the client sent no certificate (this server requires one signed by its CA)';
  const err = Object.assign(new Error(String(socket.authorizationError)), { code: String(socket.authorizationError) });
  return tlsFailureReason(err, 'server');
}

/** One accepted connection: its phase, decoder, in-flight count, timers and backpressure state. */
class ServerConnection {
  readonly writer: FrameWriter;
  private readonly decoder: FrameDecoder;
  private readonly ctx: RpcContext;
  private phase: Phase = 'hello';
  /** The server is shutting down: new requests get CLOSED. */
  private draining = false;
  /** The peer half-closed: answer what it sent, then close. */
  private peerEnded = false;
  private backlog: unknown[] = [];
  private pumpScheduled = false;
  private handshakeTimer: NodeJS.Timeout | null;
  /** Nothing was read yet (a plaintext server checks the first byte for a TLS handshake). */
  private firstChunk = true;
  inFlight = 0;
  paused = false;

  constructor(
    private readonly server: RpcServer,
    private readonly socket: Socket,
    private readonly limits: RpcLimits,
    /** Time left for the hello (handshakeTimeoutMs less what a TLS handshake took). */
    handshakeMs: number,
    private readonly tls: boolean,
  ) {
    socket.setNoDelay(true);
    this.decoder = new FrameDecoder(limits.frameBytesMax);
    this.writer = new FrameWriter(socket, limits.frameBytesMax, () => this.checkBackpressure());
    this.ctx = { remote: `${socket.remoteAddress}:${socket.remotePort}`, peer: null };
    this.handshakeTimer = setTimeout(() => {
      this.server.counters.handshakeTimeouts += 1;
      this.server.rateLimitedWarn('rpc.handshake', 'rpc connection closed: no hello in time', { remote: this.ctx.remote });
      this.destroy();
    }, handshakeMs);
    socket.setTimeout(limits.idleTimeoutMs);
    socket.on('timeout', () => {
      if (this.inFlight > 0 || this.backlog.length > 0) return;
      this.server.counters.idleClosed += 1;
      this.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      // The peer sent FIN: answer everything it sent, then close our side.
      this.peerEnded = true;
      this.endIfDone();
    });
    socket.on('close', () => {
      this.phase = 'closing';
      this.clearHandshakeTimer();
      this.server.forget(this);
    });
  }

  beginDrain(): void {
    this.draining = true;
    if (this.phase === 'hello') this.end();
    else this.endIfDone();
  }

  private endIfDone(): void {
    if ((this.draining || this.peerEnded) && this.inFlight === 0 && this.backlog.length === 0) this.end();
  }

  destroy(): void {
    this.phase = 'closing';
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closing') return;
    this.server.counters.bytesIn += chunk.length;
    if (this.firstChunk) {
      this.firstChunk = false;
      if (!this.tls && chunk[0] === TLS_HANDSHAKE_RECORD) {
        this.server.counters.handshakeFailures += 1;
        this.server.rateLimitedWarn('rpc.handshake', 'rpc connection refused: the client started TLS on a plaintext port', { remote: this.ctx.remote });
        this.fail(null, new ShoalError('BAD_HANDSHAKE', 'this port speaks plaintext: the client started a TLS handshake'));
        return;
      }
    }
    let frames: unknown[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      // Framing is lost (oversized header or undecodable body): no id to answer, close this one only.
      this.server.counters.malformedFrames += 1;
      this.fail(null, toShoalError(err));
      return;
    }
    if (frames.length === 0) return;
    if (this.backlog.length === 0) this.backlog = frames;
    else for (const frame of frames) this.backlog.push(frame);
    this.pump();
  }

  /** Dispatches queued frames in batches, pausing the socket while the output is not drained. */
  private pump(): void {
    this.pumpScheduled = false;
    let dispatched = 0;
    while (this.backlog.length > 0 && this.phase !== 'closing' && !this.paused) {
      if (dispatched === DISPATCH_BATCH_MAX) {
        this.socket.pause();
        this.pumpScheduled = true;
        setImmediate(() => this.resumeAfterBatch());
        return;
      }
      this.dispatch(this.backlog.shift());
      dispatched += 1;
    }
    this.endIfDone();
  }

  private resumeAfterBatch(): void {
    this.pumpScheduled = false;
    if (this.phase === 'closing') return;
    this.checkBackpressure();
    if (this.paused) return; // the drain handler resumes
    this.socket.resume();
    this.pump();
  }

  private checkBackpressure(): void {
    const socket = this.socket;
    if (socket.writableLength > this.limits.writeBufferBytesHigh && !this.paused && socket.writableNeedDrain) {
      this.paused = true;
      this.server.counters.backpressurePauses += 1;
      socket.pause();
      socket.once('drain', () => {
        this.paused = false;
        if (this.phase === 'closing') return;
        if (!this.pumpScheduled) {
          socket.resume();
          this.pump();
        }
      });
    }
  }

  private dispatch(frame: unknown): void {
    if (frame instanceof RefusedFrame) {
      // An extension value: this request alone is refused when it has a usable id.
      this.server.counters.malformedFrames += 1;
      if (!isRequestId(frame.id) || this.phase === 'hello') this.fail(null, frame.error);
      else this.reply(frame.id, frame.error);
      return;
    }
    const parsed = parseRequest(frame);
    if (!parsed.ok) {
      this.server.counters.malformedFrames += 1;
      if (parsed.id === null || this.phase === 'hello') this.fail(parsed.id, parsed.error);
      else this.reply(parsed.id, parsed.error);
      return;
    }
    const request = parsed.request;
    if (this.phase === 'hello') {
      this.hello(request);
      return;
    }
    if (request.op === HELLO_OP) {
      this.reply(request.id, new ShoalError('BAD_REQUEST', 'hello was already done on this connection'));
      return;
    }
    if (this.server.isDraining) {
      this.reply(request.id, new ShoalError('CLOSED', 'the node is shutting down'));
      return;
    }
    if (this.inFlight >= this.limits.inFlightPerConnectionMax) {
      this.reply(
        request.id,
        new ShoalError('TOO_MANY_REQUESTS', `more than ${this.limits.inFlightPerConnectionMax} requests in flight on one connection`),
      );
      return;
    }
    this.server.countRequest(request.op);
    this.inFlight += 1;
    this.server.handle(request, this.ctx).then(
      (result) => this.complete(request.id, result),
      (err: unknown) => this.complete(request.id, err, true),
    );
  }

  private complete(id: number, outcome: unknown, failed = false): void {
    this.inFlight -= 1;
    if (this.phase !== 'closing') {
      if (failed) {
        const err = toShoalError(outcome);
        if (err.code === 'INTERNAL') this.server.rateLimitedWarn('rpc.internal', 'rpc handler failed', { error: err.message });
        this.reply(id, err);
      } else {
        this.reply(id, outcome);
      }
    }
    this.endIfDone();
  }

  private hello(request: RpcRequest): void {
    if (request.op !== HELLO_OP) {
      this.server.counters.handshakeFailures += 1;
      this.fail(request.id, new ShoalError('BAD_HANDSHAKE', `the first request must be "${HELLO_OP}", got "${request.op}"`));
      return;
    }
    let peer: string | undefined;
    try {
      peer = checkHello(request.args, this.server.options.clusterName).peer;
    } catch (err) {
      this.server.counters.handshakeFailures += 1;
      const error = toShoalError(err);
      this.server.rateLimitedWarn('rpc.handshake', 'rpc handshake refused', { remote: this.ctx.remote, reason: error.message });
      this.fail(request.id, error);
      return;
    }
    this.clearHandshakeTimer();
    this.ctx.peer = peer ?? null;
    this.phase = 'open';
    this.reply(request.id, this.server.helloResult());
  }

  /** Sends a success (any value) or an error (a ShoalError) for `id`. */
  private reply(id: number, outcome: unknown): void {
    try {
      if (outcome instanceof ShoalError) {
        this.server.countError(outcome.code);
        this.writer.send(errorResponse(id, outcome));
      } else {
        this.writer.send(okResponse(id, outcome));
      }
    } catch (err) {
      // The result could not be encoded (e.g. over frameBytesMax): the caller still gets an answer.
      const error = err instanceof ShoalError ? err : new ShoalError('INTERNAL', `result could not be encoded: ${(err as Error).message}`);
      this.server.countError(error.code);
      this.writer.send(errorResponse(id, error));
    }
  }

  /** Sends a last error frame and closes: used when the stream cannot be trusted any further. */
  private fail(id: number | null, err: ShoalError): void {
    if (this.phase === 'closing') return;
    if (err.code !== 'BAD_HANDSHAKE') {
      this.server.rateLimitedWarn('rpc.malformed', 'rpc connection closed: malformed input', {
        remote: this.ctx.remote,
        code: err.code,
        reason: err.message,
      });
    }
    this.server.countError(err.code);
    this.writer.send(errorResponse(id, err));
    this.end();
  }

  private end(): void {
    if (this.phase === 'closing') return;
    this.phase = 'closing';
    this.backlog = [];
    this.writer.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    }
  }
}
