/**
 * Which cluster a client command talks to, and how: the addresses to try, the cluster name and TLS.
 * Precedence, per field: the flag (--addr, --cluster, --tls-*), else the cluster file of --config,
 * else the environment (SHOAL_ADDR, SHOAL_CLUSTER, SHOAL_TLS_*), else the cluster file named by
 * SHOAL_CONFIG, else n1 of cluster.example.json. A cluster file gives every node's rpc address
 * (tried in turn, like ETCDCTL_ENDPOINTS), its name, and its TLS settings when it has them (the
 * DIR/cluster.json that `shoal local --tls-dir` writes).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readClusterFile, type ClusterFile } from '../node/cluster-file.js';
import type { TlsArgs } from './client-commands.js';
import { UsageError } from './exit-codes.js';

export const EXAMPLE_CLUSTER_FILE = fileURLToPath(new URL('../../cluster.example.json', import.meta.url));

/** n1's RPC address and the cluster name from cluster.example.json (fallbacks if it is unreadable). */
export function exampleDefaults(): { addr: string; cluster: string } {
  try {
    const file = JSON.parse(readFileSync(EXAMPLE_CLUSTER_FILE, 'utf8')) as { cluster?: string; nodes?: Array<{ rpc?: string }> };
    return { addr: file.nodes?.[0]?.rpc ?? '127.0.0.1:7201', cluster: file.cluster ?? 'dev' };
  } catch {
    return { addr: '127.0.0.1:7201', cluster: 'dev' };
  }
}

/** The connection options as parsed (flags only: environment defaults are applied here). */
export interface TargetArgs {
  addr?: string;
  cluster?: string;
  config?: string;
  tls: boolean;
  'tls-ca'?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  'tls-server-name'?: string;
}

export interface Target {
  addr: string;
  cluster: string;
  tls?: TlsArgs;
  /** Where the addresses came from, for messages ("--addr", "cluster file F", ...). */
  source: string;
}

/** What a cluster file says about reaching its nodes. */
export function fileTarget(file: ClusterFile): { addr: string; cluster: string; tls?: TlsArgs } {
  const out: { addr: string; cluster: string; tls?: TlsArgs } = { addr: file.nodes.map((n) => n.rpc).join(','), cluster: file.cluster ?? 'dev' };
  const security = file.config?.security;
  if (typeof security === 'object' && security !== null) {
    const s = security as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    if (s.tls === true && str(s.tlsCa) !== undefined) {
      out.tls = { ca: str(s.tlsCa) };
      // With mutual TLS the file's node certificate doubles as the client's (shoal local --tls-dir).
      if (s.tlsClientAuth === true) {
        out.tls.cert = str(s.tlsCert);
        out.tls.key = str(s.tlsKey);
      }
    }
  }
  return out;
}

function readTargetFile(path: string, how: string): ReturnType<typeof fileTarget> {
  try {
    return fileTarget(readClusterFile(path, (p) => readFileSync(p, 'utf8')));
  } catch (err) {
    throw new UsageError(`${how}: ${(err as Error).message}`);
  }
}

export function resolveTarget(raw: TargetArgs, env: Record<string, string | undefined>): Target {
  const flagFile = raw.config !== undefined && raw.config !== '' ? readTargetFile(raw.config, '--config') : null;
  const envConfig = env.SHOAL_CONFIG;
  const envFile = () => (envConfig !== undefined && envConfig !== '' ? readTargetFile(envConfig, `SHOAL_CONFIG=${envConfig}`) : null);
  const example = exampleDefaults();

  let addr: string;
  let source: string;
  let fileUsed: ReturnType<typeof fileTarget> | null = null;
  if (raw.addr !== undefined) [addr, source] = [raw.addr, '--addr'];
  else if (flagFile) [addr, source, fileUsed] = [flagFile.addr, `cluster file ${raw.config}`, flagFile];
  else if (env.SHOAL_ADDR !== undefined && env.SHOAL_ADDR !== '') [addr, source] = [env.SHOAL_ADDR, 'SHOAL_ADDR'];
  else if ((fileUsed = envFile())) [addr, source] = [fileUsed.addr, `cluster file ${envConfig} (SHOAL_CONFIG)`];
  else [addr, source] = [example.addr, 'cluster.example.json'];

  const cluster = raw.cluster ?? flagFile?.cluster ?? (env.SHOAL_CLUSTER || undefined) ?? (fileUsed ?? envFile())?.cluster ?? example.cluster;

  // TLS: the flags and SHOAL_TLS_* (yargs defaults) win; else the cluster file the addresses came from.
  let tls: TlsArgs | undefined;
  const ca = raw['tls-ca'];
  if (raw.tls || (ca !== undefined && ca !== '')) {
    tls = { ca, cert: raw['tls-cert'], key: raw['tls-key'], serverName: raw['tls-server-name'] };
  } else if (raw['tls-cert'] || raw['tls-key'] || raw['tls-server-name']) {
    throw new UsageError('--tls-cert, --tls-key and --tls-server-name need --tls-ca (or --tls)');
  } else {
    tls = (fileUsed ?? flagFile ?? (env.SHOAL_ADDR ? null : envFile()))?.tls;
  }
  const target: Target = { addr, cluster, source };
  if (tls !== undefined) target.tls = tls;
  return target;
}
