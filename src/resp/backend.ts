/**
 * What the RESP front end needs from the node: the cluster layer's data operations (ClusterNode
 * satisfies RespData structurally) and a few figures for INFO. The front end owns no storage and no
 * routing: every key goes through these calls, with the cluster's W and R unless the connection chose
 * a consistency level.
 */
import type { Consistency } from '../cluster/config.js';
import type { ScanPage, ScanPageRequest } from '../cluster/cluster-scan.js';
import type { Entry } from '../storage/types.js';

export interface RespData {
  readonly id: string;
  readonly dataLimits: Readonly<{ keyBytesMax: number; valueBytesMax: number; ttlMsMax: number }>;
  readonly isLeaving: boolean;
  readLive(key: string, consistency?: Consistency): Promise<Entry | null>;
  /**
   * readLive's answer at once when this node alone gives it (one reply needed, this node owns the key
   * and is not syncing it), else undefined: then call readLive. Lets GET answer without a promise.
   */
  readLiveNow?(key: string, consistency?: Consistency): Entry | null | undefined;
  writeValue(key: string, value: Buffer, expiresAtMs: number | undefined, consistency?: Consistency): Promise<unknown>;
  deleteKey(key: string, consistency?: Consistency): Promise<unknown>;
  scanPage(cursor: bigint, request: ScanPageRequest): Promise<ScanPage>;
  nowMs(): number;
}

/** Figures for INFO's server, keyspace, replication and shoal sections. */
export interface RespNodeInfo {
  clusterName: string;
  uptimeMs: number;
  /** Bound RESP port, and the node's rpc address. */
  respPort: number;
  rpc: string;
  fsync: string;
  /** N, W, R. */
  replication: { n: number; w: number; r: number };
  /** Live keys in this node's store (not the cluster's). */
  localKeys: number;
  members: Array<{ id: string; state: string; rpc: string; owns?: number }>;
  ring: { checksum: string; owners: number };
}
