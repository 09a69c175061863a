/**
 * A running node: the layers wired together in start order (store, RPC server, membership, hint
 * store, node-to-node pool, cluster layer, metrics endpoint) and stopped in reverse, each step
 * bounded. Requests go to the cluster layer's ClusterNode.rpcHandler; node-level operations (health,
 * stats, members) are answered by node-ops.ts, the gossip keyring's by keyring-ops.ts. The keyring
 * file is read (or seeded from security.gossipKey) before anything listens.
 */
import { join, resolve as resolvePath } from 'node:path';
import { ClusterNode, type LocalValueWrite } from '../cluster/cluster-node.js';
import type { RpcPoolLike } from '../cluster/ports.js';
import { type Clock, type ClockTimer, systemClock } from '../clock.js';
import { type FsIo, nodeFsIo } from '../storage/fsio.js';
import { HintStore } from '../cluster/hints.js';
import { Hlc } from '../cluster/hlc.js';
import { ShoalError, toShoalError } from '../errors.js';
import { nullLogger, type Logger } from '../log.js';
import { Membership, type MembershipOptions } from '../membership/membership.js';
import type { MemberState } from '../membership/types.js';
import { Ring, hashKey } from '../ring/ring.js';
import { RpcPool } from '../rpc/client.js';
import { RpcServer, type RpcContext, type RpcHandler } from '../rpc/server.js';
import type { RespData, RespNodeInfo } from '../resp/backend.js';
import { RespServer } from '../resp/server.js';
import { keyringFilePath, openKeyring } from '../security/keyring-file.js';
import type { Keyring } from '../security/keyring.js';
import { openStore } from '../storage/store.js';
import type { LockOptions } from '../storage/lock.js';
import type { Store } from '../storage/types.js';
import type { ShoalConfig } from './config-schema.js';
import { clusterLayerConfig, membershipLayerConfig } from './config.js';
import { exposureWarnings } from './exposure.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import { KeyringOps } from './keyring-ops.js';
import { NodeMetrics, instrumentHandler } from './metrics.js';
import { nodeOps } from './node-ops.js';
import { MemberEvents } from './member-events.js';
import { statusSnapshotter } from './status-snapshot.js';
import { SHOAL_VERSION } from '../version.js';
import { mutant } from '../mutations.js';
import { nodeTls } from './tls-config.js';

export interface StartNodeOptions {
  logger?: Logger;
  /** Export Node.js process metrics. Default true; tests running many nodes turn it off. */
  processMetrics?: boolean;
  /**
   * The whole-cluster simulator's world (src/sim/): time, disk and network for this node. With it the
   * node opens no real socket or file: node-to-node calls and client requests arrive through
   * `world.serveRpc`, gossip through `world.membership`; the Redis port, the metrics endpoint and the
   * keyring are not started.
   */
  world?: NodeWorld;
}

/** Everything a simulated node gets from its world instead of the operating system. */
export interface NodeWorld {
  clock: Clock;
  fs: FsIo;
  /** Node-to-node calls (replaces the TCP RpcPool). */
  rpcPool: RpcPoolLike & { close(): Promise<void> };
  /** Starts serving `handler` at the node's rpc address; returns a function that stops it. */
  serveRpc(addr: string, handler: RpcHandler): () => void;
  /** Extra Membership.start options: its network and files. */
  membership: Partial<MembershipOptions>;
  /** The data-dir lock's owner (this process incarnation) and how to tell whether an owner runs. */
  lock: Pick<LockOptions, 'pid' | 'isAlive'>;
}

export type NodeState = 'starting' | 'serving' | 'leaving' | 'stopping' | 'stopped';

/** What health says while a node with seeds or known members has reached none of them. */
export const JOINING_REASON = 'joining: no seed or known member answered';

/** Client data operations: refused while joining (UNAVAILABLE) and from the moment a leave starts (CLOSED). */
const CLIENT_DATA_OPS = new Set(['get', 'put', 'del']);

export interface NodeAddresses {
  rpc: string;
  gossip: string;
  /** null when metrics are disabled. */
  metrics: string | null;
  /** The Redis protocol port; null when node.resp is "" (off). */
  resp: string | null;
}

export interface Node {
  readonly id: string;
  readonly config: ShoalConfig;
  /** The bound addresses (port 0 in the config becomes the port the OS chose). */
  readonly addresses: NodeAddresses;
  readonly metrics: NodeMetrics;
  state(): NodeState;
  stats(): Record<string, unknown>;
  /** Graceful stop: stop accepting, drain in-flight requests, close the store. Idempotent. */
  stop(): Promise<void>;
  /** Resolves once the node has stopped, whoever stopped it (a `leave` request stops it too). */
  stopped(): Promise<void>;
  /** The layers, for the simulator's checker: only for a node started in a world (options.world). */
  internals(): NodeInternals | null;
}

export interface NodeInternals {
  store: Store;
  cluster: ClusterNode;
  membership: Membership;
  hints: HintStore;
}

export function splitAddress(addr: string): { host: string; port: number } {
  const at = addr.lastIndexOf(':');
  const host = addr.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(addr.slice(at + 1)) };
}

export function joinAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Rejects after `ms` with TIMEOUT; the step it bounds keeps running but is no longer awaited. */
async function bounded<T>(clock: Clock, what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: ClockTimer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(new ShoalError('TIMEOUT', `${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clock.clearTimeout(timer);
  }
}

function listenError(kind: string, addr: string, err: unknown): ShoalError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new ShoalError('UNAVAILABLE', `${kind} address ${addr} is already in use by another process`);
  if (code === 'EADDRNOTAVAIL') return new ShoalError('UNAVAILABLE', `${kind} address ${addr} is not an address of this machine`);
  if (code === 'EACCES') return new ShoalError('UNAVAILABLE', `${kind} address ${addr}: permission denied (ports below 1024 need privileges)`);
  return toShoalError(err);
}

/**
 * A file-system error on the data dir in plain words (a raw `EROFS: read-only file system, open
 * '/x/LOCK'` tells a newcomer little). Only raw errors about a path inside the data dir are turned;
 * anything else is returned as it is.
 */
export function dataDirError(dataDir: string, err: unknown): unknown {
  if (err instanceof ShoalError || !(err instanceof Error)) return err;
  const e = err as NodeJS.ErrnoException;
  const path = typeof e.path === 'string' ? resolvePath(e.path) : null;
  if (path === null || !(path === dataDir || path.startsWith(dataDir + '/') || dataDir.startsWith(path + '/'))) return err;
  const fix = 'set node.dataDir (--data-dir) to a writable directory';
  switch (e.code) {
    case 'EROFS':
      return new ShoalError('CONFIG', `data dir ${dataDir} is on a read-only file system (EROFS, at ${path}); ${fix}`, { field: 'node.dataDir' });
    case 'EACCES':
    case 'EPERM':
      return new ShoalError('CONFIG', `no permission to write in the data dir ${dataDir} (${e.code}, at ${path}); fix its owner or mode, or ${fix}`, { field: 'node.dataDir' });
    case 'ENOENT':
      return new ShoalError('CONFIG', `the data dir ${dataDir} cannot be created or was removed (ENOENT, at ${path}): is its file system read-only, or a parent missing? ${fix}`, { field: 'node.dataDir' });
    case 'EEXIST':
      return new ShoalError('CONFIG', `the data dir ${dataDir} is a file, not a directory (EEXIST); ${fix}`, { field: 'node.dataDir' });
    case 'ENOTDIR':
      return new ShoalError('CONFIG', `a part of the data dir's path ${dataDir} is a file, not a directory (ENOTDIR); ${fix}`, { field: 'node.dataDir' });
    case 'ENOSPC':
      return new ShoalError('UNAVAILABLE', `the disk of the data dir ${dataDir} is full (ENOSPC, at ${path}); free some space`, { field: 'node.dataDir' });
    default:
      return err;
  }
}

export async function startNode(config: ShoalConfig, options: StartNodeOptions = {}): Promise<Node> {
  const log = options.logger ?? nullLogger;
  const nodeLog = log.child({ layer: 'node' });
  const world = options.world;
  const clock = world?.clock ?? systemClock;
  const fsIo = world?.fs ?? nodeFsIo;
  const startedAtMs = clock.now();
  const id = config.node.id;
  let state: NodeState = 'starting';
  const metrics = new NodeMetrics({ nodeId: id, processMetrics: options.processMetrics });
  /** Undo steps of a failed start, run in reverse. */
  const cleanups: Array<() => Promise<unknown>> = [];

  const dataDir = resolvePath(config.node.dataDir);
  let store: Store | null = null;
  let rpcServer: RpcServer | null = null;
  let membership: Membership | null = null;
  let hints: HintStore | null = null;
  let rpcPool: RpcPoolLike & { close(): Promise<void> } | null = null;
  let stopSimRpc: (() => void) | null = null;
  let cluster: ClusterNode | null = null;
  let metricsServer: MetricsServer | null = null;
  let respServer: RespServer | null = null;
  let keyring: Keyring | null = null;
  const keyringFile = keyringFilePath(dataDir, config.security.keyringFile);
  const addresses: NodeAddresses = { rpc: config.node.rpc, gossip: config.node.gossip, metrics: null, resp: null };

  /**
   * Healthy = serving and able to store writes and hints. A store that turned read-only (disk full,
   * I/O error) makes the node unhealthy until it is restarted; it still answers reads, and the other
   * replicas take the writes (docs/SECURITY.md, "Disk faults"). So does a failed hint store.
   */
  /** True while this node must not serve: it has seeds or known members and none answered yet. */
  const joining = (): boolean => membership !== null && membership.joining && !config.membership.bootstrap;
  const unhealthyReason = (): string | null => {
    if (state !== 'serving') return `node is ${state}`;
    if (joining()) return JOINING_REASON;
    const s = store?.stats();
    if (s?.readOnly === true) return `store is read-only: ${s.readOnlyReason ?? 'unknown reason'}`;
    const hintsFailed = hints?.stats().failed ?? null;
    return hintsFailed === null ? null : `hint store failed (no hints kept until restart): ${hintsFailed}`;
  };
  const health = (): { ok: boolean } & Record<string, unknown> => {
    const reason = unhealthyReason();
    const body: { ok: boolean } & Record<string, unknown> = { ok: reason === null, node: id, cluster: config.cluster.name, state, uptimeMs: clock.now() - startedAtMs, pid: process.pid, version: SHOAL_VERSION };
    if (reason !== null) body.reason = reason;
    return body;
  };
  let memberEvents: MemberEvents | null = null;
  const stats = (): Record<string, unknown> => ({
    node: id,
    cluster: config.cluster.name,
    /** `cluster` holds the cluster layer's figures once it runs (node-ops.ts); the name stays here. */
    clusterName: config.cluster.name,
    version: SHOAL_VERSION,
    state,
    uptimeMs: clock.now() - startedAtMs,
    requests: { perSec: metrics.recent.perSec(), p99MsLastMinute: metrics.recent.p99Ms() },
    addresses: { ...addresses },
    dataDir,
    store: store?.stats() ?? null,
    rpc: rpcServer?.stats() ?? null,
    resp: respServer?.stats() ?? null,
    membership: membership?.stats() ?? null,
    hints: hints?.stats() ?? null,
    keyring: keyring === null ? null : { file: keyringFile, ...keyring.stats(), keys: keyring.list() },
    events: memberEvents?.list() ?? [],
  });

  // Until every layer is up, the RPC server answers health (not ok) and CLOSED to the rest: the
  // request was not processed, so a client may send it to another node (ShoalClient does).
  let serve: RpcHandler = async (op) => {
    if (op === 'health') return health();
    throw new ShoalError('CLOSED', `node ${id} is ${state}, not serving yet; try another node`);
  };
  let stopNode: () => Promise<void> = () => Promise.resolve();
  let leaving: Promise<unknown> | null = null;
  /**
   * `leave` ends the node as `consul leave` ends the agent: from the moment it starts, client data
   * operations get CLOSED; the cluster layer hands data off and announces the leave (our own view marks
   * us left); the reply goes out, then the node stops (the agent then exits 0).
   */
  /** Refuses a client data operation (either front end) unless this node serves. */
  const checkClientData = (): void => {
    if (state !== 'serving') throw new ShoalError('CLOSED', `node ${id} is ${state}; send the request to another node`);
    if (joining()) throw new ShoalError('UNAVAILABLE', `node ${id} is not serving: ${JOINING_REASON} (it keeps trying; see docs/CLUSTER.md, "One cluster")`);
  };
  const gate = (handler: RpcHandler): RpcHandler => async (op, args, ctx) => {
    if (CLIENT_DATA_OPS.has(op)) checkClientData();
    if (op !== 'leave') return handler(op, args, ctx);
    // A node still joining knows none of its cluster: it could hand nothing over and would leave with
    // its data (found by the simulator, seed 68: a node asked to leave right after a restart).
    if (leaving === null && joining()) {
      throw new ShoalError('UNAVAILABLE', `node ${id} cannot leave while ${JOINING_REASON}: it could hand nothing over; try again once it has joined`);
    }
    if (state === 'serving') state = 'leaving';
    leaving ??= handler(op, args, ctx).then(
      (result) => {
        if (mutant('leave-keeps-coordinating')) {
          state = 'serving'; // the known bug: the node left the ring but keeps taking client requests
          return result;
        }
        clock.setImmediate(() => {
          stopNode().catch((err: unknown) => nodeLog.error('stop after leave failed', { err }));
        });
        return result;
      },
      (err: unknown) => {
        // The leave did not happen (it may be asked again): serve as before.
        nodeLog.warn('leave failed; still serving', { err });
        if (state === 'leaving') state = 'serving';
        leaving = null;
        throw err;
      },
    );
    return leaving;
  };

  // The metrics port stays plain HTTP: bind it to loopback or a private network (docs/SECURITY.md).
  for (const warning of exposureWarnings(config)) nodeLog.warn(warning.message, { port: warning.port, address: warning.address });
  // Read before anything is opened: a bad PEM file fails the start with a CONFIG error naming it.
  const tls = nodeTls(config.security);

  try {
    await fsIo.mkdir(dataDir);
    const opened = world !== undefined ? null : await openKeyring({
      file: keyringFile, seedKey: config.security.gossipKey, allowLoosePermissions: config.security.allowLooseKeyringFile,
    });
    // Without a keyring gossip is plaintext; exposureWarnings (above) warns when that is beyond loopback.
    if (opened !== null) {
      keyring = opened.keyring;
      if (opened.created) nodeLog.info('keyring file created from security.gossipKey', { file: keyringFile, primary: keyring.primaryId() });
      if (opened.seedKeyNotInstalled) {
        nodeLog.warn('security.gossipKey is not in the keyring file; the file wins (keys rotated with shoal keyring)', { file: keyringFile });
      }
    }
    // The storage section's fields are the store's options, by name.
    store = await openStore(dataDir, {
      ...config.storage,
      logger: log.child({ layer: 'storage' }),
      onFsync: (ms) => metrics.observeFsync(ms),
      clock,
      fs: fsIo,
      ...(world !== undefined ? { lock: world.lock } : {}),
    });
    const openedStore = store;
    cleanups.push(() => openedStore.close());
    metrics.setStoreStats(() => openedStore.stats());
    metrics.setHealthSource(() => unhealthyReason() === null);

    const rpcAddr = splitAddress(config.node.rpc);
    const r = config.rpc;
    // The rpc section holds the server's limits (by name) and the node-to-node client's settings.
    const { connectTimeoutMs: _c, requestTimeoutMs: _r, connectionsPerAddr: _p, drainMs: _d, ...serverLimits } = r;
    const nodeHandler = instrumentHandler<RpcContext>((op, args, ctx) => serve(op, args, ctx), metrics);
    let boundPort = rpcAddr.port;
    if (world !== undefined) {
      const stopServing = world.serveRpc(config.node.rpc, nodeHandler);
      cleanups.push(() => Promise.resolve(stopServing()));
      stopSimRpc = stopServing;
    } else {
      rpcServer = new RpcServer({
        host: rpcAddr.host,
        port: rpcAddr.port,
        nodeId: id,
        clusterName: config.cluster.name,
        handler: nodeHandler,
        limits: serverLimits,
        logger: log.child({ layer: 'rpc' }),
        tls: tls?.server,
      });
      const server = rpcServer;
      const bound = await server.listen().catch((err: unknown) => {
        throw listenError('rpc', config.node.rpc, err);
      });
      cleanups.push(() => server.close({ drainMs: 0 }));
      addresses.rpc = joinAddress(bound.host, bound.port);
      metrics.setRpcStats(() => server.stats());
      boundPort = bound.port;
    }

    const gossipAddr = splitAddress(config.node.gossip);
    const advertise = config.node.advertiseHost === '' ? undefined : config.node.advertiseHost;
    membership = await Membership.start({
      id,
      bindHost: gossipAddr.host,
      gossipPort: gossipAddr.port,
      advertiseHost: advertise,
      // Where the others send requests: the bound port, on the advertised host when there is one.
      rpc: advertise === undefined ? addresses.rpc : joinAddress(advertise, boundPort),
      zone: config.node.zone === '' ? undefined : config.node.zone,
      tags: Object.keys(config.node.tags).length > 0 ? config.node.tags : undefined,
      seeds: config.membership.seeds,
      dnsServers: config.membership.dnsServers,
      dataDir: join(dataDir, 'membership'),
      config: membershipLayerConfig(config),
      logger: log,
      keyring: keyring ?? undefined,
      clusterName: config.cluster.name,
      ...world?.membership,
    }).catch((err: unknown) => {
      throw listenError('gossip', config.node.gossip, err);
    });
    const startedMembership = membership;
    cleanups.push(() => startedMembership.stop());
    addresses.gossip = startedMembership.self().gossip;
    const countMembers = () => {
      const counts: Partial<Record<MemberState, number>> = {};
      for (const m of startedMembership.members()) counts[m.state] = (counts[m.state] ?? 0) + 1;
      metrics.setMembers(counts);
    };
    startedMembership.on('event', countMembers);
    countMembers();
    const events = new MemberEvents(log.child({ layer: 'membership' }));
    memberEvents = events;
    startedMembership.on('event', (event: Parameters<MemberEvents['record']>[0]) => events.record(event));
    metrics.setGossipStats(() => startedMembership.stats());
    const ring = keyring;
    metrics.setGossipSecurity(() => {
      const m = startedMembership.stats();
      return { encrypted: m.encrypted, keys: ring?.list().length ?? 0, decryptFailures: m.decryptFailures };
    });

    const c = config.cluster;
    const openedHints = await HintStore.open(join(dataDir, 'hints'), {
      hintsMax: c.hintsMax,
      hintBytesMax: c.hintBytesMax,
      hintTtlMs: c.hintTtlMs,
      replayPerSecMax: c.hintReplayPerSecMax,
      replayConcurrency: c.hintReplayConcurrency,
      fsync: config.storage.fsync !== 'none',
      logger: log.child({ layer: 'hints' }),
      clock,
      fs: fsIo,
    });
    hints = openedHints;
    cleanups.push(() => openedHints.close());
    metrics.setHintsPendingSource(() => openedHints.targets().reduce((sum, target) => sum + openedHints.pendingFor(target), 0));
    const pool = world?.rpcPool ?? new RpcPool({
      clusterName: config.cluster.name,
      peer: id,
      timeoutMs: r.requestTimeoutMs,
      connectTimeoutMs: r.connectTimeoutMs,
      connectionsPerAddr: r.connectionsPerAddr,
      frameBytesMax: r.frameBytesMax,
      tls: tls?.client,
    });
    rpcPool = pool;
    cleanups.push(() => pool.close());
    const startedCluster = await ClusterNode.start({
      config: clusterLayerConfig(config),
      store,
      membership: startedMembership,
      rpcPool: pool,
      hints: openedHints,
      logger: log,
      metrics: metrics.layerSink(),
      ringFactory: { build: (members, opts) => Ring.build(members, opts), hashKey },
      hlc: new Hlc(id, () => clock.now(), { maxDriftMs: c.clockAheadMsMax }),
      clock,
    });
    cluster = startedCluster;
    cleanups.push(() => startedCluster.close());
    metrics.setClusterStats(() => {
      const streaming = startedCluster.streaming.stats() as { syncing: boolean; bytesReceived: number; round: { ratio: number } | null };
      return {
        ownership: startedCluster.view.ring().ownership(),
        syncing: streaming.syncing,
        streamProgress: streaming.round?.ratio ?? (streaming.syncing ? 0 : 1),
        streamBytesReceived: streaming.bytesReceived,
      };
    });
    const keyringOps = new KeyringOps({
      selfId: id,
      keyring,
      file: keyringFile,
      members: () => startedMembership.members(),
      call: (rpc, op, args) => pool.call(rpc, op, args, { timeoutMs: c.internalTimeoutMs }),
      logger: log.child({ layer: 'keyring' }),
    });
    const withKeyring: RpcHandler = (op, args, ctx) => (keyringOps.handles(op) ? keyringOps.handle(op, args) : startedCluster.rpcHandler(op, args, ctx));
    const handler = nodeOps({
      base: withKeyring,
      clustered: true,
      membership: startedMembership,
      leaveTimeoutMs: config.membership.leaveTimeoutMs,
      health,
      stats,
    });

    if (config.node.resp !== '' && world === undefined) {
      // The Redis front end: the cluster layer's data operations behind the RPC port's limits and TLS.
      const respAddr = splitAddress(config.node.resp);
      const info = (): RespNodeInfo => {
        const ring = startedCluster.view.ring();
        const ownership = ring.ownership();
        return {
          clusterName: config.cluster.name,
          uptimeMs: clock.now() - startedAtMs,
          respPort: startedResp.port,
          rpc: addresses.rpc,
          fsync: config.storage.fsync,
          replication: { n: startedCluster.view.replicas(), w: c.writeQuorum, r: c.readQuorum },
          localKeys: openedStore.stats().keys,
          members: startedMembership.members().map((m) => ({ id: m.id, state: m.state, rpc: m.rpc, owns: ownership.get(m.id) })),
          ring: { checksum: ring.checksum(), owners: ring.members().length },
        };
      };
      // The same gate as the RPC port's client data operations: UNAVAILABLE while joining, CLOSED
      // once a leave or stop started (the front end maps them to CLUSTERDOWN and TRYAGAIN).
      const respData: RespData = {
        id: startedCluster.id,
        dataLimits: startedCluster.dataLimits,
        get isLeaving(): boolean {
          return state === 'leaving' || startedCluster.isLeaving;
        },
        // No async layers of their own (one promise less per command): the gate throws at once,
        // which the command table answers as the command's error.
        readLive: (key, consistency) => {
          checkClientData();
          return startedCluster.readLive(key, consistency);
        },
        readLiveNow: (key, consistency) => {
          checkClientData();
          return startedCluster.readLiveNow(key, consistency);
        },
        writeValue: (key, value, expiresAtMs, consistency) => {
          checkClientData();
          return startedCluster.writeValue(key, value, expiresAtMs, consistency);
        },
        writeValueNow: (key, value, expiresAtMs, consistency) => {
          checkClientData();
          return startedCluster.writeValueNow(key, value, expiresAtMs, consistency);
        },
        // Only for a write writeValueNow took: no gate (it was let through), as a round in flight is not stopped.
        writeValueAfter: (key, write, err) => startedCluster.writeValueAfter(key, write as LocalValueWrite, err),
        deleteKey: (key, consistency) => {
          checkClientData();
          return startedCluster.deleteKey(key, consistency);
        },
        scanPage: async (cursor, request) => {
          checkClientData();
          return startedCluster.scanPage(cursor, request);
        },
        nowMs: () => startedCluster.nowMs(),
      };
      const startedResp = new RespServer({
        host: respAddr.host,
        port: respAddr.port,
        data: respData,
        info,
        settings: config.resp,
        limits: serverLimits,
        logger: log,
        tls: tls?.server,
      });
      respServer = startedResp;
      metrics.setRespStats(() => startedResp.stats());
      const respBound = await startedResp.listen().catch((err: unknown) => {
        throw listenError('resp', config.node.resp, err);
      });
      cleanups.push(() => startedResp.close({ drainMs: 0 }));
      addresses.resp = joinAddress(respBound.host, respBound.port);
    }

    if (config.metrics.enabled && world === undefined) {
      const m = splitAddress(config.node.metrics);
      const status = statusSnapshotter({
        self: id,
        cluster: config.cluster.name,
        version: SHOAL_VERSION,
        members: () => startedMembership.members(),
        ring: () => startedCluster.view.ring(),
        stats: () => ({ ...stats(), cluster: startedCluster.stats() }),
        peerStats: (rpc, timeoutMs) => pool.call(rpc, 'stats', {}, { timeoutMs }),
        events: () => events.list(),
        now: () => clock.now(),
      });
      metricsServer = await startMetricsServer({ host: m.host, port: m.port, metrics, health, status, logger: log.child({ layer: 'metrics' }) }).catch(
        (err: unknown) => {
          throw listenError('metrics', config.node.metrics, err);
        },
      );
      addresses.metrics = joinAddress(metricsServer.host, metricsServer.port);
    }
    serve = gate(handler);
  } catch (err) {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    throw dataDirError(dataDir, err);
  }

  state = 'serving';
  nodeLog.info('node started', {
    cluster: config.cluster.name,
    rpc: addresses.rpc,
    resp: addresses.resp,
    rpcTls: tls === null ? 'off' : config.security.tlsClientAuth ? 'mutual' : 'on',
    gossip: addresses.gossip,
    metrics: addresses.metrics,
    dataDir,
  });

  const stop = async (): Promise<void> => {
    state = 'stopping';
    nodeLog.info('stopping');
    // Each step is bounded so that one stuck layer cannot keep the process alive. The store is closed
    // last: acknowledged writes are durable already, closing flushes and releases the lock.
    const step = async (what: string, ms: number, run: () => Promise<unknown>) => {
      try {
        await bounded(clock, what, ms, run());
      } catch (err) {
        nodeLog.warn(`${what} failed`, { err });
      }
    };
    // Leave while still serving, so the others learn it from us (and, once the cluster layer hands
    // data off on leave, while our data can still be read).
    const cl = cluster;
    const m = membership;
    // shutdown.leave false (a rolling restart): stop without a word; the others see a failure, keep
    // our ranges (deadOwnerGraceMs) and hold hints until we are back.
    if (leaving !== null) await step('leaving the cluster', config.shutdown.timeoutMs / 2, () => leaving as Promise<unknown>);
    else if (!config.shutdown.leave) nodeLog.info('stopping without leaving the cluster (shutdown.leave is false)');
    else if (cl) await step('leaving the cluster', config.shutdown.timeoutMs / 2, () => cl.rpcHandler('leave', {}, { remote: 'self', peer: null }));
    else if (m) await step('announcing leave', config.membership.leaveTimeoutMs + 1000, () => m.leave({ timeoutMs: config.membership.leaveTimeoutMs }));
    const resp = respServer;
    if (resp) await step('draining resp commands', config.rpc.drainMs + 1000, () => resp.close({ drainMs: config.rpc.drainMs }));
    stopSimRpc?.();
    const server = rpcServer;
    if (server) await step('draining rpc requests', config.rpc.drainMs + 1000, () => server.close({ drainMs: config.rpc.drainMs }));
    if (cl) await step('stopping the cluster layer', config.cluster.internalTimeoutMs + 1000, () => cl.close());
    const pool = rpcPool;
    if (pool) await step('closing node-to-node connections', 2000, () => pool.close());
    if (m) await step('stopping membership', 2000, () => m.stop());
    const h = hints;
    if (h) await step('closing the hint store', config.shutdown.timeoutMs, () => h.close());
    const ms = metricsServer;
    if (ms) await step('closing the metrics endpoint', 2000, () => ms.close());
    const st = store;
    if (st) await step('closing the store', config.shutdown.timeoutMs, () => st.close());
    state = 'stopped';
    nodeLog.info('stopped');
  };
  let stopping: Promise<void> | null = null;
  let markStopped = (): void => undefined;
  const stoppedPromise = new Promise<void>((resolve) => (markStopped = resolve));
  stopNode = () => (stopping ??= stop().finally(markStopped));

  return {
    id,
    config,
    addresses,
    metrics,
    state: () => state,
    stats,
    stop: stopNode,
    stopped: () => stoppedPromise,
    internals: () =>
      world !== undefined && store !== null && cluster !== null && membership !== null && hints !== null ? { store, cluster, membership, hints } : null,
  };
}
