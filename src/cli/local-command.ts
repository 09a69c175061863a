/**
 * `shoal local --nodes N`: a local cluster of `shoal agent` child processes. The first nodes are those
 * of the cluster file (cluster.example.json by default); more continue its port pattern. With
 * --base-port/--host every node's ports are laid out from one base instead (LOCAL_PORT_OFFSETS). The
 * launcher refuses to start over a running cluster (DIR/local.pid, ports in use) before it writes
 * anything; then the plan is written to DIR/cluster.json, each node's configuration is checked here
 * (errors name the user's file), and each agent runs `--config DIR/cluster.json --node ID`. Waits
 * until every node answers health, prints their addresses, the `export SHOAL_CONFIG=...` line that
 * points the CLI at this cluster and a few first commands, and on Ctrl-C / SIGTERM stops them all
 * gracefully (a second signal kills them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ShoalError, toShoalError } from '../errors.js';
import { readClusterFile, type ClusterFile, type ClusterFileNode } from '../node/cluster-file.js';
import { loadConfig } from '../node/config.js';
import { ShoalClient } from '../rpc/shoal-client.js';
import { loadServerTls, type RpcTlsClientOptions } from '../rpc/tls.js';
import { isProcessAlive } from '../storage/lock.js';
import { EXIT, UsageError, type ExitCode } from './exit-codes.js';
import type { CliIo } from './io.js';

export const LOCAL_NODES_MAX = 99;
/** How long a node may take from spawn to answering health. */
const START_TIMEOUT_MS = 30_000;
/** After SIGTERM, how long to wait for the agents before SIGKILL (their own bound is shutdown.timeoutMs). */
const STOP_TIMEOUT_MS = 20_000;
const HEALTH_POLL_MS = 200;

/**
 * With --base-port B, node i (from 0) listens on B + offset + i for each of its ports: gossip
 * 7101.., rpc 7201.., metrics 7301.., RESP 7401.. for the default base, as in cluster.example.json. Offsets are
 * 100 apart, so up to LOCAL_NODES_MAX nodes never collide; a new kind of port takes the next 100.
 */
export const LOCAL_PORT_OFFSETS = { gossip: 0, rpc: 100, metrics: 200, resp: 300 } as const;
export const LOCAL_BASE_PORT_DEFAULT = 7101;
export const LOCAL_HOST_DEFAULT = '127.0.0.1';
/** The launcher's own lock in DIR: the pid of the `shoal local` that runs the cluster there. */
export const LOCAL_PID_FILE = 'local.pid';

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
  /** Lay every node's ports out from this base (LOCAL_PORT_OFFSETS) instead of the cluster file's. */
  basePort?: number;
  /** The host every node listens on (with the base port, default LOCAL_BASE_PORT_DEFAULT). */
  host?: string;
  /** How the printed commands run shoal (default: `node bin/shoal.js` from a checkout, else `shoal`). */
  shoalHint?: string;
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

function portAt(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The cluster the launcher starts: the file's nodes first, then its port pattern continued; or, with
 * `layout.basePort`/`layout.host`, the file's ids (and zones, tags, config) with every port laid out
 * from the base (LOCAL_PORT_OFFSETS), its seeds replaced by the first node.
 */
export function planLocalCluster(file: ClusterFile, count: number, dataDirRoot: string, layout: { basePort?: number; host?: string } = {}): ClusterFile {
  if (!Number.isInteger(count) || count < 1 || count > LOCAL_NODES_MAX) throw new UsageError(`--nodes must be an integer from 1 to ${LOCAL_NODES_MAX}, got ${count}`);
  const rebased = layout.basePort !== undefined || layout.host !== undefined;
  const base = layout.basePort ?? LOCAL_BASE_PORT_DEFAULT;
  const host = layout.host ?? LOCAL_HOST_DEFAULT;
  if (rebased) {
    const top = base + Math.max(...Object.values(LOCAL_PORT_OFFSETS)) + LOCAL_NODES_MAX - 1;
    if (!Number.isInteger(base) || base < 1 || top > 65_535) throw new UsageError(`--base-port must be an integer from 1 to ${65_535 - (top - base)}, got ${base}`);
    if (!/^[^\s/[\]]+$/.test(host)) throw new UsageError(`--host must be a host name or IP address, got "${host}"`);
  }
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
    if (rebased) {
      node.gossip = portAt(host, base + LOCAL_PORT_OFFSETS.gossip + i);
      node.rpc = portAt(host, base + LOCAL_PORT_OFFSETS.rpc + i);
      node.metrics = portAt(host, base + LOCAL_PORT_OFFSETS.metrics + i);
      // A RESP port only when the cluster file gives its nodes one (as cluster.example.json does).
      if (listed.some((n) => n.resp !== undefined)) node.resp = portAt(host, base + LOCAL_PORT_OFFSETS.resp + i);
    }
    ids.add(node.id);
    node.dataDir = join(dataDirRoot, node.id);
    nodes.push(node);
  }
  const seeds = !rebased && file.seeds && file.seeds.length > 0 ? file.seeds : [nodes[0].gossip];
  const plan: ClusterFile = { cluster: file.cluster ?? 'dev', seeds, nodes };
  if (file.config !== undefined) plan.config = file.config;
  return plan;
}

/** Every address the plan's nodes will listen on, with what it is for. */
export function planAddresses(plan: ClusterFile): Array<{ node: string; kind: string; addr: string; udp: boolean }> {
  const out: Array<{ node: string; kind: string; addr: string; udp: boolean }> = [];
  for (const n of plan.nodes) {
    out.push({ node: n.id, kind: 'gossip', addr: n.gossip, udp: true }, { node: n.id, kind: 'rpc', addr: n.rpc, udp: false });
    if (n.metrics !== undefined) out.push({ node: n.id, kind: 'metrics', addr: n.metrics, udp: false });
    if (n.resp !== undefined) out.push({ node: n.id, kind: 'resp', addr: n.resp, udp: false });
  }
  return out;
}

function splitHostPort(addr: string): { host: string; port: number } {
  const at = addr.lastIndexOf(':');
  return { host: addr.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(addr.slice(at + 1)) };
}

/** null when `addr` can be bound now (TCP, and UDP for gossip), else the error code (EADDRINUSE, ...). */
async function probeAddress(addr: string, udp: boolean): Promise<string | null> {
  const { host, port } = splitHostPort(addr);
  if (port === 0) return null;
  const tcp = await new Promise<string | null>((done) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => done(null)));
  });
  if (tcp !== null || !udp) return tcp;
  return new Promise<string | null>((done) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      done(err.code ?? err.message);
    });
    socket.bind(port, host, () => socket.close(() => done(null)));
  });
}

function readPid(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Why this plan cannot start now, or null: a live `shoal local` or agent holds DIR or a node's data
 * dir, or one of the addresses is taken. Nothing is written before this says null.
 */
export async function localConflict(plan: ClusterFile, root: string): Promise<string | null> {
  const launcher = readPid(join(root, LOCAL_PID_FILE));
  if (launcher !== null && launcher !== process.pid && isProcessAlive(launcher)) {
    return `${root} is in use by a running shoal local (pid ${launcher}); stop it first, or pick another --data-dir`;
  }
  for (const n of plan.nodes) {
    const holder = n.dataDir === undefined ? null : readPid(join(resolve(n.dataDir), 'LOCK'));
    if (holder !== null && holder !== process.pid && isProcessAlive(holder)) return `the data dir of ${n.id} (${n.dataDir}) is in use by a running agent (pid ${holder}); stop it first, or pick another --data-dir`;
  }
  const first = await firstTaken(plan);
  if (!first) return null;
  const why = first.problem === 'EADDRINUSE' ? 'is in use by another process (another Shoal cluster?)'
    : first.problem === 'EADDRNOTAVAIL' ? 'is not an address of this machine'
    : first.problem === 'EACCES' ? 'needs privileges (ports below 1024)'
    : `cannot be bound (${first.problem})`;
  if (first.problem === 'EADDRNOTAVAIL') return `${first.addr} (${first.node} ${first.kind}) ${why}; pick another --host`;
  // Suggest a base whose every port is free now.
  let suggestion = '';
  const host = splitHostPort(plan.nodes[0].rpc).host;
  for (const base of [8101, 9101, 10101, 11101, 12101, 20101, 30101]) {
    const candidate = planLocalCluster({ cluster: plan.cluster, nodes: plan.nodes.map((n) => ({ ...n })) }, plan.nodes.length, '.', { basePort: base, host });
    if ((await firstTaken(candidate)) === null) {
      suggestion = ` (e.g. --base-port ${base}, free now)`;
      break;
    }
  }
  return `${first.addr} (${first.node} ${first.kind}) ${why}; pick other ports with --base-port${suggestion}`;
}

async function firstTaken(plan: ClusterFile): Promise<{ node: string; kind: string; addr: string; problem: string } | null> {
  const probed = await Promise.all(planAddresses(plan).map(async (a) => ({ ...a, problem: await probeAddress(a.addr, a.udp) })));
  const first = probed.find((a) => a.problem !== null);
  return first === undefined ? null : { ...first, problem: first.problem ?? '' };
}

/** How the printed commands run shoal: `node bin/shoal.js` from a checkout, `shoal` when installed. */
export function shoalHint(): string {
  const script = process.argv[1] ?? '';
  const rel = relative(process.cwd(), script);
  if (/(^|\/)bin\/shoal\.js$/.test(script) && !rel.startsWith('..') && !isAbsolute(rel)) return `node ${rel}`;
  return 'shoal';
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
  /** How the process ended: its code, or the signal that killed it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running: boolean;
}

/** "exited with code 4", "was killed by SIGKILL". */
export function describeExit(e: { code: number | null; signal: NodeJS.Signals | null }): string {
  if (e.signal !== null) return `was killed by ${e.signal}`;
  return e.code === null ? 'could not be started' : `exited with code ${e.code}`;
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
  const plan = planLocalCluster(file, options.nodes, shown === '' ? '.' : shown.startsWith('..') ? root : shown, { basePort: options.basePort, host: options.host });
  const tls = options.tlsDir === undefined ? null : localTls(options.tlsDir);
  if (tls) {
    const security = plan.config?.security;
    plan.config = { ...plan.config, security: { ...(typeof security === 'object' && security !== null ? security : {}), ...tls.security } };
  }
  // Refuse before writing anything: a second launch must not overwrite a running cluster's plan.
  const conflict = await localConflict(plan, root);
  if (conflict !== null) {
    io.stderr.write(`shoal local: ${conflict}\n`);
    return EXIT.UNAVAILABLE;
  }
  mkdirSync(root, { recursive: true });
  const pidFile = join(root, LOCAL_PID_FILE);
  writeFileSync(pidFile, `${process.pid}\n`);
  const removePidFile = () => {
    if (readPid(pidFile) === process.pid) rmSync(pidFile, { force: true });
  };
  const planFile = join(root, 'cluster.json');
  writeFileSync(planFile, JSON.stringify(plan, null, 2) + '\n');

  const childEnv: Record<string, string | undefined> = { ...process.env, SHOAL_CONFIG: undefined, SHOAL_NODE: undefined };
  // Each node's configuration is checked here, so that a mistake names the user's file, not the plan.
  try {
    for (const node of plan.nodes) {
      loadConfig({
        clusterFile: planFile,
        clusterFileLabel: options.clusterFile,
        nodeId: node.id,
        env: childEnv,
        overrides: [{ path: 'log.level', value: options.logLevel, origin: 'flag --log-level' }],
      });
    }
  } catch (err) {
    removePidFile();
    io.stderr.write(`shoal local: ${toShoalError(err).message}\n`);
    return EXIT.USAGE;
  }

  const command = options.shoalCommand ?? defaultShoalCommand();
  const width = Math.max(...plan.nodes.map((n) => n.id.length));
  const launch = (node: ClusterFileNode): Agent => {
    const child = spawn(
      command[0],
      [...command.slice(1), 'agent', '--config', planFile, '--node', node.id, '--log-level', options.logLevel, '--log-format', 'text', '--stop-on-stdin-close'],
      // Own process group: a terminal's Ctrl-C reaches only the launcher, which then stops each agent once.
      { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: childEnv },
    );
    const prefix = `[${node.id.padEnd(width)}] `;
    pipeLines(child.stdout, prefix, io.stdout);
    pipeLines(child.stderr, prefix, io.stderr);
    const agent: Agent = {
      node,
      child,
      running: true,
      exited: new Promise((resolveExit) => {
        child.on('exit', (code, signal) => {
          agent.running = false;
          resolveExit({ code, signal });
        });
        child.on('error', (err) => {
          io.stderr.write(`${prefix}could not start: ${err.message}\n`);
          agent.running = false;
          resolveExit({ code: null, signal: null });
        });
      }),
    };
    return agent;
  };

  const agents: Agent[] = [];
  /** A stop is under way (asked for, or because every node is gone). */
  let stopRequested = false;
  /** The user (or the caller's signal) asked for the stop. */
  let userStop = false;
  let stopAll: () => Promise<ExitCode> = async () => EXIT.OK;
  const stopped = new Promise<ExitCode>((resolveStopped) => {
    let stopping: Promise<ExitCode> | null = null;
    stopAll = () =>
      (stopping ??= (async () => {
        stopRequested = true;
        // Only the agents still running are judged by how they stop; one that died earlier was reported then.
        const running = agents.filter((a) => a.running);
        for (const a of running) a.child.kill('SIGTERM');
        const killTimer = setTimeout(() => {
          for (const a of agents) if (a.running) a.child.kill('SIGKILL');
        }, STOP_TIMEOUT_MS);
        const ends = await Promise.all(running.map((a) => a.exited));
        await Promise.all(agents.map((a) => a.exited));
        clearTimeout(killTimer);
        ends.forEach((e, i) => {
          if (e.code !== 0) io.stderr.write(`shoal local: node ${running[i].node.id} ${describeExit(e)} while stopping\n`);
        });
        const code = !ends.every((e) => e.code === 0) ? EXIT.ERROR : userStop ? EXIT.OK : EXIT.UNAVAILABLE;
        resolveStopped(code);
        return code;
      })());
  });

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    userStop = true;
    if (signals === 1) {
      io.stdout.write(`\nshoal local: ${signal}: stopping ${agents.filter((a) => a.running).length} node(s) (again to kill them now)\n`);
      stopAll().catch((err: unknown) => io.stderr.write(`shoal local: stop failed: ${String(err)}\n`));
    } else {
      for (const a of agents) if (a.running) a.child.kill('SIGKILL');
      removePidFile();
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
    removePidFile();
  };

  function watch(a: Agent): void {
    agents.push(a);
    a.exited
      .then(async (e) => {
        if (!stopRequested) {
          const left = agents.filter((x) => x.running).length;
          io.stderr.write(`shoal local: node ${a.node.id} ${describeExit(e)}; ${left} of ${agents.length} still running${left > 0 ? ' (Ctrl-C stops them)' : ''}\n`);
          if (left === 0) await stopAll();
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
    if (!userStop) {
      // A node that cannot start (taken port, bad data dir, crash): the cluster is unavailable.
      io.stderr.write(`shoal local: ${toShoalError(err).message}; stopping the others\n`);
      await stopAll();
      detach();
      return EXIT.UNAVAILABLE;
    }
  }

  if (!stopRequested) {
    const shoal = options.shoalHint ?? shoalHint();
    const metricsOf = (n: ClusterFileNode) => (n.metrics ? `http://${n.metrics}/` : '-');
    const lines = [
      '',
      `Shoal local cluster "${plan.cluster}" is up: ${agents.length} node(s), plan in ${planFile}`,
      ...plan.nodes.map((n) => `  ${n.id.padEnd(width)}  rpc ${n.rpc}  gossip ${n.gossip}  status ${metricsOf(n)}${n.resp ? `  redis ${n.resp}` : ''}  data ${n.dataDir}`),
      '',
      'Point the CLI at it (in another terminal), then try:',
      `  export SHOAL_CONFIG=${planFile}`,
      ...(tls ? [`  export SHOAL_TLS_CA=${tls.files.ca} SHOAL_TLS_CERT=${tls.files.cert} SHOAL_TLS_KEY=${tls.files.key}`] : []),
      `  ${shoal} put hello world`,
      `  ${shoal} get hello`,
      `  ${shoal} status`,
      ...(plan.nodes.length > 1 ? [`  ${shoal} get hello --addr ${plan.nodes[plan.nodes.length - 1].rpc}    # any node answers`] : []),
      ...redisCliLines(plan, tls !== null),
      ...(plan.nodes[0].metrics ? [`Status page: http://${plan.nodes[0].metrics}/   Metrics: http://${plan.nodes[0].metrics}/metrics`] : []),
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
