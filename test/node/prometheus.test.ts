/**
 * The /metrics text follows Prometheus conventions, checked by promtool itself where Debian's
 * prometheus package provides it: counters end in _total and exist from the start, gauges never do,
 * every metric has help, the fsync latency is a histogram, and the figures users graph first are there.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { get } from 'node:http';
import { join } from 'node:path';
import { startNode } from '../../src/node/node.js';
import { sample, tempDir, testClient, testConfig } from './helpers.js';

const promtool = spawnSync('promtool', ['--version']).status === 0;
if (!promtool) console.log('prometheus test: promtool not found (Debian package prometheus); the promtool check is skipped, the other checks run');
const withPromtool = promtool ? test : test.skip;

function fetchText(addr: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(`http://${addr}${path}`, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

let text = '';
let before = '';
test.before(async () => {
  const tmp = tempDir('shoal-prom-');
  const node = await startNode(testConfig(join(tmp.dir, 'n1')), { processMetrics: true });
  before = await fetchText(node.addresses.metrics ?? '', '/metrics');
  const client = testClient(node.addresses.rpc);
  await client.put('a', 'b');
  await client.get('a');
  await client.close();
  text = await fetchText(node.addresses.metrics ?? '', '/metrics');
  await node.stop();
  tmp.remove();
});

withPromtool('promtool check metrics finds nothing to complain about', (t) => {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.is(r.status, 0, `${r.stdout}${r.stderr}`);
  t.is((r.stdout + r.stderr).trim(), '', 'no warnings either');
});

test('counters end in _total and gauges never do; every metric has real help', (t) => {
  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1], type: m[2] }));
  t.true(types.length > 40);
  for (const { name, type } of types) {
    if (type === 'counter') t.regex(name, /_total$/, `${name} is a counter`);
    else t.notRegex(name, /_total$/, `${name} is a ${type}`);
  }
  for (const m of text.matchAll(/^# HELP (\S+) (.*)$/gm)) {
    t.true(m[2].length > 12 && !/\(cluster layer\)$/.test(m[2]), `help of ${m[1]}: "${m[2]}"`);
  }
});

test('counters exist from the start, at zero, for their known labels', (t) => {
  t.is(sample(before, 'shoal_cluster_writes_total', { outcome: 'ok' }), 0);
  t.is(sample(before, 'shoal_cluster_reads_total', { outcome: 'UNAVAILABLE' }), 0);
  t.is(sample(before, 'shoal_cluster_hints_total', { where: 'stand-in' }), 0);
  t.is(sample(before, 'shoal_cluster_read_repairs_total'), 0);
  t.is(sample(before, 'shoal_requests_total', { op: 'scan' }), 0);
  t.is(sample(before, 'shoal_request_errors_total', { op: 'get', code: 'UNAVAILABLE' }), 0);
  t.is(sample(before, 'shoal_store_expired_total'), 0);
  t.is(sample(text, 'shoal_cluster_writes_total', { outcome: 'ok' }), 1, 'and they count');
});

test('fsync latency histogram, rpc connections, gossip traffic, streaming, ring ownership and build info', (t) => {
  t.true((sample(text, 'shoal_wal_fsync_duration_seconds_count') ?? 0) >= 1, 'the put was fsynced and timed');
  t.truthy(sample(text, 'shoal_wal_fsync_duration_seconds_bucket', { le: '+Inf' }));
  t.true((sample(text, 'shoal_rpc_connections_accepted_total') ?? 0) >= 1);
  t.not(sample(text, 'shoal_rpc_connections'), undefined);
  t.true((sample(text, 'shoal_rpc_received_bytes_total') ?? 0) > 0);
  t.not(sample(text, 'shoal_gossip_sent_bytes_total'), undefined);
  t.not(sample(text, 'shoal_gossip_received_messages_total'), undefined);
  t.true([0, 1].includes(sample(text, 'shoal_stream_syncing') ?? -1), 'a fresh node may still be in its first round');
  const progress = sample(text, 'shoal_stream_progress_ratio') ?? -1;
  t.true(progress >= 0 && progress <= 1);
  t.true(Math.abs((sample(text, 'shoal_ring_ownership_ratio', { member: 'n1' }) ?? 0) - 1) < 1e-9);
  t.regex(text, /^shoal_build_info\{version="\d+\.\d+\.\d+",nodejs="v\d+[^"]*",node="n1"\} 1$/m);
  t.notRegex(text, /^shoal_nodejs_active_\w+_total/m, 'no default gauge named _total');
  t.not(sample(text, 'shoal_nodejs_active_resources'), undefined);
});
