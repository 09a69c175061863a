/**
 * Every membership default in one place, each with the reason for its value. The timing values follow
 * hashicorp/memberlist's LAN profile (DefaultLANConfig); the limits are Shoal's own.
 */
import { ShoalError } from '../errors.js';

export interface MembershipConfig {
  /** Time between two probes of this node (one member per period). */
  probeIntervalMs: number;
  /** How long a direct ping waits for its ack before asking others to probe indirectly. */
  probeTimeoutMs: number;
  /** Members asked to probe a silent member indirectly (ping-req), the k of SWIM. */
  indirectChecks: number;
  /** Suspicion timeout = suspicionMult × max(1, log10 n) × probeIntervalMs (the minimum). */
  suspicionMult: number;
  /** Lifeguard: a fresh suspicion starts at this multiple of the minimum and shrinks with confirmations. */
  suspicionMaxTimeoutMult: number;
  /** Each update is piggybacked retransmitMult × ceil(log10(n + 1)) times. */
  retransmitMult: number;
  /** Time between two gossip rounds that send queued updates to random members. */
  gossipIntervalMs: number;
  /** Members sent queued updates per gossip round. */
  gossipNodes: number;
  /** Dead members still receive gossip this long, so a falsely-declared member learns it and refutes. */
  gossipToTheDeadMs: number;
  /** Time between two full-state push-pull syncs with a random member (scaled up for large clusters). */
  pushPullIntervalMs: number;
  /** Time between two push-pull attempts with a random dead member, so that partitions heal (Serf's reconnect). */
  reconnectIntervalMs: number;
  /** Local health awareness: timeouts are scaled up to this many times when this node is unhealthy. */
  awarenessMaxMultiplier: number;
  /** The Lifeguard parts (awareness, nacks, shrinking suspicion, buddy pings); off gives plain SWIM. */
  lifeguard: boolean;
  /** Also ping over TCP when UDP got no ack (memberlist's TCP fallback), so a lossy UDP path is not a failure. */
  streamPing: boolean;
  /** Datagram budget: compound packets are packed up to this many bytes; larger datagrams are dropped. */
  datagramBytesMax: number;
  /** Messages in one compound datagram, so a crafted datagram cannot make us loop long. */
  compoundMessagesMax: number;
  /** Dead and left members are kept this long (a tombstone) so late gossip cannot resurrect them. */
  deadReapMs: number;
  /** Encoded bytes of one member's metadata (rpc address, zone, tags). */
  metaBytesMax: number;
  /** Members known at most; news about further unknown members is dropped and counted. */
  membersMax: number;
  /** Members sent in one push-pull sync. */
  syncMembersMax: number;
  /** Bytes of one push-pull sync frame. */
  syncBytesMax: number;
  /** How long a push-pull TCP exchange may take. */
  syncTimeoutMs: number;
  /** Concurrent inbound push-pull connections. */
  syncConnectionsMax: number;
  /** Updates waiting in the broadcast queue; the most-sent are dropped first when it is full. */
  broadcastQueueMax: number;
  /** Indirect probes this node relays at once for others (ping-req). */
  relaysMax: number;
  /** First delay before joining through the seeds again when none answered. */
  joinRetryInitialMs: number;
  /** Longest delay between two join attempts (the delay doubles up to this). */
  joinRetryMaxMs: number;
  /** Time between two resolutions of DNS seeds (host names, srv:) once joined; each join attempt resolves them too. */
  seedResolveIntervalMs: number;
  /** Bound on resolving one seed name (all its queries). */
  seedResolveTimeoutMs: number;
}

export const DEFAULT_MEMBERSHIP_CONFIG: Readonly<MembershipConfig> = Object.freeze({
  probeIntervalMs: 1000, // memberlist LAN: one probe a second keeps load at ~2 packets/s/member
  probeTimeoutMs: 500, // memberlist LAN: a LAN round trip is far below this; leaves time for ping-req
  indirectChecks: 3, // memberlist LAN: three independent paths make a lossy link unlikely to look dead
  suspicionMult: 4, // memberlist LAN: about 4 periods (× log10 n) for the suspect to hear and refute
  suspicionMaxTimeoutMult: 6, // memberlist: a lone accuser waits 6× longer than a confirmed one
  retransmitMult: 4, // memberlist LAN: λ = 4 makes missing an update improbable at 10% loss
  gossipIntervalMs: 200, // memberlist LAN: updates spread within a few hundred ms
  gossipNodes: 3, // memberlist LAN: fan-out 3 per round, epidemic spread in O(log n) rounds
  gossipToTheDeadMs: 30_000, // memberlist LAN: long enough for a falsely-declared member to hear and refute
  pushPullIntervalMs: 30_000, // memberlist LAN: full sync is heavy (TCP, all members), so rarely
  reconnectIntervalMs: 30_000, // Serf's reconnect interval: try one dead member every 30 s to heal partitions
  awarenessMaxMultiplier: 8, // memberlist: an unhealthy node waits up to 8× longer before accusing
  lifeguard: true, // Lifeguard (Dadgar et al. 2018) cuts false positives by orders of magnitude
  streamPing: true, // memberlist LAN (DisableTcpPings false): TCP retransmits survive UDP loss
  datagramBytesMax: 1400, // memberlist UDPBufferSize: below a 1500-byte Ethernet MTU, no fragmentation
  compoundMessagesMax: 255, // memberlist's compound limit; 1400 bytes hold far fewer anyway
  deadReapMs: 24 * 3_600_000, // Serf/Consul keep failed members 24 h: no delayed gossip outlives that
  metaBytesMax: 512, // memberlist MetaMaxSize: keeps an alive message well inside one datagram
  membersMax: 16_384, // 10 000 members (the simulated and documented size) with 60 % headroom; bounds memory under spoofed joins
  syncMembersMax: 16_384, // a sync carries everyone up to membersMax
  syncBytesMax: 16 * 1024 * 1024, // ≥ 16 384 × memberWireBytesMax(512) = 16 384 × 945 + envelope: a full sync at worst-case sizes fits
  syncTimeoutMs: 10_000, // memberlist TCPTimeout: a full sync on a LAN takes milliseconds
  syncConnectionsMax: 32, // a sync per member per 30 s arrives far below this; bounds a flood
  broadcastQueueMax: 16_384, // one update per member is queued at most (= membersMax), so only a storm gets here
  relaysMax: 1024, // each member asks at most k others per period, so a few per period is normal
  joinRetryInitialMs: 250, // a seed that is still starting is usually up within a second
  joinRetryMaxMs: 2_000, // a joining node does not serve: a seed that comes back is found within 2 s (a few TCP connects per try)
  seedResolveIntervalMs: 30_000, // like push-pull: a seed DNS lists but no member knows is merged within a sync period
  seedResolveTimeoutMs: 5000, // a resolver that does not answer in 5 s is down; the next attempt asks again
});

/** Fills defaults and checks the values; a bad value is a CONFIG error naming the field. */
export function resolveMembershipConfig(partial: Partial<MembershipConfig> = {}): MembershipConfig {
  const config: MembershipConfig = { ...DEFAULT_MEMBERSHIP_CONFIG };
  for (const [key, value] of Object.entries(partial)) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_MEMBERSHIP_CONFIG)) throw new ShoalError('CONFIG', `unknown membership setting "${key}"`);
    (config as unknown as Record<string, unknown>)[key] = value;
  }
  for (const [key, value] of Object.entries(config)) {
    if (key === 'lifeguard' || key === 'streamPing') {
      if (typeof value !== 'boolean') throw new ShoalError('CONFIG', `membership.${key} must be a boolean`);
    } else if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new ShoalError('CONFIG', `membership.${key} must be a non-negative number, got ${String(value)}`);
    }
  }
  const positive: (keyof MembershipConfig)[] = [
    'probeIntervalMs', 'probeTimeoutMs', 'suspicionMult', 'suspicionMaxTimeoutMult', 'retransmitMult',
    'gossipIntervalMs', 'pushPullIntervalMs', 'reconnectIntervalMs', 'awarenessMaxMultiplier',
    'compoundMessagesMax', 'membersMax', 'syncMembersMax', 'broadcastQueueMax', 'joinRetryInitialMs',
    'seedResolveIntervalMs', 'seedResolveTimeoutMs',
  ];
  for (const key of positive) {
    if ((config[key] as number) <= 0) throw new ShoalError('CONFIG', `membership.${key} must be positive`);
  }
  if (config.probeTimeoutMs > config.probeIntervalMs) {
    throw new ShoalError('CONFIG', 'membership.probeTimeoutMs must not exceed probeIntervalMs');
  }
  if (config.datagramBytesMax < 512 || config.datagramBytesMax > 65_507) {
    throw new ShoalError('CONFIG', 'membership.datagramBytesMax must be between 512 and 65507');
  }
  if (config.joinRetryMaxMs < config.joinRetryInitialMs) {
    throw new ShoalError('CONFIG', 'membership.joinRetryMaxMs must be at least joinRetryInitialMs');
  }
  return config;
}
