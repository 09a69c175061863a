/**
 * The shape of a node's configuration and its JSON schema (validated with ajv). Every field has its
 * default in config/default.json and its meaning, default and reason in docs/CONFIG.md; this file
 * says what values are allowed. Unknown fields are errors, so a typo never silently does nothing.
 */
import type { JSONSchemaType } from 'ajv';
import type { FsyncPolicy } from '../storage/types.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'text' | 'json';

export interface NodeSection {
  id: string;
  dataDir: string;
  /** host:port for SWIM (UDP) and push-pull (TCP). */
  gossip: string;
  /** host:port for the client and node-to-node protocol (TCP). */
  rpc: string;
  /** host:port for GET /metrics and GET /health (HTTP). */
  metrics: string;
  zone: string;
  tags: Record<string, string>;
}

export interface ClusterSection {
  name: string;
  replicas: number;
  writeQuorum: number;
  readQuorum: number;
  vnodes: number;
  requestTimeoutMs: number;
  readRepair: boolean;
  hintsMax: number;
  hintBytesMax: number;
  hintWindowMs: number;
  hintReplayPerSec: number;
  deadOwnershipMs: number;
  antiEntropyIntervalMs: number;
  antiEntropyBuckets: number;
  antiEntropyKeysPerSec: number;
  streamKeysPerSec: number;
}

export interface StorageSection {
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  keyBytesMax: number;
  valueBytesMax: number;
  walSegmentBytesMax: number;
  snapshotWalBytes: number;
  snapshotIntervalMs: number;
  tombstoneGraceMs: number;
  expiryIntervalMs: number;
  expiryBatchMax: number;
}

export interface RpcSection {
  frameBytesMax: number;
  connectionsMax: number;
  inFlightPerConnectionMax: number;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  writeBufferBytesHigh: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  connectionsPerAddr: number;
  drainMs: number;
}

export interface MembershipSection {
  seeds: string[];
  probeIntervalMs: number;
  probeTimeoutMs: number;
  indirectChecks: number;
  suspicionMult: number;
  suspicionMaxTimeoutMult: number;
  retransmitMult: number;
  gossipIntervalMs: number;
  gossipNodes: number;
  datagramBytesMax: number;
  pushPullIntervalMs: number;
  awarenessMax: number;
  reapMs: number;
  metaBytesMax: number;
  leaveTimeoutMs: number;
}

export interface ShoalConfig {
  node: NodeSection;
  cluster: ClusterSection;
  storage: StorageSection;
  rpc: RpcSection;
  membership: MembershipSection;
  log: { level: LogLevel; format: LogFormat };
  metrics: { enabled: boolean };
  shutdown: { timeoutMs: number };
}

const DAY_MS = 86_400_000;
const GIB = 1024 ** 3;

/** host:port, host a name, an IPv4 address or a bracketed IPv6 address; port 0 = any free port. */
export const ADDRESS_PATTERN = '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$';

function int(minimum: number, maximum: number) {
  return { type: 'integer', minimum, maximum } as const;
}

const address = { type: 'string', pattern: ADDRESS_PATTERN } as const;

export const configSchema: JSONSchemaType<ShoalConfig> = {
  type: 'object',
  additionalProperties: false,
  required: ['node', 'cluster', 'storage', 'rpc', 'membership', 'log', 'metrics', 'shutdown'],
  properties: {
    node: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'dataDir', 'gossip', 'rpc', 'metrics', 'zone', 'tags'],
      properties: {
        id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
        dataDir: { type: 'string', minLength: 1 },
        gossip: address,
        rpc: address,
        metrics: address,
        zone: { type: 'string', maxLength: 64 },
        tags: {
          type: 'object',
          required: [],
          maxProperties: 32,
          additionalProperties: { type: 'string', maxLength: 256 },
        },
      },
    },
    cluster: {
      type: 'object',
      additionalProperties: false,
      required: [
        'name', 'replicas', 'writeQuorum', 'readQuorum', 'vnodes', 'requestTimeoutMs', 'readRepair', 'hintsMax',
        'hintBytesMax', 'hintWindowMs', 'hintReplayPerSec', 'deadOwnershipMs', 'antiEntropyIntervalMs',
        'antiEntropyBuckets', 'antiEntropyKeysPerSec', 'streamKeysPerSec',
      ],
      properties: {
        name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
        replicas: int(1, 15),
        writeQuorum: int(1, 15),
        readQuorum: int(1, 15),
        vnodes: int(1, 4096),
        requestTimeoutMs: int(1, 600_000),
        readRepair: { type: 'boolean' },
        hintsMax: int(0, 100_000_000),
        hintBytesMax: int(0, 64 * GIB),
        hintWindowMs: int(0, 30 * DAY_MS),
        hintReplayPerSec: int(1, 1_000_000),
        deadOwnershipMs: int(0, 30 * DAY_MS),
        antiEntropyIntervalMs: int(0, DAY_MS),
        antiEntropyBuckets: int(1, 1 << 20),
        antiEntropyKeysPerSec: int(1, 10_000_000),
        streamKeysPerSec: int(1, 10_000_000),
      },
    },
    storage: {
      type: 'object',
      additionalProperties: false,
      required: [
        'fsync', 'fsyncIntervalMs', 'keyBytesMax', 'valueBytesMax', 'walSegmentBytesMax', 'snapshotWalBytes',
        'snapshotIntervalMs', 'tombstoneGraceMs', 'expiryIntervalMs', 'expiryBatchMax',
      ],
      properties: {
        fsync: { type: 'string', enum: ['always', 'interval', 'none'] },
        fsyncIntervalMs: int(1, 60_000),
        keyBytesMax: int(1, 65_536),
        valueBytesMax: int(0, 512 * 1024 ** 2),
        walSegmentBytesMax: int(4096, 16 * GIB),
        snapshotWalBytes: int(0, 1024 * GIB),
        snapshotIntervalMs: int(0, 30 * DAY_MS),
        tombstoneGraceMs: int(0, 365 * DAY_MS),
        expiryIntervalMs: int(1, 60_000),
        expiryBatchMax: int(1, 1_000_000),
      },
    },
    rpc: {
      type: 'object',
      additionalProperties: false,
      required: [
        'frameBytesMax', 'connectionsMax', 'inFlightPerConnectionMax', 'idleTimeoutMs', 'handshakeTimeoutMs', 'writeBufferBytesHigh',
        'connectTimeoutMs', 'requestTimeoutMs', 'connectionsPerAddr', 'drainMs',
      ],
      properties: {
        frameBytesMax: int(1024, GIB),
        connectionsMax: int(1, 1_000_000),
        inFlightPerConnectionMax: int(1, 1_000_000),
        idleTimeoutMs: int(1, DAY_MS),
        handshakeTimeoutMs: int(1, 600_000),
        writeBufferBytesHigh: int(1024, 4 * GIB),
        connectTimeoutMs: int(1, 600_000),
        requestTimeoutMs: int(1, 600_000),
        connectionsPerAddr: int(1, 64),
        drainMs: int(0, 600_000),
      },
    },
    membership: {
      type: 'object',
      additionalProperties: false,
      required: [
        'seeds', 'probeIntervalMs', 'probeTimeoutMs', 'indirectChecks', 'suspicionMult', 'suspicionMaxTimeoutMult',
        'retransmitMult', 'gossipIntervalMs', 'gossipNodes', 'datagramBytesMax', 'pushPullIntervalMs',
        'awarenessMax', 'reapMs', 'metaBytesMax', 'leaveTimeoutMs',
      ],
      properties: {
        seeds: { type: 'array', items: address, maxItems: 64 },
        probeIntervalMs: int(1, 600_000),
        probeTimeoutMs: int(1, 600_000),
        indirectChecks: int(0, 16),
        suspicionMult: int(1, 100),
        suspicionMaxTimeoutMult: int(1, 100),
        retransmitMult: int(1, 100),
        gossipIntervalMs: int(1, 600_000),
        gossipNodes: int(1, 64),
        datagramBytesMax: int(512, 65_000),
        pushPullIntervalMs: int(0, DAY_MS),
        awarenessMax: int(1, 64),
        reapMs: int(0, 30 * DAY_MS),
        metaBytesMax: int(64, 65_000),
        leaveTimeoutMs: int(0, 600_000),
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      required: ['level', 'format'],
      properties: {
        level: { type: 'string', enum: ['error', 'warn', 'info', 'debug'] },
        format: { type: 'string', enum: ['text', 'json'] },
      },
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      required: ['enabled'],
      properties: { enabled: { type: 'boolean' } },
    },
    shutdown: {
      type: 'object',
      additionalProperties: false,
      required: ['timeoutMs'],
      properties: { timeoutMs: int(100, 600_000) },
    },
  },
};

/**
 * Rules that span fields, checked after the schema. Each returns the offending field and what is
 * wrong, or null.
 */
export function crossFieldProblems(config: ShoalConfig): Array<{ field: string; problem: string }> {
  const out: Array<{ field: string; problem: string }> = [];
  const c = config.cluster;
  if (c.writeQuorum > c.replicas) out.push({ field: 'cluster.writeQuorum', problem: `must be at most cluster.replicas (${c.replicas}), got ${c.writeQuorum}` });
  if (c.readQuorum > c.replicas) out.push({ field: 'cluster.readQuorum', problem: `must be at most cluster.replicas (${c.replicas}), got ${c.readQuorum}` });
  const envelopeBytes = config.storage.valueBytesMax + config.storage.keyBytesMax + 1024;
  if (config.rpc.frameBytesMax < envelopeBytes) {
    out.push({
      field: 'rpc.frameBytesMax',
      problem: `must be at least storage.valueBytesMax + storage.keyBytesMax + 1024 (${envelopeBytes}) so the largest value fits in a frame, got ${config.rpc.frameBytesMax}`,
    });
  }
  if (config.storage.tombstoneGraceMs <= config.cluster.hintWindowMs) {
    out.push({
      field: 'storage.tombstoneGraceMs',
      problem: `must be longer than cluster.hintWindowMs (${config.cluster.hintWindowMs}) or a replayed hint could resurrect a deleted key, got ${config.storage.tombstoneGraceMs}`,
    });
  }
  const m = config.membership;
  if (m.probeTimeoutMs >= m.probeIntervalMs) {
    out.push({ field: 'membership.probeTimeoutMs', problem: `must be shorter than membership.probeIntervalMs (${m.probeIntervalMs}), got ${m.probeTimeoutMs}` });
  }
  return out;
}
