/**
 * The simulated network of the whole-cluster simulator: hosts (address strings, never real sockets)
 * joined by links with latency, datagram loss and duplication, and partitions that may be one-way.
 *
 * Two kinds of traffic, as on real machines:
 * - datagrams (gossip): each copy is delayed independently (so they reorder), may be lost or
 *   duplicated, and is dropped if the link is cut at delivery time or nobody is bound there;
 * - request/response over a connection (node-to-node RPC, membership push-pull): FIFO per
 *   (source, destination) pair like a TCP connection, never lost but blocked by a partition (the
 *   caller's own timeout fires), refused at once (after one round trip) when no live process listens
 *   at the address (the kernel's RST), and cut when the serving process dies with the request in
 *   flight.
 *
 * Every endpoint belongs to one process incarnation (its SimProcessClock): once that clock is killed,
 * its endpoints neither send nor receive, and the replies it owed never come.
 */
import { ShoalError, toShoalError } from '../errors.js';
import type { SimProcessClock, SimScheduler } from './scheduler.js';

export interface LinkOptions {
  /** One-way latency, uniform in [latencyMsMin, latencyMsMax]. */
  latencyMsMin: number;
  latencyMsMax: number;
  /** Probability that a datagram is lost. */
  lossRate: number;
  /** Probability that a datagram is delivered twice. */
  duplicateRate: number;
}

export const DEFAULT_LINK: LinkOptions = { latencyMsMin: 0.2, latencyMsMax: 3, lossRate: 0, duplicateRate: 0 };

export interface DatagramInfo {
  address: string;
  port: number;
}

interface DatagramEndpoint {
  owner: SimProcessClock;
  onMessage: (buf: Buffer, from: DatagramInfo) => void;
}

/** Serves one request on a listening address; resolves with the response bytes. */
export type StreamHandler = (request: Buffer, from: string) => Promise<Buffer>;

interface Listener {
  owner: SimProcessClock;
  handler: StreamHandler;
}

export interface NetStats {
  datagramsSent: number;
  datagramsLost: number;
  datagramsBlocked: number;
  datagramsDuplicated: number;
  requests: number;
  requestsRefused: number;
  requestsBlocked: number;
  requestsCut: number;
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const at = addr.lastIndexOf(':');
  return { host: addr.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(addr.slice(at + 1)) };
}

export class SimNetwork {
  link: LinkOptions;
  readonly stats: NetStats = {
    datagramsSent: 0,
    datagramsLost: 0,
    datagramsBlocked: 0,
    datagramsDuplicated: 0,
    requests: 0,
    requestsRefused: 0,
    requestsBlocked: 0,
    requestsCut: 0,
  };
  private readonly datagrams = new Map<string, DatagramEndpoint>();
  private readonly listeners = new Map<string, Listener>();
  /** Cut links, as "fromHost>toHost". */
  private readonly cut = new Set<string>();
  /** Per connection (from>to address), the time its last message arrives: FIFO delivery. */
  private readonly fifo = new Map<string, number>();

  constructor(
    private readonly scheduler: SimScheduler,
    link: Partial<LinkOptions> = {},
  ) {
    this.link = { ...DEFAULT_LINK, ...link };
  }

  // --- partitions ---------------------------------------------------------------------------

  /** Cuts the link from host `a` to host `b` (one way). */
  cutLink(a: string, b: string): void {
    this.cut.add(`${a}>${b}`);
  }

  /** Cuts both directions between every host of `side` and every host of `other`. */
  partition(side: readonly string[], other: readonly string[], oneWay = false): void {
    for (const a of side) {
      for (const b of other) {
        this.cutLink(a, b);
        if (!oneWay) this.cutLink(b, a);
      }
    }
  }

  healAll(): void {
    this.cut.clear();
  }

  isCut(fromHost: string, toHost: string): boolean {
    return this.cut.size > 0 && this.cut.has(`${fromHost}>${toHost}`);
  }

  cutLinks(): string[] {
    return [...this.cut].sort();
  }

  private latency(): number {
    const { latencyMsMin, latencyMsMax } = this.link;
    return latencyMsMin + this.scheduler.random() * (latencyMsMax - latencyMsMin);
  }

  // --- datagrams ----------------------------------------------------------------------------

  bindDatagram(addr: string, owner: SimProcessClock, onMessage: DatagramEndpoint['onMessage']): void {
    const existing = this.datagrams.get(addr);
    if (existing !== undefined && !existing.owner.dead) {
      throw Object.assign(new Error(`bind EADDRINUSE ${addr}`), { code: 'EADDRINUSE' });
    }
    this.datagrams.set(addr, { owner, onMessage });
  }

  unbindDatagram(addr: string, owner: SimProcessClock): void {
    if (this.datagrams.get(addr)?.owner === owner) this.datagrams.delete(addr);
  }

  sendDatagram(fromAddr: string, owner: SimProcessClock, toAddr: string, buf: Buffer): void {
    if (owner.dead) return;
    this.stats.datagramsSent++;
    if (this.link.lossRate > 0 && this.scheduler.random() < this.link.lossRate) {
      this.stats.datagramsLost++;
      return;
    }
    const copies = this.link.duplicateRate > 0 && this.scheduler.random() < this.link.duplicateRate ? 2 : 1;
    if (copies === 2) this.stats.datagramsDuplicated++;
    const from = splitHostPort(fromAddr);
    const to = splitHostPort(toAddr);
    const data = Buffer.from(buf); // the sender may reuse its buffer
    for (let i = 0; i < copies; i++) {
      this.scheduler.at(this.latency(), () => {
        if (this.isCut(from.host, to.host)) {
          this.stats.datagramsBlocked++;
          return;
        }
        const endpoint = this.datagrams.get(toAddr);
        if (endpoint === undefined || endpoint.owner.dead) return;
        endpoint.onMessage(data, { address: from.host, port: from.port });
      });
    }
  }

  // --- connections (request/response) -------------------------------------------------------

  listen(addr: string, owner: SimProcessClock, handler: StreamHandler): void {
    const existing = this.listeners.get(addr);
    if (existing !== undefined && !existing.owner.dead) {
      throw Object.assign(new Error(`listen EADDRINUSE ${addr}`), { code: 'EADDRINUSE' });
    }
    this.listeners.set(addr, { owner, handler });
  }

  unlisten(addr: string, owner: SimProcessClock): void {
    if (this.listeners.get(addr)?.owner === owner) this.listeners.delete(addr);
  }

  isListening(addr: string): boolean {
    const l = this.listeners.get(addr);
    return l !== undefined && !l.owner.dead;
  }

  /** Arrival time of a message sent now on connection `key`, after everything sent before it. */
  private fifoDelay(key: string): number {
    const arrival = Math.max(this.scheduler.timeMs + this.latency(), this.fifo.get(key) ?? 0);
    this.fifo.set(key, arrival);
    return arrival - this.scheduler.timeMs;
  }

  /**
   * Sends `request` from `fromAddr` (a process on `owner`'s clock) to the listener at `toAddr`;
   * resolves with the response bytes. Rejects UNAVAILABLE when refused or cut by the server's death,
   * TIMEOUT after `timeoutMs` on the caller's clock when a partition swallows either direction. A
   * promise of a caller that died never settles (nobody is left to see it).
   */
  request(fromAddr: string, owner: SimProcessClock, toAddr: string, request: Buffer, timeoutMs: number, what = 'request'): Promise<Buffer> {
    this.stats.requests++;
    const from = splitHostPort(fromAddr);
    const to = splitHostPort(toAddr);
    return new Promise<Buffer>((resolve, reject) => {
      if (owner.dead) return;
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled || owner.dead) return;
        settled = true;
        owner.clearTimeout(timer);
        fn();
      };
      const timer = owner.setTimeout(() => {
        settle(() => reject(new ShoalError('TIMEOUT', `${what} to ${toAddr} timed out after ${timeoutMs} ms`, { addr: toAddr })));
      }, timeoutMs);
      const there = `${fromAddr}>${toAddr}`;
      const back = `${toAddr}>${fromAddr}`;
      this.scheduler.at(this.fifoDelay(there), () => {
        if (this.isCut(from.host, to.host)) {
          this.stats.requestsBlocked++;
          return; // swallowed: the caller's timeout decides
        }
        const listener = this.listeners.get(toAddr);
        if (listener === undefined || listener.owner.dead) {
          this.stats.requestsRefused++;
          this.scheduler.at(this.latency(), () =>
            settle(() => reject(new ShoalError('UNAVAILABLE', `${toAddr}: connection refused`, { addr: toAddr, transport: true }))),
          );
          return;
        }
        const server = listener.owner;
        const served = listener.handler(Buffer.from(request), fromAddr);
        const answer = (fn: () => void) => {
          if (server.dead) {
            this.stats.requestsCut++;
            // The server died with the request in flight: the connection resets.
            this.scheduler.at(this.latency(), () =>
              settle(() => reject(new ShoalError('UNAVAILABLE', `${toAddr}: connection reset`, { addr: toAddr, transport: true }))),
            );
            return;
          }
          this.scheduler.at(this.fifoDelay(back), () => {
            if (this.isCut(to.host, from.host)) {
              this.stats.requestsBlocked++;
              return;
            }
            settle(fn);
          });
        };
        // A server that dies before answering: the caller learns it from the reset.
        const forget = server.onKill(() => answer(() => undefined));
        served.then(
          (response) => {
            forget();
            answer(() => resolve(response));
          },
          (err: unknown) => {
            forget();
            answer(() => reject(toShoalError(err)));
          },
        );
      });
    });
  }
}
