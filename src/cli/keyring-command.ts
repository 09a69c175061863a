/**
 * `shoal keyring list | install KEY | use KEY | remove KEY | generate`: gossip encryption keys across
 * the cluster. `generate` runs locally; the others send the `keyring` op to one node, which asks every
 * reachable member and reports each node's answer (docs/CLI.md, docs/SECURITY.md for the rotation).
 */
import { isErrorCode } from '../errors.js';
import type { ShoalClient } from '../rpc/shoal-client.js';
import { generateKey, keyIdOf, parseKey } from '../security/keyring.js';
import { STDIN_ARG, type ClientArgs, makeClient } from './client-commands.js';
import { EXIT, ShoalError, UsageError, exitCodeFor, type ExitCode } from './exit-codes.js';
import { table, toJson } from './format.js';
import type { CliIo } from './io.js';

export type KeyringCommandAction = 'list' | 'install' | 'use' | 'remove';

/** Longest key text read from stdin (a base64 key is 44 characters). */
const KEY_INPUT_BYTES_MAX = 1024;

interface NodeOutcome {
  node: string;
  ok: boolean;
  primary?: string;
  keys?: string[];
  error?: { code: string; message: string };
}

interface KeyringResult {
  action: string;
  nodes: number;
  ok: number;
  results: NodeOutcome[];
  keys: Array<{ id: string; nodes: number; primary: number }>;
  skipped: string[];
}

export function generateCommand(args: { json: boolean }, io: CliIo): ExitCode {
  const key = generateKey().toString('base64');
  io.stdout.write(args.json ? toJson({ key, id: keyIdOf(key) }) : `${key}\n`);
  return EXIT.OK;
}

async function readKeyFromStdin(io: CliIo): Promise<string> {
  let text = '';
  for await (const chunk of io.stdin) {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.length > KEY_INPUT_BYTES_MAX) throw new UsageError('the key on stdin is too long');
  }
  return text.trim();
}

/** The key argument: base64 key for install; key or 8-hex-digit id for use and remove; "-" reads stdin. */
async function keyArgument(action: KeyringCommandAction, given: string | undefined, io: CliIo): Promise<string> {
  const text = given === STDIN_ARG || given === '-' ? await readKeyFromStdin(io) : (given ?? '');
  if (text === '') throw new UsageError(`keyring ${action} needs a key`);
  try {
    return action === 'install' ? parseKey(text).toString('base64') : keyIdOf(text);
  } catch (err) {
    const what = action === 'install' ? 'a base64 AES-256 key (shoal keyring generate)' : 'a base64 key or an 8 hex digit key id';
    throw new UsageError(`keyring ${action}: the key must be ${what}: ${(err as Error).message.replace(/^keyring: /, '')}`);
  }
}

function asResult(value: unknown): KeyringResult {
  const r = value as Partial<KeyringResult> | null;
  if (r === null || typeof r !== 'object' || !Array.isArray(r.results) || !Array.isArray(r.keys)) {
    throw new ShoalError('INTERNAL', 'malformed keyring result from the server');
  }
  return { action: String(r.action), nodes: Number(r.nodes), ok: Number(r.ok), results: r.results, keys: r.keys, skipped: Array.isArray(r.skipped) ? r.skipped : [] };
}

/** The human rendering: the keys with how many nodes hold them (consul keyring -list style), then failures. */
export function keyringText(result: KeyringResult): string {
  const n = result.nodes;
  let out = '';
  if (result.action !== 'list') {
    out += table(['NODE', 'RESULT'], result.results.map((r) => [r.node, r.ok ? 'ok' : `error: ${r.error?.message ?? '?'} (${r.error?.code ?? '?'})`]));
    out += '\n';
  }
  out += `Keys (${result.ok} of ${n} node${n === 1 ? '' : 's'} answered):\n`;
  out += table(['KEY', 'PRIMARY', 'INSTALLED'], result.keys.map((k) => [k.id, `${k.primary}/${result.ok}`, `${k.nodes}/${result.ok}`]));
  if (result.action === 'list') {
    for (const r of result.results.filter((x) => !x.ok)) out += `${r.node}: error: ${r.error?.message ?? '?'} (${r.error?.code ?? '?'})\n`;
  }
  if (result.skipped.length > 0) out += `Not asked (dead or left): ${result.skipped.join(', ')}; they need the primary key in their keyring file to rejoin.\n`;
  return out;
}

export async function keyringCommand(args: ClientArgs & { action: KeyringCommandAction; key?: string }, io: CliIo): Promise<ExitCode> {
  const key = args.action === 'list' ? undefined : await keyArgument(args.action, args.key, io);
  const client: ShoalClient = makeClient(args);
  try {
    const result = asResult(await client.call('keyring', key === undefined ? { action: args.action } : { action: args.action, key }));
    io.stdout.write(args.json ? toJson(result) : keyringText(result));
    // Some node did not make the change: the status of its error (3 when it was unreachable).
    const failed = result.results.find((r) => !r.ok);
    if (failed === undefined) return EXIT.OK;
    const code = failed.error?.code;
    return exitCodeFor(new ShoalError(isErrorCode(code) ? code : 'INTERNAL', failed.error?.message ?? 'failed'));
  } finally {
    await client.close();
  }
}
