/**
 * Loads a node's configuration from four layers, later layers winning:
 *   config/default.json < cluster file (--config F --node ID) < SHOAL_* environment < flags.
 * Strings for duration (`...Ms`) and size (`...Bytes`, `...BytesMax`) fields may carry units ("30s",
 * "64MiB") in every layer. The result is validated against src/node/config-schema.ts; the first
 * problem becomes one ShoalError('CONFIG') whose message names the field, what is wrong and where the
 * value came from. See docs/CONFIG.md.
 */
import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { lazyValidator } from './schema.js';
import { resolveClusterConfig, type ClusterConfig } from '../cluster/config.js';
import { ShoalError } from '../errors.js';
import { resolveMembershipConfig, type MembershipConfig } from '../membership/config.js';
import { parseDnsServer, parseSeed } from '../membership/seeds.js';
import { parseBytes, parseDurationMs } from '../units.js';
import { ADDRESS_PATTERN, DNS_SERVER_PATTERN, SEED_PATTERN, configSchema, crossFieldProblems, type ShoalConfig } from './config-schema.js';
import { readClusterFile, type ClusterFile } from './cluster-file.js';
import { ENV_ALIASES, envName, unknownEnvVars } from './config-env.js';
import { DEFAULTS as defaultsJson } from './config-defaults.js';

export type { ShoalConfig } from './config-schema.js';

/** A value set by a flag (or any caller): `path` is dotted, e.g. "storage.fsync". */
export interface ConfigOverride {
  path: string;
  value: unknown;
  /** Shown in error messages, e.g. "flag --data-dir". */
  origin: string;
}

export interface LoadConfigOptions {
  /** Path of a cluster file (cluster.example.json layout). */
  clusterFile?: string;
  /** How errors name the cluster file (default: its path); `shoal local` names the user's file, not its plan. */
  clusterFileLabel?: string;
  /** Which node of the cluster file this is; optional when the file lists one node. */
  nodeId?: string;
  /** Environment to read SHOAL_* variables from; default process.env. */
  env?: Record<string, string | undefined>;
  overrides?: ConfigOverride[];
}

export interface LoadedConfig {
  config: ShoalConfig;
  /** Where each leaf field's value came from ("default", "cluster file F", "env X", "flag --y"). */
  origins: Map<string, string>;
  /** The cluster file, when one was given (the launcher and tests use its node list). */
  clusterFile: ClusterFile | null;
}

type Json = Record<string, unknown>;

/** The defaults alone, validated (a bad config/default.json is a bug and throws). */
export function defaultConfig(): ShoalConfig {
  return validateConfig(structuredClone(defaultsJson) as Json);
}

export function configError(field: string, problem: string, origin?: string): ShoalError {
  const from = origin && origin !== 'default' ? ` (from ${origin})` : '';
  return new ShoalError('CONFIG', `invalid configuration: ${field} ${problem}${from}`, { field });
}

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/**
 * Leaf paths of the defaults: values that are set as a whole. An object that is empty in the defaults
 * (node.tags) is a leaf, a record of free-form keys.
 */
export function leafPaths(value: Json = defaultsJson as Json, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isPlainObject(child) && Object.keys(child).length > 0) out.push(...leafPaths(child, path));
    else out.push(path);
  }
  return out;
}

function getPath(root: Json, path: string): unknown {
  let cur: unknown = root;
  for (const part of path.split('.')) {
    if (!isPlainObject(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

function setPath(root: Json, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = root;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(cur[part])) cur[part] = {};
    cur = cur[part] as Json;
  }
  cur[parts[parts.length - 1]] = value;
}

/** Deep-merges `layer` into `target`, recording the origin of every leaf it sets. */
function mergeLayer(target: Json, layer: Json, origin: string, origins: Map<string, string>, leaves: Set<string>, prefix = ''): void {
  for (const [key, value] of Object.entries(layer)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isPlainObject(value) && !leaves.has(path) && isPlainObject(target[key])) {
      mergeLayer(target[key] as Json, value, origin, origins, leaves, path);
    } else {
      target[key] = value;
      origins.set(path, origin);
    }
  }
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

/**
 * Turns a string (from the environment, a flag, or a unit-carrying JSON value) into the type the
 * default at `path` has. Throws a CONFIG error naming the field when that cannot be done.
 */
export function coerceValue(path: string, raw: unknown, origin: string): unknown {
  const def = getPath(defaultsJson as Json, path);
  if (typeof raw !== 'string') return raw;
  const text = raw.trim();
  if (typeof def === 'number') {
    try {
      if (/Ms$/.test(path)) return parseDurationMs(text);
      if (/Bytes(Max)?$/.test(path)) return parseBytes(text);
    } catch {
      const kind = /Ms$/.test(path) ? 'a duration like 500ms, 30s or 5m' : 'a size like 4096, 64KiB or 1MiB';
      throw configError(path, `must be ${kind}; got ${JSON.stringify(raw)}`, origin);
    }
    if (!/^-?\d+(\.\d+)?$/.test(text)) throw configError(path, `must be a number; got ${JSON.stringify(raw)}`, origin);
    return Number(text);
  }
  if (typeof def === 'boolean') {
    if (TRUE_WORDS.has(text.toLowerCase())) return true;
    if (FALSE_WORDS.has(text.toLowerCase())) return false;
    throw configError(path, `must be true or false; got ${JSON.stringify(raw)}`, origin);
  }
  if (Array.isArray(def)) return text === '' ? [] : text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (isPlainObject(def)) {
    const record: Record<string, string> = {};
    for (const pair of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw configError(path, `must be a list of key=value pairs separated by commas; got ${JSON.stringify(raw)}`, origin);
      record[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
    }
    return record;
  }
  return raw;
}

/** The SHOAL_* variables that are set, as a config layer. */
function envLayer(env: Record<string, string | undefined>, origins: Map<string, string>, paths: string[]): Json {
  const layer: Json = {};
  const apply = (name: string, path: string) => {
    const raw = env[name];
    if (raw === undefined) return;
    const origin = `env ${name}`;
    setPath(layer, path, coerceValue(path, raw, origin));
    origins.set(path, origin);
  };
  for (const [alias, path] of Object.entries(ENV_ALIASES)) apply(alias, path);
  for (const path of paths) apply(envName(path), path);
  return layer;
}

function clusterFileLayer(file: ClusterFile, nodeId: string | undefined, origin: string): Json {
  let entry = file.nodes.find((n) => n.id === nodeId);
  if (nodeId === undefined) {
    if (file.nodes.length !== 1) {
      throw new ShoalError('CONFIG', `invalid configuration: --node is required with ${origin.replace('cluster file ', '')}; it lists ${file.nodes.map((n) => n.id).join(', ')}`, { field: 'node.id' });
    }
    entry = file.nodes[0];
  }
  if (!entry) {
    throw new ShoalError('CONFIG', `invalid configuration: node "${nodeId}" is not in ${origin.replace('cluster file ', '')}; it lists ${file.nodes.map((n) => n.id).join(', ')}`, { field: 'node.id' });
  }
  const layer: Json = structuredClone(file.config ?? {}) as Json;
  const { config: _perNode, ...nodeFields } = entry;
  const nodeLayer: Json = { ...((layer.node as Json | undefined) ?? {}), ...nodeFields };
  layer.node = nodeLayer;
  if (_perNode) mergeLayer(layer, structuredClone(_perNode) as Json, origin, new Map(), new Set(leafPaths()));
  if (file.cluster !== undefined) setPath(layer, 'cluster.name', file.cluster);
  if (file.seeds !== undefined) setPath(layer, 'membership.seeds', file.seeds);
  return layer;
}

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function originOf(origins: Map<string, string>, field: string): string | undefined {
  for (let path = field; path !== ''; path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '') {
    const origin = origins.get(path);
    if (origin !== undefined) return origin;
  }
  return undefined;
}

/** One human line for the first ajv error. */
function schemaError(err: ErrorObject, root: Json, origins: Map<string, string>): ShoalError {
  let field = err.instancePath.slice(1).split('/').join('.');
  let problem: string;
  const params = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperties':
      field = field ? `${field}.${String(params.additionalProperty)}` : String(params.additionalProperty);
      problem = 'is not a known setting (see docs/CONFIG.md)';
      break;
    case 'required':
      field = field ? `${field}.${String(params.missingProperty)}` : String(params.missingProperty);
      problem = 'is required';
      break;
    case 'enum':
      problem = `must be one of ${(params.allowedValues as unknown[]).join(', ')}; got ${describe(getPath(root, field))}`;
      break;
    case 'type':
      problem = `must be ${params.type === 'integer' ? 'an integer' : `a ${String(params.type)}`}; got ${describe(getPath(root, field))}`;
      break;
    case 'minimum':
    case 'maximum':
      problem = `must be ${err.keyword === 'minimum' ? 'at least' : 'at most'} ${String(params.limit)}; got ${describe(getPath(root, field))}`;
      break;
    case 'pattern':
      problem = params.pattern === ADDRESS_PATTERN || params.pattern === `^$|${ADDRESS_PATTERN}`
        ? `must be host:port (e.g. 127.0.0.1:7201); got ${describe(getPath(root, field))}`
        : params.pattern === SEED_PATTERN
          ? `must be host:port (an IP address or a DNS name) or srv:NAME (e.g. srv:_shoal._udp.shoal.default.svc.cluster.local); got ${describe(getPath(root, field))}`
          : params.pattern === DNS_SERVER_PATTERN
            ? `must be an IP address, optionally with :port (e.g. 127.0.0.1:5353); got ${describe(getPath(root, field))}`
            : `must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit; got ${describe(getPath(root, field))}`;
      break;
    default:
      problem = `${err.message ?? 'is invalid'}; got ${describe(getPath(root, field))}`;
  }
  return configError(field, problem, originOf(origins, field));
}

const configValidator = lazyValidator<ShoalConfig>(configSchema);

/** Ports must fit in 16 bits; the schema's pattern only bounds the digit count. */
function addressProblems(config: ShoalConfig): Array<{ field: string; problem: string }> {
  const out: Array<{ field: string; problem: string }> = [];
  const check = (field: string, addr: string) => {
    const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
    if (port > 65_535) out.push({ field, problem: `has port ${port}, above 65535` });
  };
  check('node.gossip', config.node.gossip);
  check('node.rpc', config.node.rpc);
  check('node.metrics', config.node.metrics);
  if (config.node.resp !== '') check('node.resp', config.node.resp);
  config.membership.seeds.forEach((s, i) => {
    try {
      parseSeed(s);
    } catch (err) {
      out.push({ field: `membership.seeds.${i}`, problem: (err as Error).message });
    }
  });
  config.membership.dnsServers.forEach((server, i) => {
    try {
      parseDnsServer(server);
    } catch (err) {
      out.push({ field: `membership.dnsServers.${i}`, problem: (err as Error).message });
    }
  });
  return out;
}

/** Validates a complete config object; throws ShoalError('CONFIG') with one line on the first problem. */
export function validateConfig(candidate: unknown, origins = new Map<string, string>()): ShoalConfig {
  const validateSchema = configValidator();
  if (!validateSchema(candidate)) {
    throw schemaError((validateSchema.errors ?? [])[0], candidate as Json, origins);
  }
  const problems = [...addressProblems(candidate), ...crossFieldProblems(candidate)];
  if (problems.length > 0) throw configError(problems[0].field, problems[0].problem, originOf(origins, problems[0].field));
  // The layers' own checks (ranges and rules they alone know about).
  try {
    resolveClusterConfig(clusterLayerConfig(candidate));
    resolveMembershipConfig(membershipLayerConfig(candidate));
  } catch (err) {
    throw new ShoalError('CONFIG', `invalid configuration: ${(err as Error).message}`);
  }
  return candidate;
}

/** Membership's config: the membership section minus the agent's fields. */
export function membershipLayerConfig(config: ShoalConfig): MembershipConfig {
  const { seeds: _seeds, dnsServers: _dns, leaveTimeoutMs: _leave, bootstrap: _bootstrap, ...tunables } = config.membership;
  return tunables;
}

/** The cluster layer's config: the cluster section minus the agent's fields, plus the store's tombstone grace. */
export function clusterLayerConfig(config: ShoalConfig): ClusterConfig {
  const { name: _name, hintsMax: _hintsMax, hintBytesMax: _hintBytesMax, hintTtlMs: _hintTtlMs, hintReplayConcurrency: _hintReplayConcurrency, ...tunables } = config.cluster;
  return { ...tunables, tombstoneGraceMs: config.storage.tombstoneGraceMs, frameBytesMax: config.rpc.frameBytesMax };
}

/** Builds and validates the config from all layers. Throws ShoalError('CONFIG') on the first problem. */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const paths = leafPaths();
  const leaves = new Set(paths);
  const origins = new Map<string, string>(paths.map((p) => [p, 'default']));
  const merged = structuredClone(defaultsJson) as Json;

  let clusterFile: ClusterFile | null = null;
  if (options.clusterFile !== undefined) {
    const origin = `cluster file ${options.clusterFileLabel ?? options.clusterFile}`;
    clusterFile = readClusterFile(options.clusterFile, (path) => readFileSync(path, 'utf8'));
    mergeLayer(merged, clusterFileLayer(clusterFile, options.nodeId, origin), origin, origins, leaves);
  } else if (options.nodeId !== undefined) {
    throw new ShoalError('CONFIG', 'invalid configuration: --node needs --config FILE (a cluster file listing the nodes)', { field: 'node.id' });
  }

  const env = options.env ?? process.env;
  // A variable that looks like a setting but names none is a typo: refuse it, like an unknown field.
  const typo = unknownEnvVars(env, defaultsJson).find((u) => u.setting);
  if (typo) throw new ShoalError('CONFIG', `invalid configuration: ${typo.message}`, { field: typo.name });
  const envOrigins = new Map<string, string>();
  mergeLayer(merged, envLayer(env, envOrigins, paths), 'env', origins, leaves);
  for (const [path, origin] of envOrigins) origins.set(path, origin);

  for (const o of options.overrides ?? []) {
    if (!leaves.has(o.path)) throw configError(o.path, 'is not a known setting (see docs/CONFIG.md)', o.origin);
    setPath(merged, o.path, coerceValue(o.path, o.value, o.origin));
    origins.set(o.path, o.origin);
  }

  // Units are welcome in files too ("fsyncIntervalMs": "1s").
  for (const path of paths) {
    const value = getPath(merged, path);
    if (typeof value === 'string' && typeof getPath(defaultsJson as Json, path) === 'number') {
      setPath(merged, path, coerceValue(path, value, origins.get(path) ?? 'default'));
    }
  }

  return { config: validateConfig(merged, origins), origins, clusterFile };
}
