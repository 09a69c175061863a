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
  /**
   * writeValue without a promise of its own when this node alone takes the write (N = 1 and it owns
   * the key): applies it to the local store now and returns a LocalWrite, whose `durable` promise
   * settles when its WAL batch is durable and is the same object for every write of that batch (so a
   * caller needs one callback per batch, not per write). Null: nothing done, call writeValue. `value`
   * may be a view of a receive buffer: the store copies it, and so does writeValueAfter.
   */
  writeValueNow?(key: string, value: Buffer, expiresAtMs: number | undefined, consistency?: Consistency): LocalWrite | null;
  /**
   * What writeValue does once a LocalWrite's `durable` rejected with `err`: a timeout stays one, any
   * other failure goes to the round (which covers the owner as it would have), without applying the
   * write twice. Settles like writeValue's promise.
   */
  writeValueAfter?(key: string, write: LocalWrite, err: unknown): Promise<unknown>;
  deleteKey(key: string, consistency?: Consistency): Promise<unknown>;
  scanPage(cursor: bigint, request: ScanPageRequest): Promise<ScanPage>;
  nowMs(): number;
}

/** A write writeValueNow applied locally; opaque to the front end beyond `durable`. */
export interface LocalWrite {
  readonly durable: Promise<unknown>;
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
