/**
 * AES-256-GCM keyring for gossip and push-pull encryption: several keys installed so that keys rotate
 * without downtime, one of them primary (used to seal), every one usable to open.
 *
 * Envelope: `[version u8][key id 4][nonce 12][ciphertext][tag 16]` (ENVELOPE_OVERHEAD_BYTES = 33 on top
 * of the plaintext). The associated data is the header (version, key id, nonce) followed by the
 * caller's `aad` (the cluster name), so a message sealed for another cluster, or with any header, body
 * or tag bit changed, fails to open. A key id is the first 4 bytes of SHA-256(key): every node derives
 * the same id from the same key, nothing to coordinate.
 *
 * Nonces are 12 random bytes per message. With random nonces NIST SP 800-38D bounds one key to 2^32
 * messages; at 10 datagrams per second per node a key lasts over 13 years per node, and `stats()`
 * counts seals per key so an operator can see it. Rotate long before.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';
import { ShoalError } from '../errors.js';

export const ENVELOPE_VERSION = 1;
export const KEY_BYTES = 32;
export const KEY_ID_BYTES = 4;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES + NONCE_BYTES;
export const ENVELOPE_OVERHEAD_BYTES = HEADER_BYTES + TAG_BYTES;
/** Keys installed at once: rotation needs two or three; the bound keeps `open` cheap and the file small. */
export const KEYS_MAX = 16;
/** Nonces drawn from the OS per refill (one syscall for many messages). */
const NONCE_POOL_BYTES = NONCE_BYTES * 256;

export type OpenFailure = 'short' | 'version' | 'unknown-key' | 'auth';
export const OPEN_FAILURES: readonly OpenFailure[] = ['short', 'version', 'unknown-key', 'auth'];

export type OpenResult = { ok: true; plaintext: Buffer } | { ok: false; reason: OpenFailure };

export interface KeyInfo {
  /** Hex key id as it appears in envelopes. */
  id: string;
  primary: boolean;
  /** Messages sealed with this key since it was installed in this process. */
  sealed: number;
  /** Messages opened with this key since it was installed in this process. */
  opened: number;
}

export interface KeyringStats {
  keys: number;
  primaryId: string;
  sealed: number;
  opened: number;
  /** Envelopes that did not open, by reason; each one was dropped by the caller. */
  openFailures: Record<OpenFailure, number>;
}

interface InstalledKey {
  id: string;
  idBytes: Buffer;
  key: Buffer;
  sealed: number;
  opened: number;
}

/** A fresh random 256-bit key. */
export function generateKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** The 4-byte id of a key, as hex. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest().subarray(0, KEY_ID_BYTES).toString('hex');
}

/** A key given as a Buffer or base64 text, checked to be exactly 32 bytes. */
export function parseKey(key: Buffer | string): Buffer {
  if (typeof key === 'string') {
    const text = key.trim();
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new ShoalError('CONFIG', 'keyring: a key must be base64 text');
    key = Buffer.from(text, 'base64');
  }
  if (key.length !== KEY_BYTES) throw new ShoalError('CONFIG', `keyring: a key must be ${KEY_BYTES} bytes (AES-256), got ${key.length}`);
  return Buffer.from(key);
}

/** The id of a key given as the key itself (Buffer or base64) or as its 8 hex digit id. */
export function keyIdOf(keyOrId: Buffer | string): string {
  return typeof keyOrId === 'string' && /^[0-9a-f]{8}$/.test(keyOrId) ? keyOrId : keyId(parseKey(keyOrId));
}

export class Keyring {
  private readonly keys = new Map<string, InstalledKey>();
  private primary: InstalledKey;
  private noncePool = Buffer.alloc(0);
  private nonceOffset = 0;
  private readonly failures: Record<OpenFailure, number> = { short: 0, version: 0, 'unknown-key': 0, auth: 0 };

  /** A keyring holding `keys`; the primary is `primary` if given, else the first key. */
  constructor(keys: readonly (Buffer | string)[], primary?: Buffer | string) {
    if (keys.length === 0) throw new ShoalError('CONFIG', 'keyring: at least one key is needed');
    for (const key of keys) this.install(key);
    this.primary = this.find(primary ?? keys[0]);
  }

  /** Adds a key (idempotent); it opens messages at once and can be made primary with `use`. Returns its id. */
  install(key: Buffer | string): string {
    const bytes = parseKey(key);
    const id = keyId(bytes);
    const existing = this.keys.get(id);
    if (existing !== undefined) {
      if (!timingSafeEqual(existing.key, bytes)) throw new ShoalError('CONFIG', `keyring: key id ${id} collides with an installed key; generate another key`);
      return id;
    }
    if (this.keys.size >= KEYS_MAX) throw new ShoalError('CONFIG', `keyring: at most ${KEYS_MAX} keys; remove an old one first`);
    this.keys.set(id, { id, idBytes: Buffer.from(id, 'hex'), key: bytes, sealed: 0, opened: 0 });
    return id;
  }

  /** Makes an installed key (given as key or id) the one that seals. */
  use(keyOrId: Buffer | string): void {
    this.primary = this.find(keyOrId);
  }

  /** Removes an installed key (given as key or id). The primary cannot be removed. */
  remove(keyOrId: Buffer | string): void {
    const key = this.find(keyOrId);
    if (key === this.primary) throw new ShoalError('CONFIG', `keyring: key ${key.id} is the primary key; make another key primary (use) before removing it`);
    this.keys.delete(key.id);
  }

  primaryId(): string {
    return this.primary.id;
  }

  /** Installed keys, the primary first. */
  list(): KeyInfo[] {
    const infos = [...this.keys.values()].map((k) => ({ id: k.id, primary: k === this.primary, sealed: k.sealed, opened: k.opened }));
    return infos.sort((a, b) => Number(b.primary) - Number(a.primary));
  }

  /** The installed keys as base64, the primary first (what the keyring file stores). */
  exportKeys(): { primary: string; keys: string[] } {
    const keys = [this.primary, ...[...this.keys.values()].filter((k) => k !== this.primary)];
    return { primary: this.primary.key.toString('base64'), keys: keys.map((k) => k.key.toString('base64')) };
  }

  /** Encrypts and authenticates `plaintext` with the primary key, binding `aad` (the cluster name). */
  seal(plaintext: Buffer | Uint8Array, aad: Buffer | string): Buffer {
    const key = this.primary;
    const out = Buffer.allocUnsafe(HEADER_BYTES + plaintext.length + TAG_BYTES);
    out[0] = ENVELOPE_VERSION;
    key.idBytes.copy(out, 1);
    this.nextNonce(out, 1 + KEY_ID_BYTES);
    const nonce = out.subarray(1 + KEY_ID_BYTES, HEADER_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(out.subarray(0, HEADER_BYTES), aad));
    let off = HEADER_BYTES + cipher.update(plaintext).copy(out, HEADER_BYTES);
    off += cipher.final().copy(out, off);
    cipher.getAuthTag().copy(out, off);
    key.sealed += 1;
    return out;
  }

  /**
   * Authenticates and decrypts an envelope with the key its id names. Returns null (and counts the
   * reason) when it is too short, of another version, sealed with a key not installed, or fails
   * authentication (tampered, wrong cluster name, wrong key). Never throws on bad input.
   */
  open(envelope: Buffer | Uint8Array, aad: Buffer | string): Buffer | null {
    const result = this.tryOpen(envelope, aad);
    return result.ok ? result.plaintext : null;
  }

  /** `open`, telling why an envelope did not open (the reason is counted in `stats()` as well). */
  tryOpen(envelope: Buffer | Uint8Array, aad: Buffer | string): OpenResult {
    const bytes = Buffer.isBuffer(envelope) ? envelope : Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength);
    if (bytes.length < ENVELOPE_OVERHEAD_BYTES) return this.failed('short');
    if (bytes[0] !== ENVELOPE_VERSION) return this.failed('version');
    const key = this.keys.get(bytes.toString('hex', 1, 1 + KEY_ID_BYTES));
    if (key === undefined) return this.failed('unknown-key');
    const tagAt = bytes.length - TAG_BYTES;
    const decipher = createDecipheriv('aes-256-gcm', key.key, bytes.subarray(1 + KEY_ID_BYTES, HEADER_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(bytes.subarray(0, HEADER_BYTES), aad));
    decipher.setAuthTag(bytes.subarray(tagAt));
    try {
      const plaintext = Buffer.concat([decipher.update(bytes.subarray(HEADER_BYTES, tagAt)), decipher.final()]);
      key.opened += 1;
      return { ok: true, plaintext };
    } catch {
      return this.failed('auth');
    }
  }

  stats(): KeyringStats {
    let sealed = 0;
    let opened = 0;
    for (const k of this.keys.values()) {
      sealed += k.sealed;
      opened += k.opened;
    }
    return { keys: this.keys.size, primaryId: this.primary.id, sealed, opened, openFailures: { ...this.failures } };
  }

  /** True when the key (given as key or id) is installed. */
  has(keyOrId: Buffer | string): boolean {
    return this.keys.has(keyIdOf(keyOrId));
  }

  private find(keyOrId: Buffer | string): InstalledKey {
    const id = keyIdOf(keyOrId);
    const key = this.keys.get(id);
    if (key === undefined) throw new ShoalError('CONFIG', `keyring: no installed key ${id}`);
    return key;
  }

  private failed(reason: OpenFailure): OpenResult {
    this.failures[reason] += 1;
    return { ok: false, reason };
  }

  private nextNonce(out: Buffer, at: number): void {
    if (this.nonceOffset + NONCE_BYTES > this.noncePool.length) {
      this.noncePool = randomFillSync(Buffer.allocUnsafe(NONCE_POOL_BYTES));
      this.nonceOffset = 0;
    }
    this.noncePool.copy(out, at, this.nonceOffset, this.nonceOffset + NONCE_BYTES);
    this.nonceOffset += NONCE_BYTES;
  }
}

function associatedData(header: Buffer, aad: Buffer | string): Buffer {
  return Buffer.concat([header, typeof aad === 'string' ? Buffer.from(aad, 'utf8') : aad]);
}
