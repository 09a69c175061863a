/**
 * The shape of a node's configuration and its JSON schema (validated with ajv). Every field has its
 * default in config/default.json and its meaning, default and reason in docs/CONFIG.md; this file
 * says what values are allowed. Unknown fields are errors, so a typo never silently does nothing.
 */
import type { SchemaObject } from 'ajv';
import type { ClusterConfig } from '../cluster/config.js';
import type { MembershipConfig } from '../membership/config.js';
import { DEFAULTS } from './config-defaults.js';
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
  /** host:port for the Redis protocol (RESP2/RESP3, docs/RESP.md); "" = no RESP listener. */
  resp: string;
  /** The host other nodes reach this one at, when the bind host is a wildcard (0.0.0.0); "" = the bind host. */
  advertiseHost: string;
  zone: string;
  tags: Record<string, string>;
}

/**
 * The cluster layer's settings (src/cluster/config.ts, same names and defaults) plus the cluster's
 * name and the hint store's bounds. Its tombstoneGraceMs is storage.tombstoneGraceMs.
 */
export type ClusterSection = Omit<ClusterConfig, 'tombstoneGraceMs'> & {
  name: string;
  /** The hint store's bounds (src/cluster/hints.ts). */
  hintsMax: number;
  hintBytesMax: number;
  hintTtlMs: number;
  hintReplayConcurrency: number;
};

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

/** Membership's settings (src/membership/config.ts, same names and defaults) plus the seeds and the leave bound. */
export type MembershipSection = MembershipConfig & {
  /** host:port (an IP or a DNS name) or srv:NAME (src/membership/seeds.ts). */
  seeds: string[];
  /** DNS servers (ip or ip:port) for resolving seeds; empty = the system's resolver. */
  dnsServers: string[];
  /** On a graceful stop, wait at most this long for the leave announcement to spread. */
  leaveTimeoutMs: number;
  /**
   * Serve before any seed or known member answered: this node may start a new cluster although it
   * has seeds or known members (`shoal agent --bootstrap`). Off: such a node keeps joining and
   * answers UNAVAILABLE until one answers. A node without seeds and known members always starts one.
   */
  bootstrap: boolean;
};

/** The Redis front end's own settings (src/resp/); its limits are the rpc section's. */
export interface RespSection {
  /** "" = no password; else every connection must AUTH (or HELLO ... AUTH) first. */
  password: string;
  /** Allow FLUSHALL / FLUSHDB (they delete every key of the cluster). */
  flushAllEnabled: boolean;
  /** KEYS answers at most this many keys. */
  keysMax: number;
}

export interface ShoalConfig {
  node: NodeSection;
  cluster: ClusterSection;
  storage: StorageSection;
  rpc: RpcSection;
  resp: RespSection;
  membership: MembershipSection;
  log: { level: LogLevel; format: LogFormat };
  metrics: { enabled: boolean };
  /** leave: announce a leave (and hand data off) on a graceful stop; false for a rolling restart. */
  shutdown: { timeoutMs: number; leave: boolean };
  security: SecuritySection;
}

/** Gossip encryption and TLS (docs/SECURITY.md). Empty strings mean "not set". */
export interface SecuritySection {
  /** Base64 AES-256 key; seeds the keyring file on first start when the file does not exist. */
  gossipKey: string;
  /** Keyring file; "" = <dataDir>/keyring.json. When it exists, gossip and push-pull are encrypted. */
  keyringFile: string;
  /** Accept a keyring file that group or others can read (default false). */
  allowLooseKeyringFile: boolean;
  /** TLS on the RPC port (clients and node to node). */
  tls: boolean;
  /** PEM file of the CA that signs node (and, with tlsClientAuth, client) certificates. */
  tlsCa: string;
  /** PEM certificate and key of this node. */
  tlsCert: string;
  tlsKey: string;
  /** Require a client certificate signed by tlsCa (mutual TLS). */
  tlsClientAuth: boolean;
  /** Name checked in the peers' certificates; "" = the host being connected to. */
  tlsServerName: string;
}

const DAY_MS = 86_400_000;
const GIB = 1024 ** 3;

/** host:port, host a name, an IPv4 address or a bracketed IPv6 address; port 0 = any free port. */
export const ADDRESS_PATTERN = '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$';

function int(minimum: number, maximum: number) {
  return { type: 'integer', minimum, maximum } as const;
}

const address = { type: 'string', pattern: ADDRESS_PATTERN } as const;

/** A seed: host:port (an IP address or a DNS name, resolved to A/AAAA) or srv:NAME (an SRV record's targets and ports). */
export const SEED_PATTERN = '^(srv:[A-Za-z0-9_][A-Za-z0-9_-]*(\\.[A-Za-z0-9_][A-Za-z0-9_-]*)+\\.?|(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9_.-]+):([0-9]{1,5}))$';

/** A DNS server: an IPv4 address, an IPv6 address, or either with a port (ip:port, [ipv6]:port). */
export const DNS_SERVER_PATTERN = '^([0-9.]+(:[0-9]{1,5})?|[0-9A-Fa-f:]+|\\[[0-9A-Fa-f:.]+\\]:[0-9]{1,5})$';

/** Ids and cluster names: short, printable, safe in file names and metric labels. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

/**
 * The schema of a section that mirrors a layer's own config (cluster, membership): every field of
 * config/default.json's section, numbers as non-negative integers, booleans as booleans. The layer's
 * resolve function then checks its own ranges and cross-field rules (see config.ts).
 */
/** An object with exactly these fields, every one of them required (a typo is an error, not a no-op). */
function strict(properties: Record<string, object>): SchemaObject {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties), properties };
}

function tunables(section: string, special: Record<string, object>): SchemaObject {
  const defaults = (DEFAULTS as Record<string, Record<string, unknown>>)[section];
  const properties: Record<string, object> = {};
  for (const [key, value] of Object.entries(defaults)) {
    properties[key] = special[key] ?? (typeof value === 'boolean' ? { type: 'boolean' } : int(0, Number.MAX_SAFE_INTEGER));
  }
  return strict(properties);
}

export const configSchema: SchemaObject = strict({
  node: strict({
    id: { type: 'string', pattern: NAME_PATTERN },
    dataDir: { type: 'string', minLength: 1 },
    gossip: address,
    rpc: address,
    metrics: address,
    resp: { type: 'string', pattern: `^$|${ADDRESS_PATTERN}` },
    advertiseHost: { type: 'string', pattern: '^([A-Za-z0-9_.:-]*|\\[[0-9A-Fa-f:.]+\\])$', maxLength: 255 },
    zone: { type: 'string', maxLength: 64 },
    tags: {
      type: 'object',
      required: [],
      maxProperties: 32,
      additionalProperties: { type: 'string', maxLength: 256 },
    },
  }),
  cluster: tunables('cluster', { name: { type: 'string', pattern: NAME_PATTERN } }),
  storage: strict({
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
  }),
  rpc: strict({
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
  }),
  resp: strict({
    password: { type: 'string', maxLength: 512 },
    flushAllEnabled: { type: 'boolean' },
    keysMax: int(1, 10_000_000),
  }),
  membership: tunables('membership', {
    seeds: { type: 'array', items: { type: 'string', pattern: SEED_PATTERN }, maxItems: 64 },
    dnsServers: { type: 'array', items: { type: 'string', pattern: DNS_SERVER_PATTERN }, maxItems: 8 },
  }),
  log: strict({
    level: { type: 'string', enum: ['error', 'warn', 'info', 'debug'] },
    format: { type: 'string', enum: ['text', 'json'] },
  }),
  metrics: strict({ enabled: { type: 'boolean' } }),
  shutdown: strict({ timeoutMs: int(100, 600_000), leave: { type: 'boolean' } }),
  security: strict({
    gossipKey: { type: 'string', pattern: '^([A-Za-z0-9+/]{43}=)?$' },
    keyringFile: { type: 'string', maxLength: 4096 },
    allowLooseKeyringFile: { type: 'boolean' },
    tls: { type: 'boolean' },
    tlsCa: { type: 'string', maxLength: 4096 },
    tlsCert: { type: 'string', maxLength: 4096 },
    tlsKey: { type: 'string', maxLength: 4096 },
    tlsClientAuth: { type: 'boolean' },
    tlsServerName: { type: 'string', maxLength: 255 },
  }),
});

/**
 * Rules that span fields, checked after the schema. Each returns the offending field and what is
 * wrong, or null.
 */
export function crossFieldProblems(config: ShoalConfig): Array<{ field: string; problem: string }> {
  const out: Array<{ field: string; problem: string }> = [];
  const c = config.cluster;
  for (const q of ['writeQuorum', 'readQuorum'] as const) {
    if (c[q] < 1 || c[q] > c.replicationFactor) {
      out.push({ field: `cluster.${q}`, problem: `must be from 1 to cluster.replicationFactor (${c.replicationFactor}); got ${c[q]}` });
    }
  }
  const envelopeBytes = config.storage.valueBytesMax + config.storage.keyBytesMax + 1024;
  if (config.rpc.frameBytesMax < envelopeBytes) {
    out.push({
      field: 'rpc.frameBytesMax',
      problem: `must be at least storage.valueBytesMax + storage.keyBytesMax + 1024 (${envelopeBytes}) so the largest value fits in a frame; got ${config.rpc.frameBytesMax}`,
    });
  }
  if (config.storage.tombstoneGraceMs <= c.deadOwnerGraceMs) {
    out.push({
      field: 'storage.tombstoneGraceMs',
      problem: `must be longer than cluster.deadOwnerGraceMs (${c.deadOwnerGraceMs}) or a replica that was away could bring deleted keys back; got ${config.storage.tombstoneGraceMs}`,
    });
  }
  if (config.storage.tombstoneGraceMs <= c.hintTtlMs) {
    out.push({
      field: 'storage.tombstoneGraceMs',
      problem: `must be longer than cluster.hintTtlMs (${c.hintTtlMs}) or a replayed hint could bring a deleted key back; got ${config.storage.tombstoneGraceMs}`,
    });
  }
  const sec = config.security;
  if (sec.tls) {
    for (const f of ['tlsCa', 'tlsCert', 'tlsKey'] as const) {
      if (sec[f] === '') out.push({ field: `security.${f}`, problem: 'must name a PEM file when security.tls is true' });
    }
  } else if (sec.tlsClientAuth) {
    out.push({ field: 'security.tlsClientAuth', problem: 'needs security.tls true' });
  }
  const m = config.membership;
  if (m.probeTimeoutMs > m.probeIntervalMs) {
    out.push({ field: 'membership.probeTimeoutMs', problem: `must not exceed membership.probeIntervalMs (${m.probeIntervalMs}); got ${m.probeTimeoutMs}` });
  }
  return out;
}
