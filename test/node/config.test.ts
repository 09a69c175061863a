import test from 'ava';
import { Ajv } from 'ajv';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CLUSTER_CONFIG } from '../../src/cluster/config.js';
import { ShoalError } from '../../src/errors.js';
import { DEFAULT_MEMBERSHIP_CONFIG } from '../../src/membership/config.js';
import { DEFAULTS } from '../../src/node/config-defaults.js';
import { envName } from '../../src/node/config-env.js';
import { defaultConfig, leafPaths, loadConfig, type LoadConfigOptions } from '../../src/node/config.js';
import { clusterFileSchema } from '../../src/node/cluster-file.js';
import { configSchema } from '../../src/node/config-schema.js';
import { AJV_OPTIONS } from '../../src/node/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'shoal-config-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function clusterFile(content: unknown, name = 'cluster.json'): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const threeNodes = {
  cluster: 'test',
  seeds: ['127.0.0.1:7101'],
  nodes: [1, 2, 3].map((i) => ({ id: `n${i}`, gossip: `127.0.0.1:710${i}`, rpc: `127.0.0.1:720${i}`, metrics: `127.0.0.1:730${i}`, dataDir: `data/n${i}` })),
  config: { storage: { fsync: 'interval' } },
};

/** The CONFIG error's message for these options (fails the test if loading succeeds). */
function configErrorOf(t: import('ava').ExecutionContext, options: LoadConfigOptions): string {
  const err = t.throws(() => loadConfig(options));
  t.true(err instanceof ShoalError, String(err));
  t.is((err as ShoalError).code, 'CONFIG');
  t.false(err!.message.includes('\n'), 'one line');
  return err!.message;
}

test('the defaults are valid and every default has a schema entry and an env variable', (t) => {
  const config = defaultConfig();
  t.is(config.node.id, 'n1');
  t.is(config.cluster.replicationFactor, 3);
  const paths = leafPaths();
  t.true(paths.length > 80);
  for (const path of paths) t.regex(envName(path), /^SHOAL_[A-Z0-9_]+$/);
  t.is(envName('storage.fsyncIntervalMs'), 'SHOAL_STORAGE_FSYNC_INTERVAL_MS');
  t.is(envName('node.dataDir'), 'SHOAL_NODE_DATA_DIR');
});

/**
 * The cluster and membership sections mirror those layers' configs: every field here must be one the
 * layer knows (it refuses unknown ones). The values are the agent's: they were copied from the layers'
 * defaults and are checked against them at each integration, not here, so that a layer tuning a
 * default or adding a field is not blocked by this file.
 */
function mirrors(t: import('ava').ExecutionContext, section: string, layerDefaults: object, own: string[]) {
  const ours = (DEFAULTS as Record<string, Record<string, unknown>>)[section];
  const theirs = layerDefaults as Record<string, unknown>;
  for (const [key, value] of Object.entries(ours)) {
    if (own.includes(key)) continue;
    t.true(key in theirs, `${section}.${key} is not a setting of the layer`);
    t.is(typeof value, typeof theirs[key], `${section}.${key} has the layer's type`);
  }
}

test('the cluster and membership sections hold only settings their layers know', (t) => {
  mirrors(t, 'cluster', DEFAULT_CLUSTER_CONFIG, ['name', 'hintsMax', 'hintBytesMax', 'hintTtlMs', 'hintReplayConcurrency']);
  mirrors(t, 'membership', DEFAULT_MEMBERSHIP_CONFIG, ['seeds', 'dnsServers', 'leaveTimeoutMs', 'bootstrap']);
});

test('docs/CONFIG.md documents every field', (t) => {
  const doc = readFileSync(new URL('../../docs/CONFIG.md', import.meta.url), 'utf8');
  const missing = leafPaths().filter((path) => !doc.includes('`' + path + '`'));
  t.deepEqual(missing, []);
});

test('precedence: defaults < cluster file < environment < flags', (t) => {
  const file = clusterFile(threeNodes);
  const fromFile = loadConfig({ clusterFile: file, nodeId: 'n2', env: {} });
  t.is(fromFile.config.node.id, 'n2');
  t.is(fromFile.config.node.rpc, '127.0.0.1:7202');
  t.is(fromFile.config.node.dataDir, 'data/n2');
  t.is(fromFile.config.cluster.name, 'test');
  t.deepEqual(fromFile.config.membership.seeds, ['127.0.0.1:7101']);
  t.is(fromFile.config.storage.fsync, 'interval'); // the file's shared config
  t.is(fromFile.config.log.level, 'info'); // untouched default
  t.is(fromFile.origins.get('node.rpc'), `cluster file ${file}`);

  const env = { SHOAL_DATA_DIR: '/env/dir', SHOAL_LOG_LEVEL: 'debug', SHOAL_STORAGE_FSYNC: 'none' };
  const fromEnv = loadConfig({ clusterFile: file, nodeId: 'n2', env });
  t.is(fromEnv.config.node.dataDir, '/env/dir');
  t.is(fromEnv.config.log.level, 'debug');
  t.is(fromEnv.config.storage.fsync, 'none');
  t.is(fromEnv.origins.get('node.dataDir'), 'env SHOAL_DATA_DIR');

  const fromFlags = loadConfig({
    clusterFile: file,
    nodeId: 'n2',
    env,
    overrides: [
      { path: 'node.dataDir', value: '/flag/dir', origin: 'flag --data-dir' },
      { path: 'storage.fsync', value: 'always', origin: 'flag --fsync' },
    ],
  });
  t.is(fromFlags.config.node.dataDir, '/flag/dir');
  t.is(fromFlags.config.storage.fsync, 'always');
  t.is(fromFlags.config.log.level, 'debug'); // env still applies where no flag is given
  t.is(fromFlags.config.node.rpc, '127.0.0.1:7202'); // and the file where neither is
});

test('the full env name wins over its alias; lists, tags, booleans and units are parsed', (t) => {
  const { config } = loadConfig({
    env: {
      SHOAL_DATA_DIR: '/alias',
      SHOAL_NODE_DATA_DIR: '/full',
      SHOAL_SEEDS: '127.0.0.1:1, 127.0.0.1:2',
      SHOAL_NODE_TAGS: 'rack=r1,role=cache',
      SHOAL_CLUSTER_READ_REPAIR_ENABLED: 'no',
      SHOAL_STORAGE_FSYNC_INTERVAL_MS: '2s',
      SHOAL_STORAGE_VALUE_BYTES_MAX: '64KiB',
      SHOAL_MEMBERSHIP_PROBE_INTERVAL_MS: '1500',
    },
  });
  t.is(config.node.dataDir, '/full');
  t.deepEqual(config.membership.seeds, ['127.0.0.1:1', '127.0.0.1:2']);
  t.deepEqual(config.node.tags, { rack: 'r1', role: 'cache' });
  t.false(config.cluster.readRepairEnabled);
  t.is(config.storage.fsyncIntervalMs, 2000);
  t.is(config.storage.valueBytesMax, 65_536);
  t.is(config.membership.probeIntervalMs, 1500);
});

test('units are accepted in cluster files too', (t) => {
  const file = clusterFile({ ...threeNodes, config: { storage: { fsyncIntervalMs: '250ms' } } }, 'units.json');
  t.is(loadConfig({ clusterFile: file, nodeId: 'n1', env: {} }).config.storage.fsyncIntervalMs, 250);
});

test('a bad value is one line naming the field, the problem and its origin', (t) => {
  t.is(
    configErrorOf(t, { env: { SHOAL_STORAGE_FSYNC: 'sometimes' } }),
    'invalid configuration: storage.fsync must be one of always, interval, none; got "sometimes" (from env SHOAL_STORAGE_FSYNC)',
  );
  t.regex(configErrorOf(t, { env: {}, overrides: [{ path: 'node.rpc', value: 'localhost', origin: 'flag --rpc' }] }), /node\.rpc must be host:port.*"localhost".*flag --rpc/);
  t.regex(configErrorOf(t, { env: {}, overrides: [{ path: 'node.rpc', value: '127.0.0.1:70000', origin: 'flag --rpc' }] }), /node\.rpc has port 70000/);
  t.regex(configErrorOf(t, { env: { SHOAL_STORAGE_FSYNC_INTERVAL_MS: 'soon' } }), /storage\.fsyncIntervalMs must be a duration.*"soon"/);
  t.regex(configErrorOf(t, { env: { SHOAL_CLUSTER_VNODES: 'many' } }), /cluster\.vnodes must be a number; got "many"/);
  t.regex(configErrorOf(t, { env: {}, overrides: [{ path: 'storage.fsyncIntervalMS', value: '1', origin: 'flag --set storage.fsyncIntervalMS' }] }), /storage\.fsyncIntervalMS is not a known setting/);
  t.regex(configErrorOf(t, { env: { SHOAL_LOG_LEVEL: 'loud' } }), /log\.level must be one of error, warn, info, debug/);
  t.regex(configErrorOf(t, { env: { SHOAL_NODE_ID: 'has space' } }), /node\.id must be 1-64 letters/);
});

test('rules across fields name the field and the rule', (t) => {
  t.regex(
    configErrorOf(t, { env: {}, overrides: [{ path: 'cluster.writeQuorum', value: '4', origin: 'flag --set cluster.writeQuorum' }] }),
    /cluster\.writeQuorum must be from 1 to cluster\.replicationFactor \(3\); got 4/,
  );
  t.regex(
    configErrorOf(t, { env: { SHOAL_STORAGE_TOMBSTONE_GRACE_MS: '1m' } }),
    /storage\.tombstoneGraceMs must be longer than cluster\.deadOwnerGraceMs/,
  );
  t.regex(configErrorOf(t, { env: { SHOAL_STORAGE_VALUE_BYTES_MAX: '16MiB' } }), /rpc\.frameBytesMax must be at least/);
});

test('cluster file problems are one line too', (t) => {
  t.regex(configErrorOf(t, { clusterFile: join(dir, 'missing.json'), nodeId: 'n1', env: {} }), /missing\.json: no such file/);
  t.regex(configErrorOf(t, { clusterFile: clusterFile('{ nope', 'bad.json'), nodeId: 'n1', env: {} }), /bad\.json: not valid JSON/);
  const file = clusterFile(threeNodes, 'three.json');
  t.regex(configErrorOf(t, { clusterFile: file, nodeId: 'n9', env: {} }), /node "n9" is not in .*three\.json; it lists n1, n2, n3/);
  t.regex(configErrorOf(t, { clusterFile: file, env: {} }), /--node is required/);
  t.regex(configErrorOf(t, { nodeId: 'n1', env: {} }), /--node needs --config/);
  const typo = clusterFile({ ...threeNodes, nodes: [{ ...threeNodes.nodes[0], rcp: 'x' }] }, 'typo.json');
  t.regex(configErrorOf(t, { clusterFile: typo, nodeId: 'n1', env: {} }), /nodes\.0\.rcp is not a known field/);
  const badShared = clusterFile({ ...threeNodes, config: { storage: { fsink: 'always' } } }, 'shared.json');
  t.regex(configErrorOf(t, { clusterFile: badShared, nodeId: 'n1', env: {} }), /storage\.fsink is not a known setting.*from cluster file/);
  const dup = clusterFile({ ...threeNodes, nodes: [threeNodes.nodes[0], threeNodes.nodes[0]] }, 'dup.json');
  t.regex(configErrorOf(t, { clusterFile: dup, nodeId: 'n1', env: {} }), /node id "n1" is listed twice/);
});

test('a one-node cluster file needs no --node; per-node config applies to that node only', (t) => {
  const file = clusterFile({ nodes: [{ ...threeNodes.nodes[0], config: { log: { level: 'warn' } } }] }, 'one.json');
  const { config } = loadConfig({ clusterFile: file, env: {} });
  t.is(config.node.id, 'n1');
  t.is(config.log.level, 'warn');
  t.is(config.cluster.name, 'dev'); // the file names no cluster
});

test('cluster.example.json loads for each of its nodes', (t) => {
  const example = new URL('../../cluster.example.json', import.meta.url).pathname;
  const ids = ['n1', 'n2', 'n3'];
  const configs = ids.map((id) => loadConfig({ clusterFile: example, nodeId: id, env: {} }).config);
  t.deepEqual(configs.map((c) => c.node.rpc), ['127.0.0.1:7201', '127.0.0.1:7202', '127.0.0.1:7203']);
  t.deepEqual(configs.map((c) => c.node.gossip), ['127.0.0.1:7101', '127.0.0.1:7102', '127.0.0.1:7103']);
  t.deepEqual(configs.map((c) => c.node.metrics), ['127.0.0.1:7301', '127.0.0.1:7302', '127.0.0.1:7303']);
  t.deepEqual(configs.map((c) => c.node.dataDir), ['data/n1', 'data/n2', 'data/n3']);
  for (const c of configs) {
    t.is(c.cluster.name, 'dev');
    t.deepEqual(c.membership.seeds, ['127.0.0.1:7101']);
  }
});

test('the RESP port: off by default, taken from the cluster file, checked like the other addresses', (t) => {
  t.is(defaultConfig().node.resp, '');
  t.deepEqual(defaultConfig().resp, { password: '', flushAllEnabled: false, keysMax: 10_000 });
  const withResp = { ...threeNodes, nodes: threeNodes.nodes.map((n, i) => ({ ...n, resp: `127.0.0.1:740${i + 1}` })) };
  t.is(loadConfig({ env: {}, clusterFile: clusterFile(withResp, 'resp.json'), nodeId: 'n3' }).config.node.resp, '127.0.0.1:7403');
  t.is(loadConfig({ env: { SHOAL_NODE_RESP: '127.0.0.1:0' } }).config.node.resp, '127.0.0.1:0');
  t.regex(configErrorOf(t, { env: {}, overrides: [{ path: 'node.resp', value: 'localhost', origin: 'flag --resp' }] }), /node\.resp must be host:port .*\(from flag --resp\)/);
  t.regex(configErrorOf(t, { env: {}, overrides: [{ path: 'node.resp', value: '127.0.0.1:70000', origin: 'flag --resp' }] }), /node\.resp has port 70000, above 65535/);
  t.regex(configErrorOf(t, { env: { SHOAL_RESP_KEYS_MAX: '0' } }), /resp\.keysMax must be at least 1/);
});

test('the config and cluster-file schemas are valid draft-07 under strict ajv (the agent skips this check at start)', (t) => {
  for (const schema of [configSchema, clusterFileSchema]) {
    const ajv = new Ajv({ ...AJV_OPTIONS, validateSchema: true });
    t.true(ajv.validateSchema(schema), JSON.stringify(ajv.errors));
    t.notThrows(() => ajv.compile(schema));
  }
  // And a broken schema would be caught by this check (it is not vacuous).
  const ajv = new Ajv({ ...AJV_OPTIONS, validateSchema: true });
  t.false(ajv.validateSchema({ type: 'object', properties: { a: { type: 'no-such-type' } } }));
});
