/**
 * Prometheus metrics for one node (prom-client, one Registry per node so several nodes can share a
 * process in tests). Request counts, latency histograms and errors are recorded by wrapping the RPC
 * handler (instrumentHandler); store figures are read from store.stats() at scrape time; membership
 * and the cluster layer set their gauges through the methods below or register their own metrics on
 * `registry`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { performance } from 'node:perf_hooks';
import { toShoalError } from '../errors.js';
import type { StoreStats } from '../storage/types.js';
import { SHOAL_VERSION } from '../version.js';
import { OpHistogram } from './op-histogram.js';
import { RecentOps } from './recent.js';

/** The handler signature of src/rpc/server.ts (kept structural so metrics need not import rpc). */
export type OpHandler<C> = (op: string, args: Record<string, unknown>, ctx: C) => Promise<unknown>;

/** Latency buckets in seconds: 0.25 ms .. 5 s. */
const LATENCY_BUCKETS_S = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Distinct `op` label values kept; later unknown ops are counted as "other" (clients choose op names). */
const OP_LABELS_MAX = 64;

/** Distinct metric names a layer may create through layerSink(). */
const LAYER_METRICS_MAX = 64;
/** Distinct label-value series of the layer counters (beyond it samples are dropped). */
const LAYER_SERIES_MAX = 1024;

const MEMBER_STATES = ['alive', 'suspect', 'dead', 'left'] as const;

/** fsync latency buckets in seconds: 50 µs .. 2.5 s (a healthy SSD fdatasync is 0.1-5 ms). */
const FSYNC_BUCKETS_S = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The client operations whose request counters exist from the start (docs/PROTOCOL.md). */
const CLIENT_OPS = ['get', 'put', 'del', 'scan', 'health', 'stats', 'members', 'ring', 'leave', 'remove'] as const;

/** Error codes whose per-op error counters exist from the start: the ones alerts are written on. */
const ALERTED_ERRORS = ['UNAVAILABLE', 'TIMEOUT'] as const;

/**
 * The cluster layer's counters (ClusterMetrics.inc), declared up front with their help and known
 * label values so that they exist, at 0, from the start. A layer name not listed here is still
 * accepted (created on first use) but should be added.
 */
const LAYER_COUNTERS: Record<string, { help: string; labels?: Record<string, readonly string[]> }> = {
  cluster_writes_total: { help: 'Client writes (put, del) this node coordinated, by outcome (ok or the error code)', labels: { outcome: ['ok', 'UNAVAILABLE', 'TIMEOUT'] } },
  cluster_reads_total: { help: 'Client reads (get) this node coordinated, by outcome (ok or the error code)', labels: { outcome: ['ok', 'UNAVAILABLE', 'TIMEOUT'] } },
  cluster_hints_total: { help: 'Hints stored for replicas that were down, by where (coordinator, or a stand-in replica)', labels: { where: ['coordinator', 'stand-in'] } },
  cluster_hints_replayed_total: { help: 'Hints delivered to their replica after it came back' },
  cluster_stream_keys_total: { help: 'Keys received by range streaming after a ring change' },
  cluster_read_repairs_total: { help: 'Stale replicas repaired after a quorum read' },
  cluster_anti_entropy_keys_total: { help: 'Keys pulled or pushed by anti-entropy to make replicas agree' },
};

/** Figures read at scrape time from the layers (each source is optional). */
export interface RpcServerFigures {
  connections: number;
  connectionsTotal: number;
  connectionsRejected: number;
  bytesIn: number;
  bytesOut: number;
}

export interface GossipFigures {
  packetsSent: number;
  bytesSent: number;
  packetsReceived: number;
  messagesReceived: number;
}

export interface ClusterFigures {
  /** Share of the key space per ring owner (sums to 1). */
  ownership: Map<string, number>;
  /** A streaming round is pulling newly owned ranges. */
  syncing: boolean;
  /** Keys received out of the round's total (0..1; 1 when not syncing). */
  streamProgress: number;
  streamBytesReceived: number;
}

/** Gossip encryption figures, read at scrape time (membership's stats and the keyring). */
export interface GossipSecurityStats {
  encrypted: boolean;
  /** Keys installed in the keyring (0 without encryption). */
  keys: number;
  /** Messages that did not open, per transport (udp, tcp) and reason; counters since start. */
  decryptFailures: Record<string, Record<string, number>>;
}

export interface NodeMetricsOptions {
  nodeId: string;
  /** Also export Node.js process metrics (heap, event loop lag, ...). Default true. */
  processMetrics?: boolean;
  /** Clock for the recent-ops figures (tests). */
  now?: () => number;
}

/** The RESP server's figures the metrics read (RespServerStats has them). */
export interface RespFigures {
  connections: number;
  commands: Record<string, number>;
  errors: Record<string, number>;
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'op'>;
  private readonly latency: OpHistogram;
  private readonly errors: Counter<'op' | 'code'>;
  private readonly members: Gauge<'state'>;
  private readonly hintsPending: Gauge;
  private readonly fsyncs: Counter;
  private readonly ops = new Set<string>();
  /** Requests by op label, and errors by "op code" (the op labels are bounded by OP_LABELS_MAX). */
  private readonly requestCounts = new Map<string, number>();
  private readonly errorCounts = new Map<string, number>();
  /** Series kept over all layer counters (bounded by LAYER_SERIES_MAX). */
  private layerSeries = 0;
  /** Each layer counter's label names (of its first use) and its series by label values. */
  private readonly layerCounters = new Map<string, { labelNames: Set<string>; series: Map<string, { labels: Record<string, string>; count: number }> }>();
  private storeStats: (() => StoreStats) | null = null;
  private hintsSource: (() => number) | null = null;
  private healthSource: (() => boolean) | null = null;
  private readonly layerMetrics = new Map<string, Counter<string> | Histogram<string>>();
  private fsyncsSeen = 0;
  private gossipSource: (() => GossipSecurityStats) | null = null;
  private readonly decryptFailures: Counter<'transport' | 'reason'>;
  private readonly respCommands: Counter<string>;
  private readonly respErrors: Counter<string>;
  private readonly decryptFailuresSeen = new Map<string, number>();
  /** Counters mirrored from cumulative figures read at scrape time: the value already added. */
  private readonly mirrored = new Map<Counter<string>, number>();
  private readonly fsyncLatency: Histogram;
  private rpcSource: (() => RpcServerFigures) | null = null;
  private gossipFiguresSource: (() => GossipFigures) | null = null;
  private clusterSource: (() => ClusterFigures) | null = null;
  /** Client requests per second and p99 over the last minute, for people (stats, status page). */
  readonly recent: RecentOps;
  private respSource: (() => RespFigures) | null = null;
  private readonly respSeen = new Map<string, number>();

  constructor(options: NodeMetricsOptions) {
    const r = this.registry;
    r.setDefaultLabels({ node: options.nodeId });
    this.recent = new RecentOps(options.now);
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: r, prefix: 'shoal_' });
      // prom-client also exports these counts of the moment as gauges named _total, which Prometheus
      // conventions reserve for counters; shoal_nodejs_active_{resources,handles,requests} (by type) stay.
      for (const name of ['shoal_nodejs_active_resources_total', 'shoal_nodejs_active_handles_total', 'shoal_nodejs_active_requests_total']) r.removeSingleMetric(name);
    }
    new Gauge({ name: 'shoal_build_info', help: 'Always 1; the labels name the Shoal and Node.js versions of this node', labelNames: ['version', 'nodejs'], registers: [r] })
      .set({ version: SHOAL_VERSION, nodejs: process.version }, 1);
    this.fsyncLatency = new Histogram({ name: 'shoal_wal_fsync_duration_seconds', help: 'Duration of each WAL fdatasync', buckets: FSYNC_BUCKETS_S, registers: [r] });
    // Request and error counts are plain numbers per op on the hot path, handed to prom-client at scrape.
    const requestCounts = this.requestCounts;
    const errorCounts = this.errorCounts;
    this.requests = new Counter({
      name: 'shoal_requests_total', help: 'RPC requests handled, by operation (client and node-to-node)', labelNames: ['op'], registers: [r],
      collect() {
        this.reset();
        for (const [op, count] of requestCounts) this.inc({ op }, count);
      },
    });
    this.latency = new OpHistogram('shoal_request_duration_seconds', 'RPC request handling time, by operation (client operations)', LATENCY_BUCKETS_S);
    this.latency.register(r);
    this.errors = new Counter({
      name: 'shoal_request_errors_total', help: 'RPC requests answered with an error, by operation and error code', labelNames: ['op', 'code'], registers: [r],
      collect() {
        this.reset();
        for (const [key, count] of errorCounts) {
          const at = key.indexOf(' ');
          this.inc({ op: key.slice(0, at), code: key.slice(at + 1) }, count);
        }
      },
    });
    this.members = new Gauge({ name: 'shoal_members', help: 'Cluster members this node knows, by state', labelNames: ['state'], registers: [r] });
    const hintsSource = () => this.hintsSource;
    this.hintsPending = new Gauge({
      name: 'shoal_hints_pending', help: 'Hinted-handoff writes waiting for their replica', registers: [r],
      collect(this: Gauge) {
        const source = hintsSource();
        if (source) this.set(source());
      },
    });
    const healthSource = () => this.healthSource;
    new Gauge({
      name: 'shoal_healthy', help: '1 when the node serves and its store and hint store take writes (what GET /health answers 200 for), else 0', registers: [r],
      collect(this: Gauge) {
        const source = healthSource();
        if (source) this.set(source() ? 1 : 0);
      },
    });
    this.fsyncs = new Counter({
      name: 'shoal_wal_fsyncs_total', help: 'WAL fdatasync calls', registers: [r],
      collect: () => void this.readStore(),
    });
    const readGossip = () => this.readGossip();
    new Gauge({
      name: 'shoal_gossip_encrypted', help: '1 when gossip datagrams and push-pull are sealed with the keyring', registers: [r],
      collect(this: Gauge) {
        this.set(readGossip()?.encrypted === true ? 1 : 0);
      },
    });
    new Gauge({
      name: 'shoal_gossip_keys', help: 'Gossip encryption keys installed in the keyring', registers: [r],
      collect(this: Gauge) {
        this.set(readGossip()?.keys ?? 0);
      },
    });
    this.decryptFailures = new Counter({
      name: 'shoal_gossip_decrypt_failures_total',
      help: 'Gossip messages dropped because they did not open (wrong key, another cluster, tampered, plaintext), by transport and reason',
      labelNames: ['transport', 'reason'], registers: [r],
      collect: () => void readGossip(),
    });
    // The Redis front end (src/resp/): read when Prometheus scrapes; counters advance by the difference.
    const readResp = () => this.readResp();
    new Gauge({
      name: 'shoal_resp_connections', help: 'Open connections on the Redis protocol port', registers: [r],
      collect(this: Gauge) {
        const s = readResp();
        if (s) this.set(s.connections);
      },
    });
    this.respCommands = new Counter({
      name: 'shoal_resp_commands_total', help: 'Redis protocol commands received, by command (unknown names count as "unknown")', labelNames: ['command'], registers: [r],
      collect: () => void readResp(),
    });
    this.respErrors = new Counter({
      name: 'shoal_resp_errors_total', help: 'Redis protocol error replies, by error code (ERR, CLUSTERDOWN, TRYAGAIN, READONLY, ...)', labelNames: ['code'], registers: [r],
      collect: () => void readResp(),
    });
    for (const state of MEMBER_STATES) this.members.set({ state }, 0);
    this.hintsPending.set(0);
    for (const op of CLIENT_OPS) {
      this.ops.add(op);
      this.requestCounts.set(op, 0);
      this.latency.zero(op);
      for (const code of ALERTED_ERRORS) this.errorCounts.set(`${op} ${code}`, 0);
    }
    for (const [name, spec] of Object.entries(LAYER_COUNTERS)) {
      const labelNames = Object.keys(spec.labels ?? {});
      const series = new Map<string, { labels: Record<string, string>; count: number }>();
      if (labelNames.length === 0) series.set('', { labels: {}, count: 0 });
      else for (const value of Object.values(spec.labels ?? {})[0]) series.set(value, { labels: { [labelNames[0]]: value }, count: 0 });
      this.layerSeries += series.size;
      this.layerCounters.set(name, { labelNames: new Set(labelNames), series });
      this.layerMetrics.set(name, layerCounter(`shoal_${name}`, spec.help, labelNames, series, r));
    }
    this.registerLayerFigures();

    // Store figures are read when Prometheus scrapes, not pushed on every write.
    const readStore = () => this.readStore();
    const storeGauges: Array<[string, string, (s: StoreStats) => number]> = [
      ['shoal_store_keys', 'Live keys in the local store', (s) => s.keys],
      ['shoal_store_tombstones', 'Tombstones kept in the local store', (s) => s.tombstones],
      ['shoal_store_value_bytes', 'Bytes of live values in the local store', (s) => s.valueBytes],
      ['shoal_store_wal_bytes', 'Bytes in WAL segments', (s) => s.walBytes],
      ['shoal_wal_fsync_last_seconds', 'Duration of the most recent WAL fdatasync (the histogram shoal_wal_fsync_duration_seconds has them all)', (s) => s.fsyncLatencyMsLast / 1000],
      ['shoal_store_read_only', '1 when the store refuses writes (durability failure, disk full)', (s) => (s.readOnly ? 1 : 0)],
    ];
    // Counts that only grow are counters, brought up to the store's figure at scrape time.
    const storeCounters: Array<[string, string, (s: StoreStats) => number]> = [
      ['shoal_store_expired_total', 'Keys removed by TTL expiry since the store opened', (s) => s.expired],
      ['shoal_store_snapshot_failures_total', 'Snapshots that failed since the store opened (disk full while writing one; the store stays writable)', (s) => s.snapshotFailures],
    ];
    for (const [name, help, pick] of storeCounters) {
      const mirror = (c: Counter, value: number) => this.mirror(c, value);
      const counter: Counter = new Counter({
        name, help, registers: [r],
        collect: () => {
          const st = readStore();
          if (st) mirror(counter, pick(st));
        },
      });
      counter.inc(0);
    }
    for (const [name, help, pick] of storeGauges) {
      new Gauge({
        name, help, registers: [r],
        collect(this: Gauge) {
          const s = readStore();
          if (s) this.set(pick(s));
        },
      });
    }
  }

  /** Brings a counter up to a cumulative figure read from a layer (never down: a counter only grows). */
  private mirror(counter: Counter<string>, value: number, labels: Record<string, string> = {}): void {
    const seen = this.mirrored.get(counter) ?? 0;
    if (value > seen) {
      counter.inc(labels, value - seen);
      this.mirrored.set(counter, value);
    }
  }

  /** RPC, gossip, streaming and ring figures, read from their sources at scrape time. */
  private registerLayerFigures(): void {
    const r = this.registry;
    const rpc = () => this.read(this.rpcSource);
    const gossip = () => this.read(this.gossipFiguresSource);
    const cluster = () => this.read(this.clusterSource);
    const counters: Array<[string, string, () => number | undefined]> = [
      ['shoal_rpc_connections_accepted_total', 'RPC connections accepted (clients and other nodes)', () => rpc()?.connectionsTotal],
      ['shoal_rpc_connections_rejected_total', 'RPC connections refused at the connection limit', () => rpc()?.connectionsRejected],
      ['shoal_rpc_received_bytes_total', 'Bytes received on RPC connections', () => rpc()?.bytesIn],
      ['shoal_rpc_sent_bytes_total', 'Bytes sent on RPC connections', () => rpc()?.bytesOut],
      ['shoal_gossip_sent_bytes_total', 'Gossip (SWIM) bytes sent over UDP', () => gossip()?.bytesSent],
      ['shoal_gossip_sent_packets_total', 'Gossip (SWIM) datagrams sent', () => gossip()?.packetsSent],
      ['shoal_gossip_received_packets_total', 'Gossip (SWIM) datagrams received', () => gossip()?.packetsReceived],
      ['shoal_gossip_received_messages_total', 'Gossip (SWIM) messages received (a datagram carries several)', () => gossip()?.messagesReceived],
      ['shoal_stream_received_bytes_total', 'Bytes received by range streaming after ring changes', () => cluster()?.streamBytesReceived],
    ];
    for (const [name, help, pick] of counters) {
      const mirror = (c: Counter, value: number) => this.mirror(c, value);
      const counter: Counter = new Counter({
        name, help, registers: [r],
        collect: () => {
          const value = pick();
          if (value !== undefined) mirror(counter, value);
        },
      });
      counter.inc(0);
    }
    new Gauge({
      name: 'shoal_rpc_connections', help: 'Open RPC connections', registers: [r],
      collect(this: Gauge) {
        this.set(rpc()?.connections ?? 0);
      },
    });
    new Gauge({
      name: 'shoal_stream_syncing', help: '1 while this node pulls ranges it newly owns (its reads of them may miss)', registers: [r],
      collect(this: Gauge) {
        this.set(cluster()?.syncing === true ? 1 : 0);
      },
    });
    new Gauge({
      name: 'shoal_stream_progress_ratio', help: 'Keys received out of the current streaming round\'s total (1 when not syncing)', registers: [r],
      collect(this: Gauge) {
        this.set(cluster()?.streamProgress ?? 1);
      },
    });
    new Gauge({
      name: 'shoal_ring_ownership_ratio', help: 'Share of the key space each ring owner holds (primary and replicas alike), as this node sees the ring', labelNames: ['member'], registers: [r],
      collect(this: Gauge<'member'>) {
        const figures = cluster();
        if (!figures) return;
        this.reset();
        for (const [member, share] of figures.ownership) this.set({ member }, share);
      },
    });
  }

  private read<T>(source: (() => T) | null): T | undefined {
    if (!source) return undefined;
    try {
      return source();
    } catch {
      return undefined; // a stopped layer has no figures; the scrape goes on
    }
  }

  setRpcStats(source: (() => RpcServerFigures) | null): void {
    this.rpcSource = source;
  }

  setGossipStats(source: (() => GossipFigures) | null): void {
    this.gossipFiguresSource = source;
  }

  setClusterStats(source: (() => ClusterFigures) | null): void {
    this.clusterSource = source;
  }

  /** One WAL fdatasync took this long. */
  observeFsync(latencyMs: number): void {
    this.fsyncLatency.observe(latencyMs / 1000);
  }

  /** Where store figures come from (set once the store is open). */
  setStoreStats(stats: (() => StoreStats) | null): void {
    this.storeStats = stats;
  }

  /** Where gossip encryption figures come from (set once membership runs). */
  setGossipSecurity(source: (() => GossipSecurityStats) | null): void {
    this.gossipSource = source;
  }

  /** Reads the gossip figures and brings the decrypt-failure counter up to them. */
  private readGossip(): GossipSecurityStats | null {
    if (!this.gossipSource) return null;
    try {
      const g = this.gossipSource();
      for (const [transport, reasons] of Object.entries(g.decryptFailures)) {
        for (const [reason, count] of Object.entries(reasons)) {
          const key = `${transport}/${reason}`;
          const seen = this.decryptFailuresSeen.get(key) ?? 0;
          if (count > seen) this.decryptFailures.inc({ transport, reason }, count - seen);
          else if (seen === 0) this.decryptFailures.inc({ transport, reason }, 0);
          this.decryptFailuresSeen.set(key, Math.max(seen, count));
        }
      }
      return g;
    } catch {
      return null; // a stopped membership has no figures; the scrape goes on
    }
  }

  /** Where the RESP server's figures come from (when node.resp is set). */
  setRespStats(source: (() => RespFigures) | null): void {
    this.respSource = source;
  }

  private readResp(): RespFigures | null {
    if (!this.respSource) return null;
    const s = this.respSource();
    const advance = (counter: Counter<string>, label: string, counts: Record<string, number>) => {
      for (const [name, total] of Object.entries(counts)) {
        const key = `${label}/${name}`;
        const seen = this.respSeen.get(key) ?? 0;
        if (total > seen) counter.inc({ [label]: name }, total - seen);
        this.respSeen.set(key, Math.max(seen, total));
      }
    };
    advance(this.respCommands, 'command', s.commands);
    advance(this.respErrors, 'code', s.errors);
    return s;
  }

  private readStore(): StoreStats | null {
    if (!this.storeStats) return null;
    try {
      const s = this.storeStats();
      if (s.fsyncs > this.fsyncsSeen) this.fsyncs.inc(s.fsyncs - this.fsyncsSeen);
      this.fsyncsSeen = Math.max(this.fsyncsSeen, s.fsyncs);
      return s;
    } catch {
      return null; // a closed store has no figures; the scrape goes on
    }
  }

  private opLabel(op: string): string {
    if (this.ops.has(op)) return op;
    if (this.ops.size >= OP_LABELS_MAX || op.length > 64) return 'other';
    this.ops.add(op);
    return op;
  }

  /** Counts one request (and its error); `durationMs` null: not timed (node-to-node ops). */
  observeRequest(op: string, durationMs: number | null, errorCode?: string): void {
    const label = this.opLabel(op);
    const counts = this.requestCounts;
    counts.set(label, (counts.get(label) ?? 0) + 1);
    if (durationMs !== null) {
      if (!op.startsWith('internal.')) this.recent.record(durationMs);
      this.latency.observe(label, durationMs / 1000);
    }
    if (errorCode !== undefined) {
      const key = `${label} ${errorCode}`;
      this.errorCounts.set(key, (this.errorCounts.get(key) ?? 0) + 1);
    }
  }

  /** Membership calls this on every change with the count of members in each state. */
  setMembers(counts: Partial<Record<(typeof MEMBER_STATES)[number], number>>): void {
    for (const state of MEMBER_STATES) this.members.set({ state }, counts[state] ?? 0);
  }

  setHintsPending(count: number): void {
    this.hintsPending.set(count);
  }

  /** Read the node's health at scrape time from here (the shoal_healthy gauge). */
  setHealthSource(source: (() => boolean) | null): void {
    this.healthSource = source;
  }

  /** Read the pending hint count at scrape time from here. */
  setHintsPendingSource(source: (() => number) | null): void {
    this.hintsSource = source;
  }

  /**
   * A sink for a layer's own counters and timings (the cluster layer's ClusterMetrics): `inc(name)`
   * becomes the counter `shoal_<name>`, `observeMs(name)` the histogram `shoal_<name>` in seconds
   * (a trailing `_ms` becomes `_seconds`). Label names are fixed by the first use of a name; at most
   * LAYER_METRICS_MAX names. A metrics problem never fails the request that reports it.
   */
  layerSink(): { inc(name: string, labels?: Record<string, string>, value?: number): void; observeMs(name: string, valueMs: number, labels?: Record<string, string>): void } {
    const metric = <M extends Counter<string> | Histogram<string>>(name: string, labels: Record<string, string>, make: (full: string, labelNames: string[]) => M): M | null => {
      let m = this.layerMetrics.get(name) as M | undefined;
      if (!m) {
        if (this.layerMetrics.size >= LAYER_METRICS_MAX) return null;
        const full = 'shoal_' + name.replace(/[^a-zA-Z0-9_]/g, '_').replace(/_ms$/, '_seconds');
        m = make(full, Object.keys(labels));
        this.layerMetrics.set(name, m);
      }
      return m;
    };
    // Counter increments are plain numbers per name and label values (the coordinator counts every
    // read and write), handed to prom-client at scrape time by each counter's collect(). The hot path
    // is two Map lookups with strings the caller already holds (no concatenation for one label).
    return {
      inc: (name, labels = {}, value = 1) => {
        const own = this.layerCounters.get(name);
        let key = '';
        let names = 0;
        for (const label in labels) {
          if (own !== undefined && !own.labelNames.has(label)) return; // not the labels of its first use
          key = names === 0 ? labels[label] : `${key}\u0000${labels[label]}`;
          names += 1;
        }
        if (own !== undefined) {
          if (names !== own.labelNames.size) return;
          const counted = own.series.get(key);
          if (counted !== undefined) {
            counted.count += value;
            return;
          }
          if (this.layerSeries >= LAYER_SERIES_MAX) return; // label values are bounded sets (codes, places)
          this.layerSeries += 1;
          own.series.set(key, { labels: { ...labels }, count: value });
          return;
        }
        try {
          metric(name, labels, (full, labelNames) => {
            const series = new Map<string, { labels: Record<string, string>; count: number }>();
            series.set(key, { labels: { ...labels }, count: value });
            this.layerSeries += 1;
            this.layerCounters.set(name, { labelNames: new Set(labelNames), series });
            return layerCounter(full, `${name.replace(/_/g, ' ')} (cluster layer)`, labelNames, series, this.registry);
          });
        } catch {
          // a name clash: drop the sample
        }
      },
      observeMs: (name, valueMs, labels = {}) => {
        try {
          metric(name, labels, (full, labelNames) => new Histogram({ name: full, help: `${name} (cluster layer)`, labelNames, buckets: LATENCY_BUCKETS_S, registers: [this.registry] }))?.observe(labels, valueMs / 1000);
        } catch {
          // unknown label or a name clash: drop the sample
        }
      },
    };
  }

  /** The exposition text for GET /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * Wraps an RPC handler so every request is counted, every error counted by code, and every client
 * request timed. Node-to-node ops (internal.*) are counted only: they are timed where they are made
 * (the coordinator), and two clock reads and a histogram per replica call were a visible share of
 * a cluster node's CPU. No async layer of its own: one .then on the handler's promise.
 */
export function instrumentHandler<C>(handler: OpHandler<C>, metrics: NodeMetrics): OpHandler<C> {
  return (op, args, ctx) => {
    let result: Promise<unknown>;
    if (op.startsWith('internal.')) {
      try {
        result = handler(op, args, ctx);
      } catch (err) {
        metrics.observeRequest(op, null, toShoalError(err).code);
        return Promise.reject(err);
      }
      return result.then(
        (value) => {
          metrics.observeRequest(op, null);
          return value;
        },
        (err: unknown) => {
          metrics.observeRequest(op, null, toShoalError(err).code);
          throw err;
        },
      );
    }
    const start = performance.now();
    try {
      result = handler(op, args, ctx);
    } catch (err) {
      metrics.observeRequest(op, performance.now() - start, toShoalError(err).code);
      return Promise.reject(err);
    }
    return result.then(
      (value) => {
        metrics.observeRequest(op, performance.now() - start);
        return value;
      },
      (err: unknown) => {
        metrics.observeRequest(op, performance.now() - start, toShoalError(err).code);
        throw err;
      },
    );
  };
}

/** A layer counter whose series are plain numbers, handed to prom-client when it is scraped. */
function layerCounter(
  name: string,
  help: string,
  labelNames: string[],
  series: Map<string, { labels: Record<string, string>; count: number }>,
  registry: Registry,
): Counter<string> {
  return new Counter({
    name, help, labelNames, registers: [registry],
    collect() {
      this.reset();
      for (const c of series.values()) this.inc(c.labels, c.count);
    },
  });
}
