/** Helpers of the RESP tests: an in-process cluster with RESP ports, and which real clients are installed. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startNode, type Node } from '../../src/node/node.js';
import { eventually, tempDir, testClient, testConfig } from '../node/helpers.js';

/** True when `cmd --version` runs (redis-cli, redis-benchmark). */
export function hasCommand(cmd: string, args = ['--version']): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** Debian's python3-redis (redis-py) under the system python, not a pyenv one. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
export function hasRedisPy(): boolean {
  return spawnSync(SYSTEM_PYTHON, ['-c', 'import redis'], { stdio: 'ignore' }).status === 0;
}

export const FAST = {
  'membership.probeIntervalMs': '200',
  'membership.probeTimeoutMs': '100',
  'membership.gossipIntervalMs': '50',
  'cluster.ringSettleMs': '50',
  'storage.fsync': 'none',
};

export interface TestCluster {
  nodes: Node[];
  /** host and port of each node's RESP listener. */
  resp: Array<{ host: string; port: number }>;
  stop(): Promise<void>;
}

/** `count` nodes in this process, each with a RESP port, joined and converged. */
export async function startCluster(count: number, set: Record<string, string> = {}): Promise<TestCluster> {
  const tmp = tempDir('shoal-resp-');
  const nodes: Node[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    tmp.remove();
  };
  try {
    for (let i = 1; i <= count; i++) {
      const seeds: Record<string, string> = i === 1 ? {} : { 'membership.seeds': nodes[0].addresses.gossip };
      const config = testConfig(join(tmp.dir, `n${i}`), { 'node.id': `n${i}`, 'node.resp': '127.0.0.1:0', ...FAST, ...seeds, ...set });
      nodes.push(await startNode(config, { processMetrics: false }));
    }
    const clients = nodes.map((n) => testClient(n.addresses.rpc));
    try {
      const ok = await eventually(15_000, async () => {
        const views = (await Promise.all(clients.map((c) => c.members()))) as Array<Array<{ state: string }>>;
        return views.every((v) => v.length === count && v.every((m) => m.state === 'alive'));
      });
      if (!ok) throw new Error('the test cluster did not converge');
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const resp = nodes.map((n) => {
    const addr = n.addresses.resp ?? '';
    const at = addr.lastIndexOf(':');
    return { host: addr.slice(0, at), port: Number(addr.slice(at + 1)) };
  });
  return { nodes, resp, stop };
}
