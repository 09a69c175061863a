/**
 * `shoal local --nodes N`: a local cluster of `shoal agent` child processes. The first nodes are those
 * of the cluster file (cluster.example.json by default); more continue its port pattern. The plan is
 * written to DIR/cluster.json and each agent runs `--config DIR/cluster.json --node ID`. Waits until
 * every node answers health, prints their addresses and a first command, and on Ctrl-C / SIGTERM
 * stops them all gracefully (a second signal kills them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ShoalError, toShoalError } from '../errors.js';
import { readClusterFile, type ClusterFile, type ClusterFileNode } from '../node/cluster-file.js';
import { ShoalClient } from '../rpc/shoal-client.js';
import { loadServerTls, type RpcTlsClientOptions } from '../rpc/tls.js';
import { EXIT, UsageError, type ExitCode } from './exit-codes.js';
import type { CliIo } from './io.js';

export const LOCAL_NODES_MAX = 99;
/** How long a node may take from spawn to answering health. */
const START_TIMEOUT_MS = 30_000;
/** After SIGTERM, how long to wait for the agents before SIGKILL (their own bound is shutdown.timeoutMs). */
const STOP_TIMEOUT_MS = 20_000;
const HEALTH_POLL_MS = 200;

export interface LocalOptions {
  nodes: number;
  dataDir: string;
  clusterFile: string;
  logLevel: string;
  /** The command that runs `shoal` (default: this Node binary on src/cli/main.ts or dist/cli/main.js). */
  shoalCommand?: string[];
  /** Stops the cluster like a first Ctrl-C (for callers other than a terminal). */
  signal?: AbortSignal;
  /** Called once every node answers health. */
  onReady?: (plan: ClusterFile) => void;
  /** TLS and mutual TLS for every node, from LOCAL_TLS_FILES in this dir (`--tls-dir`). */
  tlsDir?: string;
}

/** The files `shoal local --tls-dir DIR` expects (docs/SECURITY.md shows how to make them). */
export const LOCAL_TLS_FILES = { ca: 'ca.pem', cert: 'node.pem', key: 'node-key.pem' } as const;

/**
 * TLS for a local cluster: every node uses the one node certificate of `dir` (its SAN must cover
 * the nodes' RPC host, 127.0.0.1 by default) and requires client certificates from the CA; the
 * launcher and the printed commands present the node certificate as their client certificate.
 */
export function localTls(dir: string): { security: Record<string, unknown>; client: RpcTlsClientOptions; files: { ca: string; cert: string; key: string } } {
  const files = { ca: resolve(dir, LOCAL_TLS_FILES.ca), cert: resolve(dir, LOCAL_TLS_FILES.cert), key: resolve(dir, LOCAL_TLS_FILES.key) };
  const loaded = loadServerTls({ caFile: files.ca, certFile: files.cert, keyFile: files.key, clientAuth: true });
  return {
    security: { tls: true, tlsCa: files.ca, tlsCert: files.cert, tlsKey: files.key, tlsClientAuth: true },
    client: { ca: loaded.ca, cert: loaded.cert, key: loaded.key },
    files,
  };
}

function bumpPort(addr: string, by: number): string {
  const at = addr.lastIndexOf(':');
  return `${addr.slice(0, at)}:${Number(addr.slice(at + 1)) + by}`;
}

/** The cluster the launcher starts: the file's nodes first, then its port pattern continued. */
export function planLocalCluster(file: ClusterFile, count: number, dataDirRoot: string): ClusterFile {
  if (!Number.isInteger(count) || count < 1 || count > LOCAL_NODES_MAX) throw new UsageError(`--nodes must be an integer from 1 to ${LOCAL_NODES_MAX}, got ${count}`);
  const listed = file.nodes;
  const last = listed[listed.length - 1];
  const ids = new Set(listed.map((n) => n.id));
  const nodes: ClusterFileNode[] = [];
  for (let i = 0; i < count; i++) {
    let node: ClusterFileNode;
    if (i < listed.length) node = { ...listed[i] };
    else {
      const step = i - listed.length + 1;
      let id = `n${i + 1}`;
      for (let k = 0; ids.has(id); k++) id = `n${i + 1}-${k}`;
      node = { id, gossip: bumpPort(last.gossip, step), rpc: bumpPort(last.rpc, step) };
      if (last.metrics !== undefined) node.metrics = bumpPort(last.metrics, step);
      if (last.resp !== undefined) node.resp = bumpPort(last.resp, step);
    }
    ids.add(node.id);
    node.dataDir = join(dataDirRoot, node.id);
    nodes.push(node);
  }
  const seeds = file.seeds && file.seeds.length > 0 ? file.seeds : [nodes[0].gossip];
  const plan: ClusterFile = { cluster: file.cluster ?? 'dev', seeds, nodes };
  if (file.config !== undefined) plan.config = file.config;
  return plan;
}

/** A redis-cli line to try against the first node with a RESP port (docs/RESP.md). */
function redisCliLines(plan: ClusterFile, tls: boolean): string[] {
  const node = plan.nodes.find((n) => n.resp !== undefined);
  if (node?.resp === undefined) return [];
  const at = node.resp.lastIndexOf(':');
  const tlsFlags = tls ? ' --tls --cacert $SHOAL_TLS_CA --cert $SHOAL_TLS_CERT --key $SHOAL_TLS_KEY' : '';
  return [`  redis-cli -h ${node.resp.slice(0, at)} -p ${node.resp.slice(at + 1)}${tlsFlags} set hello world    # any Redis client works`];
}

/** `node [loader] main` for the CLI this process runs from. */
export function defaultShoalCommand(): string[] {
  const main = fileURLToPath(new URL('./main' + (import.meta.url.endsWith('.ts') ? '.ts' : '.js'), import.meta.url));
  const loader = main.endsWith('.ts') ? ['--import', 'tsx'] : [];
  return [process.execPath, ...loader, main];
}

interface Agent {
  node: ClusterFileNode;
  child: ChildProcess;
  exited: Promise<number | null>;
  running: boolean;
}

function pipeLines(stream: NodeJS.ReadableStream | null, prefix: string, out: CliIo['stdout']): void {
  if (!stream) return;
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => out.write(`${prefix}${line}\n`));
}

/**
 * Until the agent answers health ok; with `orJoining`, a node that answers "joining" (it has known
 * members from an earlier run and waits for one of them) is enough.
 */
async function waitHealthy(agent: Agent, cluster: string, deadlineMs: number, tls?: RpcTlsClientOptions, orJoining = false): Promise<void> {
  const client = new ShoalClient({ addresses: [agent.node.rpc], clusterName: cluster, timeoutMs: 1000, tls });
  let lastReason = '';
  try {
    while (Date.now() < deadlineMs) {
      if (!agent.running) throw new Error(`node ${agent.node.id} exited during start-up (see its log lines above)`);
      try {
        const health = (await client.health()) as { ok?: boolean; pid?: number; reason?: unknown };
        // Another process on the same port (an earlier `shoal local` still running) is not our node.
        if (health.pid !== undefined && health.pid !== agent.child.pid) {
          throw new Error(`${agent.node.rpc} is answered by another process (pid ${health.pid}), not node ${agent.node.id}; is another Shoal cluster running on these ports?`);
        }
        if (health.ok === true) return;
        if (typeof health.reason === 'string') lastReason = health.reason;
        if (orJoining && typeof health.reason === 'string' && health.reason.startsWith('joining')) return;
      } catch (err) {
        if (!(err instanceof ShoalError)) throw err; // ours: another process holds the port
        // not up yet
      }
      await new Promise((r) => setTimeout(r, HEALTH_POLL_MS));
    }
    if (lastReason.startsWith('joining')) {
      throw new Error(`node ${agent.node.id} is still ${lastReason} after ${START_TIMEOUT_MS / 1000} s (members it knew from an earlier run are not started; a new data dir, or \`shoal agent --bootstrap\`, starts afresh)`);
    }
    throw new Error(`node ${agent.node.id} did not answer health at ${agent.node.rpc} within ${START_TIMEOUT_MS / 1000} s${lastReason === '' ? '' : ` (last: ${lastReason})`}`);
  } finally {
    await client.close();
  }
}

export async function localCommand(options: LocalOptions, io: CliIo): Promise<ExitCode> {
  const file = readClusterFile(options.clusterFile, (p) => readFileSync(p, 'utf8'));
  const root = resolve(options.dataDir);
  const shown = relative(process.cwd(), root);
  // Paths in the plan are relative to the working directory the agents share, when that reads well.
  const plan = planLocalCluster(file, options.nodes, shown === '' ? '.' : shown.startsWith('..') ? root : shown);
  const tls = options.tlsDir === undefined ? null : localTls(options.tlsDir);
  if (tls) {
    const security = plan.config?.security;
    plan.config = { ...plan.config, security: { ...(typeof security === 'object' && security !== null ? security : {}), ...tls.security } };
  }
  mkdirSync(root, { recursive: true });
  const planFile = join(root, 'cluster.json');
  writeFileSync(planFile, JSON.stringify(plan, null, 2) + '\n');

  const command = options.shoalCommand ?? defaultShoalCommand();
  const width = Math.max(...plan.nodes.map((n) => n.id.length));
  const launch = (node: ClusterFileNode): Agent => {
    const child = spawn(
      command[0],
      [...command.slice(1), 'agent', '--config', planFile, '--node', node.id, '--log-level', options.logLevel, '--log-format', 'text', '--stop-on-stdin-close'],
      // Own process group: a terminal's Ctrl-C reaches only the launcher, which then stops each agent once.
      { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, SHOAL_CONFIG: undefined, SHOAL_NODE: undefined } },
    );
    const prefix = `[${node.id.padEnd(width)}] `;
    pipeLines(child.stdout, prefix, io.stdout);
    pipeLines(child.stderr, prefix, io.stderr);
    const agent: Agent = {
      node,
      child,
      running: true,
      exited: new Promise((resolveExit) => {
        child.on('exit', (code) => {
          agent.running = false;
          resolveExit(code);
        });
        child.on('error', (err) => {
          io.stderr.write(`${prefix}could not start: ${err.message}\n`);
          agent.running = false;
          resolveExit(null);
        });
      }),
    };
    return agent;
  };

  const agents: Agent[] = [];
  let stopRequested = false;
  let stopAll: () => Promise<ExitCode> = async () => EXIT.OK;
  const stopped = new Promise<ExitCode>((resolveStopped) => {
    stopAll = async () => {
      stopRequested = true;
      for (const a of agents) if (a.running) a.child.kill('SIGTERM');
      const killTimer = setTimeout(() => {
        for (const a of agents) if (a.running) a.child.kill('SIGKILL');
      }, STOP_TIMEOUT_MS);
      const codes = await Promise.all(agents.map((a) => a.exited));
      clearTimeout(killTimer);
      const code = codes.every((c) => c === 0) ? EXIT.OK : EXIT.ERROR;
      resolveStopped(code);
      return code;
    };
  });

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals === 1) {
      io.stdout.write(`\nshoal local: ${signal}: stopping ${agents.filter((a) => a.running).length} node(s) (again to kill them now)\n`);
      stopAll().catch((err: unknown) => io.stderr.write(`shoal local: stop failed: ${String(err)}\n`));
    } else {
      for (const a of agents) if (a.running) a.child.kill('SIGKILL');
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onAbort = () => onSignal('SIGTERM');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const detach = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    options.signal?.removeEventListener('abort', onAbort);
  };

  function watch(a: Agent): void {
    agents.push(a);
    a.exited
      .then(async (code) => {
        if (!stopRequested) {
          io.stderr.write(`shoal local: node ${a.node.id} exited with code ${String(code)}\n`);
          if (agents.every((x) => !x.running)) await stopAll();
        }
      })
      .catch((err: unknown) => io.stderr.write(`shoal local: stop failed: ${String(err)}\n`));
  }
  watch(launch(plan.nodes[0]));

  try {
    // The first node (the seed) first, so the others find it when they join; then the rest at once.
    // On a later run the first node waits for the members it knew (the rest): it answers "joining".
    const deadline = Date.now() + START_TIMEOUT_MS;
    await waitHealthy(agents[0], plan.cluster ?? 'dev', deadline, tls?.client, true);
    for (const node of plan.nodes.slice(1)) if (!stopRequested) watch(launch(node));
    await Promise.all(agents.map((a) => waitHealthy(a, plan.cluster ?? 'dev', deadline, tls?.client)));
  } catch (err) {
    if (!stopRequested) {
      io.stderr.write(`shoal local: ${toShoalError(err).message}; stopping the others\n`);
      await stopAll();
      detach();
      return EXIT.UNAVAILABLE;
    }
  }

  if (!stopRequested) {
    const lines = [
      '',
      `Shoal local cluster "${plan.cluster}" is up: ${agents.length} node(s), plan in ${join(plan.nodes[0].dataDir ?? '.', '..', 'cluster.json')}`,
      ...plan.nodes.map((n) => `  ${n.id.padEnd(width)}  rpc ${n.rpc}  gossip ${n.gossip}  metrics ${n.metrics ? `http://${n.metrics}/metrics` : '-'}${n.resp ? `  redis ${n.resp}` : ''}  data ${n.dataDir}`),
      '',
      'Try, in another terminal:',
      ...(tls ? [`  export SHOAL_TLS_CA=${tls.files.ca} SHOAL_TLS_CERT=${tls.files.cert} SHOAL_TLS_KEY=${tls.files.key}`] : []),
      '  node bin/shoal.js put hello world',
      '  node bin/shoal.js get hello',
      ...(plan.nodes.length > 1 ? [`  node bin/shoal.js get hello --addr ${plan.nodes[plan.nodes.length - 1].rpc}    # any node answers`] : []),
      '  node bin/shoal.js members',
      ...redisCliLines(plan, tls !== null),
      '',
      'Ctrl-C stops every node.',
      '',
    ];
    io.stdout.write(lines.join('\n'));
    options.onReady?.(plan);
  }

  const code = await stopped;
  detach();
  io.stdout.write(`shoal local: all nodes stopped\n`);
  return code;
}
