import test from 'ava';
import { PassThrough } from 'node:stream';
import { request } from 'node:http';
import { ShoalError } from '../../src/errors.js';
import { createNodeLogger } from '../../src/node/logging.js';
import { NodeMetrics, instrumentHandler } from '../../src/node/metrics.js';
import { startMetricsServer } from '../../src/node/metrics-server.js';
import type { StoreStats } from '../../src/storage/types.js';
import { sample } from './helpers.js';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, lines: () => text.trim().split('\n').filter((l) => l !== '') };
}

async function flush(): Promise<void> {
  await new Promise((r) => setImmediate(r));
}

test('json logs: one object per line with the node, the layer and the fields; below-level lines dropped', async (t) => {
  const out = capture();
  const logger = createNodeLogger({ format: 'json', level: 'info', stream: out.stream, fields: { node: 'n1' } });
  const rpc = logger.child({ layer: 'rpc' });
  rpc.info('listening', { addr: '127.0.0.1:7201' });
  rpc.debug('not shown');
  rpc.warn('bad frame', { err: new ShoalError('BAD_REQUEST', 'nope') });
  await flush();
  const lines = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(lines.length, 2);
  t.like(lines[0], { level: 'info', message: 'listening', node: 'n1', layer: 'rpc', addr: '127.0.0.1:7201' });
  t.regex(String(lines[0].timestamp), /^\d{4}-\d\d-\d\dT/);
  t.deepEqual(lines[1].err, { message: 'nope', code: 'BAD_REQUEST' });
});

test('text logs: a human line with level, node, [layer], message and key=value fields; no color off a terminal', async (t) => {
  const out = capture();
  const logger = createNodeLogger({ format: 'text', level: 'debug', stream: out.stream, fields: { node: 'n2' } });
  logger.child({ layer: 'storage' }).debug('opened', { dir: '/tmp/a b', keys: 3 });
  await flush();
  const [line] = out.lines();
  t.regex(line, /^\S+Z debug n2 \[storage\] opened dir="\/tmp\/a b" keys=3$/);
  t.false(line.includes('\x1b['));
});

function fakeStats(overrides: Partial<StoreStats> = {}): StoreStats {
  return {
    keys: 7, tombstones: 1, valueBytes: 700, walBytes: 4096, walSegments: 1, snapshots: 0, lastSnapshotAtMs: null,
    fsyncs: 12, fsyncLatencyMsLast: 2.5, expired: 0, readOnly: false, readOnlyReason: null,
    snapshotFailures: 0, lastSnapshotError: null, ...overrides,
  };
}

test('metrics: requests, latency and errors by op and code; store figures read at scrape time', async (t) => {
  const metrics = new NodeMetrics({ nodeId: 'n1', processMetrics: false });
  let stats = fakeStats();
  metrics.setStoreStats(() => stats);
  const handler = instrumentHandler(async (op: string) => {
    if (op === 'get') return null;
    throw new ShoalError('VALUE_TOO_LARGE', 'big');
  }, metrics);
  await handler('get', {}, null);
  await handler('get', {}, null);
  await t.throwsAsync(handler('put', {}, null), { message: 'big' });
  metrics.setMembers({ alive: 3, suspect: 1 });
  metrics.setHintsPending(5);

  let text = await metrics.render();
  t.is(sample(text, 'shoal_requests_total', { op: 'get' }), 2);
  t.is(sample(text, 'shoal_requests_total', { op: 'put' }), 1);
  t.is(sample(text, 'shoal_request_errors_total', { op: 'put', code: 'VALUE_TOO_LARGE' }), 1);
  t.is(sample(text, 'shoal_request_duration_seconds_count', { op: 'get' }), 2);
  t.is(sample(text, 'shoal_store_keys', {}), 7);
  t.is(sample(text, 'shoal_wal_fsyncs_total', {}), 12);
  t.is(sample(text, 'shoal_wal_fsync_last_seconds', {}), 0.0025);
  t.is(sample(text, 'shoal_members', { state: 'alive' }), 3);
  t.is(sample(text, 'shoal_members', { state: 'dead' }), 0);
  t.is(sample(text, 'shoal_hints_pending', {}), 5);

  t.is(sample(text, 'shoal_store_read_only', {}), 0);
  t.is(sample(text, 'shoal_store_snapshot_failures_total', {}), 0);

  stats = fakeStats({ keys: 9, fsyncs: 20, readOnly: true, readOnlyReason: 'disk full (ENOSPC)', snapshotFailures: 2 });
  text = await metrics.render();
  t.is(sample(text, 'shoal_store_read_only', {}), 1);
  t.is(sample(text, 'shoal_store_snapshot_failures_total', {}), 2);
  t.is(sample(text, 'shoal_store_keys', {}), 9);
  t.is(sample(text, 'shoal_wal_fsyncs_total', {}), 20);
});

test('metrics: node-to-node ops are counted (and their errors) but not timed', async (t) => {
  const metrics = new NodeMetrics({ nodeId: 'n1', processMetrics: false });
  const handler = instrumentHandler((op: string) => (op === 'internal.read' ? Promise.resolve({}) : Promise.reject(new ShoalError('BAD_REQUEST', 'no'))), metrics);
  await handler('internal.read', {}, null);
  await handler('internal.read', {}, null);
  await t.throwsAsync(handler('internal.apply', {}, null), { message: 'no' });
  await handler('get', {}, null).catch(() => null);
  const text = await metrics.render();
  t.is(sample(text, 'shoal_requests_total', { op: 'internal.read' }), 2);
  t.is(sample(text, 'shoal_request_errors_total', { op: 'internal.apply', code: 'BAD_REQUEST' }), 1);
  t.false(text.includes('shoal_request_duration_seconds_count{op="internal.read"'));
  t.is(sample(text, 'shoal_request_duration_seconds_count', { op: 'get' }), 1);
});

test('metrics: the cluster layer sink counts by name and labels (collected at scrape), drops unknown labels', async (t) => {
  const metrics = new NodeMetrics({ nodeId: 'n1', processMetrics: false });
  const sink = metrics.layerSink();
  for (let i = 0; i < 5; i++) sink.inc('cluster_writes_total', { outcome: 'ok' });
  sink.inc('cluster_writes_total', { outcome: 'TIMEOUT' }, 2);
  sink.inc('cluster_writes_total', { other: 'x' }); // not the label names of its first use: dropped
  sink.inc('cluster_writes_total', { other: 'ok' });
  sink.inc('cluster_stream_keys_total', {}, 40);
  sink.observeMs('cluster_round_ms', 12);
  let text = await metrics.render();
  t.is(sample(text, 'shoal_cluster_writes_total', { outcome: 'ok' }), 5);
  t.is(sample(text, 'shoal_cluster_writes_total', { outcome: 'TIMEOUT' }), 2);
  t.false(text.includes('other="x"'));
  t.is(sample(text, 'shoal_cluster_stream_keys_total', {}), 40);
  t.is(sample(text, 'shoal_cluster_round_seconds_count', {}), 1);
  sink.inc('cluster_writes_total', { outcome: 'ok' });
  text = await metrics.render();
  t.is(sample(text, 'shoal_cluster_writes_total', { outcome: 'ok' }), 6, 'a second scrape shows the total, not the increment');
});

test('metrics: the request latency histogram is cumulative by le, with sum and count per op', async (t) => {
  const metrics = new NodeMetrics({ nodeId: 'n1', processMetrics: false });
  metrics.observeRequest('get', 0.3); // 0.0003 s: the 0.0005 bucket
  metrics.observeRequest('get', 1); // exactly on the 0.001 bound: counted in it (le is "at most")
  metrics.observeRequest('get', 7000); // beyond every bound: +Inf only
  const text = await metrics.render();
  t.is(sample(text, 'shoal_request_duration_seconds_bucket', { le: '0.00025', op: 'get' }), 0);
  t.is(sample(text, 'shoal_request_duration_seconds_bucket', { le: '0.0005', op: 'get' }), 1);
  t.is(sample(text, 'shoal_request_duration_seconds_bucket', { le: '0.001', op: 'get' }), 2);
  t.is(sample(text, 'shoal_request_duration_seconds_bucket', { le: '5', op: 'get' }), 2);
  t.is(sample(text, 'shoal_request_duration_seconds_bucket', { le: '+Inf', op: 'get' }), 3);
  t.is(sample(text, 'shoal_request_duration_seconds_count', { op: 'get' }), 3);
  t.true(Math.abs((sample(text, 'shoal_request_duration_seconds_sum', { op: 'get' }) ?? 0) - 7.0013) < 1e-9);
  t.regex(text, /# TYPE shoal_request_duration_seconds histogram/);
});

test('metrics: op labels are bounded, unknown ops beyond the limit count as "other"', async (t) => {
  const metrics = new NodeMetrics({ nodeId: 'n1', processMetrics: false });
  for (let i = 0; i < 100; i++) metrics.observeRequest(`op${i}`, 1);
  const text = await metrics.render();
  const labels = new Set([...text.matchAll(/shoal_requests_total\{op="([^"]+)"/g)].map((m) => m[1]));
  t.true(labels.size <= 65);
  t.true(labels.has('other'));
});

function httpGet(port: number, path: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    }).on('error', reject).end();
  });
}

test('the metrics endpoint serves /metrics, /health (503 when not ok) and 404 elsewhere', async (t) => {
  const metrics = new NodeMetrics({ nodeId: 'n1', processMetrics: false });
  metrics.observeRequest('get', 3);
  let ok = true;
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, metrics, health: () => ({ ok, node: 'n1' }) });
  t.teardown(() => server.close());
  const m = await httpGet(server.port, '/metrics');
  t.is(m.status, 200);
  t.regex(m.type, /text\/plain/);
  t.is(sample(m.body, 'shoal_requests_total', { op: 'get', node: 'n1' }), 1);
  t.deepEqual(JSON.parse((await httpGet(server.port, '/health')).body), { ok: true, node: 'n1' });
  ok = false;
  t.is((await httpGet(server.port, '/health')).status, 503);
  t.is((await httpGet(server.port, '/nope')).status, 404);
});
