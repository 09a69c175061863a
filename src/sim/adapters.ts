/**
 * The simulator's implementations of the seams the real code takes: membership's datagram endpoint and
 * push-pull (over SimNetwork), and a machine's disk (SimDisk) with the faults the world injects.
 */
import { pack, unpack } from '../codec.js';
import { isErrorCode, ShoalError, toShoalError } from '../errors.js';
import type { MembershipOptions } from '../membership/membership.js';
import type { SyncHandler, SyncListenerFactory, SyncServer, SyncTransport } from '../membership/types.js';
import type { UdpEndpoint, UdpFactory, UdpRemote } from '../membership/udp.js';
import type { FsIo } from '../storage/fsio.js';
import type { SimNetwork } from './network.js';
import { type DiskOp, SimDisk, type SimFs } from './disk.js';
import type { SimProcessClock, SimScheduler } from './scheduler.js';

/** Push-pull exchanges time out after this long (the real transport's syncTimeoutMs default). */
const SYNC_TIMEOUT_MS = 10_000;

class SimUdpEndpoint implements UdpEndpoint {
  private messageHandler: (bytes: Buffer, from: UdpRemote) => void = () => {};

  constructor(
    private readonly net: SimNetwork,
    private readonly clock: SimProcessClock,
    private readonly host: string,
    private readonly port: number,
  ) {
    net.bindDatagram(`${host}:${port}`, clock, (bytes, from) => this.messageHandler(bytes, from));
  }

  address(): UdpRemote {
    return { address: this.host, port: this.port };
  }

  send(bytes: Buffer, port: number, host: string, done?: (err: Error | null) => void): void {
    this.net.sendDatagram(`${this.host}:${this.port}`, this.clock, `${host}:${port}`, bytes);
    done?.(null);
  }

  onMessage(handler: (bytes: Buffer, from: UdpRemote) => void): void {
    this.messageHandler = handler;
  }

  onError(): void {}

  close(): Promise<void> {
    this.net.unbindDatagram(`${this.host}:${this.port}`, this.clock);
    return Promise.resolve();
  }
}

/** Membership's network and files for one process incarnation on `host`. */
export function membershipWorld(net: SimNetwork, clock: SimProcessClock, host: string, fs: FsIo): Partial<MembershipOptions> {
  const udp: UdpFactory = {
    bind: (bindHost, port) => Promise.resolve(new SimUdpEndpoint(net, clock, bindHost === '0.0.0.0' ? host : bindHost, port)),
  };
  let selfGossip = '';
  const syncListener: SyncListenerFactory = {
    listen(bindHost: string, port: number, handler: SyncHandler): Promise<SyncServer> {
      const addr = `${bindHost === '0.0.0.0' ? host : bindHost}:${port}`;
      selfGossip = addr;
      net.listen(addr, clock, async (request, from) => {
        try {
          return pack({ ok: true, state: handler.answer(unpack(request), from) });
        } catch (err) {
          return pack({ ok: false, error: toShoalError(err).toWire() });
        }
      });
      return Promise.resolve({
        rejected: 0,
        close: () => {
          net.unlisten(addr, clock);
          return Promise.resolve();
        },
      });
    },
  };
  const sync: SyncTransport = {
    async request(gossipAddr: string, state: unknown): Promise<unknown> {
      const from = selfGossip === '' ? `${host}:0` : selfGossip;
      const answer = unpack(await net.request(from, clock, gossipAddr, pack(state), SYNC_TIMEOUT_MS, 'push-pull')) as {
        ok: boolean;
        state?: unknown;
        error?: { code: string; message: string };
      };
      if (answer.ok) return answer.state;
      const code = answer.error?.code;
      throw new ShoalError(isErrorCode(code) ? code : 'INTERNAL', answer.error?.message ?? 'push-pull refused');
    },
  };
  return { udp, syncListener, sync, clock, fs };
}

/** A machine's disk: one SimDisk under `root`, with the faults the world injects. */
export class SimMachineDisk {
  readonly disk: SimDisk;
  private current: SimFs | null = null;
  private eioArmed = false;

  constructor(
    scheduler: SimScheduler,
    private readonly root: string,
  ) {
    this.disk = new SimDisk({
      random: scheduler.random,
      fsyncLatencyMs: 2,
      onOp: (op, p) => {
        const armed = this.crashArmed;
        if (armed === null || !p.startsWith(armed.prefix) || (armed.op !== null && op !== armed.op)) return;
        armed.ops -= 1;
        if (armed.ops <= 0) {
          this.crashArmed = null;
          armed.then();
        }
      },
    });
  }

  private crashArmed: { prefix: string; op: DiskOp | null; ops: number; then: () => void } | null = null;

  /** Calls `then` (a power loss) right after `ops` more disk operations (of kind `op`, or any) under `prefix`. */
  armCrash(prefix: string, ops: number, then: () => void, op: DiskOp | null = null): void {
    this.crashArmed = { prefix, op, ops, then };
  }

  disarmCrash(): void {
    this.crashArmed = null;
  }

  /** The file system of a new process incarnation on this machine. */
  process(clock: SimProcessClock): FsIo {
    this.current = this.disk.process(clock);
    return this.current;
  }

  /** The process died: with `power`, the machine lost power too (unsynced data is gone, writes may tear). */
  processDied(power: boolean): void {
    if (power) this.disk.crash();
    else this.current?.kill();
    this.current = null;
  }

  /** The operator wiped the data dir (the machine's process is down). */
  wipe(): void {
    this.disk.wipe(this.root);
  }

  /** The disk is full from now on: only a few more KiB fit. */
  fill(): void {
    this.disk.capacityBytes = this.disk.usedBytes + 4096;
  }

  unfill(): void {
    this.disk.capacityBytes = Infinity;
  }

  failNext(op: 'write' | 'fdatasync'): void {
    this.eioArmed = true;
    this.disk.failNext(op, this.root, 'EIO');
  }

  clearFaults(): void {
    this.eioArmed = false;
    this.crashArmed = null;
    this.disk.clearFailures();
  }

  /** An injected fault is in force (full, or an EIO armed since the last heal): a failed start is expected. */
  faultActive(): boolean {
    return this.disk.capacityBytes !== Infinity || this.eioArmed;
  }
}
