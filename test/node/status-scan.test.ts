/** `shoal status`, `shoal scan` and `shoal ttl` against a real three-node cluster. */
import test from 'ava';
import { join } from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { startNode, type Node } from '../../src/node/node.js';
import { bufferIo, eventually, tempDir, testClient, testConfig } from './helpers.js';

const tmp = tempDir('shoal-status-');
const nodes: Node[] = [];
const fast = { 'membership.probeIntervalMs': '200', 'membership.probeTimeoutMs': '100', 'membership.gossipIntervalMs': '50', 'cluster.ringSettleMs': '50' };

test.before(async () => {
  nodes.push(await startNode(testConfig(join(tmp.dir, 'n1'), { 'node.id': 'n1', ...fast }), { processMetrics: false }));
  for (const id of ['n2', 'n3']) {
    nodes.push(await startNode(testConfig(join(tmp.dir, id), { 'node.id': id, 'membership.seeds': nodes[0].addresses.gossip, 'shutdown.leave': 'false', ...fast }), { processMetrics: false }));
  }
  const client = testClient(nodes[0].addresses.rpc);
  await eventually(15_000, async () => {
    const views = await Promise.all(nodes.map((n) => testClient(n.addresses.rpc)).map(async (c) => {
      try {
        const ring = (await c.ring()) as { members: unknown[] };
        return ring.members.length;
      } finally {
        await c.close();
      }
    }));
    return views.every((v) => v === 3);
  });
  for (let i = 0; i < 250; i++) await client.put(`user:${String(i).padStart(3, '0')}`, `v${i}`);
  for (let i = 0; i < 20; i++) await client.put(`other:${i}`, 'o');
  for (let i = 0; i < 250; i += 10) await client.del(`user:${String(i).padStart(3, '0')}`);
  await client.put('user:ttl', 'soon gone', { ttlMs: 1 });
  await client.close();
});
test.after.always(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  tmp.remove();
});

async function shoal(args: string[]) {
  const b = bufferIo();
  const code = await runCli([...args, '--addr', nodes[0].addresses.rpc, '--timeout', '30'], b.io);
  return { code, stdout: b.stdout(), stderr: b.stderr() };
}

test.serial('scan lists the live keys cluster-wide once each, hiding deletes and expired keys; --prefix, --keys-only', async (t) => {
  const expected = Array.from({ length: 250 }, (_, i) => i).filter((i) => i % 10 !== 0).map((i) => `user:${String(i).padStart(3, '0')}`);
  const all = await shoal(['scan', '--prefix', 'user:', '--keys-only']);
  t.is(all.code, 0, all.stderr);
  const listed = all.stdout.trim().split('\n');
  t.is(listed.length, expected.length, 'each key once');
  t.deepEqual([...listed].sort(), expected, 'in ring order, not by name');
  const withValues = await shoal(['scan', '--prefix', 'user:00']);
  t.deepEqual(withValues.stdout.trim().split('\n').sort(), ['user:001\tv1', 'user:002\tv2', 'user:003\tv3', 'user:004\tv4', 'user:005\tv5', 'user:006\tv6', 'user:007\tv7', 'user:008\tv8', 'user:009\tv9']);
  t.is((await shoal(['scan', '--prefix', 'us*', '--keys-only'])).stdout, '', 'the prefix is a prefix, not a pattern');
  const everything = await shoal(['scan', '--keys-only']);
  t.is(everything.stdout.trim().split('\n').length, expected.length + 20);
});

test.serial('scan --limit stops and prints the cursor to go on with; the pages together are the whole list', async (t) => {
  const keys: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 50; pages++) {
    const r = await shoal(['scan', '--prefix', 'user:', '--keys-only', '--limit', '60', ...(cursor ? ['--cursor', cursor] : [])]);
    t.is(r.code, 0);
    const lines = r.stdout.trim() === '' ? [] : r.stdout.trim().split('\n');
    t.true(lines.length <= 80, `about one page of 60: ${lines.length}`);
    keys.push(...lines);
    const m = /go on with: shoal scan --cursor (\S+)/.exec(r.stderr);
    cursor = m ? m[1] : null;
    if (!cursor) break;
  }
  t.is(keys.length, 225);
  t.is(new Set(keys).size, 225, 'the pages together list every key once');
  const json = JSON.parse((await shoal(['scan', '--prefix', 'other:', '--json', '--limit', '5'])).stdout) as { entries: Array<{ key: string; value: string }>; cursor: string | null };
  t.true(json.entries.length >= 5 && json.entries.length <= 20);
  t.is(json.entries[0].value, 'o');
  t.truthy(json.cursor);
});

test.serial('ttl shows the time left, none without expiry, exit 1 when missing', async (t) => {
  await shoal(['put', 'session', 'x', '--ttl', '1h']);
  const r = await shoal(['ttl', 'session']);
  t.is(r.code, 0);
  t.regex(r.stdout, /^(59m \d+s|1h) \(expires at \d{4}-/);
  const json = JSON.parse((await shoal(['ttl', 'session', '--json'])).stdout) as { ttlMs: number };
  t.true(json.ttlMs > 3_500_000 && json.ttlMs <= 3_600_000);
  t.is((await shoal(['ttl', 'user:001'])).stdout, 'none\n');
  t.is((await shoal(['ttl', 'user:000'])).code, 1, 'deleted');
});

test.serial('members --json and ring --json carry the table\'s OWNS as a percentage; stats prints a summary, --full the tree', async (t) => {
  const members = JSON.parse((await shoal(['members', '--json'])).stdout) as Array<{ id: string; ownsPercent: number; hintsPending: number }>;
  t.is(members.length, 3);
  t.true(Math.abs(members.reduce((s, m) => s + m.ownsPercent, 0) - 100) < 0.5);
  t.true(members.every((m) => m.hintsPending === 0));
  const ring = JSON.parse((await shoal(['ring', '--json'])).stdout) as { members: Array<{ id: string; ownsPercent: number; owns?: number }> };
  const table = (await shoal(['ring'])).stdout;
  for (const m of ring.members) {
    t.is(m.owns, undefined);
    t.regex(table, new RegExp(`^${m.id}\\s+alive\\s+${m.ownsPercent.toFixed(1)}%$`, 'm'), 'the table and JSON show the same number');
  }
  const summary = (await shoal(['stats'])).stdout;
  for (const line of ['node', 'keys', 'requests', 'fsync', 'members', 'ring', 'hints', 'streaming', 'anti-entropy']) t.regex(summary, new RegExp(`^${line}\\s{2,}\\S`, 'm'));
  t.regex(summary, /^requests\s+\d+\.\d\/s over the last 10 s, p99 [\d.]+ ms over the last minute$/m);
  t.regex((await shoal(['stats', '--full'])).stdout, /^store:\n {2}keys: \d+$/m);
});

test.serial('status: one row per member gathered from every node; a stopped node shows as unreachable', async (t) => {
  const r = await shoal(['status']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^Cluster "dev": 3 members \(3 alive\); ring agreed by 3 of 3 nodes$/m);
  t.regex(r.stdout, /^ID\s+STATE\s+ADDRESS\s+KEYS\s+BYTES\s+OWNS\s+HINTS\s+VERSION\s+UPTIME\s+HEALTH$/m);
  for (const n of nodes) t.regex(r.stdout, new RegExp(`^${n.id}\\s+alive\\s+${n.addresses.rpc}\\s+\\d+\\s+\\S+ \\S+\\s+\\d+\\.\\d%\\s+\\d+\\s+\\d+\\.\\d+\\.\\d+\\s+.+\\s(ok|syncing \\d+%)$`, 'm'));
  const rows = (JSON.parse((await shoal(['status', '--json'])).stdout) as { members: Array<{ id: string; keys: number; reachable: boolean }> }).members;
  const totalKeys = rows.reduce((s, m) => s + m.keys, 0);
  t.true(totalKeys >= 3 * 245 && totalKeys <= 3 * 272, `every key is on three nodes: ${totalKeys}`);

  await nodes[2].stop();
  const after = await shoal(['status', '--json']);
  const n3 = (JSON.parse(after.stdout) as { members: Array<{ id: string; health: string; reachable: boolean }> }).members.find((m) => m.id === 'n3');
  t.is(n3?.health, 'unreachable');
  t.false(n3?.reachable);
  const text = await shoal(['status']);
  t.regex(text.stdout, /^n3\s+\S+\s+\S+\s+-\s+-\s+\d+\.\d%\s+-\s+-\s+-\s+unreachable$/m);
  t.regex(text.stdout, /^unreachable: n3 \(/m);
  // The dead node's keys are still listed (two replicas remain).
  t.is((await shoal(['scan', '--prefix', 'user:', '--keys-only'])).stdout.trim().split('\n').length, 225);
});

test.serial('a joining node streams its ranges: status shows it syncing, and it logs progress and a done line', async (t) => {
  const lines: string[] = [];
  const capture = (fields: Record<string, unknown> = {}): import('../../src/log.js').Logger => ({
    debug: () => {},
    info: (message) => lines.push(message),
    warn: (message) => lines.push(message),
    error: (message) => lines.push(message),
    child: (more) => capture({ ...fields, ...more }),
  });
  // Slow streaming on purpose: small batches at 1 KB/s (about ten seconds for its share of the keys).
  const config = testConfig(join(tmp.dir, 'n4'), {
    'node.id': 'n4', 'membership.seeds': nodes[0].addresses.gossip, 'shutdown.leave': 'false', ...fast,
    'cluster.streamBatchKeysMax': '5', 'cluster.streamBytesPerSecMax': '1000',
  });
  nodes.push(await startNode(config, { processMetrics: false, logger: capture() }));
  let seen = '';
  let table = '';
  const syncing = await eventually(20_000, async () => {
    const rows = (JSON.parse((await shoal(['status', '--json'])).stdout) as { members: Array<{ id: string; health: string; syncing: boolean; syncPercent: number | null }> }).members;
    const n4 = rows.find((m) => m.id === 'n4');
    seen = JSON.stringify(n4);
    if (!(n4?.health === 'syncing' && n4.syncing && n4.syncPercent !== null)) return false;
    table = (await shoal(['status'])).stdout;
    return /^n4\s+.*\ssyncing \d+%$/m.test(table);
  });
  t.true(syncing, `status shows n4 syncing, in JSON and in the table: ${seen}\n${table}`);
  t.true(await eventually(60_000, async () => lines.some((l) => /^streaming done in [\d.]+ s: \d+ keys, [\d.]+ MiB, [\d.]+ MiB\/s$/.test(l))), `a done line: ${lines.filter((l) => l.startsWith('streaming')).join(' | ')}`);
  t.true(lines.some((l) => /^streaming: pulling newly owned ranges$/.test(l)));
});
