import test from 'ava';
import { ShoalError } from '../../src/errors.js';
import { startNode } from '../../src/node/node.js';
import { httpGet, sample, tempDir, testClient, testConfig } from './helpers.js';

test('a node serves get/put/del/stats/health/members, counts them in /metrics, and keeps its data across a restart', async (t) => {
  const tmp = tempDir('shoal-node-');
  t.teardown(tmp.remove);
  const config = testConfig(tmp.dir);
  const node = await startNode(config, { processMetrics: false });
  t.teardown(() => node.stop());
  t.is(node.state(), 'serving');
  t.not(node.addresses.rpc, '127.0.0.1:0');
  t.not(node.addresses.gossip, '127.0.0.1:0');

  const client = testClient(node.addresses.rpc);
  t.teardown(() => client.close());
  const { version } = await client.put('k', 'v1');
  t.is(version.node, 'n1');
  const second = await client.put('k', Buffer.from('v2'));
  t.true(second.version.ts > version.ts, 'versions increase');
  t.is((await client.get('k'))?.value.toString(), 'v2');
  await client.put('gone', 'x');
  await client.del('gone');
  t.is(await client.get('gone'), null);
  t.is(await client.get('never'), null);
  await client.put('ttl', 'y', { ttlMs: 60_000 });
  t.true(((await client.get('ttl'))?.expiresAtMs ?? 0) > Date.now());

  const health = (await client.health()) as Record<string, unknown>;
  t.like(health, { ok: true, node: 'n1', cluster: 'dev', state: 'serving' });
  const stats = (await client.stats()) as { store: { keys: number }; node: string };
  t.is(stats.node, 'n1');
  t.is(stats.store.keys, 2);
  const members = (await client.members()) as Array<Record<string, unknown>>;
  t.is(members.length, 1);
  t.like(members[0], { id: 'n1', state: 'alive', rpc: node.addresses.rpc, gossip: node.addresses.gossip });
  t.is(typeof members[0].incarnation, 'number');

  const err = await t.throwsAsync(client.call('bogus', {}));
  t.is((err as ShoalError).code, 'BAD_REQUEST');

  const metrics = await httpGet(node.addresses.metrics!, '/metrics');
  t.is(metrics.status, 200);
  t.is(sample(metrics.body, 'shoal_requests_total', { op: 'put' }), 4);
  t.is(sample(metrics.body, 'shoal_requests_total', { op: 'get' }), 4);
  t.is(sample(metrics.body, 'shoal_request_errors_total', { op: 'bogus', code: 'BAD_REQUEST' }), 1);
  t.is(sample(metrics.body, 'shoal_store_keys'), 2);
  t.true((sample(metrics.body, 'shoal_wal_fsyncs_total') ?? 0) >= 1);
  t.is(sample(metrics.body, 'shoal_members', { state: 'alive' }), 1);
  t.is((await httpGet(node.addresses.metrics!, '/health')).status, 200);

  await client.close();
  await node.stop();
  t.is(node.state(), 'stopped');

  const again = await startNode(config, { processMetrics: false });
  t.teardown(() => again.stop());
  const client2 = testClient(again.addresses.rpc);
  t.teardown(() => client2.close());
  t.is((await client2.get('k'))?.value.toString(), 'v2');
  t.is(await client2.get('gone'), null);
  const after = await client2.put('k', 'v3');
  t.true(after.version.ts > second.version.ts, 'the clock never goes back across a restart');
});

test('a second node on the same data dir is refused with LOCKED, and the first keeps serving', async (t) => {
  const tmp = tempDir('shoal-lock-');
  t.teardown(tmp.remove);
  const first = await startNode(testConfig(tmp.dir), { processMetrics: false });
  t.teardown(() => first.stop());
  const err = await t.throwsAsync(startNode(testConfig(tmp.dir), { processMetrics: false }));
  t.is((err as ShoalError).code, 'LOCKED');
  t.false(err!.message.includes('\n'));
  const client = testClient(first.addresses.rpc);
  t.teardown(() => client.close());
  await client.put('still', 'here');
  t.is((await client.get('still'))?.value.toString(), 'here');
});

test('a node whose rpc port is taken fails to start with one clear line and releases its data dir', async (t) => {
  const a = tempDir('shoal-port-a-');
  const b = tempDir('shoal-port-b-');
  t.teardown(() => {
    a.remove();
    b.remove();
  });
  const first = await startNode(testConfig(a.dir), { processMetrics: false });
  t.teardown(() => first.stop());
  const err = await t.throwsAsync(startNode(testConfig(b.dir, { 'node.rpc': first.addresses.rpc }), { processMetrics: false }));
  t.is((err as ShoalError).code, 'UNAVAILABLE');
  t.regex(err!.message, /in use/);
  // The failed start closed its store: the dir is free again.
  const third = await startNode(testConfig(b.dir), { processMetrics: false });
  await third.stop();
});
