/**
 * Gossip encryption as membership's transports use it: every UDP datagram and every push-pull /
 * stream-ping frame is a keyring envelope (src/security/keyring.ts) sealed with the primary key and
 * the cluster name as associated data. This file only adapts the keyring to the transports and
 * counts what did not open, per transport and reason; the protocol core never sees ciphertext.
 */
import { ENVELOPE_OVERHEAD_BYTES, type Keyring, type OpenFailure } from '../security/keyring.js';

/**
 * Why an incoming message was dropped before the core saw it: a keyring reason, `too-large` (a
 * datagram over the budget, not even decrypted) or `unsealed` (a plaintext push-pull frame).
 */
export type SealDropReason = OpenFailure | 'too-large' | 'unsealed';
export const SEAL_DROP_REASONS: readonly SealDropReason[] = ['short', 'version', 'unknown-key', 'auth', 'too-large', 'unsealed'];

export type SealTransport = 'udp' | 'tcp';

export type SealDrops = Record<SealTransport, Record<SealDropReason, number>>;

export type Opened = { ok: true; plaintext: Buffer } | { ok: false; reason: SealDropReason };

function zeroDrops(): Record<SealDropReason, number> {
  return { short: 0, version: 0, 'unknown-key': 0, auth: 0, 'too-large': 0, unsealed: 0 };
}

export class GossipSeal {
  /** Bytes an envelope adds to its plaintext; the datagram budget is this much smaller for the core. */
  readonly overheadBytes = ENVELOPE_OVERHEAD_BYTES;
  private readonly aad: Buffer;
  private readonly counts: SealDrops = noSealDrops();

  /** `clusterName` is bound into every envelope: a message of another cluster does not open. */
  constructor(
    readonly keyring: Keyring,
    clusterName: string,
  ) {
    this.aad = Buffer.from(clusterName, 'utf8');
  }

  seal(plaintext: Buffer | Uint8Array): Buffer {
    return this.keyring.seal(plaintext, this.aad);
  }

  /** Opens an envelope; a failure is counted under `transport`. Never throws. */
  open(envelope: Buffer | Uint8Array, transport: SealTransport): Opened {
    const result = this.keyring.tryOpen(envelope, this.aad);
    if (!result.ok) this.counts[transport][result.reason] += 1;
    return result;
  }

  /** Counts a message dropped for a reason found before opening it (too large, not sealed at all). */
  drop(transport: SealTransport, reason: 'too-large' | 'unsealed'): void {
    this.counts[transport][reason] += 1;
  }

  /** Messages dropped because they did not open, per transport and reason (copies). */
  drops(): SealDrops {
    return { udp: { ...this.counts.udp }, tcp: { ...this.counts.tcp } };
  }
}

/** All counts zero (also what an unencrypted membership reports). */
export function noSealDrops(): SealDrops {
  return { udp: zeroDrops(), tcp: zeroDrops() };
}
