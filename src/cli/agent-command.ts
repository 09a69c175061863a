/**
 * `shoal agent`: load the configuration, start the node, serve until SIGTERM/SIGINT, then stop
 * gracefully within shutdown.timeoutMs (exit 0); a `shoal leave` request ends it the same way. A second signal, or the time running out, exits at
 * once. Start-up failures (bad config, data dir locked, address in use) are one line on stderr.
 */
import { ShoalError, toShoalError } from '../errors.js';
import { loadConfig, type ConfigOverride } from '../node/config.js';
import { ENV_CONFIG_FILE, ENV_NODE, unknownEnvVars } from '../node/config-env.js';
import { DEFAULTS } from '../node/config-defaults.js';
import { createNodeLogger } from '../node/logging.js';
import { installLastResort } from '../node/last-resort.js';
import { startNode } from '../node/node.js';
import { EXIT, exitCodeFor, type ExitCode } from './exit-codes.js';
import type { CliIo } from './io.js';

export interface AgentArgs {
  config?: string;
  node?: string;
  id?: string;
  dataDir?: string;
  cluster?: string;
  gossip?: string;
  rpc?: string;
  metrics?: string;
  resp?: string;
  advertise?: string;
  seeds?: string[];
  bootstrap?: boolean;
  zone?: string;
  tag?: string[];
  logLevel?: string;
  logFormat?: string;
  fsync?: string;
  set?: string[];
  /** Stop when stdin closes (used by `shoal local`, so children never outlive their launcher). */
  stopOnStdinClose?: boolean;
}

/** The flags that map onto one config field each. */
const FLAG_FIELDS: Array<[keyof AgentArgs, string, string]> = [
  ['id', 'node.id', '--id'],
  ['dataDir', 'node.dataDir', '--data-dir'],
  ['cluster', 'cluster.name', '--cluster'],
  ['gossip', 'node.gossip', '--gossip'],
  ['rpc', 'node.rpc', '--rpc'],
  ['metrics', 'node.metrics', '--metrics'],
  ['resp', 'node.resp', '--resp'],
  ['advertise', 'node.advertiseHost', '--advertise'],
  ['zone', 'node.zone', '--zone'],
  ['logLevel', 'log.level', '--log-level'],
  ['logFormat', 'log.format', '--log-format'],
  ['fsync', 'storage.fsync', '--fsync'],
];

/** Flags as config overrides, in the order they take effect (`--set` last). */
export function agentOverrides(args: AgentArgs): ConfigOverride[] {
  const out: ConfigOverride[] = [];
  for (const [flag, path, name] of FLAG_FIELDS) {
    const value = args[flag];
    if (value !== undefined) out.push({ path, value, origin: `flag ${name}` });
  }
  if (args.seeds !== undefined) out.push({ path: 'membership.seeds', value: args.seeds.join(','), origin: 'flag --seeds' });
  if (args.bootstrap !== undefined) out.push({ path: 'membership.bootstrap', value: String(args.bootstrap), origin: 'flag --bootstrap' });
  if (args.tag !== undefined) out.push({ path: 'node.tags', value: args.tag.join(','), origin: 'flag --tag' });
  for (const assignment of args.set ?? []) {
    const eq = assignment.indexOf('=');
    if (eq <= 0) throw new ShoalError('CONFIG', `invalid configuration: --set needs path=value (e.g. storage.fsync=interval), got "${assignment}"`);
    out.push({ path: assignment.slice(0, eq).trim(), value: assignment.slice(eq + 1), origin: `flag --set ${assignment.slice(0, eq).trim()}` });
  }
  return out;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15 };

export async function agentCommand(args: AgentArgs, io: CliIo): Promise<ExitCode> {
  let loaded;
  try {
    loaded = loadConfig({
      clusterFile: args.config ?? (io.env[ENV_CONFIG_FILE] || undefined),
      nodeId: args.node ?? (io.env[ENV_NODE] || undefined),
      env: io.env,
      overrides: agentOverrides(args),
    });
  } catch (err) {
    io.stderr.write(`shoal agent: ${toShoalError(err).message}\n`);
    return EXIT.USAGE;
  }
  const { config } = loaded;
  for (const unknown of unknownEnvVars(io.env, DEFAULTS)) io.stderr.write(`shoal agent: warning: ${unknown.message}\n`);
  const logger = createNodeLogger({ level: config.log.level, format: config.log.format, fields: { node: config.node.id } });

  let node;
  try {
    node = await startNode(config, { logger });
  } catch (err) {
    const e = toShoalError(err);
    io.stderr.write(`shoal agent: cannot start node ${config.node.id}: ${e.message}${e.code === 'INTERNAL' ? '' : ` (${e.code})`}\n`);
    await logger.close();
    const code = exitCodeFor(e);
    return code === EXIT.NOT_FOUND ? EXIT.ERROR : code;
  }
  const log = logger.child({ layer: 'agent' });

  return new Promise<ExitCode>((resolve) => {
    let stopping = false;
    const finish = (code: ExitCode) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      removeLastResort();
      logger.close().then(
        () => resolve(code),
        () => resolve(code),
      );
    };
    const beginStop = (reason: string, failed = false) => {
      stopping = true;
      log.info(`${reason}; stopping gracefully (a second signal exits at once)`, { timeoutMs: config.shutdown.timeoutMs });
      const deadline = setTimeout(() => {
        log.error('graceful stop did not finish in time; exiting', { timeoutMs: config.shutdown.timeoutMs });
        process.exit(EXIT.ERROR);
      }, config.shutdown.timeoutMs);
      deadline.unref();
      node.stop().then(
        () => {
          clearTimeout(deadline);
          finish(failed ? EXIT.ERROR : EXIT.OK);
        },
        (err: unknown) => {
          clearTimeout(deadline);
          log.error('stop failed', { err });
          finish(EXIT.ERROR);
        },
      );
    };
    function onSignal(signal: NodeJS.Signals) {
      if (stopping) {
        io.stderr.write(`shoal agent: second ${signal}, exiting now\n`);
        process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 1));
      }
      beginStop(`received ${signal}`);
    }
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // `shoal leave` stops the node itself (hand off, announce, stop serving): the agent exits 0.
    node.stopped().then(
      () => {
        if (stopping) return;
        stopping = true;
        log.info('left the cluster and stopped; exiting');
        finish(EXIT.OK);
      },
      (err: unknown) => log.error('the node stopped with an error', { err }),
    );
    const removeLastResort = installLastResort(process, {
      logger: log,
      stop: (reason) => {
        if (!stopping) beginStop(reason, true);
      },
    });
    if (args.stopOnStdinClose) {
      io.stdin.on('end', () => {
        if (!stopping) beginStop('stdin closed (launcher went away)');
      });
      io.stdin.resume();
    }
  });
}
