/**
 * Push-pull over TCP on the gossip port (the same number as UDP, like memberlist): the initiator sends
 * one frame with its state, the listener answers one frame with its own, and the connection closes.
 * Frames are src/rpc/framing.ts frames, bounded by syncBytesMax; each exchange by syncTimeoutMs.
 *
 * With gossip encryption (a GossipSeal) each frame's body is a msgpack bin holding a keyring envelope
 * of the msgpack value. A listener that gets a frame it cannot accept (does not open, plaintext to an
 * encrypting node, sealed to a node without a key) answers one plaintext refusal `{ v: 1, t: 'refuse',
 * r: reason }` and closes, so that the initiator can say why its join keeps failing; the refusal
 * carries nothing but the reason, and the initiator treats it as a failed exchange, nothing more.
 *
 * This file holds the default (TCP) implementations of the push-pull seams (types.ts: SyncTransport,
 * SyncListenerFactory); with udp.ts and dns.ts it is the only file of src/membership/ that touches real
 * sockets and timers (eslint.config.js keeps it so). The simulator supplies in-memory ones.
 */
import net from 'node:net';
import { pack, unpack } from '../codec.js';
import { ShoalError, toShoalError } from '../errors.js';
import { FrameDecoder, encodeFrame } from '../rpc/framing.js';
import { WIRE_VERSION } from './messages.js';
import type { GossipSeal } from './seal.js';
import type { SyncListenerFactory, SyncServer, SyncTransport } from './types.js';

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

/** Why a listener refused a frame. */
type RefuseReason = 'cannot-open' | 'encryption-required' | 'no-key';
const REFUSE_REASONS: readonly string[] = ['cannot-open', 'encryption-required', 'no-key'];

type Unsealed = { ok: true; value: unknown } | { ok: false; reason: RefuseReason; detail: string };

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/** A value as a frame: sealed with a seal (a msgpack bin holding the envelope), plain msgpack without. */
function frameOf(value: unknown, seal: GossipSeal | null): Buffer {
  return encodeFrame(seal === null ? value : seal.seal(pack(value)));
}

/** The value a received frame carries, or why this node cannot accept it. */
function unseal(frame: unknown, seal: GossipSeal | null): Unsealed {
  if (seal === null) {
    if (isBytes(frame)) return { ok: false, reason: 'no-key', detail: 'was encrypted, but this node has no gossip key' };
    return { ok: true, value: frame };
  }
  if (!isBytes(frame)) {
    seal.drop('tcp', 'unsealed');
    return { ok: false, reason: 'encryption-required', detail: 'was plaintext, but this node encrypts gossip' };
  }
  const opened = seal.open(frame, 'tcp');
  if (!opened.ok) return { ok: false, reason: 'cannot-open', detail: `could not be opened (${opened.reason}: wrong key or cluster name?)` };
  try {
    return { ok: true, value: unpack(opened.plaintext) };
  } catch (err) {
    // Authentic but not msgpack: a bug on the other side, not an attack.
    throw new ShoalError('BAD_REQUEST', `sealed push-pull frame is not msgpack: ${(err as Error).message}`);
  }
}

function refusalOf(frame: unknown): RefuseReason | null {
  if (frame === null || typeof frame !== 'object' || isBytes(frame)) return null;
  const { v, t, r } = frame as Record<string, unknown>;
  return v === WIRE_VERSION && t === 'refuse' && typeof r === 'string' && REFUSE_REASONS.includes(r) ? (r as RefuseReason) : null;
}

function refusedError(addr: string, reason: RefuseReason): ShoalError {
  const why = {
    'cannot-open': `${addr} could not open what we sent (wrong key or cluster name?)`,
    'encryption-required': `${addr} encrypts gossip and this node has no key (security.gossipKey)`,
    'no-key': `${addr} has no gossip key but this node encrypts gossip`,
  }[reason];
  return new ShoalError('BAD_HANDSHAKE', `push-pull: ${why}`);
}

/** The default SyncTransport: connect, send our state, read theirs (sealed when `seal` is given). */
export class TcpSyncTransport implements SyncTransport {
  constructor(
    private readonly limits: SyncLimits,
    private readonly seal: GossipSeal | null = null,
  ) {}

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
        socket.write(frameOf(state, this.seal));
        readOneFrame(socket, this.limits).then(
          (frame) => {
            clearTimeout(timer);
            socket.end();
            const refused = refusalOf(frame);
            if (refused !== null) return reject(refusedError(gossipAddr, refused));
            const reply = unseal(frame, this.seal);
            if (reply.ok) resolve(reply.value);
            else reject(new ShoalError('BAD_HANDSHAKE', `push-pull: the answer of ${gossipAddr} ${reply.detail}`));
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

/**
 * Listens for push-pull on `host:port`; `answer` merges a remote state and returns ours. With a seal,
 * frames are opened and answers sealed; frames that cannot be accepted are refused (see the top).
 */
export class SyncListener implements SyncServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private rejectedCount = 0;

  constructor(
    private readonly limits: SyncLimits,
    answer: (state: unknown, remote: string) => unknown,
    onError: (err: ShoalError, remote: string) => void,
    seal: GossipSeal | null = null,
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
        (frame) => {
          try {
            const state = unseal(frame, seal);
            if (!state.ok) {
              onError(new ShoalError('BAD_HANDSHAKE', `push-pull from ${remote} ${state.detail}`), remote);
              socket.end(encodeFrame({ v: WIRE_VERSION, t: 'refuse', r: state.reason }));
              return;
            }
            socket.end(frameOf(answer(state.value, remote), seal));
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

/** The default SyncListenerFactory: a TCP SyncListener (frames sealed with `seal`, when given). */
export function tcpSyncListener(limits: SyncLimits, seal: GossipSeal | null = null): SyncListenerFactory {
  return {
    async listen(host, port, handler) {
      const listener = new SyncListener(limits, (state, remote) => handler.answer(state, remote), (err, remote) => handler.onError(err, remote), seal);
      await listener.listen(host, port);
      return listener;
    },
  };
}
