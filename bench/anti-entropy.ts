/**
 * How long anti-entropy takes to converge a replica that lost every hint: 3 ClusterNodes in one
 * process (in-memory stores, the in-process network with the rpc frame limit, real msgpack), hints
 * and read repair off. n3 is down while `--keys` keys of `--value-bytes` are written at quorum (to
 * n1 and n2), then returns with none of them; the clock runs from its return until its store holds
 * every key. Default cluster settings (anti-entropy every 10 s, 10 000 keys/s, 50 000 keys a round),
 * unless `--unthrottled` lifts the rates to show the mechanism's own speed.
 *
 *   npx tsx bench/anti-entropy.ts [--keys 100000] [--value-bytes 4096] [--unthrottled]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { ClusterConfig } from '../src/cluster/config.js';
import { hlcPack } from '../src/cluster/hlc.js';
import { TestCluster } from '../test/cluster/helpers/harness.js';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '100000' },
    'value-bytes': { type: 'string', default: '4096' },
    unthrottled: { type: 'boolean', default: false },
  },
});
const keys = Number(values.keys);
const valueBytes = Number(values['value-bytes']);
const config: Partial<ClusterConfig> = {
  hintsEnabled: false,
  readRepairEnabled: false,
  antiEntropyIntervalMs: 10_000,
  requestTimeoutMs: 120_000,
  internalTimeoutMs: 60_000,
  ...(values.unthrottled ? { antiEntropyKeysPerSecMax: 10_000_000, antiEntropyKeysPerRoundMax: 1_000_000, antiEntropyIntervalMs: 1_000 } : {}),
};

const cluster = new TestCluster(config);
for (const id of ['n1', 'n2', 'n3']) await cluster.add(id);
await cluster.settle();
const value = Buffer.alloc(valueBytes, 7); // one buffer shared by the writers' stores
console.log(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
cluster.kill('n3');
const t0 = Date.now();
const ts = hlcPack(Date.now() - 60_000, 0);
for (let i = 0; i < keys; i++) {
  const entry = { value, ts: ts + i, node: 'n1' };
  // What a quorum write leaves behind when n3 is down and no hint survives: n1 and n2 hold it.
  await cluster.get('n1').store.apply(`k${i}`, entry);
  await cluster.get('n2').store.apply(`k${i}`, entry);
}
console.log(`wrote ${keys} keys of ${valueBytes} bytes to n1 and n2 in ${Date.now() - t0} ms; n3 returns with none of them`);
cluster.revive('n3');
const start = Date.now();
const n3 = cluster.get('n3').store;
let last = 0;
const ae = (id: string) => cluster.get(id).node.antiEntropy.stats() as { rounds: number; roundsFailed: number; keysPulled: number; keysPushed: number };
for (;;) {
  const have = n3.stats().keys;
  if (have >= keys) break;
  if (Date.now() - last > 5_000) {
    last = Date.now();
    console.log(`  ${((Date.now() - start) / 1000).toFixed(1)} s: n3 holds ${have} keys; n3 ${JSON.stringify(ae('n3'))}`);
  }
  await new Promise((r) => setTimeout(r, 100));
}
const tookMs = Date.now() - start;
console.log(`converged in ${(tookMs / 1000).toFixed(1)} s (${values.unthrottled ? 'unthrottled' : 'default rates'})`);
for (const id of ['n1', 'n2', 'n3']) console.log(`  ${id}: ${JSON.stringify(ae(id))}`);
console.log(`largest frame ${cluster.net.largestFrameBytes} bytes (limit ${cluster.net.frameBytesMax})`);
console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
await cluster.close();
process.exit(0);
