/**
 * Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014), packed into one safe
 * integer so it is a plain msgpack number that compares with `<`:
 *
 *     ts = (physicalMs - HLC_EPOCH_MS) * 4096 + logical        (logical in 0..4095, 12 bits)
 *
 * now() returns max(wall clock, last + 1): it never goes backwards, even when the wall clock does, and
 * 4096 stamps within one millisecond roll over into the next millisecond (the clock runs slightly ahead
 * of the wall until the wall catches up). observe(ts) advances `last` past a remote timestamp, so the
 * next local stamp orders after everything this node has seen (causality across nodes and clients).
 *
 * Bounded forward jump: a remote ts whose physical part is more than `maxDriftMs` (default 60 s) ahead
 * of the local wall clock is refused with ShoalError BAD_REQUEST (details.reason = 'clock-drift'), or,
 * with `onDrift: 'clamp'`, the clock advances only to wall + maxDriftMs. Without the bound one node with
 * a clock set to next year (or a client sending a huge seenTs) would drag every clock in the cluster
 * there for good, and every later write would carry that date.
 *
 * Range: counted from HLC_EPOCH_MS (2025-01-01) rather than 1970, (physicalMs - epoch) * 4096 stays
 * below 2^53 until 2094-09 (2^53 / 4096 ms ≈ 69.7 years); from the Unix epoch it would overflow in 2039.
 * A later clock is refused with INTERNAL rather than silently losing precision; a wall clock before the
 * epoch (a node whose clock was never set) counts as the epoch, and the logical part keeps order.
 */
import { type Clock, systemClock } from '../clock.js';
import { ShoalError } from '../errors.js';
import type { Version } from '../storage/types.js';

export const HLC_LOGICAL_BITS = 12;
/** 2025-01-01T00:00:00Z: physical time is counted from here, so the packing lasts until 2094. */
export const HLC_EPOCH_MS = Date.UTC(2025, 0, 1);
/** 2^12: logical counter values per physical millisecond. */
export const HLC_LOGICAL_SPAN = 1 << HLC_LOGICAL_BITS;
/** The largest wall-clock ms that still packs into a safe integer. */
export const HLC_PHYSICAL_MS_MAX = HLC_EPOCH_MS + Math.floor(Number.MAX_SAFE_INTEGER / HLC_LOGICAL_SPAN) - 1;

export interface HlcOptions {
  /** How far ahead of the local wall clock a remote timestamp may be. Default 60 000 ms. */
  maxDriftMs?: number;
  /** What observe() does with a timestamp beyond maxDriftMs: 'reject' (throw, default) or 'clamp'. */
  onDrift?: 'reject' | 'clamp';
}

export const HLC_DEFAULTS = {
  /** One minute: far beyond NTP-synchronised skew (ms), small enough that a bad clock is contained. */
  maxDriftMs: 60_000,
  onDrift: 'reject',
} as const;

export interface HlcStats {
  lastTs: number;
  /** Remote timestamps refused or clamped for being too far ahead. */
  driftRejected: number;
  /** The largest lead of an accepted remote timestamp over the local wall clock, in ms. */
  remoteAheadMsMax: number;
}

/** Physical (wall-clock, Unix epoch) milliseconds of a packed timestamp. */
export function hlcPhysicalMs(ts: number): number {
  return HLC_EPOCH_MS + Math.floor(ts / HLC_LOGICAL_SPAN);
}

/** Logical counter of a packed timestamp. */
export function hlcLogical(ts: number): number {
  return ts % HLC_LOGICAL_SPAN;
}

/** Packs wall-clock ms (Unix epoch; clamped to HLC_EPOCH_MS) and a logical counter. */
export function hlcPack(physicalMs: number, logical: number): number {
  return Math.max(0, physicalMs - HLC_EPOCH_MS) * HLC_LOGICAL_SPAN + logical;
}

export class Hlc {
  readonly nodeId: string;
  private readonly wallMs: () => number;
  private readonly maxDriftMs: number;
  private readonly onDrift: 'reject' | 'clamp';
  private last = 0;
  private driftRejected = 0;
  private remoteAheadMsMax = 0;

  /** `clock`: the wall clock is its now() (a bare function is taken as now() itself). */
  constructor(nodeId: string, clock: Pick<Clock, 'now'> | (() => number) = systemClock, options: HlcOptions = {}) {
    this.nodeId = nodeId;
    this.wallMs = typeof clock === 'function' ? clock : () => clock.now();
    this.maxDriftMs = options.maxDriftMs ?? HLC_DEFAULTS.maxDriftMs;
    this.onDrift = options.onDrift ?? HLC_DEFAULTS.onDrift;
    if (!(this.maxDriftMs >= 0)) throw new ShoalError('CONFIG', `hlc maxDriftMs must be ≥ 0, got ${this.maxDriftMs}`);
  }

  /** A new version, strictly greater than every ts this clock returned or observed. */
  now(): Version {
    const ts = Math.max(this.wallTs(), this.last + 1);
    if (ts > Number.MAX_SAFE_INTEGER) throw new ShoalError('INTERNAL', 'hlc timestamp overflow (clock past 2094?)');
    this.last = ts;
    return { ts, node: this.nodeId };
  }

  /** The largest ts issued or observed so far (0 before the first). */
  peek(): number {
    return this.last;
  }

  /**
   * Advances the clock past a remote timestamp (a replica's entry, a client's seenTs). Throws
   * BAD_REQUEST for a ts that is not a non-negative safe integer, and for one more than maxDriftMs
   * ahead of the wall clock unless onDrift is 'clamp'.
   */
  observe(ts: number): void {
    if (!Number.isSafeInteger(ts) || ts < 0) {
      throw new ShoalError('BAD_REQUEST', `hlc timestamp must be a non-negative safe integer, got ${ts}`);
    }
    if (ts <= this.last) return;
    const wall = Math.max(this.wallMs(), HLC_EPOCH_MS); // a clock before the epoch counts as the epoch
    const aheadMs = hlcPhysicalMs(ts) - wall;
    if (aheadMs > this.maxDriftMs) {
      this.driftRejected++;
      if (this.onDrift === 'reject') {
        throw new ShoalError('BAD_REQUEST', `timestamp is ${aheadMs} ms ahead of this node's clock (max ${this.maxDriftMs} ms)`, {
          reason: 'clock-drift',
          aheadMs,
          maxDriftMs: this.maxDriftMs,
        });
      }
      this.last = Math.max(this.last, hlcPack(wall + this.maxDriftMs, 0));
      return;
    }
    if (aheadMs > this.remoteAheadMsMax) this.remoteAheadMsMax = aheadMs;
    this.last = ts;
  }

  stats(): HlcStats {
    return { lastTs: this.last, driftRejected: this.driftRejected, remoteAheadMsMax: this.remoteAheadMsMax };
  }

  private wallTs(): number {
    const ms = Math.floor(this.wallMs());
    if (ms > HLC_PHYSICAL_MS_MAX) throw new ShoalError('INTERNAL', `hlc: the wall clock (${new Date(ms).toISOString()}) is past the packable range (2094)`);
    return hlcPack(ms, 0);
  }
}
