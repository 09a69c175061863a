/**
 * The commands that talk to a running node over the wire protocol: get, put, del, stats, health,
 * members, ring, leave, remove. Each returns its exit status; output goes through CliIo so tests can
 * run them in-process.
 */
import { readFile } from 'node:fs/promises';
import { ShoalClient } from '../rpc/shoal-client.js';
import { loadClientTls, type RpcTlsClientOptions } from '../rpc/tls.js';
import { EXIT, UsageError, type ExitCode } from './exit-codes.js';
import { duration, isUtf8, percent, table, toJson, tree } from './format.js';
import type { CliIo } from './io.js';

export type Consistency = 'one' | 'quorum' | 'all';

export interface ClientArgs {
  addr: string;
  cluster: string;
  timeoutMs: number;
  json: boolean;
  /** Connect with TLS (--tls and the --tls-* files); absent = plaintext. */
  tls?: TlsArgs;
}

/** The --tls-* options: PEM file paths and the name to check in the server's certificate. */
export interface TlsArgs {
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

/** Reads the --tls-* files: UsageError for a missing option, CONFIG (exit 2) naming a bad file. */
export function clientTls(args: TlsArgs): RpcTlsClientOptions {
  if (args.ca === undefined || args.ca === '') throw new UsageError('--tls needs --tls-ca FILE: the PEM certificate of the cluster\'s CA');
  const cert = args.cert === '' ? undefined : args.cert;
  const key = args.key === '' ? undefined : args.key;
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together: give both or neither');
  return loadClientTls({ caFile: args.ca, certFile: cert, keyFile: key, serverName: args.serverName });
}

/** What a lone "-" argument becomes before yargs sees it ("read stdin"). */
export const STDIN_ARG = '\u0000-';

/** Largest value read from stdin or --file; the server's own limit (storage.valueBytesMax) is lower. */
export const INPUT_BYTES_MAX = 64 * 1024 * 1024;

export function makeClient(args: ClientArgs): ShoalClient {
  const addresses = args.addr.split(',').map((a) => a.trim()).filter((a) => a !== '');
  if (addresses.length === 0) throw new UsageError('--addr needs host:port');
  for (const a of addresses) {
    if (!/^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/.test(a)) throw new UsageError(`--addr must be host:port, got "${a}"`);
  }
  // --timeout bounds the whole request, connecting included.
  const tls = args.tls === undefined ? undefined : clientTls(args.tls);
  return new ShoalClient({ addresses, clusterName: args.cluster, timeoutMs: args.timeoutMs, pool: { connectTimeoutMs: args.timeoutMs }, tls });
}

async function withClient(args: ClientArgs, run: (client: ShoalClient) => Promise<ExitCode>): Promise<ExitCode> {
  const client = makeClient(args);
  try {
    return await run(client);
  } finally {
    await client.close();
  }
}

export async function getCommand(args: ClientArgs & { key: string; consistency?: Consistency }, io: CliIo): Promise<ExitCode> {
  return withClient(args, async (client) => {
    const result = await client.get(args.key, { consistency: args.consistency });
    if (result === null) {
      io.stderr.write(`shoal: key ${JSON.stringify(args.key)} not found\n`);
      return EXIT.NOT_FOUND;
    }
    if (args.json) {
      const out: Record<string, unknown> = { key: args.key };
      if (isUtf8(result.value)) out.value = result.value.toString('utf8');
      else out.valueBase64 = result.value.toString('base64');
      out.version = result.version;
      if (result.expiresAtMs !== undefined) out.expiresAtMs = result.expiresAtMs;
      io.stdout.write(toJson(out));
    } else {
      io.stdout.write(result.value);
      // A terminal gets a final newline so the prompt starts on its own line; pipes get the bytes as stored.
      if (io.stdout.isTTY && result.value.length > 0 && result.value[result.value.length - 1] !== 0x0a) io.stdout.write('\n');
    }
    return EXIT.OK;
  });
}

async function readAll(stream: NodeJS.ReadableStream, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
    total += buf.length;
    if (total > INPUT_BYTES_MAX) throw new UsageError(`${what} is larger than ${INPUT_BYTES_MAX} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** The value of `put`: the argument, --file, or stdin (when the value is "-" or absent and stdin is not a terminal). */
export async function putValue(args: { value?: string; file?: string }, io: CliIo): Promise<Buffer> {
  if (args.file !== undefined) {
    if (args.value !== undefined) throw new UsageError('give the value either as an argument or with --file, not both');
    try {
      const buf = await readFile(args.file);
      if (buf.length > INPUT_BYTES_MAX) throw new UsageError(`--file ${args.file} is larger than ${INPUT_BYTES_MAX} bytes`);
      return buf;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(`cannot read --file ${args.file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`);
    }
  }
  if (args.value === STDIN_ARG || (args.value === undefined && !io.stdin.isTTY)) return readAll(io.stdin, 'the value on stdin');
  if (args.value === undefined) throw new UsageError('put needs a value: shoal put KEY VALUE, --file FILE, or pipe it on stdin');
  return Buffer.from(args.value, 'utf8');
}

export async function putCommand(
  args: ClientArgs & { key: string; value?: string; file?: string; ttlMs?: number; consistency?: Consistency },
  io: CliIo,
): Promise<ExitCode> {
  const value = await putValue(args, io);
  return withClient(args, async (client) => {
    const result = await client.put(args.key, value, { ttlMs: args.ttlMs, consistency: args.consistency });
    io.stdout.write(args.json ? toJson(result) : 'OK\n');
    return EXIT.OK;
  });
}

export async function delCommand(args: ClientArgs & { key: string; consistency?: Consistency }, io: CliIo): Promise<ExitCode> {
  return withClient(args, async (client) => {
    const result = await client.del(args.key, { consistency: args.consistency });
    io.stdout.write(args.json ? toJson(result) : 'OK\n');
    return EXIT.OK;
  });
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** A command that makes one call and prints its result: JSON with --json, else `human(result)`. */
async function callCommand(args: ClientArgs, io: CliIo, call: (client: ShoalClient) => Promise<unknown>, human: (result: unknown) => string): Promise<ExitCode> {
  return withClient(args, async (client) => {
    const result = await call(client);
    io.stdout.write(args.json ? toJson(result ?? {}) : human(result));
    return EXIT.OK;
  });
}

export async function healthCommand(args: ClientArgs, io: CliIo): Promise<ExitCode> {
  return withClient(args, async (client) => {
    const health = asRecord(await client.health());
    const ok = health.ok === true;
    if (args.json) io.stdout.write(toJson(health));
    else {
      const uptime = typeof health.uptimeMs === 'number' ? `, up ${duration(health.uptimeMs)}` : '';
      const state = typeof health.state === 'string' ? `, ${health.state}` : '';
      const reason = typeof health.reason === 'string' ? `: ${health.reason}` : '';
      io.stdout.write(`${ok ? 'ok' : 'not ok'}: node ${String(health.node)} of cluster ${String(health.cluster)}${state}${uptime}${reason}\n`);
    }
    return ok ? EXIT.OK : EXIT.UNAVAILABLE;
  });
}

export interface MemberRow {
  id: string;
  gossip?: string;
  rpc?: string;
  state?: string;
  incarnation?: number;
  zone?: string;
  /** Share of the key space it owns (cluster layer). */
  owns?: number;
  /** Hints this node holds for it (cluster layer). */
  pendingHints?: number;
}

/**
 * `consul members`-style table, sorted by id; with the cluster layer also each member's share of
 * the key space and the hints waiting for it on this node.
 */
export function membersTable(members: MemberRow[]): string {
  const clustered = members.some((m) => typeof m.owns === 'number');
  const rows = [...members]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((m) => {
      const row = [m.id, m.gossip ?? '-', m.rpc ?? '-', m.state ?? '-', String(m.incarnation ?? '-'), m.zone || '-'];
      if (clustered) row.push(typeof m.owns === 'number' ? `${percent(m.owns).toFixed(1)}%` : '-', String(m.pendingHints ?? 0));
      return row;
    });
  const header = ['ID', 'GOSSIP', 'RPC', 'STATE', 'INCARNATION', 'ZONE', ...(clustered ? ['OWNS', 'HINTS'] : [])];
  return table(header, rows);
}

export async function membersCommand(args: ClientArgs, io: CliIo): Promise<ExitCode> {
  return withClient(args, async (client) => {
    const result = await client.members();
    const members = (Array.isArray(result) ? result : []).map(asRecord);
    if (args.json) {
      // The same fields as the table, in the same units (OWNS is a percentage in both).
      io.stdout.write(toJson(members.map((m) => ({
        id: m.id, state: m.state, incarnation: m.incarnation, gossip: m.gossip, rpc: m.rpc, zone: m.zone ?? null,
        ownsPercent: typeof m.owns === 'number' ? percent(m.owns) : null,
        hintsPending: typeof m.pendingHints === 'number' ? m.pendingHints : null,
      }))));
    } else {
      io.stdout.write(membersTable(members as unknown as MemberRow[]));
    }
    return EXIT.OK;
  });
}

/**
 * `nodetool status`-style: the ring's scalar fields (checksum, replication factor, vnodes), then a
 * table of its members with their state and the share of the key space they own. Any other shape
 * is printed as a tree.
 */
export function ringText(ring: unknown): string {
  const r = asRecord(ring);
  if (!Array.isArray(r.members)) return tree(ring);
  const head = Object.entries(r).filter(([, v]) => typeof v !== 'object' || v === null);
  const rows = r.members
    .map(asRecord)
    .sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1))
    .map((m) => [String(m.id), String(m.state ?? '-'), typeof m.owns === 'number' ? `${percent(m.owns).toFixed(1)}%` : '-']);
  return head.map(([k, v]) => `${k}: ${String(v)}\n`).join('') + table(['ID', 'STATE', 'OWNS'], rows);
}

/** The ring for --json: each owner's share as `ownsPercent`, the unit the table shows. */
export function ringJson(ring: unknown): unknown {
  const r = asRecord(ring);
  if (!Array.isArray(r.members)) return ring;
  return {
    ...r,
    members: r.members.map(asRecord).map(({ owns, ...m }) => ({ ...m, ownsPercent: typeof owns === 'number' ? percent(owns) : null })),
  };
}

export function ringCommand(args: ClientArgs, io: CliIo): Promise<ExitCode> {
  return withClient(args, async (client) => {
    const ring = await client.ring();
    io.stdout.write(args.json ? toJson(ringJson(ring)) : ringText(ring));
    return EXIT.OK;
  });
}

/** How long `shoal leave` waits for the node to be gone after it left (its shutdown.timeoutMs bounds it too). */
const LEAVE_GONE_WAIT_MS = 60_000;
const LEAVE_POLL_MS = 200;

/**
 * `shoal leave`: the node hands its data off, announces the leave and stops (as `consul leave`); the
 * command then waits until the node no longer answers at its address and says so.
 */
export function leaveCommand(args: ClientArgs, io: CliIo): Promise<ExitCode> {
  return withClient(args, async (client) => {
    const before = asRecord(await client.health());
    const result = await client.leave();
    const deadline = Date.now() + LEAVE_GONE_WAIT_MS;
    let gone = false;
    while (!gone && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, LEAVE_POLL_MS));
      const probe = makeClient(args);
      try {
        const now = asRecord(await probe.health());
        gone = now.node !== before.node || now.pid !== before.pid;
      } catch {
        gone = true; // nothing answers at the address any more
      } finally {
        await probe.close();
      }
    }
    const node = typeof before.node === 'string' ? `node ${before.node}` : `the node at ${args.addr}`;
    if (args.json) io.stdout.write(toJson({ ...asRecord(result ?? {}), node: before.node ?? null, stopped: gone }));
    else if (gone) io.stdout.write(`OK: ${node} handed off its data, left the cluster and stopped\n`);
    else io.stderr.write(`shoal: ${node} left the cluster but still answers at ${args.addr} after ${LEAVE_GONE_WAIT_MS / 1000} s\n`);
    return gone ? EXIT.OK : EXIT.UNAVAILABLE;
  });
}

export function removeCommand(args: ClientArgs & { id: string }, io: CliIo): Promise<ExitCode> {
  return callCommand(args, io, (c) => c.call('remove', { id: args.id }), () => `OK: ${args.id} removed; its ranges are re-replicated\n`);
}
