/**
 * One Shoal node in its own process, for tests and benchmarks that need real processes (SIGKILL).
 * argv[2] is JSON { id, dataDir, host?, seeds?: string[], set?: Record<string, string> }; once serving
 * it prints one JSON line { id, rpc, gossip, resp } on stdout (resp: null unless node.resp is set). SIGTERM stops it gracefully (with leave).
 */
import { loadConfig } from '../../../src/node/config.js';
import { startNode } from '../../../src/node/node.js';

interface Spec {
  id: string;
  dataDir: string;
  host?: string;
  seeds?: string[];
  set?: Record<string, string>;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const host = spec.host ?? '127.0.0.1';
const overrides = Object.entries({
  'node.id': spec.id,
  'node.dataDir': spec.dataDir,
  'node.rpc': `${host}:0`,
  'node.gossip': `${host}:0`,
  'metrics.enabled': 'false',
  'membership.seeds': (spec.seeds ?? []).join(','),
  ...spec.set,
}).map(([path, value]) => ({ path, value, origin: 'node-process' }));
const { config } = loadConfig({ env: {}, overrides });
const node = await startNode(config, { processMetrics: false });
process.stdout.write(`${JSON.stringify({ id: node.id, rpc: node.addresses.rpc, gossip: node.addresses.gossip, resp: node.addresses.resp })}\n`);
process.on('SIGTERM', () => {
  void node.stop().finally(() => process.exit(0));
});
