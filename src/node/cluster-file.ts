/**
 * The cluster file (cluster.example.json layout): the cluster's name, its seeds and its nodes with
 * their addresses and data dirs, plus an optional `config` object applied to every node (and a
 * per-node `config`). `shoal agent --config F --node ID` takes one node from it; `shoal local` and
 * the CLI's default address read it too.
 */
import type { JSONSchemaType } from 'ajv';
import { lazyValidator } from './schema.js';
import { ShoalError } from '../errors.js';
import { ADDRESS_PATTERN, SEED_PATTERN } from './config-schema.js';

export interface ClusterFileNode {
  id: string;
  gossip: string;
  rpc: string;
  metrics?: string;
  /** The Redis protocol port (docs/RESP.md); absent = none. */
  resp?: string;
  dataDir?: string;
  zone?: string;
  tags?: Record<string, string>;
  /** Settings for this node only, in the layout of config/default.json. */
  config?: Record<string, unknown>;
}

export interface ClusterFile {
  cluster?: string;
  seeds?: string[];
  nodes: ClusterFileNode[];
  /** Settings for every node, in the layout of config/default.json. */
  config?: Record<string, unknown>;
}

const address = { type: 'string', pattern: ADDRESS_PATTERN } as const;

export const clusterFileSchema: JSONSchemaType<ClusterFile> = {
  type: 'object',
  additionalProperties: false,
  required: ['nodes'],
  properties: {
    cluster: { type: 'string', nullable: true },
    seeds: { type: 'array', items: { type: 'string', pattern: SEED_PATTERN }, nullable: true },
    nodes: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'gossip', 'rpc'],
        properties: {
          id: { type: 'string' },
          gossip: address,
          rpc: address,
          metrics: { ...address, nullable: true },
          resp: { ...address, nullable: true },
          dataDir: { type: 'string', nullable: true },
          zone: { type: 'string', nullable: true },
          tags: { type: 'object', required: [], additionalProperties: { type: 'string' }, nullable: true },
          config: { type: 'object', required: [], nullable: true },
        },
      },
    },
    config: { type: 'object', required: [], nullable: true },
  },
};

const clusterFileValidator = lazyValidator<ClusterFile>(clusterFileSchema);

function fail(path: string, problem: string): never {
  throw new ShoalError('CONFIG', `invalid cluster file ${path}: ${problem}`, { field: 'config' });
}

/** Parses and checks a cluster file's text. */
export function parseClusterFile(path: string, text: string): ClusterFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(path, `not valid JSON (${(err as Error).message})`);
  }
  const validate = clusterFileValidator();
  if (!validate(json)) {
    const err = (validate.errors ?? [])[0];
    const params = err.params as Record<string, unknown>;
    let field = err.instancePath.slice(1).split('/').join('.');
    if (params.additionalProperty !== undefined) field = [field, String(params.additionalProperty)].filter(Boolean).join('.');
    if (params.missingProperty !== undefined) field = [field, String(params.missingProperty)].filter(Boolean).join('.');
    const problem = err.keyword === 'additionalProperties' ? 'is not a known field'
      : err.keyword === 'required' ? 'is required'
      : err.keyword === 'pattern' ? 'must be host:port (e.g. 127.0.0.1:7201)'
      : (err.message ?? 'is invalid');
    fail(path, `${field || 'the file'} ${problem}`);
  }
  const seen = new Set<string>();
  for (const node of json.nodes) {
    if (seen.has(node.id)) fail(path, `node id "${node.id}" is listed twice`);
    seen.add(node.id);
  }
  return json;
}

/** Reads and checks a cluster file; `read` is injectable for tests. */
export function readClusterFile(path: string, read: (path: string) => string): ClusterFile {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(path, code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? (err as Error).message})`);
  }
  return parseClusterFile(path, text);
}
