/**
 * The RESP server: a second front end beside src/rpc/server.ts, with the same limits (connections,
 * request bytes, commands in flight per connection, idle and handshake timeouts, output backpressure)
 * and the same TLS treatment (optional mutual TLS, handshakeTimeoutMs bounding the TLS handshake and,
 * when a password is set, the AUTH). It parses pipelined commands without copying, runs them
 * concurrently except that commands on the same key run in the order they were sent, and writes the
 * replies in request order, all replies of one batch in one socket write.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { ShoalError } from '../errors.js';
import { nullLogger, rateLimited, type Logger } from '../log.js';
import { resolveRpcLimits, type RpcLimits } from '../rpc/limits.js';
import { TLS_HANDSHAKE_RECORD, tlsFailureReason, type RpcTlsServerOptions } from '../rpc/tls.js';
import type { Entry } from '../storage/types.js';
import type { LocalWrite, RespData, RespNodeInfo } from './backend.js';
import {
  COMMANDS,
  arityProblem,
  commandKeys,
  runCommand,
  toReplyError,
  unknownCommand,
  type ClientState,
  type CommandContext,
  type CommandSpec,
  type RespSettings,
  type ServerView,
} from './commands.js';
import { NOAUTH, err } from './errors.js';
import { GET_NAME, RespParser, RespProtocolError, SET_NAME, type RespSink } from './parser.js';
import { ErrorReply, OK, ReplyWriter, encodeReply, type Reply } from './reply.js';

export interface RespServerOptions {
  host: string;
  /** 0 = let the OS pick. */
  port: number;
  data: RespData;
  info: () => RespNodeInfo;
  settings?: Partial<RespSettings>;
  /** The RPC server's limits, by the same names (frameBytesMax bounds one command). */
  limits?: Partial<RpcLimits>;
  logger?: Logger;
  tls?: RpcTlsServerOptions;
}

export interface RespServerStats {
  connections: number;
  connectionsTotal: number;
  connectionsRejected: number;
  commandsTotal: number;
  /** Commands by name (names outside the table count as "unknown"). */
  commands: Record<string, number>;
  /** Error replies by their code (ERR, CLUSTERDOWN, TRYAGAIN...). */
  errors: Record<string, number>;
  protocolErrors: number;
  handshakeTimeouts: number;
  tlsFailures: number;
  idleClosed: number;
  backpressurePauses: number;
  socketWrites: number;
  bytesIn: number;
  bytesOut: number;
}

/** One connection's buffers, for operators and the back-pressure test. */
export interface RespConnectionStats {
  id: number;
  /** Commands dispatched whose reply is not encoded yet (at most inFlightPerConnectionMax). */
  pendingReplies: number;
  /** Commands parsed and not dispatched yet (at most one received chunk's worth). */
  backlogCommands: number;
  /** Encoded replies not yet taken by the kernel (about writeBufferBytesHigh plus the replies in flight). */
  outputBytes: number;
  /** Bytes of an incomplete command held by the parser (at most frameBytesMax). */
  inputBytes: number;
}

export const DEFAULT_RESP_SETTINGS: Readonly<RespSettings> = Object.freeze({
  password: '',
  flushAllEnabled: false,
  // 10 000: a KEYS answer a terminal can show; past it SCAN is the tool.
  keysMax: 10_000,
});

/** Arguments in one command: MSET/MGET/DEL of this many keys is already a large fan-out. */
const ARGS_MAX = 1024 * 1024;
/** How long a closing connection may take to read its last reply before it is destroyed. */
const CLOSE_LINGER_MS = 1_000;

export class RespServer {
  readonly limits: RpcLimits;
  readonly settings: RespSettings;
  private readonly logger: Logger;
  readonly warn: ReturnType<typeof rateLimited>;
  private readonly server: Server;
  private readonly tlsServer: TlsServer | null = null;
  private readonly tlsPending = new Map<string, { raw: Socket; acceptedAtMs: number }>();
  readonly connections = new Set<RespConnection>();
  private nextClientId = 1;
  private draining = false;
  private closePromise: Promise<void> | null = null;
  private drainWaiters: Array<() => void> = [];
  private boundPort = 0;
  readonly counters = {
    connectionsTotal: 0,
    connectionsRejected: 0,
    commandsTotal: 0,
    protocolErrors: 0,
    handshakeTimeouts: 0,
    tlsFailures: 0,
    idleClosed: 0,
    backpressurePauses: 0,
    /** Socket writes: one per batch of replies, however many replies it carries. */
    socketWrites: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
  private readonly commandCounts = new Map<string, number>();
  /** GET and SET answered by the connections' own paths (counted apart: no map update per command). */
  readonly fastCounts = { get: 0, set: 0 };
  private readonly errorCounts = new Map<string, number>();
  readonly view: ServerView;

  constructor(readonly options: RespServerOptions) {
    this.limits = resolveRpcLimits(options.limits);
    this.settings = { ...DEFAULT_RESP_SETTINGS, ...options.settings };
    assert.ok(this.settings.keysMax >= 1, 'keysMax must be positive');
    this.logger = (options.logger ?? nullLogger).child({ layer: 'resp' });
    this.warn = rateLimited(this.logger);
    this.server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server.on('error', (e) => this.logger.error('resp listener error', { error: e.message }));
    const tls = options.tls;
    if (tls) {
      const clientAuth = tls.clientAuth ?? false;
      this.tlsServer = createTlsServer({
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        requestCert: clientAuth,
        // Redis clients cannot read an error before TLS is up, so an unauthorized client is refused in the handshake.
        rejectUnauthorized: clientAuth,
        handshakeTimeout: this.limits.handshakeTimeoutMs,
      });
      this.tlsServer.on('secureConnection', (socket: TLSSocket) => this.acceptSecure(socket));
      this.tlsServer.on('tlsClientError', (e: Error, socket: TLSSocket) => {
        if ((e as NodeJS.ErrnoException).code === 'ERR_TLS_HANDSHAKE_TIMEOUT') this.counters.handshakeTimeouts += 1;
        else this.counters.tlsFailures += 1;
        this.warn('resp.tls', 'resp TLS handshake failed', { remote: `${socket.remoteAddress}:${socket.remotePort}`, reason: tlsFailureReason(e, 'server') });
        socket.destroy();
      });
    }
    this.view = {
      clients: () => [...this.connections].map((c) => c.client),
      stats: () => this.stats(),
    };
  }

  get port(): number {
    return this.boundPort;
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once('error', onError);
      this.server.listen({ host: this.options.host, port: this.options.port }, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        if (address === null || typeof address === 'string') {
          reject(new ShoalError('INTERNAL', 'resp listener has no TCP address'));
          return;
        }
        this.boundPort = address.port;
        this.logger.info('resp listening', { host: address.address, port: address.port, tls: this.tlsServer !== null });
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /** Stops accepting; commands arriving meanwhile get TRYAGAIN; waits up to drainMs for in-flight ones. */
  close(options: { drainMs?: number } = {}): Promise<void> {
    if (this.closePromise) return this.closePromise;
    const drainMs = options.drainMs ?? 5_000;
    this.draining = true;
    const listenerClosed = new Promise<void>((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
    for (const { raw } of this.tlsPending.values()) raw.destroy();
    for (const conn of this.connections) conn.beginDrain();
    const drained = new Promise<void>((resolve) => {
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

  get isDraining(): boolean {
    return this.draining;
  }

  stats(): RespServerStats {
    let bytesOut = this.counters.bytesOut;
    for (const c of this.connections) bytesOut += c.bytesOut;
    const commands = Object.fromEntries(this.commandCounts);
    for (const [name, n] of Object.entries(this.fastCounts)) if (n > 0) commands[name] = (commands[name] ?? 0) + n;
    return {
      ...this.counters,
      commandsTotal: this.counters.commandsTotal + this.fastCounts.get + this.fastCounts.set,
      bytesOut,
      connections: this.connections.size,
      commands,
      errors: Object.fromEntries(this.errorCounts),
    };
  }

  /** Each connection's buffers (back-pressure: all bounded by the limits, see RespConnection.underBounds). */
  connectionStats(): RespConnectionStats[] {
    return [...this.connections].map((c) => ({
      id: c.client.id,
      pendingReplies: c.pendingReplies,
      backlogCommands: c.backlogCommands,
      outputBytes: c.outputBytes,
      inputBytes: c.inputBytes,
    }));
  }

  countCommand(name: string): void {
    this.counters.commandsTotal += 1;
    this.commandCounts.set(name, (this.commandCounts.get(name) ?? 0) + 1);
  }

  countError(reply: ErrorReply): void {
    const space = reply.text.indexOf(' ');
    const code = space === -1 ? reply.text : reply.text.slice(0, space);
    this.errorCounts.set(code, (this.errorCounts.get(code) ?? 0) + 1);
  }

  /**
   * Connections with replies to write: written together once per event-loop turn, after every
   * connection readable in it was read (as Redis writes in beforeSleep), not one by one as each
   * chunk is parsed. Measured: 8-15% less CPU per GET at -P 1 and -P 16 (docs/RESP.md).
   */
  private readonly flushQueue: RespConnection[] = [];
  private flushImmediate = false;
  private readonly flushAll = (): void => {
    this.flushImmediate = false;
    const queue = this.flushQueue.splice(0);
    for (const c of queue) c.flush();
  };

  /** Writes `conn`'s replies at the end of this turn (its flushScheduled flag keeps it queued once). */
  queueFlush(conn: RespConnection): void {
    this.flushQueue.push(conn);
    if (!this.flushImmediate) {
      this.flushImmediate = true;
      setImmediate(this.flushAll);
    }
  }

  newClientId(): number {
    return this.nextClientId++;
  }

  forget(conn: RespConnection): void {
    if (!this.connections.delete(conn)) return;
    this.counters.bytesOut += conn.bytesOut;
    if (this.draining && this.connections.size === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  private accept(socket: Socket): void {
    socket.on('error', () => {});
    if (this.draining) {
      socket.destroy();
      return;
    }
    if (this.connections.size + this.tlsPending.size >= this.limits.connectionsMax) {
      this.counters.connectionsRejected += 1;
      this.warn('resp.connections', 'resp connection refused: connection limit reached', { connectionsMax: this.limits.connectionsMax });
      if (this.tlsServer) socket.destroy();
      else {
        // What Redis answers; redis-py maps this message to a ConnectionError.
        socket.resume();
        socket.end(encodeReply(err('max number of clients reached')));
        setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
      }
      return;
    }
    this.counters.connectionsTotal += 1;
    if (!this.tlsServer) {
      this.connections.add(new RespConnection(this, socket, this.limits.handshakeTimeoutMs, false));
      return;
    }
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const pending = { raw: socket, acceptedAtMs: performance.now() };
    this.tlsPending.set(key, pending);
    socket.once('close', () => {
      if (this.tlsPending.get(key) === pending) this.tlsPending.delete(key);
    });
    this.tlsServer.emit('connection', socket);
  }

  private acceptSecure(socket: TLSSocket): void {
    socket.on('error', () => {});
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const pending = this.tlsPending.get(key);
    this.tlsPending.delete(key);
    if (this.draining || pending === undefined) {
      socket.destroy();
      return;
    }
    const leftMs = Math.max(1, Math.round(this.limits.handshakeTimeoutMs - (performance.now() - pending.acceptedAtMs)));
    this.connections.add(new RespConnection(this, socket, leftMs, true));
  }
}

/** One queued reply, in request order. */
interface Slot {
  reply: Reply | undefined;
  /** The protocol the reply is encoded in: the connection's when the command was sent (HELLO's own is the new one). */
  proto: 2 | 3;
  /** The command was QUIT: close once this reply is written. */
  quit: boolean;
  /** Settles when the command's reply is in (null unless it is running asynchronously): barriers wait for it. */
  done: Promise<void> | null;
  /** A SET taken by writeValueNow: its key and write (for the round, should its batch fail); else null. */
  key: string | null;
  write: LocalWrite | null;
}

const replyValue = (entry: Entry | null): Reply => (entry === null ? null : entry.value);

class RespConnection implements RespSink {
  readonly client: ClientState;
  private readonly parser: RespParser;
  private readonly writer = new ReplyWriter();
  private readonly ctx: CommandContext;
  /** Parsed commands not dispatched yet (over a bound, or paused). */
  private backlog: Buffer[][] = [];
  private backlogHead = 0;
  /** Replies in request order; `head` is the first not yet written. */
  private slots: Slot[] = [];
  private head = 0;
  /** Per key: the completion of the last command of this connection that touches it. */
  private readonly tails = new Map<string, Promise<void>>();
  /** A barrier command in flight: later commands wait for it. */
  private barrier: Promise<void> | null = null;
  private flushScheduled = false;
  /**
   * The SETs of this connection waiting for the same WAL batch (writeValueNow's shared promise), with
   * the one callback that answers them all; reset once that batch settled.
   */
  private group: Slot[] | null = null;
  private groupBatch: Promise<unknown> | null = null;
  private groupDone: Promise<void> | null = null;
  private readonly keyBytesMax: number;
  private readonly valueBytesMax: number;
  /** Waiting for the socket's 'drain' (its buffer went over writeBufferBytesHigh). */
  private awaitingDrain = false;
  /** Inside pump(): replies completing meanwhile do not re-enter it. */
  private pumping = false;
  private closing = false;
  private paused = false;
  private peerEnded = false;
  private draining = false;
  private firstChunk = true;
  /** Bad input seen: answered after the commands parsed before it, then the connection closes. */
  private protocolError: ErrorReply | null = null;
  private inputClosed = false;
  private authTimer: NodeJS.Timeout | null = null;
  inFlight = 0;
  bytesOut = 0;

  constructor(
    private readonly server: RespServer,
    private readonly socket: Socket,
    authTimeoutMs: number,
    private readonly tls: boolean,
  ) {
    socket.setNoDelay(true);
    const settings = server.settings;
    this.client = {
      id: server.newClientId(),
      name: null,
      libName: null,
      libVersion: null,
      proto: 2,
      consistency: undefined,
      authenticated: settings.password === '',
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
      local: `${socket.localAddress}:${socket.localPort}`,
      createdAtMs: Date.now(),
      lastCommand: 'NULL',
      closeAfterReply: false,
    };
    this.parser = new RespParser({ requestBytesMax: server.limits.frameBytesMax, argsMax: ARGS_MAX });
    this.keyBytesMax = server.options.data.dataLimits.keyBytesMax;
    this.valueBytesMax = server.options.data.dataLimits.valueBytesMax;
    this.ctx = { data: server.options.data, info: server.options.info, settings, client: this.client, server: server.view };
    if (!this.client.authenticated) {
      // With a password, the AUTH is this protocol's handshake: bounded like the RPC hello.
      this.authTimer = setTimeout(() => {
        if (this.client.authenticated) return;
        this.server.counters.handshakeTimeouts += 1;
        this.destroy();
      }, authTimeoutMs);
    }
    socket.setTimeout(server.limits.idleTimeoutMs);
    socket.on('timeout', () => {
      if (this.inFlight > 0) return;
      this.server.counters.idleClosed += 1;
      this.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.peerEnded = true;
      this.endIfDone();
    });
    socket.on('close', () => {
      this.closing = true;
      if (this.authTimer) clearTimeout(this.authTimer);
      this.server.forget(this);
    });
  }

  beginDrain(): void {
    this.draining = true;
    this.endIfDone();
  }

  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closing || this.client.closeAfterReply || this.inputClosed) return;
    this.server.counters.bytesIn += chunk.length;
    if (this.firstChunk) {
      this.firstChunk = false;
      if (!this.tls && chunk[0] === TLS_HANDSHAKE_RECORD) {
        this.server.warn('resp.handshake', 'resp connection closed: the client started TLS on a plaintext port', { remote: this.client.remote });
        this.server.counters.tlsFailures += 1;
        this.destroy();
        return;
      }
    }
    // Every command of the chunk is run as soon as it is parsed (command(), get(), set() below), or
    // queued in the backlog once a bound is reached. Replies known at once (a local GET, PING) go into
    // the output at once and are written at the end of the turn, with every other reply ready by then.
    this.pumping = true; // replies completing meanwhile do not start pump() inside the parser
    try {
      this.parser.feed(chunk, this);
    } catch (e) {
      if (!(e instanceof RespProtocolError)) throw e;
      this.server.counters.protocolErrors += 1;
      this.server.warn('resp.protocol', 'resp connection closed: protocol error', { remote: this.client.remote, reason: e.message });
      // The commands before the bad bytes are answered, then the error, then the connection closes (as Redis does).
      this.protocolError = err(`Protocol error: ${e.message}`);
      this.inputClosed = true;
    } finally {
      this.pumping = false;
    }
    this.pump();
    if (!this.writer.isEmpty) this.scheduleFlush();
  }

  /** A parsed command may run now: nothing queued before it, under the bounds, not closing. */
  private accepting(): boolean {
    return this.backlogHead >= this.backlog.length && !this.closing && !this.client.closeAfterReply && this.underBounds();
  }

  /** RespSink: any command but the two below. */
  command(args: Buffer[]): void {
    if (this.accepting()) this.dispatch(args);
    else this.backlog.push(args);
  }

  /** GET and SET may skip dispatch(): authenticated, no barrier, not draining or leaving. */
  private fastReady(): boolean {
    return this.client.authenticated && this.barrier === null && !this.draining && !this.server.isDraining && !this.ctx.data.isLeaving;
  }

  /**
   * The key as the store's string when the fast paths can take it: 1 to keyBytesMax bytes, all ASCII
   * (then latin1 and UTF-8 decode alike, and it is valid UTF-8); else null (dispatch() checks it).
   */
  private fastKey(buf: Buffer, start: number, end: number): string | null {
    if (end === start || end - start > this.keyBytesMax) return null;
    for (let i = start; i < end; i++) if (buf[i] > 0x7f) return null;
    return buf.toString('latin1', start, end);
  }

  /**
   * RespSink: `GET key`. The local read (readLiveNow) is answered straight into the output with no
   * slot, when no reply before it is outstanding; a read needing a round takes a slot and a promise.
   */
  get(buf: Buffer, keyStart: number, keyEnd: number): void {
    if (this.accepting()) this.runGet(buf, keyStart, keyEnd);
    else this.backlog.push([GET_NAME, buf.subarray(keyStart, keyEnd)]);
  }

  private runGet(buf: Buffer, keyStart: number, keyEnd: number): void {
    const data = this.ctx.data;
    const key = this.fastKey(buf, keyStart, keyEnd);
    // Per-key order: an earlier command of this connection on the key still running goes first.
    if (key === null || data.readLiveNow === undefined || !this.fastReady() || (this.tails.size > 0 && this.tails.has(key))) {
      this.dispatch([GET_NAME, buf.subarray(keyStart, keyEnd)]);
      return;
    }
    this.server.fastCounts.get += 1;
    this.client.lastCommand = 'get';
    const consistency = this.client.consistency;
    let entry: Entry | null | undefined;
    try {
      entry = data.readLiveNow(key, consistency);
      if (entry === undefined) {
        const run = data.readLive(key, consistency).then(replyValue);
        this.tails.set(key, this.track(this.newSlot(this.client.proto), run, key, null));
        return;
      }
    } catch (e) {
      this.answer(toReplyError(e));
      return;
    }
    if (entry !== null && entry.value !== null && this.head === this.slots.length && !this.client.closeAfterReply) this.writer.bulk(entry.value);
    else this.answer(replyValue(entry));
  }

  /**
   * RespSink: `SET key value`. When this node alone takes the write (writeValueNow), it is applied at
   * once and its reply waits, with the connection's other SETs of the same WAL batch, on one callback
   * for that batch: no promise per command.
   */
  set(buf: Buffer, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number): void {
    // A view, not a copy: the store copies the value (and writeValueAfter does before a round).
    const value = buf.subarray(valueStart, valueEnd);
    if (this.accepting()) this.runSet(buf, keyStart, keyEnd, value);
    else this.backlog.push([SET_NAME, buf.subarray(keyStart, keyEnd), value]);
  }

  /** A command from the backlog: GET and plain SET take their paths as when they were parsed. */
  private runQueued(args: Buffer[]): void {
    const name = args[0];
    if (name === GET_NAME) this.runGet(args[1], 0, args[1].length);
    else if (name === SET_NAME) this.runSet(args[1], 0, args[1].length, args[2]);
    else this.dispatch(args);
  }

  private runSet(buf: Buffer, keyStart: number, keyEnd: number, value: Buffer): void {
    const data = this.ctx.data;
    const key = this.fastKey(buf, keyStart, keyEnd);
    let write: LocalWrite | null = null;
    if (key !== null && data.writeValueNow !== undefined && value.length <= this.valueBytesMax && this.fastReady() && !(this.tails.size > 0 && this.tails.has(key))) {
      try {
        write = data.writeValueNow(key, value, undefined, this.client.consistency);
      } catch (e) {
        this.server.fastCounts.set += 1;
        this.client.lastCommand = 'set';
        this.answer(toReplyError(e));
        return;
      }
    }
    if (write === null) {
      this.dispatch([SET_NAME, buf.subarray(keyStart, keyEnd), value]);
      return;
    }
    this.server.fastCounts.set += 1;
    this.client.lastCommand = 'set';
    const slot = this.newSlot(this.client.proto);
    slot.key = key;
    slot.write = write;
    this.inFlight += 1;
    if (this.group === null || write.durable !== this.groupBatch) {
      const group: Slot[] = [];
      const done: Promise<void> = write.durable.then(
        () => this.settleGroup(group, done),
        (e: unknown) => this.failGroup(group, done, e),
      );
      this.group = group;
      this.groupBatch = write.durable;
      this.groupDone = done;
    }
    this.group.push(slot);
    slot.done = this.groupDone;
    this.tails.set(key as string, this.groupDone as Promise<void>);
  }

  /** A group's batch is durable: every SET of it answers OK. */
  private settleGroup(group: Slot[], done: Promise<void>): void {
    if (this.group === group) this.endGroup();
    for (const slot of group) this.settleWrite(slot, done, OK);
    this.drainIfReady();
  }

  /** A group's batch failed: each SET goes on as writeValue would (the round, or its timeout), one by one. */
  private failGroup(group: Slot[], done: Promise<void>, e: unknown): Promise<void> {
    if (this.group === group) this.endGroup();
    const data = this.ctx.data;
    const after = data.writeValueAfter;
    assert.ok(after !== undefined, 'writeValueNow comes with writeValueAfter');
    const retry = async (slot: Slot): Promise<void> => {
      let reply: Reply = OK;
      try {
        await after.call(data, slot.key as string, slot.write as LocalWrite, e);
      } catch (failure) {
        reply = toReplyError(failure);
      }
      this.settleWrite(slot, done, reply);
      this.drainIfReady();
    };
    return Promise.all(group.map(retry)).then(() => undefined);
  }

  private endGroup(): void {
    this.group = null;
    this.groupBatch = null;
    this.groupDone = null;
  }

  private settleWrite(slot: Slot, done: Promise<void>, reply: Reply): void {
    this.inFlight -= 1;
    assert.ok(this.inFlight >= 0, 'commands in flight went negative');
    slot.done = null;
    const key = slot.key as string;
    if (this.tails.get(key) === done) this.tails.delete(key);
    slot.key = null;
    slot.write = null;
    this.fill(slot, reply);
  }

  /** Writes the replies now at the head of the queue, if the head's is in. */
  private drainIfReady(): void {
    if (this.head < this.slots.length && this.slots[this.head].reply !== undefined) this.drainSlots();
  }

  /** A reply in request order: into the output at once when no earlier reply is outstanding, else queued. */
  private answer(reply: Reply): void {
    if (this.head === this.slots.length && !this.client.closeAfterReply) {
      if (reply instanceof ErrorReply) this.server.countError(reply);
      this.writer.write(reply, this.client.proto);
      this.scheduleFlush();
      return;
    }
    this.complete(this.newSlot(this.client.proto), reply);
  }

  private newSlot(proto: 2 | 3): Slot {
    const slot: Slot = { reply: undefined, quit: false, proto, done: null, key: null, write: null };
    this.slots.push(slot);
    return slot;
  }

  /**
   * The connection's bounds (back-pressure): at most inFlightPerConnectionMax commands between dispatch
   * and the encoding of their reply (running, or answered but waiting behind an earlier reply), and
   * at most writeBufferBytesHigh of encoded replies not yet taken by the kernel. Past either, no
   * command is dispatched and the socket stops reading until replies are written and drained.
   */
  private underBounds(): boolean {
    return this.slots.length - this.head < this.server.limits.inFlightPerConnectionMax && this.outputBytes <= this.server.limits.writeBufferBytesHigh;
  }

  /** Encoded replies held for this connection: not yet written, or written but not taken by the kernel. */
  get outputBytes(): number {
    return this.writer.bytes + this.socket.writableLength;
  }

  /** Commands dispatched whose reply is not yet encoded. */
  get pendingReplies(): number {
    return this.slots.length - this.head;
  }

  /** Bytes of an incomplete command the parser holds. */
  get inputBytes(): number {
    return this.parser.bufferedBytes;
  }

  /** Parsed commands waiting to be dispatched. */
  get backlogCommands(): number {
    return this.backlog.length - this.backlogHead;
  }

  /** Dispatches parsed commands while under the bounds; never re-entered (replies completing during it only update state). */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.backlogHead < this.backlog.length && !this.closing && !this.client.closeAfterReply && this.underBounds()) {
        const args = this.backlog[this.backlogHead];
        this.backlog[this.backlogHead++] = EMPTY;
        this.runQueued(args);
      }
    } finally {
      this.pumping = false;
    }
    if (this.backlogHead < this.backlog.length) {
      // Over a bound (or QUIT): read nothing more until replies drain (kick() continues).
      if (!this.closing) this.pause();
      return;
    }
    this.backlog = [];
    this.backlogHead = 0;
    if (this.protocolError !== null && !this.closing) {
      const slot = this.newSlot(this.client.proto);
      slot.reply = this.protocolError;
      slot.quit = true;
      this.protocolError = null;
      this.drainSlots();
      return;
    }
    this.resume();
    this.endIfDone();
  }

  /** A bound may have loosened (a reply encoded or drained): dispatch more, or read again. */
  private kick(): void {
    if (this.pumping || this.closing) return;
    if (this.backlogHead < this.backlog.length) this.pump();
    else this.resume();
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  private resume(): void {
    if (!this.paused || this.closing || this.client.closeAfterReply || this.inputClosed) return;
    if (!this.underBounds()) {
      // Output over the bound: flush() waits for 'drain', which kicks again.
      if (!this.writer.isEmpty) this.scheduleFlush();
      return;
    }
    this.paused = false;
    this.socket.resume();
  }

  private dispatch(args: Buffer[]): void {
    const raw = args[0].toString('latin1');
    // Clients send names in upper or lower case: either finds the spec without lower-casing a copy.
    const spec = COMMANDS_BY_SPELLING.get(raw) ?? COMMANDS.get(raw.toLowerCase());
    const name = spec === undefined ? raw.toLowerCase() : spec.name;
    this.server.countCommand(spec === undefined ? 'unknown' : name);
    this.client.lastCommand = name;
    // Replies known at once go through answer() (no slot when nothing before them is outstanding);
    // a command running asynchronously takes a slot, in the protocol of the moment it was sent.
    if (spec === undefined) return this.answer(unknownCommand(args));
    const problem = arityProblem(spec, args);
    if (problem !== null) return this.answer(problem);
    if (!this.client.authenticated && spec.noAuth !== true) return this.answer(NOAUTH);
    const keyed = spec.firstKey > 0 || spec.barrier === true;
    if (keyed && (this.server.isDraining || this.draining)) return this.answer(new ErrorReply('TRYAGAIN this node is shutting down; send it to another node'));
    if (keyed && this.ctx.data.isLeaving) return this.answer(new ErrorReply('TRYAGAIN this node is leaving the cluster; send it to another node'));
    const proto = this.client.proto;
    if (!keyed && this.barrier === null) {
      // Connection and server commands run at once, in order (they change this connection's state);
      // a reply known at once is in the protocol after the command (HELLO's own is the new one).
      const r = runCommand(spec, this.ctx, args);
      if (!(r instanceof Promise)) {
        this.afterAuth(spec);
        return this.answer(r);
      }
      // track() settles every reply itself; its promise only rejects on a broken invariant: rethrown
      // outside the promise chain, so the agent's last-resort handler stops the node loudly.
      this.track(this.newSlot(proto), r).catch((err: unknown) => setImmediate(() => { throw err; }));
      return;
    }
    // Per-key order: wait for this connection's earlier commands on the same keys (a barrier waits for all).
    const barrier = spec.barrier === true;
    const single = !barrier && spec.firstKey === 1 && spec.lastKey === 1;
    if (single && this.barrier === null) {
      // The hot path (GET, SET...): with nothing earlier on this key in flight it runs now; a reply
      // known at once (a local GET) is answered without a promise, and without naming the key when
      // nothing at all is in flight.
      let key = this.tails.size === 0 ? null : args[1].toString('latin1');
      if (key === null || !this.tails.has(key)) {
        const r = runCommand(spec, this.ctx, args);
        if (!(r instanceof Promise)) return this.answer(r);
        key ??= args[1].toString('latin1');
        this.tails.set(key, this.track(this.newSlot(proto), r, key, null));
        return;
      }
    }
    let key: string | null = null;
    let keys: string[] | null = null;
    if (!barrier) {
      if (single) key = args[1].toString('latin1');
      else keys = commandKeys(spec, args).map((k) => k.toString('latin1'));
    }
    let waits: Array<Promise<void>> | null = null;
    if (this.barrier !== null) (waits ??= []).push(this.barrier);
    if (barrier) {
      // Every earlier command still running (its reply not in yet) is waited for.
      for (let i = this.head; i < this.slots.length; i++) {
        const running = this.slots[i].done;
        if (running !== null) (waits ??= []).push(running);
      }
    }
    if (key !== null) {
      const tail = this.tails.get(key);
      if (tail !== undefined) (waits ??= []).push(tail);
    }
    if (keys !== null) {
      for (const k of keys) {
        const tail = this.tails.get(k);
        if (tail !== undefined) (waits ??= []).push(tail);
      }
    }
    const run = waits === null ? runCommand(spec, this.ctx, args) : Promise.all(waits).then(() => runCommand(spec, this.ctx, args));
    const done = this.track(this.newSlot(proto), run, key, keys);
    if (barrier) this.barrier = done;
    if (key !== null) this.tails.set(key, done);
    if (keys !== null) for (const k of keys) this.tails.set(k, done);
  }

  private afterAuth(spec: CommandSpec): void {
    if (this.client.authenticated && this.authTimer !== null && (spec.name === 'auth' || spec.name === 'hello')) {
      clearTimeout(this.authTimer);
      this.authTimer = null;
    }
  }

  /**
   * Counts a command in flight until it settles, then answers it and releases its keys (and the
   * barrier) if no later command took them over. Resolves (never rejects) once settled.
   */
  private track(slot: Slot, run: Reply | Promise<Reply>, key: string | null = null, keys: string[] | null = null): Promise<void> {
    this.inFlight += 1;
    // Inline callbacks and a method, not named closures: nothing per command beyond the two callbacks.
    const done: Promise<void> = (run instanceof Promise ? run : Promise.resolve(run)).then(
      (reply) => this.settle(slot, done, key, keys, reply),
      (e: unknown) => this.settle(slot, done, key, keys, toReplyError(e)),
    );
    slot.done = done;
    return done;
  }

  private settle(slot: Slot, done: Promise<void>, key: string | null, keys: string[] | null, reply: Reply): void {
    this.inFlight -= 1;
    assert.ok(this.inFlight >= 0, 'commands in flight went negative');
    slot.done = null;
    if (key !== null && this.tails.get(key) === done) this.tails.delete(key);
    if (keys !== null) for (const k of keys) if (this.tails.get(k) === done) this.tails.delete(k);
    if (this.barrier === done) this.barrier = null;
    this.complete(slot, reply);
  }

  private complete(slot: Slot, reply: Reply): void {
    this.fill(slot, reply);
    if (this.slots[this.head] === slot) this.drainSlots();
  }

  private fill(slot: Slot, reply: Reply): void {
    slot.reply = reply;
    if (this.client.closeAfterReply && !slot.quit && reply !== undefined && this.slots[this.slots.length - 1] === slot) slot.quit = true;
  }

  /** Encodes every finished reply at the head of the queue and schedules one write for them. */
  private drainSlots(): void {
    let quit = false;
    while (this.head < this.slots.length) {
      const slot = this.slots[this.head];
      if (slot.reply === undefined) break;
      if (slot.reply instanceof ErrorReply) this.server.countError(slot.reply);
      this.writer.write(slot.reply, slot.proto);
      this.head += 1;
      if (slot.quit) {
        quit = true;
        break;
      }
    }
    if (this.head === this.slots.length) {
      this.slots = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.slots = this.slots.slice(this.head);
      this.head = 0;
    }
    if (quit) {
      this.flush();
      this.end();
      return;
    }
    if (!this.writer.isEmpty) this.scheduleFlush();
    this.endIfDone();
    this.kick();
  }

  /** One socket write per turn for every reply encoded in it. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.server.queueFlush(this);
  }

  private readonly onDrain = (): void => {
    this.awaitingDrain = false;
    this.kick();
  };

  flush(): void {
    this.flushScheduled = false;
    if (this.writer.isEmpty) return;
    const bytes = this.writer.bytes;
    const parts = this.writer.take();
    if (this.socket.destroyed || !this.socket.writable) return;
    this.bytesOut += bytes;
    this.server.counters.socketWrites += 1;
    if (parts.length === 1) this.socket.write(parts[0]);
    else {
      this.socket.cork();
      for (const p of parts) this.socket.write(p);
      this.socket.uncork();
    }
    if (this.socket.writableLength > this.server.limits.writeBufferBytesHigh) {
      // The client reads slower than it sends: stop reading it until the kernel took the replies.
      if (!this.awaitingDrain) {
        this.awaitingDrain = true;
        this.server.counters.backpressurePauses += 1;
        this.socket.once('drain', this.onDrain);
      }
      this.pause();
    } else this.kick();
  }

  private endIfDone(): void {
    if ((this.draining || this.peerEnded) && this.inFlight === 0 && this.backlogHead >= this.backlog.length && this.head >= this.slots.length) {
      this.flush();
      this.end();
    }
  }

  private end(): void {
    if (this.closing) return;
    this.closing = true;
    this.backlog = [];
    this.backlogHead = 0;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS).unref();
  }
}

const EMPTY: Buffer[] = [];

/** Every command by its lower- and upper-case name (the spellings clients send). */
const COMMANDS_BY_SPELLING: ReadonlyMap<string, CommandSpec> = new Map(
  [...COMMANDS.values()].flatMap((spec): Array<[string, CommandSpec]> => [
    [spec.name, spec],
    [spec.name.toUpperCase(), spec],
  ]),
);
