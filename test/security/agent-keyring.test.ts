/**
 * Gossip encryption in real agents: the keyring file seeded from security.gossipKey, keyring figures
 * in stats and /metrics, and a rotation install → use → remove through the CLI while the cluster
 * stays converged; a restarted node keeps the rotated keyring (the file wins over the config key).
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { ShoalError } from '../../src/errors.js';
import { startNode, type Node } from '../../src/node/node.js';
import { generateKey, keyId } from '../../src/security/keyring.js';
import { bufferIo, eventually, httpGet, sample, tempDir, testClient, testConfig } from '../node/helpers.js';

const fast = {
  'membership.probeIntervalMs': '200', 'membership.probeTimeoutMs': '100', 'membership.gossipIntervalMs': '50',
  'membership.pushPullIntervalMs': '1s', 'cluster.ringSettleMs': '50',
};

async function cli(t: ExecutionContext, args: string[], expected: number): Promise<string> {
  const b = bufferIo();
  const code = await runCli(args, b.io);
  t.is(code, expected, `shoal ${args.join(' ')}: ${b.stderr()}${b.stdout()}`);
  return b.stdout() + b.stderr();
}

async function keyringFile(dir: string): Promise<{ primary: string; keys: string[] }> {
  return JSON.parse(await fs.readFile(join(dir, 'keyring.json'), 'utf8')) as { primary: string; keys: string[] };
}

test('three agents rotate the gossip key install → use → remove through the CLI and stay converged; a restart keeps the rotated keyring', async (t) => {
  const tmp = tempDir('shoal-agent-keyring-');
  t.teardown(tmp.remove);
  const nodes = new Map<string, Node>();
  t.teardown(() => Promise.all([...nodes.values()].map((n) => n.stop())));
  const oldKey = generateKey().toString('base64');
  const configOf = (id: string, seeds: string) =>
    testConfig(join(tmp.dir, id), { 'node.id': id, 'security.gossipKey': oldKey, ...(seeds === '' ? {} : { 'membership.seeds': seeds }), ...fast });
  nodes.set('n1', await startNode(configOf('n1', ''), { processMetrics: false }));
  const seed = nodes.get('n1')!.addresses.gossip;
  for (const id of ['n2', 'n3']) nodes.set(id, await startNode(configOf(id, seed), { processMetrics: false }));
  const addr = (id: string) => nodes.get(id)!.addresses.rpc;
  const converged = () =>
    eventually(10_000, async () => {
      const views = await Promise.all([...nodes.values()].map(async (n) => {
        const c = testClient(n.addresses.rpc);
        try {
          return (await c.members()) as Array<{ state: string }>;
        } finally {
          await c.close();
        }
      }));
      return views.every((v) => v.length === 3 && v.every((m) => m.state === 'alive'));
    });
  t.true(await converged(), 'three encrypted agents converge');

  // The keyring file was seeded from security.gossipKey, private to the user.
  for (const id of ['n1', 'n2', 'n3']) {
    t.is((await fs.stat(join(tmp.dir, id, 'keyring.json'))).mode & 0o777, 0o600);
    t.deepEqual(await keyringFile(join(tmp.dir, id)), { primary: oldKey, keys: [oldKey] });
  }
  const oldId = keyId(Buffer.from(oldKey, 'base64'));
  const client = testClient(addr('n2'));
  t.teardown(() => client.close());
  const stats = (await client.stats()) as { keyring: { primaryId: string; keys: Array<{ id: string }> }; membership: { encrypted: boolean } };
  t.is(stats.keyring.primaryId, oldId);
  t.true(stats.membership.encrypted);
  t.false(JSON.stringify(stats).includes(oldKey), 'stats never carry key material');
  const metrics = (await httpGet(nodes.get('n2')!.addresses.metrics!, '/metrics')).body;
  t.is(sample(metrics, 'shoal_gossip_encrypted'), 1);
  t.is(sample(metrics, 'shoal_gossip_keys'), 1);
  t.is(sample(metrics, 'shoal_gossip_decrypt_failures_total', { transport: 'udp', reason: 'auth' }), 0);

  const listed = JSON.parse(await cli(t, ['keyring', 'list', '--addr', addr('n2'), '--json'], 0)) as { nodes: number; keys: unknown[] };
  t.is(listed.nodes, 3);
  t.deepEqual(listed.keys, [{ id: oldId, nodes: 3, primary: 3 }]);
  t.false(JSON.stringify(listed).includes(oldKey));

  const newKey = (await cli(t, ['keyring', 'generate'], 0)).trim();
  const newId = keyId(Buffer.from(newKey, 'base64'));
  t.regex(await cli(t, ['keyring', 'use', newKey, '--addr', addr('n1')], 4), /not installed on n1, n2, n3; install it on every node first/);

  const installed = await cli(t, ['keyring', 'install', newKey, '--addr', addr('n1')], 0);
  t.regex(installed, /^n1\s+ok$/m);
  t.regex(installed, /^n3\s+ok$/m);
  for (const id of ['n1', 'n2', 'n3']) t.deepEqual(await keyringFile(join(tmp.dir, id)), { primary: oldKey, keys: [oldKey, newKey] }, `${id} persisted the install`);
  t.regex(await cli(t, ['keyring', 'remove', oldId, '--addr', addr('n3')], 4), /is the primary key on n1, n2, n3/);

  await cli(t, ['keyring', 'use', newId, '--addr', addr('n3')], 0);
  for (const id of ['n1', 'n2', 'n3']) t.is((await keyringFile(join(tmp.dir, id))).primary, newKey, `${id} persisted the use`);
  t.true(await converged(), 'converged with the new primary key');

  const removed = await cli(t, ['keyring', 'remove', oldKey, '--addr', addr('n2')], 0);
  t.notRegex(removed, /error/);
  for (const id of ['n1', 'n2', 'n3']) t.deepEqual(await keyringFile(join(tmp.dir, id)), { primary: newKey, keys: [newKey] }, `${id} persisted the remove`);
  const text = await cli(t, ['keyring', 'list', '--addr', addr('n1')], 0);
  t.regex(text, new RegExp(`^${newId}\\s+3/3\\s+3/3$`, 'm'));
  t.notRegex(text, new RegExp(oldId));
  await new Promise((r) => setTimeout(r, 1000)); // probes and a push-pull round with the new key only
  t.true(await converged(), 'still converged with the old key gone');

  // n2 restarts with the old key still in its config: the file wins, and it rejoins with the new key.
  await nodes.get('n2')!.stop();
  nodes.set('n2', await startNode(configOf('n2', seed), { processMetrics: false }));
  t.true(await converged(), 'the restarted node rejoined');
  const again = testClient(addr('n2'));
  t.teardown(() => again.close());
  const after = (await again.stats()) as { keyring: { primaryId: string; keys: Array<{ id: string }> } };
  t.is(after.keyring.primaryId, newId);
  t.deepEqual(after.keyring.keys.map((k) => k.id), [newId]);
});

test('an agent refuses a keyring file others can read unless allowed, and a broken one, naming the file', async (t) => {
  const tmp = tempDir('shoal-agent-keyring-');
  t.teardown(tmp.remove);
  const key = generateKey().toString('base64');
  const file = join(tmp.dir, 'keys', 'ring.json');
  await fs.mkdir(join(tmp.dir, 'keys'));
  await fs.writeFile(file, JSON.stringify({ primary: key, keys: [key] }), { mode: 0o644 });
  await fs.chmod(file, 0o644);
  const config = (set: Record<string, string>) => testConfig(join(tmp.dir, 'n1'), { 'security.keyringFile': file, ...set });
  const loose = await t.throwsAsync(startNode(config({}), { processMetrics: false }));
  t.is((loose as ShoalError).code, 'CONFIG');
  t.true(loose?.message.includes(file));
  t.regex(loose?.message ?? '', /readable by other users/);

  const node = await startNode(config({ 'security.allowLooseKeyringFile': 'true' }), { processMetrics: false });
  const stats = node.stats() as { keyring: { file: string; primaryId: string } };
  t.is(stats.keyring.file, file);
  t.is(stats.keyring.primaryId, keyId(Buffer.from(key, 'base64')));
  await node.stop();

  await fs.writeFile(file, '{"primary": 1}');
  const broken = await t.throwsAsync(startNode(config({ 'security.allowLooseKeyringFile': 'true' }), { processMetrics: false }));
  t.is((broken as ShoalError).code, 'CONFIG');
  t.true(broken?.message.startsWith(`keyring file ${file}:`));
});

test('a node without a key answers keyring ops with a clear refusal', async (t) => {
  const tmp = tempDir('shoal-agent-keyring-');
  t.teardown(tmp.remove);
  const node = await startNode(testConfig(tmp.dir), { processMetrics: false });
  t.teardown(() => node.stop());
  t.regex(await cli(t, ['keyring', 'list', '--addr', node.addresses.rpc], 4), /gossip encryption is not enabled on node n1/);
  const client = testClient(node.addresses.rpc);
  t.teardown(() => client.close());
  const err = await t.throwsAsync(client.call('keyring', { action: 'explode' }));
  t.is((err as ShoalError).code, 'BAD_REQUEST');
  t.is((node.stats() as { keyring: unknown }).keyring, null);
});
