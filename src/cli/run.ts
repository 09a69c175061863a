/**
 * The `shoal` command line (yargs): the commands, their options and help, and the mapping from
 * outcomes to exit statuses. `runCli(argv, io)` returns the status instead of exiting, so tests run
 * it in-process; src/cli/main.ts is the process entry.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { parseDurationMs } from '../units.js';
import { DEFAULTS } from '../node/config-defaults.js';
import { unknownEnvVars } from '../node/config-env.js';
import type { AgentArgs } from './agent-command.js';
import {
  STDIN_ARG, delCommand, getCommand, healthCommand, leaveCommand, membersCommand, putCommand, removeCommand, ringCommand,
  type ClientArgs, type Consistency,
} from './client-commands.js';
import { scanCommand, statsCommand, statusCommand, ttlCommand } from './cluster-commands.js';
import { EXIT, UsageError, errorLine, exitCodeFor, type ExitCode } from './exit-codes.js';
import { generateCommand, keyringCommand, type KeyringCommandAction } from './keyring-command.js';
import { processIo, type CliIo } from './io.js';
import type { LocalOptions } from './local-command.js';
import { EXAMPLE_CLUSTER_FILE, exampleDefaults, resolveTarget, type TargetArgs } from './target.js';

// The agent and the launcher load the whole node (store, membership, cluster, winston, prom-client);
// client commands should not pay for that on every call, so those two are imported when used.
async function agentCommand(args: AgentArgs, io: CliIo): Promise<ExitCode> {
  return (await import('./agent-command.js')).agentCommand(args, io);
}

async function localCommand(options: LocalOptions, io: CliIo): Promise<ExitCode> {
  return (await import('./local-command.js')).localCommand(options, io);
}

/** The package root: two levels above both src/cli/ and dist/cli/. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export { EXAMPLE_CLUSTER_FILE, exampleDefaults };

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const EPILOGUE = `Exit status:
  0  ok
  1  not found (get of a missing key; nothing is printed on stdout)
  2  usage or configuration error
  3  unavailable: node unreachable, not serving, timed out, or too few replicas answered
  4  any other error reported by the server (e.g. VALUE_TOO_LARGE, READ_ONLY)

Which cluster: --addr/--cluster, else --config FILE, else SHOAL_ADDR/SHOAL_CLUSTER, else SHOAL_CONFIG
(a cluster file: every node's rpc address is tried in turn), else n1 of cluster.example.json.
Durations: 30 (seconds), 500ms, 30s, 5m, 2h30m, 1d, 1w.
Environment: SHOAL_CONFIG, SHOAL_ADDR, SHOAL_CLUSTER, SHOAL_TIMEOUT, SHOAL_TLS=1, SHOAL_TLS_CA,
SHOAL_TLS_CERT, SHOAL_TLS_KEY, SHOAL_TLS_SERVER_NAME; the agent reads SHOAL_NODE and
SHOAL_<SECTION>_<FIELD> too (docs/CONFIG.md).
Docs: docs/CLI.md, docs/CONFIG.md`;

/** A --ttl or --timeout: a bare number is seconds (like Redis EX), or a duration such as 500ms or 2h30m. */
export function durationOption(name: string) {
  return (text: string | number): number => {
    try {
      const ms = parseDurationMs(typeof text === 'number' ? String(text) : text, 's');
      if (ms <= 0) throw new Error('not positive');
      return ms;
    } catch {
      throw new UsageError(`--${name} must be a positive duration like 30 (seconds), 500ms, 5m or 2h30m, got "${String(text)}"`);
    }
  };
}

function clientOptions<T>(y: Argv<T>, io: CliIo) {
  const defaults = exampleDefaults();
  return y
    .option('addr', {
      type: 'string',
      describe: 'node to talk to, host:port (comma-separate several to fail over)',
      defaultDescription: `--config's nodes, $SHOAL_ADDR, $SHOAL_CONFIG's nodes, or ${defaults.addr}`,
      group: 'Connection:',
    })
    .option('cluster', {
      type: 'string',
      describe: 'cluster name expected in the handshake',
      defaultDescription: `--config's, $SHOAL_CLUSTER, $SHOAL_CONFIG's, or "${defaults.cluster}"`,
      group: 'Connection:',
    })
    .option('config', {
      type: 'string',
      describe: 'cluster file (e.g. DIR/cluster.json of shoal local): its nodes\' rpc addresses, its name, its TLS',
      defaultDescription: '$SHOAL_CONFIG',
      group: 'Connection:',
    })
    .option('timeout', {
      type: 'string',
      describe: 'per-request timeout (a bare number is seconds)',
      default: io.env.SHOAL_TIMEOUT ?? '5s',
      defaultDescription: '$SHOAL_TIMEOUT or 5s',
      group: 'Connection:',
    })
    .option('tls', {
      type: 'boolean',
      describe: 'connect with TLS (implied by --tls-ca)',
      default: /^(1|true|yes|on)$/i.test(io.env.SHOAL_TLS ?? ''),
      defaultDescription: '$SHOAL_TLS or off',
      group: 'TLS:',
    })
    .option('tls-ca', { type: 'string', describe: 'PEM file of the cluster CA the node certificates chain to', default: io.env.SHOAL_TLS_CA, defaultDescription: '$SHOAL_TLS_CA', group: 'TLS:' })
    .option('tls-cert', { type: 'string', describe: 'PEM client certificate, for nodes that require one (mutual TLS)', default: io.env.SHOAL_TLS_CERT, defaultDescription: '$SHOAL_TLS_CERT', group: 'TLS:' })
    .option('tls-key', { type: 'string', describe: 'PEM private key of --tls-cert', default: io.env.SHOAL_TLS_KEY, defaultDescription: '$SHOAL_TLS_KEY', group: 'TLS:' })
    .option('tls-server-name', {
      type: 'string',
      describe: 'name to check in the node\'s certificate (default: the host in --addr)',
      default: io.env.SHOAL_TLS_SERVER_NAME,
      defaultDescription: '$SHOAL_TLS_SERVER_NAME',
      group: 'TLS:',
    })
    .option('json', { type: 'boolean', describe: 'print JSON for scripts', default: false });
}

function consistencyOption<T>(y: Argv<T>) {
  return y.option('consistency', {
    type: 'string',
    choices: ['one', 'quorum', 'all'] as const,
    describe: 'replicas that must answer (default: the cluster\'s configured W/R)',
  });
}

interface RawClientArgs extends TargetArgs {
  timeout: string;
  json: boolean;
}

/** The connection options of a client command, resolved (which cluster, TLS, timeout). */
function clientArgs(raw: RawClientArgs, io: CliIo): ClientArgs {
  const target = resolveTarget(raw, io.env);
  const args: ClientArgs = { addr: target.addr, cluster: target.cluster, timeoutMs: durationOption('timeout')(raw.timeout), json: raw.json };
  if (target.tls !== undefined) args.tls = target.tls;
  return args;
}

/** Positional arguments that came after "--" carry this mark while yargs parses (so "-k" stays a key). */
const LITERAL_MARK = '\u0001';

/** A positional argument as the user typed it (undoes the "-" and "--" marks). */
export function positional(value: string | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  return text.startsWith(LITERAL_MARK) ? text.slice(1) : text;
}

/** A KEY (or ID) argument: never empty. */
function requiredName(value: string | number | undefined, what: string): string {
  const text = positional(value);
  if (text === undefined || text === '') throw new UsageError(`${what} must not be empty`);
  return text === STDIN_ARG ? '-' : text;
}

/**
 * Prepares argv for yargs: a lone "-" (stdin) is marked; arguments after "--" are marked as literal
 * positionals, so keys that begin with "-" work there; before "--", a single-dash word that is not
 * an option (`shoal get -dash`) is a usage error rather than a cluster of short flags (which would
 * include -h and print help with exit 0).
 */
export function prepareArgv(argv: string[]): string[] {
  const end = argv.indexOf('--');
  const before = end === -1 ? argv : argv.slice(0, end);
  const after = end === -1 ? [] : argv.slice(end + 1);
  for (const [i, arg] of before.entries()) {
    if (!/^-[^-]/.test(arg) || arg === '-h' || arg === '-v' || /^-\d+(\.\d+)?$/.test(arg)) continue; // -5 is a number, not flags
    // The value of an option may begin with "-" (e.g. --addr -x is still caught by --addr's check).
    if (i > 0 && /^--[a-z-]+$/.test(before[i - 1]) && !BOOLEAN_OPTION.test(before[i - 1])) continue;
    throw new UsageError(`unknown option ${arg}; a key or value that begins with "-" goes after "--", e.g. shoal get -- ${arg}`);
  }
  return [...before.map((a) => (a === '-' ? STDIN_ARG : a)), ...after.map((a) => LITERAL_MARK + a)];
}

/** Options that take no value (so the word after them is a positional). */
const BOOLEAN_OPTION = /^--(json|tls|help|version|keys-only|stop-on-stdin-close|no-[a-z-]+)$|^-[hv]$/;

/** The command word: the first argument that is neither an option nor an option's value. */
function commandOf(argv: string[]): string | undefined {
  for (const [i, arg] of argv.entries()) {
    if (arg === '--') return undefined;
    if (arg.startsWith('-')) continue;
    const previous = argv[i - 1];
    if (i > 0 && previous.startsWith('--') && !previous.includes('=') && !BOOLEAN_OPTION.test(previous)) continue;
    return arg;
  }
  return undefined;
}

/** Turns yargs' own (often multi-line) messages into one line with the command's usage. */
function usageMessage(message: string, argv: string[]): string {
  const oneLine = message.replace(/\s*\n\s*/g, ' ').trim();
  const command = commandOf(argv);
  const usage = command !== undefined && COMMAND_USAGE[command] !== undefined ? `; usage: shoal ${COMMAND_USAGE[command]}` : '';
  if (/^Not enough non-option arguments/.test(oneLine)) return `missing argument${usage}`;
  if (/^Too many non-option arguments/.test(oneLine)) return `too many arguments${usage} (a key that begins with "-" goes after "--")`;
  const invalid = /^Invalid values: Argument: ([\w-]+), Given: (.*), Choices: (.*)$/.exec(oneLine);
  if (invalid) return `--${invalid[1]} must be one of ${invalid[3].replace(/"/g, '')}, got ${invalid[2]}`;
  const unknown = /^Unknown arguments?: (.*)$/.exec(oneLine);
  if (unknown) {
    const items = unknown[1].split(', ');
    if (command !== undefined && items.includes(command)) return `unknown command ${command} (shoal --help lists the commands)`;
    const named = items.map((item) => (argv.includes(`--${item}`) || argv.some((a) => a.startsWith(`--${item}=`)) ? `option --${item}` : `argument ${JSON.stringify(item)}`));
    return `unknown ${named.join(', ')}${usage}`;
  }
  return oneLine;
}

/** One-line usage of each command, for usage errors. */
const COMMAND_USAGE: Record<string, string> = {
  get: 'get KEY [--json] [--consistency one|quorum|all]',
  put: 'put KEY [VALUE] [--file F] [--ttl 30s]',
  del: 'del KEY',
  delete: 'delete KEY',
  remove: 'remove ID',
  ttl: 'ttl KEY',
  scan: 'scan [--prefix P] [--limit N] [--keys-only] [--cursor C]',
  keyring: 'keyring list|install KEY|use KEY|remove KEY|generate',
};

function buildParser(io: CliIo, setResult: (code: Promise<ExitCode>) => void): Argv {
  const run = (p: Promise<ExitCode>) => setResult(p);
  const y = yargs()
    .scriptName('shoal')
    .usage('$0 <command> [options]\n\nShoal: a gossip-based peer-to-peer key-value cluster.')
    .version('version', 'print the version', packageVersion())
    .alias('v', 'version')
    .help('help', 'show help')
    .alias('h', 'help')
    .strict()
    .exitProcess(false)
    .wrap(Math.min(100, yargs().terminalWidth()))
    .epilogue(EPILOGUE)
    .demandCommand(1, 'name a command (shoal --help lists them)')
    .recommendCommands()
    .fail((message, err) => {
      throw err ?? new UsageError(message);
    });

  y.command(
    'agent',
    'run a node (the daemon) in the foreground',
    (a) =>
      a
        .usage('$0 agent [--config FILE --node ID] [options]\n\nRuns a node until SIGTERM/SIGINT, then stops gracefully (exit 0). Precedence: config/default.json < cluster file < SHOAL_* environment < flags.')
        .option('config', { type: 'string', describe: 'cluster file (cluster.example.json layout)', defaultDescription: '$SHOAL_CONFIG', group: 'Agent:' })
        .option('node', { type: 'string', describe: 'which node of the cluster file this is', defaultDescription: '$SHOAL_NODE', group: 'Agent:' })
        .option('id', { type: 'string', describe: 'node id (node.id)', group: 'Agent:' })
        .option('data-dir', { type: 'string', describe: 'data directory (node.dataDir)', group: 'Agent:' })
        .option('cluster', { type: 'string', describe: 'cluster name (cluster.name)', group: 'Agent:' })
        .option('gossip', { type: 'string', describe: 'gossip address host:port (node.gossip)', group: 'Agent:' })
        .option('rpc', { type: 'string', describe: 'RPC address host:port (node.rpc)', group: 'Agent:' })
        .option('metrics', { type: 'string', describe: 'metrics HTTP address host:port (node.metrics)', group: 'Agent:' })
        .option('resp', { type: 'string', describe: 'Redis protocol (RESP) address host:port, "" = off (node.resp)', group: 'Agent:' })
        .option('advertise', { type: 'string', describe: 'host the other nodes reach this one at (node.advertiseHost)', group: 'Agent:' })
        .option('seeds', { type: 'string', array: true, describe: 'seeds to join through: host:port (IP or DNS name) or srv:NAME (membership.seeds)', group: 'Agent:' })
        .option('bootstrap', { type: 'boolean', describe: 'serve before a seed or known member answered: may start a new cluster (membership.bootstrap)', group: 'Agent:' })
        .option('zone', { type: 'string', describe: 'failure zone (node.zone)', group: 'Agent:' })
        .option('tag', { type: 'string', array: true, describe: 'member tag key=value, repeatable (node.tags)', group: 'Agent:' })
        .option('log-level', { type: 'string', describe: 'error | warn | info | debug (log.level)', group: 'Agent:' })
        .option('log-format', { type: 'string', describe: 'text | json (log.format)', group: 'Agent:' })
        .option('fsync', { type: 'string', describe: 'always | interval | none (storage.fsync)', group: 'Agent:' })
        .option('set', { type: 'string', array: true, describe: 'any setting, path=value, repeatable (e.g. --set storage.fsyncIntervalMs=200ms)', group: 'Agent:' })
        .option('stop-on-stdin-close', { type: 'boolean', hidden: true })
        .example('$0 agent --config cluster.example.json --node n1', 'start node n1 of the example cluster')
        .example('$0 agent --rpc 127.0.0.1:0 --data-dir /tmp/s1', 'a standalone node on a free port'),
    (argv) => run(agentCommand(argv as unknown as AgentArgs, io)),
  );

  y.command(
    'local',
    'start a local cluster of agents as child processes (Ctrl-C stops them)',
    (a) =>
      a
        .option('nodes', { type: 'number', default: 3, describe: 'how many nodes (1-99)' })
        .option('data-dir', { type: 'string', default: 'data', describe: 'parent of the nodes\' data dirs (DIR/n1, DIR/n2, ...)' })
        .option('config', { type: 'string', describe: 'cluster file whose nodes come first', defaultDescription: 'cluster.example.json' })
        .option('log-level', { type: 'string', default: 'info', describe: 'the agents\' log level' })
        .option('base-port', { type: 'number', describe: 'lay the ports out from here: gossip BASE+i, rpc BASE+100+i, metrics BASE+200+i, resp BASE+300+i', defaultDescription: 'the cluster file\'s ports (7101, 7201, 7301, ...)' })
        .option('host', { type: 'string', describe: 'the address every node listens on (with --base-port\'s layout)', defaultDescription: '127.0.0.1' })
        .option('tls-dir', { type: 'string', describe: 'TLS and mutual TLS for every node: DIR holds ca.pem, node.pem, node-key.pem (docs/SECURITY.md)' })
        .example('$0 local --base-port 8101', 'ports 8101.. (gossip), 8201.. (rpc), 8301.. (metrics), when 7201 is taken'),
    (argv) =>
      run(
        localCommand(
          {
            nodes: argv.nodes,
            dataDir: argv['data-dir'],
            clusterFile: argv.config ?? EXAMPLE_CLUSTER_FILE,
            logLevel: argv['log-level'],
            tlsDir: argv['tls-dir'],
            basePort: argv['base-port'],
            host: argv.host,
          },
          io,
        ),
      ),
  );

  y.command(
    'get <key>',
    'print the value of a key (raw bytes; exit 1 if missing)',
    (a) => consistencyOption(clientOptions(a.positional('key', { type: 'string', demandOption: true }), io)),
    (argv) => run(getCommand({ ...clientArgs(argv, io), key: requiredName(argv.key, 'KEY'), consistency: argv.consistency as Consistency | undefined }, io)),
  );

  y.command(
    'put <key> [value]',
    'store a value (from the argument, --file, or stdin)',
    (a) =>
      consistencyOption(clientOptions(a, io))
        .positional('key', { type: 'string', demandOption: true })
        .positional('value', { type: 'string', describe: 'the value; "-" or absent with piped stdin reads stdin' })
        .option('file', { type: 'string', describe: 'read the value from this file' })
        .option('ttl', { type: 'string', describe: 'expire after this long: 30 (seconds), 30s, 5m, 2h30m, 1w' })
        .example('$0 put hello world', '')
        .example('$0 put session:1 "{...}" --ttl 30m', '')
        .example('cat photo.jpg | $0 put photo', ''),
    (argv) =>
      run(
        putCommand(
          {
            ...clientArgs(argv, io),
            key: requiredName(argv.key, 'KEY'),
            value: positional(argv.value),
            file: argv.file,
            ttlMs: argv.ttl === undefined ? undefined : durationOption('ttl')(argv.ttl),
            consistency: argv.consistency as Consistency | undefined,
          },
          io,
        ),
      ),
  );

  y.command(
    ['del <key>', 'delete <key>'],
    'delete a key (a tombstone; exit 0 even if it was missing)',
    (a) => consistencyOption(clientOptions(a.positional('key', { type: 'string', demandOption: true }), io)),
    (argv) => run(delCommand({ ...clientArgs(argv, io), key: requiredName(argv.key, 'KEY'), consistency: argv.consistency as Consistency | undefined }, io)),
  );

  y.command(
    'status',
    'the whole cluster at a glance: one row per member, asked on every node',
    (a) => clientOptions(a, io).example('$0 status', '').example('$0 status --json', ''),
    (argv) => run(statusCommand(clientArgs(argv, io), io)),
  );
  y.command(
    'scan',
    'list keys (and values) cluster-wide, in ring order, with a resumable cursor',
    (a) =>
      clientOptions(a, io)
        .option('prefix', { type: 'string', describe: 'only keys that begin with this' })
        .option('limit', { type: 'number', describe: 'stop after the page that reaches this many keys (pages are never split)', defaultDescription: 'all (1000 with --json)' })
        .option('keys-only', { type: 'boolean', default: false, describe: 'print keys without their values' })
        .option('cursor', { type: 'string', describe: 'go on from where an earlier scan stopped' })
        .example('$0 scan --prefix user: --keys-only', '')
        .example('$0 scan --limit 100', 'then: $0 scan --limit 100 --cursor C (printed on stderr)'),
    (argv) =>
      run(scanCommand({ ...clientArgs(argv, io), prefix: argv.prefix, limit: argv.limit, keysOnly: argv['keys-only'], cursor: argv.cursor }, io)),
  );
  y.command(
    'ttl <key>',
    'time left before a key expires ("none" without expiry; exit 1 if missing)',
    (a) => clientOptions(a.positional('key', { type: 'string', demandOption: true }), io),
    (argv) => run(ttlCommand({ ...clientArgs(argv, io), key: requiredName(argv.key, 'KEY') }, io)),
  );
  y.command(
    'stats',
    'a summary of the node\'s figures (--full: all of them; --json: for scripts)',
    (a) => clientOptions(a, io).option('full', { type: 'boolean', default: false, describe: 'every figure, as an indented tree' }),
    (argv) => run(statsCommand({ ...clientArgs(argv, io), full: argv.full }, io)),
  );
  y.command('health', 'check that the node serves (exit 3 if not)', (a) => clientOptions(a, io), (argv) => run(healthCommand(clientArgs(argv, io), io)));
  y.command('members', 'list the cluster members and their state', (a) => clientOptions(a, io), (argv) => run(membersCommand(clientArgs(argv, io), io)));
  y.command('ring', 'show the hash ring: ownership per node and its checksum', (a) => clientOptions(a, io), (argv) => run(ringCommand(clientArgs(argv, io), io)));
  y.command('leave', 'ask the node to hand off its data, leave the cluster and stop (waits until it is gone)', (a) => clientOptions(a, io), (argv) => {
    const args = clientArgs(argv, io);
    // With a cluster file's list, "the first node that answers" would leave: make the choice explicit.
    if (args.addr.includes(',')) throw new UsageError(`leave acts on one node: name it with --addr HOST:PORT (the addresses given were ${args.addr})`);
    return run(leaveCommand(args, io));
  });
  y.command(
    'remove <id>',
    'declare a dead member gone for good so its ranges are re-replicated',
    (a) => clientOptions(a.positional('id', { type: 'string', demandOption: true }), io),
    (argv) => run(removeCommand({ ...clientArgs(argv, io), id: requiredName(argv.id, 'ID') }, io)),
  );
  y.command('keyring', 'manage the gossip encryption keys of the whole cluster', (k) => {
    const keyed = (action: KeyringCommandAction, describe: string) =>
      k.command(
        `${action} <key>`,
        describe,
        (a) => clientOptions(a.positional('key', { type: 'string', demandOption: true, describe: action === 'install' ? 'base64 key ("-" reads stdin)' : 'base64 key or key id ("-" reads stdin)' }), io),
        (argv) => run(keyringCommand({ ...clientArgs(argv, io), action, key: requiredName(argv.key, 'KEY') }, io)),
      );
    k.usage('$0 keyring <list|install|use|remove|generate>\n\nRotate a key without downtime: generate, install on every node, use (make primary), then remove the old one. docs/SECURITY.md')
      .command('list', 'list the keys installed on every node, with how many nodes hold each', (a) => clientOptions(a, io), (argv) => run(keyringCommand({ ...clientArgs(argv, io), action: 'list' }, io)))
      .command('generate', 'print a fresh random key (base64); nothing is sent', (a) => a.option('json', { type: 'boolean', default: false, describe: 'print JSON' }), (argv) => run(Promise.resolve(generateCommand({ json: argv.json }, io))));
    keyed('install', 'install a key on every node (it opens messages at once; seal with it after use)');
    keyed('use', 'make an installed key the primary on every node (refused unless every node has it)');
    keyed('remove', 'remove a key from every node (refused for a primary key)');
    return k.demandCommand(1, 'name a keyring action: list, install, use, remove or generate');
  });
  y.completion('completion', 'print a bash/zsh completion script (shoal completion >> ~/.bashrc)');
  return y;
}

/** Runs one command line; resolves to its exit status. Never throws, never prints a stack for user mistakes. */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  let result: Promise<ExitCode> | null = null;
  let output = '';
  const parser = buildParser(io, (p) => {
    result = p;
  });
  try {
    const args = prepareArgv(argv);
    const command = commandOf(argv);
    if (command !== undefined && command !== 'agent' && command !== 'local' && command !== 'completion') {
      for (const unknown of unknownEnvVars(io.env, DEFAULTS)) io.stderr.write(`shoal: warning: ${unknown.message}\n`);
    }
    await parser.parseAsync(args, {}, (_err, _argv, out) => {
      output = out;
    });
    if (output) io.stdout.write(output.endsWith('\n') ? output : output + '\n');
    if (result === null) return EXIT.OK; // --help, --version, completion
    return await (result as Promise<ExitCode>);
  } catch (err) {
    const usage = err instanceof UsageError || (err instanceof Error && err.name === 'YError');
    if (usage) {
      io.stderr.write(`shoal: ${usageMessage(err.message, argv)}\n`);
      return EXIT.USAGE;
    }
    io.stderr.write(`shoal: ${errorLine(err)}\n`);
    return exitCodeFor(err);
  }
}
