/**
 * ClusterNode: the cluster layer of one node, wired from its parts. The agent creates it with
 * `ClusterNode.start({ config, store, membership, rpcPool, hints, logger })` and routes every RPC to
 * `rpcHandler(op, args, ctx)`: client operations (get, put, del, members, ring, stats, leave, remove)
 * and the node-to-node `internal.*` operations.
 */
import { BackgroundTasks } from '../background.js';
import { type Clock, type ClockTimer, sleep, systemClock } from '../clock.js';
import { ShoalError, toShoalError } from '../errors.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import { mutant } from '../mutations.js';
import { hashKey, Ring } from '../ring/ring.js';
import type { Entry, Store } from '../storage/types.js';
import type { Args } from './args.js';
import { isDead, str } from './args.js';
import { type DataArgLimits, parseDelArgs, parseGetArgs, parsePutArgs } from '../rpc/protocol.js';
import type { ClusterConfig, Consistency } from './config.js';
import { resolveClusterConfig } from './config.js';
import { AntiEntropy } from './anti-entropy.js';
import { KeyListing, parseToken, scanCluster, type ScanPage, type ScanPageRequest } from './cluster-scan.js';
import { batchBytesMax } from './batch.js';
import { Cleanup } from './cleanup.js';
import type { NodeContext } from './context.js';
import { Coordinator } from './coordinator.js';
import { Handoff } from './handoff.js';
import { Hlc } from './hlc.js';
import type {
  ClusterMetrics,
  HintStoreLike,
  HlcLike,
  MembershipSource,
  RingFactory,
  RpcPoolLike,
  Transport,
} from './ports.js';
import { ReadRepair } from './read-repair.js';
import { Replica } from './replica.js';
import { StreamSource } from './stream-source.js';
import { Streaming } from './streaming.js';
import { boundedMap } from './bounded.js';
import { poolTransport, withLocal, type PoolTransport } from './transport.js';
import { BATCH_OP, runBatch } from './peer-batch.js';
import { ClusterView } from './view.js';

function closedError(): ShoalError {
  return new ShoalError('CLOSED', 'node is shutting down');
}

/**
 * A write that failed after it was stamped may still have reached some replicas (and win later by
 * last-writer-wins): its error carries the version, so the client's next write can be stamped after it
 * (found by the simulator: a failed write from a node whose clock ran ahead beat the same client's
 * later, acknowledged one).
 */
function withAttemptedVersion(err: unknown, entry: Entry): ShoalError {
  const e = toShoalError(err);
  return new ShoalError(e.code, e.message, { ...e.details, version: { ts: entry.ts, node: entry.node } });
}

/** The answer to a get: the value, its version and its expiry (null when there is no live value). */
function getResult(entry: Entry | null): unknown {
  if (entry === null) return null;
  const result: Args = { value: entry.value, version: { ts: entry.ts, node: entry.node } };
  if (entry.expiresAtMs !== undefined) result.expiresAtMs = entry.expiresAtMs;
  return result;
}

function versionResult(entry: Entry): unknown {
  return { version: { ts: entry.ts, node: entry.node } };
}

const RING_FACTORY: RingFactory = { build: (members, opts) => Ring.build(members, opts), hashKey };

/** A clean-up that kept copies runs again after at most this many × cleanupDelayMs (armCleanup). */
const CLEANUP_RETRY_DELAY_MULT_MAX = 4;

/** Passes over the writes that arrived during a leave's hand-off before the node stops anyway. */
const LEAVE_LATE_PUSH_ATTEMPTS = 5;

/** idle() waits for streaming rounds due within this long (tests, benchmarks). */
const STREAM_SETTLE_WAIT_MS = 30_000;

/** Anti-entropy sweeps of a catch-up after joining from a ring of this node alone. */
const CATCH_UP_SWEEPS_MAX = 20;
/** Keys per page of the `scan` op: by default and at most (the page's values are read one by one). */
const SCAN_OP_LIMIT_DEFAULT = 100;
const SCAN_OP_LIMIT_MAX = 1000;
/** Values of one `scan` page read at once. */
const SCAN_OP_READS_IN_FLIGHT = 16;

/** Longest TTL a client may ask for (100 years): beyond it is a unit mistake, not an intention. */
const TTL_MS_MAX = 100 * 365 * 86_400_000;

/** A write ClusterNode.writeValueNow applied locally: its batch's promise, and what a fallback round needs. */
export interface LocalValueWrite {
  readonly durable: Promise<unknown>;
  readonly entry: Entry;
  readonly consistency: Consistency | undefined;
}

export interface ClusterNodeOptions {
  config?: Partial<ClusterConfig>;
  store: Store;
  membership: MembershipSource;
  /** Node-to-node calls go through this pool unless `transport` is given. */
  rpcPool?: RpcPoolLike;
  /** Replaces rpcPool (in-process tests). */
  transport?: Transport;
  hints: HintStoreLike;
  logger?: Logger;
  metrics?: ClusterMetrics;
  /** Default: the consistent-hash Ring of src/ring/ring.ts. */
  ringFactory?: RingFactory;
  /** Default: a Hlc for this node refusing remote timestamps more than clockAheadMsMax ahead. */
  hlc?: HlcLike;
  /**
   * Time, timers and randomness of this node (default systemClock): the wall clock for versions and
   * expiry, the monotonic clock for durations. The simulator gives each node its own.
   */
  clock?: Clock;
}

export interface RpcContextLike {
  remote: string;
  peer: string | null;
}

export class ClusterNode {
  readonly id: string;
  readonly config: ClusterConfig;
  readonly view: ClusterView;
  readonly coordinator: Coordinator;
  readonly replica: Replica;
  readonly readRepair: ReadRepair;
  readonly handoff: Handoff;
  readonly streaming: Streaming;
  readonly streamSource: StreamSource;
  readonly cleanup: Cleanup;
  readonly antiEntropy: AntiEntropy;
  /** This node's keys in token order, for the cluster-wide scan (cluster-scan.ts). */
  readonly keyListing: KeyListing;
  /** Every background task of this node (rounds, replays, clean-up, read repairs); awaited on close. */
  readonly tasks: BackgroundTasks;
  private readonly o: ClusterNodeOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly transport: Transport;
  /** The pool transport (null with an injected transport): its batch figures are in stats. */
  private readonly poolTransport: PoolTransport | null;
  /** An internal.batch (request and answer) stays under this many bytes (batchBytesMax of batch.ts). */
  private readonly batchResponseBytesMax: number;
  private readonly hlc: HlcLike;
  /** What client get/put/del arguments are checked against (the store's size limits, the TTL bound). */
  private readonly argLimits: DataArgLimits;
  private closed = false;
  /** Keys applied while a leave hands data off (pushed again before going). */
  private leaveDirty: Set<string> | null = null;
  /** Set once a leave's last hand-off pass is done: writes from peers are refused from then on. */
  private leftForGood = false;
  private leaving: Promise<void> | null = null;
  private cleanupTimer: ClockTimer | null = null;
  /** Clean-up runs in a row that kept copies since the last ring change (armCleanup). */
  private cleanupRetries = 0;
  private readonly onMembershipEvent: (e: { type: string }) => void;

  private constructor(options: ClusterNodeOptions) {
    this.o = options;
    this.argLimits = { ...options.store.limits(), ttlMsMax: TTL_MS_MAX };
    this.config = resolveClusterConfig(options.config);
    this.logger = (options.logger ?? nullLogger).child({ layer: 'cluster' });
    this.clock = options.clock ?? systemClock;
    const { config, logger, clock } = this;
    this.tasks = new BackgroundTasks({ logger, metrics: options.metrics, clock });
    this.view = new ClusterView({
      membership: options.membership,
      ringFactory: options.ringFactory ?? RING_FACTORY,
      replicationFactor: config.replicationFactor,
      vnodes: config.vnodes,
      deadOwnerGraceMs: config.deadOwnerGraceMs,
      clock,
      logger,
    });
    this.id = this.view.selfId;
    this.hlc = options.hlc ?? new Hlc(this.id, clock, { maxDriftMs: config.clockAheadMsMax });
    this.batchResponseBytesMax = batchBytesMax(config.frameBytesMax);
    this.poolTransport =
      !options.transport && options.rpcPool ? poolTransport(options.rpcPool, (id) => this.view.member(id)?.rpc, this.batchResponseBytesMax, clock) : null;
    const remote = options.transport ?? this.poolTransport;
    if (!remote) throw new ShoalError('CONFIG', 'ClusterNode needs an rpcPool or a transport');
    this.transport = withLocal(this.id, (op, args) => this.handleInternal(op, args), remote);
    this.keyListing = new KeyListing({ store: options.store, hashKey: (options.ringFactory ?? RING_FACTORY).hashKey, clock });
    this.replica = new Replica({
      store: options.store,
      hints: options.hints,
      hlc: this.hlc,
      isSyncing: (key) => this.streaming.isSyncing(key),
      onApplied: (key) => {
        this.leaveDirty?.add(key);
        this.keyListing.noteApplied(key);
        if (this.cleanupTimer === null && !this.view.ownsKey(key)) this.strayCopyArrived(key);
      },
      batchBytesMax: batchBytesMax(config.frameBytesMax),
    });
    this.readRepair = new ReadRepair({
      transport: this.transport,
      inFlightMax: config.readRepairInFlightMax,
      timeoutMs: config.internalTimeoutMs,
      logger,
      metrics: options.metrics,
      tasks: this.tasks,
      clock,
    });
    this.coordinator = new Coordinator({
      config,
      view: this.view,
      transport: this.transport,
      hints: options.hints,
      onReadSettled: config.readRepairEnabled ? (key, replies) => this.readRepair.check(key, replies) : undefined,
      logger,
      metrics: options.metrics,
      clock,
      local: { read: (key) => this.replica.readLocal(key), apply: (key, entry) => this.replica.applyLocal(key, entry) },
    });
    this.handoff = new Handoff({
      hints: options.hints,
      view: this.view,
      transport: this.transport,
      intervalMs: config.hintReplayIntervalMs,
      perSecMax: config.hintReplayPerSecMax,
      timeoutMs: config.internalTimeoutMs,
      logger,
      metrics: options.metrics,
      tasks: this.tasks,
      clock,
    });
    const ringFactory = options.ringFactory ?? RING_FACTORY;
    const storeStats = options.store.stats();
    const context: NodeContext = {
      config,
      view: this.view,
      store: options.store,
      transport: this.transport,
      ringFactory,
      apply: (key, entry) => this.replica.applyEntry(key, entry),
      logger,
      metrics: options.metrics,
      tasks: this.tasks,
      clock,
    };
    this.streaming = new Streaming({
      ...context,
      bootstrap: storeStats.keys + storeStats.tombstones === 0,
      onSynced: () => this.scheduleCleanup(),
      onJoinedFromAlone: () => this.tasks.run('catch-up', () => this.catchUp()),
    });
    this.streamSource = new StreamSource({
      selfId: this.id,
      store: options.store,
      ringFactory,
      sessionsMax: config.streamSessionsMax,
      sessionIdleMs: config.streamSessionIdleMs,
      batchBytesMax: batchBytesMax(config.frameBytesMax),
      logger,
      clock,
    });
    this.cleanup = new Cleanup({
      view: this.view,
      store: options.store,
      transport: this.transport,
      batchKeysMax: config.streamBatchKeysMax,
      batchBytesMax: batchBytesMax(config.frameBytesMax),
      bytesPerSecMax: config.streamBytesPerSecMax,
      timeoutMs: config.internalTimeoutMs * 5,
      logger,
      clock,
    });
    this.antiEntropy = new AntiEntropy(context);
    this.view.onRingChange(() => this.streaming.ringChanged());
    this.onMembershipEvent = (e) => {
      if (e.type === 'alive' || e.type === 'joined') this.handoff.runInBackground();
    };
    options.membership.on('event', this.onMembershipEvent);
  }

  static async start(options: ClusterNodeOptions): Promise<ClusterNode> {
    const node = new ClusterNode(options);
    node.handoff.start();
    node.antiEntropy.start();
    node.streaming.ringChanged(); // a new node bootstraps its ranges once the ring settles
    node.logger.info('cluster layer started', { node: node.id, owners: node.view.ring().members().length });
    return node;
  }

  /** The RPC entry point for client and internal operations. */
  rpcHandler = (op: string, args: Record<string, unknown>, _ctx?: RpcContextLike): Promise<unknown> => {
    try {
      return this.dispatch(op, args);
    } catch (err) {
      return Promise.reject(err);
    }
  };

  /** Routes one request (no async layer of its own: the operation's promise is returned as is). */
  private dispatch(op: string, args: Record<string, unknown>): Promise<unknown> {
    if (this.closed) throw new ShoalError('CLOSED', 'node is shutting down');
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw new ShoalError('BAD_REQUEST', `${op}: arguments must be a map`);
    }
    if (op.startsWith('internal.')) return this.handleInternal(op, args);
    switch (op) {
      case 'get':
        return this.get(args);
      case 'put':
        return this.put(args);
      case 'del':
        return this.del(args);
      case 'members':
        return Promise.resolve(this.members());
      case 'ring':
        return Promise.resolve(this.ringInfo());
      case 'stats':
        return Promise.resolve(this.stats());
      case 'leave':
        return this.leave();
      case 'remove':
        return this.remove(args);
      case 'scan':
        return this.scanOp(args);
      default:
        throw new ShoalError('BAD_REQUEST', `unknown operation "${op}"`);
    }
  }

  private async handleInternal(op: string, args: Args): Promise<unknown> {
    switch (op) {
      case 'internal.remove': {
        // The operator's removal, passed on by the node that took it. A member this node sees alive
        // came back meanwhile (at a higher incarnation): removing it here alone would split the rings
        // (found by the simulator: a remove racing the member's restart), so it is left in.
        const id = str(op, args, 'id');
        if (this.view.isAlive(id)) return { removed: false };
        this.view.remove(id);
        return { removed: true };
      }
      case 'internal.stream':
        return this.streamSource.handle(args);
      case 'internal.keys':
        return this.keyListing.handle(op, args);
      case BATCH_OP:
        return runBatch(args, (itemOp, itemArgs) => this.handleInternal(itemOp, itemArgs), this.batchResponseBytesMax);
      case 'internal.digest':
      case 'internal.versions':
        return this.antiEntropy.handle(op, args);
      case 'internal.apply':
      case 'internal.applyBatch':
      case 'internal.hint':
        // After the last hand-off pass nothing would hand a new write over: refused, so that the
        // sender keeps it (a hint, a retry) instead of counting a copy that leaves with this node.
        if (this.leftForGood) return Promise.reject(new ShoalError('UNAVAILABLE', `${this.id} has left the cluster`));
        return this.replica.handle(op, args);
      default:
        return this.replica.handle(op, args);
    }
  }

  // get, put and del chain one .then on the coordinator's promise (no async layers of their own).
  private get(args: Args): Promise<unknown> {
    const { key, consistency } = parseGetArgs(args, this.argLimits);
    return this.readLive(key, consistency).then(getResult);
  }

  // ---- The data operations every front end maps onto (the RPC ops above, src/resp/ commands).
  // Arguments are checked by the caller (key and value sizes, the TTL bound: see dataLimits).

  /** The size limits and TTL bound callers check arguments against. */
  get dataLimits(): Readonly<Required<DataArgLimits>> {
    return this.argLimits as Required<DataArgLimits>;
  }

  /** The key's newest live entry among R replies (null: missing, deleted or expired). */
  readLive(key: string, consistency?: Consistency): Promise<Entry | null> {
    if (this.closed) return Promise.reject(closedError());
    let read: Promise<Entry | null>;
    try {
      read = this.coordinator.read(key, consistency);
    } catch (err) {
      return Promise.reject(err);
    }
    return read.then((entry) => (entry === null || isDead(entry, this.clock.now()) ? null : entry));
  }

  /**
   * readLive's answer at once when this node alone gives it (a read needing one reply of a key this
   * node owns and is not syncing: Coordinator.readNow), else undefined (call readLive). Throws CLOSED.
   */
  readLiveNow(key: string, consistency?: Consistency): Entry | null | undefined {
    if (this.closed) throw closedError();
    const entry = this.coordinator.readNow(key, consistency);
    if (entry === undefined || entry === null) return entry;
    return isDead(entry, this.clock.now()) ? null : entry;
  }

  /** Writes `value` with an absolute expiry (or none) to W replicas; resolves with its version. */
  writeValue(key: string, value: Buffer, expiresAtMs: number | undefined, consistency?: Consistency, seenTs?: number): Promise<Entry> {
    if (this.closed) return Promise.reject(closedError());
    let written: Promise<void>;
    let entry: Entry;
    try {
      entry = this.stamp(seenTs);
      entry.value = value;
      if (expiresAtMs !== undefined) entry.expiresAtMs = expiresAtMs;
      written = this.coordinator.write(key, entry, consistency);
    } catch (err) {
      return Promise.reject(err);
    }
    return written.then(() => entry, (err: unknown) => Promise.reject(withAttemptedVersion(err, entry)));
  }

  /**
   * writeValue's local path without a promise of its own (see RespData.writeValueNow): when this node
   * alone takes the write (N = 1, it owns the key), stamps and applies it now and returns it with the
   * promise its WAL batch shares; else null, having done nothing. Throws CLOSED.
   */
  writeValueNow(key: string, value: Buffer, expiresAtMs: number | undefined, consistency?: Consistency): LocalValueWrite | null {
    if (this.closed) throw closedError();
    if (!this.coordinator.writesLocally(key)) return null;
    const entry = this.stamp(undefined);
    entry.value = value;
    if (expiresAtMs !== undefined) entry.expiresAtMs = expiresAtMs;
    return { durable: this.coordinator.writeLocal(key, entry, consistency), entry, consistency };
  }

  /** writeValue's promise for a writeValueNow whose `durable` rejected with `err` (the round, or the timeout). */
  writeValueAfter(key: string, write: LocalValueWrite, err: unknown): Promise<Entry> {
    const entry = write.entry;
    // The value may be a view of a receive buffer: the round may keep it (a hint), so it gets a copy.
    if (entry.value !== null) entry.value = Buffer.from(entry.value);
    return this.coordinator.afterLocalWrite(key, entry, write.consistency, err).then(
      () => entry,
      (e: unknown) => Promise.reject(withAttemptedVersion(e, entry)),
    );
  }

  /** Writes a tombstone to W replicas; resolves with its version. */
  deleteKey(key: string, consistency?: Consistency, seenTs?: number): Promise<Entry> {
    if (this.closed) return Promise.reject(closedError());
    let written: Promise<void>;
    let entry: Entry;
    try {
      entry = this.stamp(seenTs);
      written = this.coordinator.write(key, entry, consistency);
    } catch (err) {
      return Promise.reject(err);
    }
    return written.then(() => entry, (err: unknown) => Promise.reject(withAttemptedVersion(err, entry)));
  }

  /** One page of the cluster-wide key scan (cluster-scan.ts); cursor 0n starts, 0n in the result ends. */
  scanPage(cursor: bigint, request: ScanPageRequest): Promise<ScanPage> {
    this.checkOpen();
    return scanCluster(
      {
        view: this.view,
        transport: this.transport,
        ringFactory: this.o.ringFactory ?? RING_FACTORY,
        writeQuorum: this.config.writeQuorum,
        timeoutMs: this.config.internalTimeoutMs,
        clock: this.clock,
      },
      cursor,
      request,
    );
  }

  /** Wall-clock milliseconds of this node (TTL arithmetic). */
  nowMs(): number {
    return this.clock.now();
  }

  /** The leave has started: the node still serves requests that arrived, but front ends refuse new ones. */
  get isLeaving(): boolean {
    return this.leaving !== null;
  }

  private checkOpen(): void {
    if (this.closed) throw new ShoalError('CLOSED', 'node is shutting down');
  }

  private stamp(seenTs: number | undefined): Entry {
    if (seenTs !== undefined) this.hlc.observe(seenTs); // refuses one too far ahead (BAD_REQUEST)
    const version = this.hlc.now();
    return { value: null, ts: version.ts, node: version.node };
  }

  private put(args: Args): Promise<unknown> {
    const { key, value, ttlMs, consistency, seenTs } = parsePutArgs(args, this.argLimits);
    return this.writeValue(key, value, ttlMs === undefined ? undefined : this.clock.now() + ttlMs, consistency, seenTs).then(versionResult);
  }

  private del(args: Args): Promise<unknown> {
    const { key, consistency, seenTs } = parseDelArgs(args, this.argLimits);
    return this.deleteKey(key, consistency, seenTs).then(versionResult);
  }

  /**
   * The `scan` op (docs/PROTOCOL.md): one page of scanPage (the cluster-wide scan RESP SCAN uses too),
   * with the cursor as a decimal string (nil when done), a key prefix, and each key's live value and
   * version read at the configured R unless only keys are asked for.
   */
  private async scanOp(args: Args): Promise<unknown> {
    const text = (name: string): string | undefined => {
      const value = args[name];
      if (value === undefined || value === null) return undefined;
      if (typeof value !== 'string') throw new ShoalError('BAD_REQUEST', `scan: "${name}" must be a string`);
      return value;
    };
    const limit = args.limit ?? SCAN_OP_LIMIT_DEFAULT;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > SCAN_OP_LIMIT_MAX) {
      throw new ShoalError('BAD_REQUEST', `scan: "limit" must be an integer from 1 to ${SCAN_OP_LIMIT_MAX}`);
    }
    const cursorText = text('cursor');
    const cursor = cursorText === undefined || cursorText === '' ? 0n : parseToken(cursorText);
    const prefix = text('prefix') ?? '';
    if (Buffer.byteLength(prefix) > this.dataLimits.keyBytesMax) throw new ShoalError('BAD_REQUEST', 'scan: "prefix" is longer than a key may be');
    const request: ScanPageRequest = { count: limit };
    if (prefix !== '') request.match = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`) + '*';
    const page = await this.scanPage(cursor, request);
    const entries: Args[] = [];
    if (args.keysOnly === true) {
      for (const key of page.keys) entries.push({ key });
    } else {
      // Values are read like get reads them, a few keys at a time; a key deleted meanwhile drops out.
      const read = await boundedMap(page.keys, SCAN_OP_READS_IN_FLIGHT, (key) => this.readLive(key));
      page.keys.forEach((key, i) => {
        const entry = read[i];
        if (entry === null) return;
        const item: Args = { key, value: entry.value, version: { ts: entry.ts, node: entry.node } };
        if (entry.expiresAtMs !== undefined) item.expiresAtMs = entry.expiresAtMs;
        entries.push(item);
      });
    }
    const unreachable = this.view.ring().members().filter((id) => !this.view.isUp(id)).sort();
    return { entries, cursor: page.cursor === 0n ? null : page.cursor.toString(), unreachable };
  }

  private members(): unknown {
    // The ring as last settled, not settled now: `members` is what monitors poll (a harness asks every
    // agent several times a second), and settling per call would rebuild the ring at the poll rate
    // during a rolling start. owner/owns lag membership by at most the view's ringWaitMsMax (1 s).
    const ownership = this.view.settledRing().ownership();
    return this.view.allMembers().map((m) => ({
      id: m.id,
      rpc: m.rpc,
      state: m.state,
      ...(m.zone === undefined ? {} : { zone: m.zone }),
      owner: ownership.has(m.id),
      owns: ownership.get(m.id) ?? 0,
      pendingHints: this.o.hints.pendingFor(m.id),
    }));
  }

  private ringInfo(): unknown {
    const ring = this.view.ring();
    const ownership = ring.ownership();
    return {
      checksum: ring.checksum(),
      replicationFactor: this.view.replicas(),
      vnodes: this.config.vnodes,
      members: ring.members().map((id) => ({
        id,
        state: this.view.member(id)?.state ?? 'unknown',
        owns: ownership.get(id) ?? 0,
      })),
    };
  }

  stats(): Record<string, unknown> {
    const ring = this.view.ring();
    let pendingHints = 0;
    for (const target of this.o.hints.targets()) pendingHints += this.o.hints.pendingFor(target);
    return {
      node: this.id,
      ring: { checksum: ring.checksum(), owners: ring.members().length, owns: ring.ownership().get(this.id) ?? 0 },
      replication: { n: this.view.replicas(), w: this.config.writeQuorum, r: this.config.readQuorum },
      pendingHints,
      hints: this.o.hints.stats(),
      handoff: this.handoff.stats(),
      readRepair: this.readRepair.stats(),
      streaming: { ...this.streaming.stats(), source: this.streamSource.stats() },
      cleanup: this.cleanup.stats(),
      antiEntropy: this.antiEntropy.stats(),
      background: this.tasks.stats(),
      ...(this.poolTransport ? { batching: this.poolTransport.batchStats() } : {}),
      leaving: this.leaving !== null,
    };
  }

  /**
   * Announced leave: hand hints and data to the members that will own them, announce the leave, then
   * push again whatever was written meanwhile. Idempotent: a second call waits for the first.
   */
  private async leave(): Promise<unknown> {
    this.leaving ??= this.handOffAndLeave().catch((err: unknown) => {
      this.leaving = null; // not left: a later leave starts over
      this.leaveDirty = null;
      // Copies of keys this node does not own that arrived meanwhile armed no clean-up (a leaving node
      // drops nothing): one runs now that it stays.
      this.scheduleCleanup();
      throw err;
    });
    await this.leaving;
    return {};
  }

  private async handOffAndLeave(): Promise<void> {
    this.leaveDirty = new Set();
    const before = { ring: this.view.ring(), n: this.view.replicas() };
    const after = this.view.ringWithoutSelf();
    const afterN = Math.min(this.config.replicationFactor, after.members().length);
    this.logger.info('leaving: handing data off', { newOwners: after.members().length });
    const pushed = await this.streaming.pushOut();
    await this.handoff.runOnce({ ownersOf: (key) => after.preferenceList(key, afterN) });
    const hintsLeft = this.o.hints.targets().reduce((sum, target) => sum + this.o.hints.pendingFor(target), 0);
    // A leave that could not hand everything over does not happen: the keys (and hints) this node
    // holds may be the only copies of acknowledged writes (the simulator lost such writes when a leave
    // went ahead after failed pushes). Like Cassandra's decommission, it fails and the node serves on.
    if (pushed.failed > 0 || hintsLeft > 0) {
      throw new ShoalError(
        'UNAVAILABLE',
        `leave refused: ${pushed.failed} keys and ${hintsLeft} hints could not be handed to their new owners (one is down or unreachable); ` +
          'this node still serves and holds them: leave again once every member is up, or remove the dead members first',
      );
    }
    if (this.o.membership.leave) await this.o.membership.leave();
    // Writes that arrived during the hand-off (and those arriving while these passes run): pushed
    // after the announcement against the ring the leave began with, retried while owners are briefly
    // unreachable (the announcement cannot be taken back). Then writes from peers are refused.
    const late = new Set<string>();
    let lateFailed = 0;
    for (let attempt = 1; attempt <= LEAVE_LATE_PUSH_ATTEMPTS; attempt++) {
      for (const key of this.leaveDirty) late.add(key);
      this.leaveDirty = new Set();
      if (late.size === 0) break;
      lateFailed = (await this.streaming.pushOut(late, before)).failed;
      if (lateFailed === 0 && this.leaveDirty.size === 0) break;
      if (lateFailed > 0) await sleep(this.clock, this.config.internalTimeoutMs * attempt);
    }
    this.leftForGood = true;
    // Writes taken during the last pass: none can follow now, so one more pass covers them.
    const last = this.leaveDirty;
    this.leaveDirty = null;
    if (last.size > 0) {
      for (const key of last) late.add(key);
      lateFailed += (await this.streaming.pushOut(last, before)).failed;
    }
    if (lateFailed > 0) this.logger.error('left the cluster with late writes not handed off', { lateKeys: late.size, failed: lateFailed });
    this.logger.info('left the cluster', { lateKeys: late.size });
  }

  /**
   * Anti-entropy sweeps with every up peer until one finds nothing to move and no peer was skipped
   * (rings still converging right after a join), bounded in sweeps.
   */
  private async catchUp(): Promise<void> {
    for (let sweep = 1; sweep <= CATCH_UP_SWEEPS_MAX && !this.closed; sweep++) {
      const results = await this.antiEntropy.runWithAll();
      const moved = results.reduce((sum, r) => sum + r.pulled + r.pushed, 0);
      const skipped = results.filter((r) => r.skipped !== undefined && r.skipped !== 'no shared ranges').length;
      this.logger.info('catch-up sweep', { sweep, peers: results.length, moved, skipped });
      if (moved === 0 && skipped === 0 && results.length > 0) return;
      if (results.length === 0 || skipped > 0) await sleep(this.clock, Math.max(this.config.ringSettleMs, 100));
    }
  }

  /**
   * A copy of a key this node does not own was applied here: a hint or a write routed by a ring that
   * was not the one this node has (a node that rejoined and served before it knew every member, found
   * by the simulator). Clean-up runs only after ring changes, and this node's ring may never change
   * again, so the copy would stay for good: arm a clean-up, which hands it to its owners and drops it.
   */
  private strayCopyArrived(key: string): void {
    if (this.leaving || this.closed) return;
    this.logger.info('a copy of a key this node does not own arrived; clean-up armed', { key, inMs: this.config.cleanupDelayMs });
    this.armCleanup(this.config.cleanupDelayMs);
  }

  /** After a ring change: a clean-up once the ring has been stable for cleanupDelayMs. */
  private scheduleCleanup(): void {
    this.cleanupRetries = 0;
    this.armCleanup(this.config.cleanupDelayMs);
  }

  /**
   * A clean-up run keeps every copy whose owners did not all acknowledge it (an owner down, or its
   * disk full). Without another ring change nothing would run again and those copies would stay on a
   * non-owner for good, so a run that kept copies is followed by another, the delay doubling up to
   * CLEANUP_RETRY_DELAY_MULT_MAX × cleanupDelayMs, until one keeps nothing or the ring changes.
   */
  private armCleanup(delayMs: number): void {
    if (this.config.cleanupDelayMs <= 0 || this.closed) return;
    this.clock.clearTimeout(this.cleanupTimer);
    const checksum = this.view.ring().checksum();
    this.cleanupTimer = this.clock.setTimeout(() => {
      this.cleanupTimer = null;
      if (this.view.ring().checksum() !== checksum || this.leaving) return;
      const work = async (): Promise<void> => {
        const { kept } = await this.cleanup.runOnce();
        if (kept === 0 || this.closed || this.view.ring().checksum() !== checksum) return;
        this.cleanupRetries += 1;
        const mult = Math.min(CLEANUP_RETRY_DELAY_MULT_MAX, 2 ** this.cleanupRetries);
        this.logger.info('clean-up kept copies whose owners did not all answer; trying again', { kept, inMs: this.config.cleanupDelayMs * mult });
        this.armCleanup(this.config.cleanupDelayMs * mult);
      };
      // Mutation 'cleanup-floating-promise' (src/mutations.ts): the run bypasses BackgroundTasks, so
      // its failure (a disk error in dropCopy, say) escapes as an unhandled rejection.
      // eslint-disable-next-line @typescript-eslint/no-floating-promises -- the mutation is this bug
      if (mutant('cleanup-floating-promise')) work();
      else this.tasks.run('clean-up', work);
    }, delayMs);
    this.cleanupTimer.unref();
  }


  private async remove(args: Args): Promise<unknown> {
    const id = str('remove', args, 'id');
    const member = this.view.member(id);
    if (!member) throw new ShoalError('BAD_REQUEST', `remove: no member "${id}"`);
    if (id === this.id) throw new ShoalError('BAD_REQUEST', 'remove: a node cannot remove itself (use leave)');
    if (member.state === 'alive') {
      throw new ShoalError('BAD_REQUEST', `remove: member "${id}" is alive; stop it first or ask it to leave`);
    }
    // A suspect member may still refute, and membership can only mark a dead member left: removing it
    // now would stay a local decision that a restart or a leave of this node loses (found by the
    // simulator: a removal during a long suspicion never reached the others).
    if (member.state === 'suspect') {
      throw new ShoalError('UNAVAILABLE', `remove: member "${id}" is suspect, not yet dead; try again once membership declares it dead (within a few probe intervals)`);
    }
    this.view.remove(id);
    const others = this.view.allMembers().filter((m) => m.id !== this.id && this.view.isUp(m.id));
    await Promise.allSettled(
      others.map((m) => this.transport.call(m.id, 'internal.remove', { id }, { timeoutMs: this.config.internalTimeoutMs })),
    );
    return {};
  }

  /** Resolves when background work of earlier requests (late replicas, hints, repairs) has settled. */
  async idle(): Promise<void> {
    this.view.ring(); // a ring change still settling reaches streaming now, so settled() waits for its round
    await this.streaming.settled(STREAM_SETTLE_WAIT_MS);
    await this.coordinator.idle();
    await this.readRepair.idle(this.config.requestTimeoutMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handoff.stop();
    this.antiEntropy.stop();
    this.streaming.close();
    this.clock.clearTimeout(this.cleanupTimer);
    this.o.membership.off?.('event', this.onMembershipEvent);
    this.view.close();
    // Rounds see `closed` flags or fail fast once the transport closes; bounded either way.
    await this.tasks.close(this.config.internalTimeoutMs * 5);
    await this.readRepair.idle(this.config.internalTimeoutMs);
  }
}
