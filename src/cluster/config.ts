/**
 * Every tunable of the cluster layer, each default with the reason it has that value. Intervals of 0
 * disable the periodic task (tests then drive it by hand with `runOnce()`).
 */
import assert from 'node:assert/strict';
import { ShoalError } from '../errors.js';
import { RING_DEFAULTS } from '../ring/ring.js';
import { DEFAULT_RPC_LIMITS } from '../rpc/limits.js';
import { HINT_DEFAULTS } from './hints.js';

export type Consistency = 'one' | 'quorum' | 'all';

export interface ClusterConfig {
  /** N: copies of each key. */
  replicationFactor: number;
  /** W: acknowledgements a write waits for (clamped to N). */
  writeQuorum: number;
  /** R: replies a read waits for (clamped to N). */
  readQuorum: number;
  /** Virtual nodes per member on the ring. */
  vnodes: number;
  /** The coordinator's whole budget for one client request. */
  requestTimeoutMs: number;
  /** One node-to-node call (apply, read, hint) before it counts as failed. */
  internalTimeoutMs: number;
  /** A client seenTs or replicated version further than this ahead of our clock is refused. */
  clockAheadMsMax: number;
  /**
   * The RPC frame limit (rpc.frameBytesMax). Every node-to-node batch (anti-entropy, streaming, leave,
   * clean-up) is cut to fit in it, with room for the envelope (batch.ts).
   */
  frameBytesMax: number;

  /** Store a hint (on a stand-in or the coordinator) for every replica a write misses. */
  hintsEnabled: boolean;
  /** How often to look for hint targets that are alive again (0 = only on membership events). */
  hintReplayIntervalMs: number;
  /** Replay rate per target. */
  hintReplayPerSecMax: number;
  /** Hints older than this are dropped unsent (the agent passes it to HintStore.open); checked against tombstoneGraceMs. */
  hintTtlMs?: number;

  /**
   * Ask every up replica on each read (Dynamo/Riak style). Off (default): ask R of them, this node first
   * when it is one, and more only when one fails, answers while still syncing, or is slower than
   * readSpeculativeMs (Cassandra's speculative retry). W + R > N holds either way.
   */
  readAllReplicas: boolean;
  /** A targeted read with too few replies after this long asks the remaining replicas too. */
  readSpeculativeMs: number;
  /** Write the newest version back to replicas a read found stale or missing. */
  readRepairEnabled: boolean;
  /** Read repairs in flight at once; more are dropped and counted (anti-entropy catches them). */
  readRepairInFlightMax: number;

  /** Periodic digest comparison with one peer per round (0 = off). */
  antiEntropyIntervalMs: number;
  /** Digest buckets per peer comparison. */
  antiEntropyBuckets: number;
  /** Keys exchanged per second by anti-entropy, both directions together. */
  antiEntropyKeysPerSecMax: number;
  /** Keys one anti-entropy round may exchange; the rest wait for the next round. */
  antiEntropyKeysPerRoundMax: number;

  /** Pull newly owned ranges when the ring changes (off: only hints/repair/anti-entropy move data). */
  streamingEnabled: boolean;
  /** Bytes per second a node receives while streaming ranges in (and pushes out on leave). */
  streamBytesPerSecMax: number;
  /** Keys per streaming, leave or clean-up batch (batches are also cut to fit frameBytesMax). */
  streamBatchKeysMax: number;
  /** Wait this long after the last ring change before streaming, to coalesce bursts of events. */
  ringSettleMs: number;
  /** Retry a streaming round whose source failed after this long. */
  streamRetryMs: number;
  /** Idle streaming sessions on the sending side are dropped after this long. */
  streamSessionIdleMs: number;
  /** Sending-side sessions open at once. */
  streamSessionsMax: number;
  /** After the ring has been stable this long, hand off and drop copies this node no longer owns (0 = off). */
  cleanupDelayMs: number;

  /** A dead member keeps owning its ranges this long (hints cover it); after that they are re-replicated. */
  deadOwnerGraceMs: number;
  /**
   * Tombstones are kept this long (the agent passes it to openStore); must exceed deadOwnerGraceMs and
   * hintTtlMs so that neither a returning replica nor a late hint can bring a deleted key back.
   */
  tombstoneGraceMs: number;
}

export const DEFAULT_CLUSTER_CONFIG: Readonly<ClusterConfig> = Object.freeze({
  replicationFactor: 3, // survives one node loss with quorum 2, the Dynamo/Cassandra default
  writeQuorum: 2, // W + R > N: a quorum read sees every quorum write
  readQuorum: 2, // ditto
  vnodes: RING_DEFAULTS.vnodes, // the ring's measured choice (docs/RING.md): most loaded ≈ 1.05× mean
  requestTimeoutMs: 5_000, // long enough for a replica behind a suspect peer, short enough for a client
  internalTimeoutMs: 2_000, // a healthy loopback/LAN call is ~1 ms; 2 s means the replica is in trouble
  clockAheadMsMax: 60_000, // NTP keeps real clocks within ms; a minute ahead is a bug or an attack
  frameBytesMax: DEFAULT_RPC_LIMITS.frameBytesMax, // the agent passes its rpc.frameBytesMax

  hintsEnabled: true, // the cheapest way to catch a briefly absent replica up
  hintReplayIntervalMs: 1_000, // a returning replica is caught up within a second of being seen alive
  hintReplayPerSecMax: 5_000, // replay must not starve the client traffic of the returning node
  hintTtlMs: HINT_DEFAULTS.hintTtlMs, // 3 h like Cassandra's hint window; after that anti-entropy repairs

  readAllReplicas: false, // R calls instead of N: a third less read traffic at N=3; anti-entropy covers the rest
  readSpeculativeMs: 100, // well above a healthy loopback/LAN reply, well below internalTimeoutMs
  readRepairEnabled: true, // hot keys converge on the first quorum read that sees a stale replica
  readRepairInFlightMax: 64, // repairs are best effort; anti-entropy backs them up

  antiEntropyIntervalMs: 10_000, // with 4 peers a full sweep takes ~40 s, inside the 60 s convergence goal
  antiEntropyBuckets: 1_024, // ~1k keys per bucket at 1M keys: a differing bucket lists few keys
  antiEntropyKeysPerSecMax: 10_000, // bounded background load
  antiEntropyKeysPerRoundMax: 50_000, // one round stays short even after a long partition

  streamingEnabled: true,
  streamBytesPerSecMax: 64 * 1024 * 1024, // well under a LAN link, leaves room for client traffic
  streamBatchKeysMax: 1_000, // ~1 MB frames at 1 KB values, far below the frame limit
  ringSettleMs: 1_000, // membership changes arrive in bursts (a join gossips several events)
  streamRetryMs: 2_000, // a failed source is usually a node being marked down right now
  streamSessionIdleMs: 60_000, // a puller that vanished frees its key list after a minute
  streamSessionsMax: 16, // each session holds a key list; bounded memory
  cleanupDelayMs: 30_000, // give in-flight streams and hint replays time before dropping copies

  deadOwnerGraceMs: 10 * 60_000, // most crashes are restarts; moving ranges costs more than hints
  tombstoneGraceMs: 24 * 3_600_000, // > hintTtlMs and deadOwnerGraceMs with margin; a day of deletes in memory
});

export function resolveClusterConfig(partial: Partial<ClusterConfig> = {}): ClusterConfig {
  const config: ClusterConfig = { ...DEFAULT_CLUSTER_CONFIG, ...partial };
  const positive: Array<keyof ClusterConfig> = [
    'replicationFactor', 'writeQuorum', 'readQuorum', 'vnodes', 'requestTimeoutMs', 'internalTimeoutMs',
    'hintReplayPerSecMax', 'readRepairInFlightMax', 'antiEntropyBuckets', 'antiEntropyKeysPerSecMax',
    'antiEntropyKeysPerRoundMax', 'streamBytesPerSecMax', 'streamBatchKeysMax', 'streamSessionsMax', 'frameBytesMax',
  ];
  for (const name of positive) {
    const value = config[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new ShoalError('CONFIG', `cluster.${name} must be a positive integer, got ${String(value)}`);
    }
  }
  if (config.writeQuorum > config.replicationFactor || config.readQuorum > config.replicationFactor) {
    throw new ShoalError('CONFIG', 'cluster.writeQuorum and cluster.readQuorum must not exceed replicationFactor');
  }
  const window = Math.max(config.deadOwnerGraceMs, config.hintTtlMs ?? HINT_DEFAULTS.hintTtlMs);
  if (config.tombstoneGraceMs <= window) {
    throw new ShoalError(
      'CONFIG',
      `cluster.tombstoneGraceMs (${config.tombstoneGraceMs}) must exceed deadOwnerGraceMs and hintTtlMs (${window}), ` +
        'or a replica that was away or a late hint could bring deleted keys back',
    );
  }
  return config;
}

/** How many replies a request needs for a consistency level, given the replicas it has (n ≥ 1). */
export function requiredReplies(consistency: Consistency | undefined, configured: number, n: number): number {
  assert.ok(Number.isInteger(n) && n >= 1, `a key has at least one replica (n = ${n})`);
  let need: number;
  switch (consistency) {
    case 'one':
      need = 1;
      break;
    case 'all':
      need = n;
      break;
    case 'quorum':
      need = Math.floor(n / 2) + 1;
      break;
    default:
      need = Math.min(configured, n);
  }
  assert.ok(need >= 1 && need <= n, `replies needed (${need}) must be within 1..${n}`);
  return need;
}
