/**
 * A deterministic simulator: N membership cores on a virtual clock over a simulated network with
 * latency, loss, partitions, crashes, restarts and slow (CPU-starved) members whose every packet and
 * timer is handled late. One seed fixes everything, so a failing run replays exactly. Each node is
 * ticked only at its core's next deadline, so the cost follows the traffic, not n² per tick.
 */
import assert from 'node:assert/strict';
import type { MembershipConfig } from '../config.js';
import { type CoreOutput, MembershipCore } from '../core.js';
import { MemberDirectory } from '../directory.js';
import type { Packet, SyncState, WireMember } from '../messages.js';
import type { MembershipEvent } from '../types.js';
import { EventHeap } from './heap.js';
import { mulberry32 } from './random.js';

export interface SimOptions {
  n: number;
  seed: number;
  config?: Partial<MembershipConfig>;
  /** One-way latency, uniform between min and max. Default 1..5 ms (a LAN). */
  latencyMsMin?: number;
  latencyMsMax?: number;
  /** Probability that a datagram is lost, each way. Push-pull (TCP) is not lost. */
  lossRate?: number;
  /** Events one `runUntil`/`runFor` call may handle before it fails (a bound on every loop; default 2·10^8). */
  eventsMax?: number;
}

export type SimListener = (node: number, event: MembershipEvent, timeMs: number) => void;

interface SimNode {
  index: number;
  id: string;
  addr: string;
  core: MembershipCore;
  up: boolean;
  epoch: number;
  /** Extra processing delay of a slow member: each event waits uniform 0..slowMsMax. */
  slowMsMax: number;
  group: number;
  tickWantedMs: number;
  /** The seq of the one tick event that is current; earlier ones are stale. */
  tickSeq: number;
}

type SimEvent =
  | { time: number; seq: number; kind: 'tick'; node: number }
  | { time: number; seq: number; kind: 'packet'; node: number; from: number; packet: Packet }
  | { time: number; seq: number; kind: 'sync'; node: number; from: number; fromEpoch: number; state: SyncState }
  | { time: number; seq: number; kind: 'reply'; node: number; epoch: number; from: number; state: SyncState }
  | { time: number; seq: number; kind: 'stream-ping'; node: number; from: number; fromEpoch: number; probeSeq: number }
  | { time: number; seq: number; kind: 'stream-ack'; node: number; epoch: number; from: number; probeSeq: number };

export interface SimTotals {
  packetsSent: number;
  bytesSent: number;
  packetsLost: number;
  packetsBlocked: number;
  syncs: number;
  streamPings: number;
  events: number;
}

export class Simulator {
  now = 0;
  readonly nodes: SimNode[] = [];
  readonly totals: SimTotals = { packetsSent: 0, bytesSent: 0, packetsLost: 0, packetsBlocked: 0, syncs: 0, streamPings: 0, events: 0 };
  private readonly heap = new EventHeap<SimEvent>();
  private readonly byAddr = new Map<string, number>();
  /** One for all cores: each id and address is held once, not once per core. */
  private readonly directory = new MemberDirectory();
  private readonly random: () => number;
  private readonly listeners: SimListener[] = [];
  private seq = 0;
  lossRate: number;
  private readonly latencyMsMin: number;
  private readonly latencySpanMs: number;

  constructor(readonly options: SimOptions) {
    this.random = mulberry32(options.seed);
    this.lossRate = options.lossRate ?? 0;
    this.latencyMsMin = options.latencyMsMin ?? 1;
    this.latencySpanMs = (options.latencyMsMax ?? 5) - this.latencyMsMin;
    // Interned up front, so that every core sizes its arrays once.
    for (let i = 0; i < options.n; i += 1) this.directory.intern(`n${i}`);
    for (let i = 0; i < options.n; i += 1) {
      const id = `n${i}`;
      const addr = `10.${(i >> 8) & 255}.${i & 255}.1:7946`;
      this.byAddr.set(addr, i);
      this.nodes.push({
        index: i, id, addr, core: this.makeCore(i, id, addr, 1), up: false, epoch: 0, slowMsMax: 0, group: 0, tickWantedMs: Infinity, tickSeq: -1,
      });
    }
  }

  onEvent(listener: SimListener): void {
    this.listeners.push(listener);
  }

  /** Starts the first `count` nodes (default all) already knowing each other: a converged cluster. */
  bootstrap(count = this.nodes.length): void {
    const started = this.nodes.slice(0, count);
    const members: WireMember[] = started.map((node) => ({ id: node.id, a: node.addr, r: node.addr, s: 'alive', i: 1 }));
    const state: SyncState = { v: 1, f: 'bootstrap', j: false, m: members };
    for (const node of started) {
      node.up = true;
      node.core.join(this.now, ['bootstrap:1']);
      node.core.handleSyncResponse(this.now, state);
      node.core.assumeSteadyState(this.now);
      this.schedule(node);
    }
  }

  /** Starts node `i` and joins it through `seeds` and the members it `known` before (node indexes). */
  start(i: number, seeds: number[], known: number[] = []): void {
    const node = this.nodes[i];
    assert.ok(!node.up, `node ${i} is already up`);
    node.up = true;
    node.epoch += 1;
    const addrs = (list: number[]) => list.map((s) => this.nodes[s].addr);
    this.take(node, node.core.join(this.now, addrs(seeds), addrs(known)));
  }

  /** Stops node `i` without a word (its in-flight packets may still arrive). */
  crash(i: number): void {
    const node = this.nodes[i];
    node.up = false;
    node.epoch += 1;
    node.tickWantedMs = Infinity;
    node.tickSeq = -1;
  }

  /**
   * Restarts a crashed (or left) node with a fresh core at the persisted incarnation + 1, joining
   * through `seeds` and `known`. With `addr` it comes back on a new address (a rescheduled pod);
   * the old one then reaches nobody.
   */
  restart(i: number, seeds: number[], options: { known?: number[]; addr?: string } = {}): void {
    const node = this.nodes[i];
    assert.ok(!node.up);
    if (options.addr !== undefined && options.addr !== node.addr) {
      assert.ok(!this.byAddr.has(options.addr), `address ${options.addr} is taken`);
      this.byAddr.delete(node.addr);
      node.addr = options.addr;
      this.byAddr.set(node.addr, i);
    }
    node.core = this.makeCore(i, node.id, node.addr, node.core.incarnation + 1);
    this.start(i, seeds, options.known ?? []);
  }

  leave(i: number): void {
    const node = this.nodes[i];
    this.take(node, node.core.leave(this.now));
  }

  /** Puts node i in partition group g; datagrams and syncs only flow within a group. */
  setGroup(i: number, group: number): void {
    this.nodes[i].group = group;
  }

  heal(): void {
    for (const node of this.nodes) node.group = 0;
  }

  /** Makes node i CPU-starved: every packet and timer of it is handled up to `delayMsMax` late. */
  setSlow(i: number, delayMsMax: number): void {
    this.nodes[i].slowMsMax = delayMsMax;
  }

  /** Runs events up to time `untilMs`. */
  runUntil(untilMs: number): void {
    const eventsMax = this.options.eventsMax ?? 200_000_000;
    let events = 0;
    while (this.heap.peekTime() <= untilMs) {
      const event = this.heap.pop() as SimEvent;
      this.now = event.time;
      this.totals.events += 1;
      events += 1;
      assert.ok(events < eventsMax, `one run call exceeded ${eventsMax} events (seed ${this.options.seed})`);
      this.dispatch(event);
    }
    this.now = Math.max(this.now, untilMs);
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /** Runs until `done()` holds (checked every `checkEveryMs`) or `limitMs` passed; the time it took, or null. */
  runUntilTrue(done: () => boolean, limitMs: number, checkEveryMs = 100): number | null {
    const start = this.now;
    while (this.now - start <= limitMs) {
      if (done()) return this.now - start;
      this.runFor(checkEveryMs);
    }
    return done() ? this.now - start : null;
  }

  /** Every up node sees exactly the up nodes as alive (and nobody suspect). */
  converged(): boolean {
    let upCount = 0;
    for (const node of this.nodes) if (node.up) upCount += 1;
    for (const node of this.nodes) {
      if (!node.up) continue;
      if (node.core.liveMembers !== upCount || node.core.suspectCount !== 0) return false;
    }
    for (const node of this.nodes) {
      if (!node.up) continue;
      for (const other of this.nodes) {
        if (other.up !== (node.core.stateOf(other.id) === 'alive')) return false;
      }
      // One full check is enough once the counters agree: the rest is verified by the counters.
      break;
    }
    return true;
  }

  /** How many up nodes other than `subject` see it in `state`. */
  countSeeing(subject: number, state: string): number {
    const id = this.nodes[subject].id;
    let count = 0;
    for (const node of this.nodes) {
      if (node.up && node.index !== subject && node.core.stateOf(id) === state) count += 1;
    }
    return count;
  }

  upCount(): number {
    return this.nodes.reduce((sum, node) => sum + (node.up ? 1 : 0), 0);
  }

  private makeCore(i: number, id: string, addr: string, incarnation: number): MembershipCore {
    return new MembershipCore({
      self: { id, gossip: addr, rpc: addr, incarnation },
      config: this.options.config,
      directory: this.directory,
      random: mulberry32((this.options.seed * 1_000_003 + i * 7919 + incarnation * 104_729) >>> 0),
    });
  }

  private push(event: SimEvent): void {
    this.heap.push(event);
  }

  private nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  private latency(): number {
    return this.latencyMsMin + this.random() * this.latencySpanMs;
  }

  private slowDelay(node: SimNode): number {
    return node.slowMsMax > 0 ? this.random() * node.slowMsMax : 0;
  }

  private dispatch(event: SimEvent): void {
    const node = this.nodes[event.node];
    switch (event.kind) {
      case 'tick':
        if (!node.up || event.seq !== node.tickSeq) return;
        node.tickWantedMs = Infinity;
        node.tickSeq = -1;
        this.take(node, node.core.tick(this.now));
        return;
      case 'packet':
        if (!node.up) return;
        this.take(node, node.core.receive(this.now, event.packet, this.nodes[event.from].addr));
        return;
      case 'sync': {
        if (!node.up || !this.canTalk(event.from, event.node)) return;
        const { reply, output } = node.core.handleSync(this.now, event.state);
        this.take(node, output);
        const back = this.nodes[event.from];
        this.push({
          time: this.now + this.latency() + this.slowDelay(back), seq: this.nextSeq(), kind: 'reply',
          node: event.from, epoch: event.fromEpoch, from: event.node, state: reply,
        });
        return;
      }
      case 'reply':
        if (!node.up || node.epoch !== event.epoch || !this.canTalk(event.from, event.node)) return;
        this.take(node, node.core.handleSyncResponse(this.now, event.state));
        return;
      case 'stream-ping': {
        if (!node.up || !this.canTalk(event.from, event.node)) return;
        const back = this.nodes[event.from];
        this.push({
          time: this.now + this.streamLatency() + this.slowDelay(back), seq: this.nextSeq(), kind: 'stream-ack',
          node: event.from, epoch: event.fromEpoch, from: event.node, probeSeq: event.probeSeq,
        });
        return;
      }
      case 'stream-ack':
        if (!node.up || node.epoch !== event.epoch || !this.canTalk(event.from, event.node)) return;
        this.take(node, node.core.streamAck(this.now, event.probeSeq));
        return;
    }
  }

  private canTalk(a: number, b: number): boolean {
    return this.nodes[a].group === this.nodes[b].group;
  }

  private take(node: SimNode, output: CoreOutput): void {
    for (const event of output.events) {
      for (const listener of this.listeners) listener(node.index, event, this.now);
    }
    for (const out of output.packets) {
      this.totals.packetsSent += 1;
      this.totals.bytesSent += out.bytes;
      const to = this.byAddr.get(out.to);
      if (to === undefined) continue;
      if (!this.canTalk(node.index, to)) {
        this.totals.packetsBlocked += 1;
        continue;
      }
      if (this.lossRate > 0 && this.random() < this.lossRate) {
        this.totals.packetsLost += 1;
        continue;
      }
      const target = this.nodes[to];
      this.push({ time: this.now + this.latency() + this.slowDelay(target), seq: this.nextSeq(), kind: 'packet', node: to, from: node.index, packet: out.packet });
    }
    for (const sync of output.syncs) {
      this.totals.syncs += 1;
      const to = this.byAddr.get(sync.to);
      if (to === undefined) continue;
      const target = this.nodes[to];
      this.push({
        time: this.now + this.latency() + this.slowDelay(target), seq: this.nextSeq(), kind: 'sync',
        node: to, from: node.index, fromEpoch: node.epoch, state: sync.state,
      });
    }
    for (const ping of output.streamPings) {
      this.totals.streamPings += 1;
      const to = this.byAddr.get(ping.to);
      // A lost SYN or SYN-ACK costs a 1 s retransmit timeout: too late for this probe.
      if (to === undefined || this.random() < this.lossRate || this.random() < this.lossRate) continue;
      const target = this.nodes[to];
      this.push({
        time: this.now + 2 * this.latency() + this.streamLatency() + this.slowDelay(target), seq: this.nextSeq(),
        kind: 'stream-ping', node: to, from: node.index, fromEpoch: node.epoch, probeSeq: ping.seq,
      });
    }
    this.schedule(node);
  }

  /** One segment over TCP: a lost one is retransmitted after the 200 ms minimum RTO. */
  private streamLatency(): number {
    let ms = this.latency();
    for (let i = 0; i < 5 && this.random() < this.lossRate; i += 1) ms += 200 * 2 ** i;
    return ms;
  }

  private schedule(node: SimNode): void {
    if (!node.up) return;
    const wanted = Math.max(this.now, node.core.nextDeadlineMs());
    if (!Number.isFinite(wanted) || wanted >= node.tickWantedMs) return;
    node.tickWantedMs = wanted;
    node.tickSeq = this.nextSeq();
    this.push({ time: wanted + this.slowDelay(node), seq: node.tickSeq, kind: 'tick', node: node.index });
  }
}
