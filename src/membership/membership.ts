/**
 * The membership runtime: the I/O-free core over datagrams, timers, randomness, push-pull on the
 * gossip port, and the incarnation number persisted in the data dir so that a restarted node starts
 * above anything said about its previous life. With a keyring every datagram and push-pull frame is
 * sealed (seal.ts); the core packs datagrams into the budget minus the envelope.
 *
 * Every piece of I/O goes through a seam given in the options, whose default is the real thing: time,
 * timers and randomness (`clock`, src/clock.ts; crypto randomness when no clock is given), datagrams
 * (`udp`, udp.ts: node:dgram), push-pull (`sync` and `syncListener`, sync.ts: TCP), files (`fs`,
 * src/storage/fsio.ts: node:fs) and seed DNS (`seedDns`, dns.ts: node:dns). The whole-cluster simulator
 * (src/sim/) runs this very code with simulated ones (docs/SIMULATION.md).
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { type Clock, type ClockTimer, sleep, systemClock } from '../clock.js';
import { ShoalError, toShoalError } from '../errors.js';
import { type Logger, nullLogger, rateLimited } from '../log.js';
import { mutant } from '../mutations.js';
import type { Keyring } from '../security/keyring.js';
import { type DirIo, type FsIo, fsyncDir, nodeFsIo, writeFileSynced } from '../storage/fsio.js';
import { type MembershipConfig, resolveMembershipConfig } from './config.js';
import { type CoreOutput, type CoreStats, MembershipCore } from './core.js';
import type { SeedDns } from './dns.js';
import { cryptoRandom } from './entropy.js';
import { KNOWN_MEMBERS_FILE, type KnownMember, KnownMembers, readKnownMembers, writeJsonDurably } from './known.js';
import { WIRE_VERSION, encodePacket, validateSyncState } from './messages.js';
import { GossipSeal, noSealDrops, type SealDrops } from './seal.js';
import { formatSeedAddress, ownGossipAddresses, parseSeed, resolveSeeds, seedsNeedDns } from './seeds.js';
import { TcpSyncTransport, splitHostPort, tcpSyncListener } from './sync.js';
import type { Member, MembershipEvent, SyncListenerFactory, SyncServer, SyncTransport } from './types.js';
import { type UdpEndpoint, type UdpFactory, dgramUdp } from './udp.js';

export interface MembershipOptions {
  id: string;
  /** Address the UDP socket and the push-pull listener bind to (127.0.0.x in tests). */
  bindHost: string;
  /** UDP and TCP port; 0 picks a free one. */
  gossipPort: number;
  /** Host others reach us at, when bindHost is a wildcard. Default: bindHost. */
  advertiseHost?: string;
  /** Our RPC address, host:port, carried in our metadata. */
  rpc: string;
  zone?: string;
  tags?: Record<string, string>;
  /**
   * Seeds to join through, empty for the first node: `ip:port`, `name:port` (A/AAAA) or `srv:NAME`
   * (seeds.ts). Names are resolved again before every join attempt and every seedResolveIntervalMs.
   */
  seeds: string[];
  /** DNS servers for the seeds (`ip` or `ip:port`); default the system's resolver. */
  dnsServers?: string[];
  /** Where the incarnation number and the known members are kept across restarts. */
  dataDir: string;
  config?: Partial<MembershipConfig>;
  logger?: Logger;
  /** Push-pull transport; default TCP frames to the gossip port (sealed with the keyring, if any). A custom one protects itself. */
  sync?: SyncTransport;
  /**
   * Starts the push-pull listener on (bindHost, gossip port); default TCP (sealed with the keyring, if
   * any). A custom one carries the values as they are (it protects itself, like a custom `sync`).
   */
  syncListener?: SyncListenerFactory;
  /** Binds the gossip datagram endpoint; default node:dgram. Datagrams are sealed before they reach it. */
  udp?: UdpFactory;
  /**
   * Time, timers and randomness; default the system's, with crypto randomness. With a clock given, its
   * `random` is the protocol's random source (seeded in the simulator).
   */
  clock?: Clock;
  /** Every file access in dataDir (the incarnation, known-members.json); default node:fs. */
  fs?: FsIo;
  /** DNS for host-name and srv: seeds; default node:dns. Plain ip:port seeds never use it. */
  seedDns?: SeedDns;
  /**
   * Gossip encryption: every datagram and push-pull frame is sealed with the keyring's primary key
   * and opened with any installed key; what does not open is dropped and counted. The same object
   * may be changed (install, use, remove) while membership runs. Default: none, plaintext.
   */
  keyring?: Keyring;
  /** Bound into every envelope as associated data (required with a keyring): another cluster's messages do not open. */
  clusterName?: string;
}

export interface MembershipStats extends CoreStats {
  checksum: string;
  joining: boolean;
  /** Members persisted in the data dir (known-members.json): join targets after a restart. */
  knownMembers: number;
  sendErrors: number;
  syncErrors: number;
  syncRejected: number;
  /** True when datagrams and push-pull are sealed with a keyring. */
  encrypted: boolean;
  /** Messages dropped before the core because they did not open, per transport and reason (all 0 without encryption). */
  decryptFailures: SealDrops;
  /** The seeds' addresses at the last resolution (without our own). */
  seedAddresses: string[];
  /** Resolutions of DNS seeds, and seeds that failed to resolve (one per seed per resolution). */
  seedResolutions: number;
  seedResolveErrors: number;
}

/** The seams of one runtime, defaults filled in. */
interface RuntimeIo {
  clock: Clock;
  fs: FsIo;
  seedDns: SeedDns | undefined;
}

const INCARNATION_FILE = 'membership.json';
/** Longest sleep between two timer checks, so a clock hiccup cannot stall the protocol. */
const TIMER_SLEEP_MS_MAX = 1000;
const BIND_ATTEMPTS_MAX = 8;
/** The known-members file is written at most this often (membership changes come in bursts). */
const KNOWN_PERSIST_INTERVAL_MS = 1000;
/**
 * The known-members file is rewritten at least this often even without changes: its time says when
 * this node last saw the members it lists alive, which a restart uses as the time they went down
 * (holdKnownDown). So that time is at most this old after a crash.
 */
const KNOWN_REFRESH_INTERVAL_MS = 5 * 60_000;
/** resolveMembershipConfig's lower bound on datagramBytesMax, which the core's (smaller) budget must meet too. */
const DATAGRAM_BYTES_MIN = 512;

async function readIncarnation(dataDir: string, io: FsIo): Promise<number> {
  try {
    const parsed = JSON.parse((await io.readFile(path.join(dataDir, INCARNATION_FILE))).toString('utf8')) as { incarnation?: unknown };
    const value = parsed.incarnation;
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
    throw new ShoalError('CORRUPT', `${INCARNATION_FILE} in ${dataDir} holds no valid incarnation; delete it to start at 1`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    if (err instanceof SyntaxError) {
      throw new ShoalError('CORRUPT', `${INCARNATION_FILE} in ${dataDir} is not JSON; delete it to start at 1`);
    }
    throw err;
  }
}

/**
 * Persists the incarnation: write a temp file, fsync it, rename it over the old one, fsync the
 * directory (so the rename survives a crash; a restart must never reuse a lower incarnation).
 */
export async function writeIncarnation(dataDir: string, incarnation: number, io: DirIo = nodeFsIo): Promise<void> {
  const file = path.join(dataDir, INCARNATION_FILE);
  const temp = `${file}.${process.pid}.tmp`;
  await writeFileSynced(io, temp, Buffer.from(JSON.stringify({ incarnation })));
  await io.rename(temp, file);
  await fsyncDir(io, dataDir);
}

function formatAddr(address: string, port: number): string {
  return formatSeedAddress(address, port);
}

function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' && Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
}

function asStreamPing(value: unknown): { s: number; n: string } | null {
  if (field(value, 't') !== 'ping' || field(value, 'v') !== WIRE_VERSION) return null;
  const s = field(value, 's');
  const n = field(value, 'n');
  if (typeof s !== 'number' || !Number.isInteger(s) || typeof n !== 'string') throw new ShoalError('BAD_REQUEST', 'malformed stream ping');
  return { s, n };
}

function asStreamAck(value: unknown): { s: number } | null {
  const s = field(value, 's');
  return field(value, 't') === 'ack' && typeof s === 'number' ? { s } : null;
}

function gossipSeal(options: MembershipOptions, config: MembershipConfig): GossipSeal | null {
  if (options.keyring === undefined) return null;
  if (options.clusterName === undefined || options.clusterName === '') {
    throw new ShoalError('CONFIG', 'membership: a keyring needs the cluster name (bound into every envelope)');
  }
  const seal = new GossipSeal(options.keyring, options.clusterName);
  const minimum = DATAGRAM_BYTES_MIN + seal.overheadBytes;
  if (config.datagramBytesMax < minimum) {
    throw new ShoalError('CONFIG', `membership.datagramBytesMax must be at least ${minimum} with gossip encryption (${seal.overheadBytes} bytes of envelope per datagram)`);
  }
  return seal;
}

export class Membership {
  private readonly emitter = new EventEmitter();
  private timer: ClockTimer | null = null;
  /** The core's tick, due once the loop has read its sockets (see schedule). */
  private tickImmediate: ClockTimer | null = null;
  private stopped = false;
  private persistedIncarnation: number;
  private persisting: Promise<void> = Promise.resolve();
  private knownTimer: ClockTimer | null = null;
  private knownRefreshTimer: ClockTimer | null = null;
  private knownReconnectTimer: ClockTimer | null = null;
  private joinedLogged = false;
  private sendErrors = 0;
  private syncErrors = 0;
  private readonly warn: (key: string, message: string, fields?: Record<string, unknown>) => void;
  /** The whole datagram budget (the core's is smaller by the envelope overhead when encrypting). */
  private readonly datagramBytesMax: number;
  private readonly seedSpecs: string[];
  private readonly dnsServers: string[];
  private readonly seedsDynamic: boolean;
  private readonly selfAddresses: string[];
  private seedAddresses: string[] = [];
  private seedResolutions = 0;
  private seedResolveErrors = 0;
  /** Seeds were configured but none resolved yet: the core has not been told to join, we retry. */
  private seedsPending = false;
  private seedsPendingAttempts = 0;
  private resolving: Promise<void> | null = null;
  private seedTimer: ClockTimer | null = null;
  private readonly clock: Clock;
  private readonly fs: FsIo;
  private readonly seedDns: SeedDns | undefined;

  private constructor(
    private readonly core: MembershipCore,
    private readonly socket: UdpEndpoint,
    private readonly listener: SyncServer,
    private readonly transport: SyncTransport,
    io: RuntimeIo,
    private readonly dataDir: string,
    private readonly logger: Logger,
    private readonly seal: GossipSeal | null,
    config: MembershipConfig,
    options: MembershipOptions,
    port: number,
    private readonly known: KnownMembers,
  ) {
    this.datagramBytesMax = config.datagramBytesMax;
    this.seedSpecs = [...options.seeds];
    this.dnsServers = [...(options.dnsServers ?? [])];
    this.seedsDynamic = seedsNeedDns(this.seedSpecs);
    this.selfAddresses = ownGossipAddresses(core.self().gossip, options.bindHost, port);
    this.persistedIncarnation = core.incarnation;
    this.clock = io.clock;
    this.fs = io.fs;
    this.seedDns = io.seedDns;
    this.warn = rateLimited(logger, undefined, undefined, () => io.clock.monotonicMs());
  }

  static async start(options: MembershipOptions): Promise<Membership> {
    const config = resolveMembershipConfig(options.config);
    const logger = (options.logger ?? nullLogger).child({ layer: 'membership', node: options.id });
    const seal = gossipSeal(options, config);
    for (const seed of options.seeds) parseSeed(seed); // a malformed seed fails the start before anything is bound
    const io: RuntimeIo = { clock: options.clock ?? systemClock, fs: options.fs ?? nodeFsIo, seedDns: options.seedDns };
    await io.fs.mkdir(options.dataDir);
    const incarnation = (await readIncarnation(options.dataDir, io.fs)) + 1;
    await writeIncarnation(options.dataDir, incarnation, io.fs);
    const knownList = await readKnownMembers(options.dataDir, io.fs);
    const known = new KnownMembers(options.id, knownList);

    let self: Membership | null = null;
    const listenerFactory = options.syncListener ?? tcpSyncListener(config, seal);
    const handler = {
      answer: (state: unknown): unknown => {
        if (self === null) throw new ShoalError('UNAVAILABLE', 'membership is starting');
        return self.handleSync(state);
      },
      onError: (err: ShoalError, remote: string): void => self?.onSyncError(err, remote),
    };
    const udpFactory = options.udp ?? dgramUdp;
    let bound: { socket: UdpEndpoint; listener: SyncServer } | null = null;
    let port = options.gossipPort;
    for (let attempt = 1; bound === null; attempt += 1) {
      const udp = await udpFactory.bind(options.bindHost, options.gossipPort);
      port = udp.address().port;
      try {
        bound = { socket: udp, listener: await listenerFactory.listen(options.bindHost, port, handler) };
      } catch (err) {
        await udp.close();
        // With an OS-chosen UDP port the same TCP port may be taken: pick again.
        if (options.gossipPort !== 0 || attempt >= BIND_ATTEMPTS_MAX) {
          throw new ShoalError('UNAVAILABLE', `cannot listen for push-pull on ${options.bindHost}:${port}: ${(err as Error).message}`);
        }
      }
    }
    const { socket, listener } = bound;
    // From here on a failure (e.g. metadata over metaBytesMax) must not leak the bound ports.
    try {
      return await Membership.begin(options, config, logger, seal, io, socket, listener, port, incarnation, known, knownList, (m) => {
        self = m;
      });
    } catch (err) {
      await socket.close();
      await listener.close();
      throw err;
    }
  }

  private static async begin(
    options: MembershipOptions,
    config: MembershipConfig,
    logger: Logger,
    seal: GossipSeal | null,
    io: RuntimeIo,
    socket: UdpEndpoint,
    listener: SyncServer,
    port: number,
    incarnation: number,
    known: KnownMembers,
    knownList: readonly KnownMember[],
    setSelf: (m: Membership) => void,
  ): Promise<Membership> {
    const core = new MembershipCore({
      self: {
        id: options.id, gossip: formatAddr(options.advertiseHost ?? options.bindHost, port), rpc: options.rpc,
        zone: options.zone, tags: options.tags, incarnation,
      },
      // The envelope comes out of the datagram budget, so that sealed datagrams never exceed it.
      config: seal === null ? config : { ...config, datagramBytesMax: config.datagramBytesMax - seal.overheadBytes },
      random: options.clock === undefined ? cryptoRandom() : options.clock.random.bind(options.clock),
    });
    const transport = options.sync ?? new TcpSyncTransport(config, seal);
    const membership = new Membership(core, socket, listener, transport, io, options.dataDir, logger, seal, config, options, port, known);
    setSelf(membership);
    socket.onMessage((bytes, from) => membership.onDatagram(bytes, formatAddr(from.address, from.port)));
    socket.onError((err) => membership.warn('udp-error', 'membership socket error', { error: err.message }));
    logger.info('membership started', {
      gossip: core.self().gossip, incarnation, seeds: options.seeds, knownMembers: known.list().length, encrypted: seal !== null,
    });
    membership.holdKnownDown(knownList);
    membership.scheduleKnownRefresh();
    await membership.joinThroughSeeds();
    return membership;
  }

  members(): Member[] {
    return this.core.members();
  }

  self(): Member {
    return this.core.self();
  }

  checksum(): string {
    return this.core.checksum();
  }

  /** True until one seed or known member answered (false at once when there were none: a new cluster). */
  get joining(): boolean {
    return this.core.isJoining || this.seedsPending;
  }

  /** How long ago (ms) member `id` died, when it is dead (the cluster view's dead-owner grace starts then). */
  deadForMs(id: string): number | undefined {
    return this.core.deadForMs(this.now(), id);
  }

  /** Ids of the members persisted as known (not left, not reaped), self excluded. */
  knownMemberIds(): string[] {
    return this.known.ids();
  }

  /** Forgets a member for good (an operator's `shoal remove`): no longer a join target or counted. */
  forget(id: string): void {
    if (this.known.forget(id, this.clock.now())) this.persistKnownNow();
  }

  /** Operator removal of a dead member: marked left and gossiped on its behalf (core.forceLeave). */
  forceLeave(id: string): boolean {
    const changed = this.core.forceLeave(this.now(), id);
    if (changed) this.apply(this.core.tick(this.now()));
    return changed;
  }

  stats(): MembershipStats {
    return {
      ...this.core.stats(),
      checksum: this.core.checksum(),
      joining: this.joining,
      knownMembers: this.known.ids().length,
      sendErrors: this.sendErrors,
      syncErrors: this.syncErrors,
      syncRejected: this.listener.rejected,
      encrypted: this.seal !== null,
      decryptFailures: this.seal?.drops() ?? noSealDrops(),
      seedAddresses: [...this.seedAddresses],
      seedResolutions: this.seedResolutions,
      seedResolveErrors: this.seedResolveErrors,
    };
  }

  on(event: 'event', listener: (e: MembershipEvent) => void): this {
    this.emitter.on(event, listener);
    return this;
  }

  off(event: 'event', listener: (e: MembershipEvent) => void): this {
    this.emitter.off(event, listener);
    return this;
  }

  /**
   * The receiving side of the stream transport (for a custom SyncTransport): a push-pull state is
   * merged and ours returned; a stream ping `{ v: 1, t: 'ping', s, n }` for us is answered with an ack.
   */
  handleSync(state: unknown): unknown {
    if (this.stopped) throw new ShoalError('CLOSED', 'membership is stopped');
    const ping = asStreamPing(state);
    if (ping !== null) {
      if (ping.n !== this.core.id) throw new ShoalError('BAD_REQUEST', `stream ping for ${ping.n}, this is ${this.core.id}`);
      return { v: WIRE_VERSION, t: 'ack', s: ping.s };
    }
    const valid = validateSyncState(state, this.core.config);
    if (!valid.ok) throw new ShoalError('BAD_REQUEST', `bad push-pull state: ${valid.detail}`);
    const { reply, output } = this.core.handleSync(this.now(), valid.value);
    this.apply(output);
    return reply;
  }

  /** Announces that we leave and waits (up to timeoutMs) until the news has been sent around. */
  async leave(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    const timeoutMs = options.timeoutMs ?? 5000;
    const startMs = this.now();
    this.apply(this.core.leave(startMs));
    while (!this.stopped && !this.core.leaveSpread() && this.now() - startMs < timeoutMs) {
      await sleep(this.clock, Math.max(10, this.core.config.gossipIntervalMs / 2));
    }
    await this.persisting;
  }

  /** Stops without announcing anything (others will detect us as failed). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.clock.clearImmediate(this.tickImmediate);
    this.tickImmediate = null;
    this.timer = null;
    this.clock.clearTimeout(this.seedTimer);
    this.seedTimer = null;
    await this.resolving;
    this.clock.clearTimeout(this.knownTimer);
    this.knownTimer = null;
    this.clock.clearTimeout(this.knownReconnectTimer);
    this.knownReconnectTimer = null;
    this.clock.clearTimeout(this.knownRefreshTimer);
    this.knownRefreshTimer = null;
    await this.socket.close();
    await this.listener.close();
    this.persistKnown(); // also unchanged: its time says when we last saw the members alive
    await this.persisting;
  }

  private now(): number {
    return this.clock.monotonicMs();
  }

  /** The first resolution of the seeds, then the join (or, when no seed resolved, retries until one does). */
  private async joinThroughSeeds(): Promise<void> {
    const addresses = await this.resolveSeedsNow();
    const known = this.knownAddresses();
    if (addresses.errors > 0 && addresses.found.length === 0 && known.length === 0) {
      // Seeds are configured but none resolved (DNS down, a record not published yet) and no member
      // is known: this is not a first node, so it must not start alone; it keeps resolving and joins
      // once a seed appears.
      this.seedsPending = true;
      this.logger.warn('no seed resolved; retrying before joining', { seeds: this.seedSpecs });
    } else {
      if (addresses.found.length + known.length === 0) {
        this.logger.info('no seeds and no known members: starting a new cluster');
        this.joinedLogged = true;
      }
      this.apply(this.core.join(this.now(), addresses.found, known, this.known.list().map((m) => m.gossip)));
    }
    this.scheduleSeedResolve();
    this.scheduleKnownReconnect();
  }

  /** Every reconnectIntervalMs (jittered ±50%): reconnectKnown. */
  private scheduleKnownReconnect(): void {
    if (this.stopped) return;
    const delayMs = this.core.config.reconnectIntervalMs * (0.5 + this.clock.random());
    this.knownReconnectTimer = this.clock.setTimeout(() => {
      this.knownReconnectTimer = null;
      this.reconnectKnown();
      this.scheduleKnownReconnect();
    }, delayMs);
    this.knownReconnectTimer.unref();
  }

  /**
   * A push-pull with one known member (persisted) that this node's view does not hold at all. The
   * core's reconnect tries only the dead members it holds; after a restart, a known member that did
   * not answer the join (down at the time, or wiped and since the first node of a cluster of its own)
   * is in no view, so without this the two clusters would never meet again (found by the simulator).
   */
  private reconnectKnown(): void {
    if (this.stopped || this.core.isJoining) return; // while joining, every known member is retried anyway
    if (mutant('seed-forgets-known')) return; // the mutation: what this node knew is not used to rejoin
    const held = new Set(this.core.members().map((m) => m.id));
    const self = this.core.self().gossip;
    const candidates = this.known.list().filter((m) => !held.has(m.id) && m.gossip !== self);
    if (candidates.length === 0) return;
    const pick = candidates[Math.floor(this.clock.random() * candidates.length)];
    this.apply(this.core.pushPull(this.now(), pick.gossip));
  }

  /** Gossip addresses of the members this node knew (persisted), tried beside the seeds. */
  private knownAddresses(): string[] {
    // Mutation (src/mutations.ts): join through the seeds only, so a restarted seed starts a second cluster.
    if (mutant('seed-forgets-known')) return [];
    return this.known.list().map((m) => m.gossip);
  }

  private async resolveSeedsNow(): Promise<{ found: string[]; errors: number }> {
    let errors = 0;
    const found = await resolveSeeds(this.seedSpecs, {
      self: this.selfAddresses,
      dnsServers: this.dnsServers,
      timeoutMs: this.core.config.seedResolveTimeoutMs,
      dns: this.seedDns,
      clock: this.clock,
      onError: (seed, error) => {
        errors += 1;
        this.warn(`seed-dns-${seed}`, 'seed did not resolve', { seed, code: error.code, error: error.message });
      },
    });
    if (this.seedsDynamic) this.seedResolutions += 1;
    this.seedResolveErrors += errors;
    if (found.join(',') !== this.seedAddresses.join(',') && this.seedsDynamic) {
      this.logger.info('seeds resolved', { seeds: this.seedSpecs, addresses: found });
    }
    this.seedAddresses = found;
    return { found, errors };
  }

  /**
   * Resolves the DNS seeds again in the background (one resolution at a time), then: before joining,
   * the next attempt uses the new addresses; once joined, a resolved address that no live member has
   * gets a push-pull, so a node DNS lists but the cluster does not know (e.g. a seed that came back
   * alone on a new address) is merged.
   */
  private refreshSeeds(): void {
    if (!this.seedsDynamic || this.resolving !== null || this.stopped) return;
    this.resolving = this.resolveSeedsNow()
      .then(({ found, errors }) => {
        if (this.stopped) return;
        if (this.seedsPending) {
          // Still nothing: keep trying. Nothing but ourselves, without errors: we are the first node.
          if (found.length === 0 && errors > 0) return;
          this.seedsPending = false;
          this.apply(this.core.join(this.now(), found, this.knownAddresses()));
        } else if (this.core.isJoining) {
          this.core.setJoinSeeds(found);
        } else {
          const live = new Set(this.core.members().filter((m) => m.state === 'alive' || m.state === 'suspect').map((m) => m.gossip));
          for (const address of found) {
            if (!live.has(address)) this.apply(this.core.pushPull(this.now(), address));
          }
        }
      })
      .catch((err: unknown) => {
        this.seedResolveErrors += 1;
        this.warn('seed-resolve', 'resolving the seeds failed', { error: (err as Error).message });
      })
      .finally(() => {
        this.resolving = null;
      });
  }

  /** While seeds are pending: the join backoff; otherwise every seedResolveIntervalMs (DNS seeds only). */
  private scheduleSeedResolve(): void {
    if (!this.seedsDynamic || this.stopped) return;
    const c = this.core.config;
    let delayMs = c.seedResolveIntervalMs;
    if (this.seedsPending) {
      delayMs = Math.min(c.joinRetryMaxMs, c.joinRetryInitialMs * 2 ** Math.min(this.seedsPendingAttempts, 30));
      this.seedsPendingAttempts += 1;
    }
    this.seedTimer = this.clock.setTimeout(() => {
      this.seedTimer = null;
      this.refreshSeeds();
      this.scheduleSeedResolve();
    }, Math.ceil(delayMs));
  }

  private onDatagram(received: Buffer, from: string): void {
    if (this.stopped) return;
    const bytes = this.seal === null ? received : this.openDatagram(received, from);
    if (bytes === null) return;
    const before = this.core.badInputDropped;
    const output = this.core.receiveBytes(this.now(), bytes, from);
    if (this.core.badInputDropped > before) {
      this.warn('bad-datagram', 'dropped a bad membership datagram', { from, bytes: bytes.length, detail: this.core.lastDropDetail });
    }
    this.apply(output);
  }

  /** The plaintext of a sealed datagram, or null when it was dropped (counted and logged at a bounded rate). */
  private openDatagram(bytes: Buffer, from: string): Buffer | null {
    const seal = this.seal as GossipSeal;
    if (bytes.length > this.datagramBytesMax) {
      seal.drop('udp', 'too-large');
      this.warn('gossip-too-large', 'dropped an oversized gossip datagram', { from, bytes: bytes.length });
      return null;
    }
    const opened = seal.open(bytes, 'udp');
    if (opened.ok) return opened.plaintext;
    this.warn('gossip-decrypt', 'dropped a gossip datagram that did not open (wrong key, another cluster, or not encrypted)', {
      from, bytes: bytes.length, reason: opened.reason,
    });
    return null;
  }

  private onSyncError(err: ShoalError, remote: string): void {
    this.syncErrors += 1;
    this.warn(`sync-${err.code}`, 'push-pull failed', { remote, code: err.code, error: err.message });
  }

  private apply(output: CoreOutput): void {
    if (this.stopped) return;
    for (const { to, packet } of output.packets) {
      let host: string;
      let port: number;
      try {
        ({ host, port } = splitHostPort(to));
      } catch {
        this.sendErrors += 1;
        continue;
      }
      const plain = encodePacket(packet);
      const bytes = this.seal === null ? plain : this.seal.seal(plain);
      if (bytes.length > this.datagramBytesMax) {
        // The core packs within the budget; a single message larger than it is a bug, not traffic.
        this.sendErrors += 1;
        this.warn('udp-oversized', 'membership datagram over the budget not sent', { to, bytes: bytes.length, max: this.datagramBytesMax });
        continue;
      }
      this.socket.send(bytes, port, host, (err) => {
        if (err) {
          this.sendErrors += 1;
          this.warn('udp-send', 'membership send failed', { to, error: err.message });
        }
      });
    }
    let joinAttempt = false;
    for (const request of output.syncs) {
      joinAttempt ||= request.join;
      this.transport.request(request.to, request.state).then(
        (raw) => {
          if (this.stopped) return;
          const valid = validateSyncState(raw, this.core.config);
          if (!valid.ok) {
            this.onSyncError(new ShoalError('BAD_REQUEST', valid.detail), request.to);
            return;
          }
          this.apply(this.core.handleSyncResponse(this.now(), valid.value));
        },
        (err: unknown) => {
          const error = toShoalError(err);
          if (request.join && !this.stopped) {
            this.warn(`join-${error.code}`, 'join through a seed failed; retrying', { seed: request.to, code: error.code, error: error.message });
          }
          this.onSyncError(error, request.to);
        },
      );
    }
    for (const ping of output.streamPings) {
      this.transport.request(ping.to, { v: WIRE_VERSION, t: 'ping', s: ping.seq, n: ping.target }).then(
        (reply) => {
          const ack = asStreamAck(reply);
          if (!this.stopped && ack !== null && ack.s === ping.seq) this.apply(this.core.streamAck(this.now(), ack.s));
        },
        () => {}, // the probe fails on its own deadline; UDP already reports the member
      );
    }
    let knownChanged = false;
    let tombstone = false;
    for (const event of output.events) {
      if (event.type !== 'alive' && event.type !== 'joined') {
        if (event.deadForMs !== undefined) {
          this.logger.info('member learned dead from a peer', { member: event.member.id, incarnation: event.member.incarnation, deadForMs: event.deadForMs });
        } else {
          this.logger.info(`member ${event.type}`, { member: event.member.id, incarnation: event.member.incarnation });
        }
      }
      const changed = this.known.apply(event, this.clock.now());
      knownChanged = changed || knownChanged;
      tombstone = (changed && event.type === 'left') || tombstone;
      this.emitter.emit('event', event);
    }
    // A member that left is written at once: a crash within the persist interval would lose its
    // tombstone, and the restarted node would hold it dead again (an owner within the dead-owner grace;
    // found by the simulator, seed 197: a removal followed 0.3 s later by a restart of every node).
    if (tombstone) this.persistKnownNow();
    else if (knownChanged) this.scheduleKnownPersist();
    if (!this.joinedLogged && !this.core.isJoining) {
      this.joinedLogged = true;
      this.logger.info('joined the cluster', { members: this.core.liveMembers });
      // The members just learned are written at once, not after KNOWN_PERSIST_INTERVAL_MS: a node
      // that crashed within that second came back knowing nobody (found by the simulator, seed 236).
      if (this.known.dirty) this.persistKnownNow();
    }
    if (joinAttempt && this.seedsDynamic) this.refreshSeeds();
    this.persistIfChanged();
    this.schedule();
  }

  /**
   * Before the join: the members of known-members.json that carry an RPC address are held dead in
   * the core (MembershipCore.holdKnownDown), down since this node last saw them, until they answer.
   */
  private holdKnownDown(list: readonly KnownMember[]): void {
    if (mutant('seed-forgets-known') || mutant('known-not-held')) return;
    const wallNow = this.clock.now();
    const down = list.flatMap((m) => (m.rpc === undefined ? [] : [{
      id: m.id, gossip: m.gossip, rpc: m.rpc, incarnation: m.incarnation, left: m.leftAtMs !== undefined,
      deadForMs: Math.max(0, wallNow - (m.leftAtMs ?? m.downSinceMs ?? wallNow)),
    }]));
    if (down.length === 0) return;
    const output = this.core.holdKnownDown(this.now(), down);
    for (const event of output.events) {
      if (this.known.apply(event, wallNow)) this.scheduleKnownPersist();
      this.emitter.emit('event', event);
    }
    const left = output.events.filter((e) => e.type === 'left').length;
    this.logger.info('holding the known members down until they answer', { members: output.events.length - left, left });
  }

  private scheduleKnownRefresh(): void {
    if (this.stopped) return;
    this.knownRefreshTimer = this.clock.setTimeout(() => {
      this.knownRefreshTimer = null;
      if (this.stopped) return;
      this.persistKnown();
      this.scheduleKnownRefresh();
    }, KNOWN_REFRESH_INTERVAL_MS);
    this.knownRefreshTimer.unref();
  }

  private scheduleKnownPersist(): void {
    if (this.knownTimer !== null || this.stopped) return;
    this.knownTimer = this.clock.setTimeout(() => {
      this.knownTimer = null;
      this.persistKnown();
    }, KNOWN_PERSIST_INTERVAL_MS);
    this.knownTimer.unref();
  }

  private persistKnownNow(): void {
    if (this.stopped) return;
    this.clock.clearTimeout(this.knownTimer);
    this.knownTimer = null;
    this.persistKnown();
  }

  private persistKnown(): void {
    const snapshot = this.known.takeSnapshot(this.clock.now());
    this.persisting = this.persisting
      .then(() => writeJsonDurably(this.dataDir, KNOWN_MEMBERS_FILE, snapshot, this.fs))
      .catch((err: unknown) => this.logger.error('cannot persist the known members', { error: (err as Error).message }));
  }

  private persistIfChanged(): void {
    const incarnation = this.core.incarnation;
    if (incarnation <= this.persistedIncarnation) return;
    this.persistedIncarnation = incarnation;
    this.persisting = this.persisting
      .then(() => writeIncarnation(this.dataDir, incarnation, this.fs))
      .catch((err: unknown) => this.logger.error('cannot persist incarnation', { error: (err as Error).message }));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.clock.clearTimeout(this.timer);
    const delayMs = Math.min(TIMER_SLEEP_MS_MAX, Math.max(0, this.core.nextDeadlineMs() - this.now()));
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      // Deadlines are judged after the datagrams that have already arrived. Timers run before the
      // event loop reads its sockets, so after a stall (a long task, CPU starvation on a loaded host)
      // an ack waiting in the socket buffer would count as missed and its sender be suspected. An
      // immediate runs right after the loop's poll phase, which reads them first.
      if (this.tickImmediate !== null || this.stopped) return;
      this.tickImmediate = this.clock.setImmediate(() => {
        this.tickImmediate = null;
        if (!this.stopped) this.apply(this.core.tick(this.now()));
      });
    }, Math.ceil(delayMs));
  }
}
