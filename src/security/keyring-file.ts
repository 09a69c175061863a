/**
 * The keyring file (by default `keyring.json` in a node's data dir), `{ "primary": "<base64>", "keys":
 * ["<base64>", ...] }`, written atomically (temp file, fsync, rename, fsync of the directory) with mode 0600. A file that
 * other users can read is refused unless the caller allows it, the way ssh refuses a loose private key.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ShoalError } from '../errors.js';
import { Keyring, KEYS_MAX } from './keyring.js';

export const KEYRING_FILE = 'keyring.json';
/** The file holds at most KEYS_MAX base64 keys: anything much larger is not a keyring file. */
const KEYRING_FILE_BYTES_MAX = 64 * 1024;

export interface LoadKeyringOptions {
  /** Accept a file that group or others can read (default false: CONFIG error). */
  allowLoosePermissions?: boolean;
}

function configError(file: string, problem: string): ShoalError {
  return new ShoalError('CONFIG', `keyring file ${file}: ${problem}`, { file });
}

/** Parses keyring file text; CONFIG errors name the file and the problem. */
export function parseKeyringFile(file: string, text: string): Keyring {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw configError(file, `not valid JSON (${(err as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw configError(file, 'must be an object { primary, keys }');
  const { primary, keys } = raw as { primary?: unknown; keys?: unknown };
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > KEYS_MAX || !keys.every((k) => typeof k === 'string')) {
    throw configError(file, `"keys" must be a list of 1 to ${KEYS_MAX} base64 keys`);
  }
  if (typeof primary !== 'string') throw configError(file, '"primary" must be one of the keys, in base64');
  if (!keys.some((k) => k === primary)) throw configError(file, '"primary" is not in "keys"');
  try {
    return new Keyring(keys as string[], primary);
  } catch (err) {
    if (err instanceof ShoalError) throw configError(file, err.message.replace(/^keyring: /, ''));
    throw err;
  }
}

/** The keyring file of a node: `configured` when set (security.keyringFile), else `<dataDir>/keyring.json`. */
export function keyringFilePath(dataDir: string, configured = ''): string {
  return path.resolve(configured === '' ? path.join(dataDir, KEYRING_FILE) : configured);
}

/** Loads a keyring file; null when there is none (encryption not configured). */
export async function loadKeyring(file: string, options: LoadKeyringOptions = {}): Promise<Keyring | null> {
  let handle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw configError(file, `cannot be read (${(err as Error).message})`);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw configError(file, 'is not a regular file');
    if (stat.size > KEYRING_FILE_BYTES_MAX) throw configError(file, `is ${stat.size} bytes, more than a keyring holds`);
    if ((stat.mode & 0o077) !== 0 && options.allowLoosePermissions !== true) {
      throw configError(file, `is readable by other users (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it`);
    }
    return parseKeyringFile(file, await handle.readFile('utf8'));
  } finally {
    await handle.close();
  }
}

/** Writes the keyring to `file` atomically, mode 0600 (a failure is a CONFIG error naming the file). */
export async function saveKeyring(file: string, keyring: Keyring): Promise<void> {
  try {
    await writeAtomically(file, `${JSON.stringify(keyring.exportKeys(), null, 2)}\n`);
  } catch (err) {
    throw configError(file, `cannot be written (${(err as Error).message})`);
  }
}

export interface OpenKeyringOptions extends LoadKeyringOptions {
  /** The keyring file. */
  file: string;
  /** Base64 key (security.gossipKey) written as the only, primary key when the file does not exist; "" = none. */
  seedKey?: string;
}

export interface OpenedKeyring {
  keyring: Keyring;
  /** True when the file was created from the seed key by this call. */
  created: boolean;
  /** True when a seed key was given, the file existed, and the seed key is not in it (rotated away, or a mistake). */
  seedKeyNotInstalled: boolean;
}

/**
 * The keyring a node starts with: the file when it exists (keys rotated at run time survive
 * restarts), else one made from the seed key and saved. null when there is neither: gossip is not
 * encrypted.
 */
export async function openKeyring(options: OpenKeyringOptions): Promise<OpenedKeyring | null> {
  const seedKey = options.seedKey ?? '';
  const loaded = await loadKeyring(options.file, options);
  if (loaded !== null) {
    return { keyring: loaded, created: false, seedKeyNotInstalled: seedKey !== '' && !loaded.has(seedKey) };
  }
  if (seedKey === '') return null;
  let keyring: Keyring;
  try {
    keyring = new Keyring([seedKey]);
  } catch (err) {
    throw new ShoalError('CONFIG', `security.gossipKey: ${(err as Error).message.replace(/^keyring: /, '')}`);
  }
  await fs.mkdir(path.dirname(options.file), { recursive: true });
  await saveKeyring(options.file, keyring);
  return { keyring, created: true, seedKeyNotInstalled: false };
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const handle = await fs.open(tmp, 'w', 0o600);
  try {
    await handle.chmod(0o600); // a stale temp file keeps its old mode through open
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  const dir = await fs.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
