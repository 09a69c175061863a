/**
 * A running node: the layers wired together in start order (store, handler, RPC server, metrics
 * endpoint) and stopped in reverse, each step bounded. The RPC handler is the single-node one until
 * the cluster layer provides ClusterNode.rpcHandler.
 */
import { mkdir } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { ShoalError, toShoalError } from '../errors.js';
import { nullLogger, type Logger } from '../log.js';
import { RpcServer, type RpcHandler } from '../rpc/server.js';
import { openStore } from '../storage/store.js';
import type { Store } from '../storage/types.js';
import type { ShoalConfig } from './config-schema.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import { NodeMetrics, instrumentHandler } from './metrics.js';
import { WallClock, singleNodeHandler } from './single-handler.js';

export interface StartNodeOptions {
  logger?: Logger;
  /** Export Node.js process metrics. Default true; tests running many nodes turn it off. */
  processMetrics?: boolean;
}

export type NodeState = 'starting' | 'serving' | 'stopping' | 'stopped';

export interface NodeAddresses {
  rpc: string;
  gossip: string;
  /** null when metrics are disabled. */
  metrics: string | null;
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
async function bounded<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShoalError('TIMEOUT', `${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function listenError(kind: string, addr: string, err: unknown): ShoalError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new ShoalError('UNAVAILABLE', `${kind} address ${addr} is already in use by another process`);
  if (code === 'EADDRNOTAVAIL') return new ShoalError('UNAVAILABLE', `${kind} address ${addr} is not an address of this machine`);
  if (code === 'EACCES') return new ShoalError('UNAVAILABLE', `${kind} address ${addr}: permission denied (ports below 1024 need privileges)`);
  return toShoalError(err);
}

export async function startNode(config: ShoalConfig, options: StartNodeOptions = {}): Promise<Node> {
  const log = options.logger ?? nullLogger;
  const nodeLog = log.child({ layer: 'node' });
  const startedAtMs = Date.now();
  const id = config.node.id;
  let state: NodeState = 'starting';
  const metrics = new NodeMetrics({ nodeId: id, processMetrics: options.processMetrics });
  const cleanups: Array<() => Promise<void>> = [];

  const dataDir = resolvePath(config.node.dataDir);
  let store: Store | null = null;
  let rpcServer: RpcServer | null = null;
  let metricsServer: MetricsServer | null = null;
  const addresses: NodeAddresses = { rpc: config.node.rpc, gossip: config.node.gossip, metrics: null };

  const health = () => ({ ok: state === 'serving', node: id, cluster: config.cluster.name, state, uptimeMs: Date.now() - startedAtMs });
  const stats = (): Record<string, unknown> => ({
    node: id,
    cluster: config.cluster.name,
    state,
    uptimeMs: Date.now() - startedAtMs,
    addresses,
    dataDir,
    store: store?.stats() ?? null,
    rpc: rpcServer?.stats() ?? null,
  });

  try {
    await mkdir(dataDir, { recursive: true });
    const s = config.storage;
    store = await openStore(dataDir, {
      keyBytesMax: s.keyBytesMax,
      valueBytesMax: s.valueBytesMax,
      fsync: s.fsync,
      fsyncIntervalMs: s.fsyncIntervalMs,
      walSegmentBytesMax: s.walSegmentBytesMax,
      snapshotWalBytes: s.snapshotWalBytes,
      snapshotIntervalMs: s.snapshotIntervalMs,
      tombstoneGraceMs: s.tombstoneGraceMs,
      expiryIntervalMs: s.expiryIntervalMs,
      expiryBatchMax: s.expiryBatchMax,
      logger: log.child({ layer: 'storage' }),
    });
    const openedStore = store;
    cleanups.push(() => openedStore.close());
    metrics.setStoreStats(() => openedStore.stats());

    const handler: RpcHandler = singleNodeHandler({ store, clock: new WallClock(id), stats, health });

    const rpcAddr = splitAddress(config.node.rpc);
    const r = config.rpc;
    rpcServer = new RpcServer({
      host: rpcAddr.host,
      port: rpcAddr.port,
      nodeId: id,
      clusterName: config.cluster.name,
      handler: instrumentHandler(handler, metrics),
      limits: {
        frameBytesMax: r.frameBytesMax,
        inFlightPerConnectionMax: r.inFlightPerConnectionMax,
        connectionsMax: r.connectionsMax,
        idleTimeoutMs: r.idleTimeoutMs,
        handshakeTimeoutMs: r.handshakeTimeoutMs,
        writeBufferBytesHigh: r.writeBufferBytesHigh,
      },
      logger: log.child({ layer: 'rpc' }),
    });
    const bound = await rpcServer.listen().catch((err: unknown) => {
      throw listenError('rpc', config.node.rpc, err);
    });
    const server = rpcServer;
    cleanups.push(() => server.close({ drainMs: 0 }));
    addresses.rpc = joinAddress(bound.host, bound.port);

    if (config.metrics.enabled) {
      const m = splitAddress(config.node.metrics);
      metricsServer = await startMetricsServer({ host: m.host, port: m.port, metrics, health, logger: log.child({ layer: 'metrics' }) })
        .catch((err: unknown) => {
          throw listenError('metrics', config.node.metrics, err);
        });
      addresses.metrics = joinAddress(metricsServer.host, metricsServer.port);
    }
  } catch (err) {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    throw err;
  }

  state = 'serving';
  nodeLog.info('node started', { node: id, cluster: config.cluster.name, rpc: addresses.rpc, metrics: addresses.metrics, dataDir });

  let stopping: Promise<void> | null = null;
  const stop = async (): Promise<void> => {
    state = 'stopping';
    nodeLog.info('stopping', { node: id });
    // Each step is bounded so one stuck layer cannot keep the process alive; the store is closed
    // last and always awaited because that is where acknowledged writes become durable.
    const step = async (what: string, ms: number, run: () => Promise<void>) => {
      try {
        await bounded(what, ms, run());
      } catch (err) {
        nodeLog.warn(`${what} failed`, { err });
      }
    };
    if (rpcServer) {
      const server = rpcServer;
      await step('draining rpc requests', config.rpc.drainMs + 1000, () => server.close({ drainMs: config.rpc.drainMs }));
    }
    if (metricsServer) {
      const m = metricsServer;
      await step('closing the metrics endpoint', 2000, () => m.close());
    }
    if (store) {
      const s = store;
      await step('closing the store', config.shutdown.timeoutMs, () => s.close());
    }
    state = 'stopped';
    nodeLog.info('stopped', { node: id });
  };

  return {
    id,
    config,
    addresses,
    metrics,
    state: () => state,
    stats,
    stop: () => (stopping ??= stop()),
  };
}
