/** What a newcomer runs into first: argument parsing, durations, finding the cluster, plain errors. */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { fileTarget, resolveTarget } from '../../src/cli/target.js';
import { loadConfig } from '../../src/node/config.js';
import { dataDirError, startNode, type Node } from '../../src/node/node.js';
import { ShoalError } from '../../src/errors.js';
import { freePorts } from '../rpc/helpers.js';
import { bufferIo, tempDir, testConfig } from '../node/helpers.js';

let node: Node;
const tmp = tempDir('shoal-first-hour-');

test.before(async () => {
  node = await startNode(testConfig(join(tmp.dir, 'data')), { processMetrics: false });
});
test.after.always(async () => {
  await node?.stop();
  tmp.remove();
});

async function shoal(args: string[], env: Record<string, string> = {}) {
  const b = bufferIo(undefined, env);
  const code = await runCli(args, b.io);
  return { code, stdout: b.stdout(), stderr: b.stderr() };
}
const at = () => ['--addr', node.addresses.rpc, '--timeout', '30'];

test('keys that begin with "-" work after "--"; before it they are a one-line usage error, not help', async (t) => {
  const put = await shoal([...at(), 'put', '--', '-dash', '-value']);
  t.is(put.code, 0, put.stderr);
  const get = await shoal([...at(), 'get', '--', '-dash']);
  t.is(get.code, 0, get.stderr);
  t.is(get.stdout, '-value');
  const bad = await shoal([...at(), 'get', '-dash']);
  t.is(bad.code, 2);
  t.is(bad.stdout, '', 'no help on stdout for a script to take as the value');
  t.regex(bad.stderr, /^shoal: unknown option -dash; .* shoal get -- -dash\n$/);
  t.is((await shoal([...at(), 'put', 'counter', '-5'])).code, 0, 'a negative number is a value, not flags');
  t.is((await shoal([...at(), 'get', 'counter'])).stdout, '-5');
  t.is((await shoal([...at(), 'put', 'dash-literal', '--', '-'])).code, 0);
  t.is((await shoal([...at(), 'get', 'dash-literal'])).stdout, '-', 'after --, "-" is the value itself, not stdin');
  const del = await shoal([...at(), 'del', '--', '-dash']);
  t.is(del.code, 0);
  t.is((await shoal([...at(), 'get', '--', '-dash'])).code, 1);
});

test('an empty key, a missing argument and bad options each exit 2 with exactly one line', async (t) => {
  const cases: string[][] = [['get', ''], ['put', '', 'v'], ['get'], ['get', 'a', 'b'], ['get', 'k', '--consistency', 'most'], ['frobnicate'], ['get', 'k', '--nope'], ['remove', '']];
  for (const args of cases) {
    const r = await shoal([...at(), ...args]);
    t.is(r.code, 2, args.join(' '));
    t.is(r.stderr.split('\n').length, 2, `one line for ${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /^shoal: /);
  }
  t.regex((await shoal([...at(), 'get'])).stderr, /missing argument; usage: shoal get KEY/);
  t.regex((await shoal([...at(), 'frobnicate'])).stderr, /unknown command frobnicate/);
  t.regex((await shoal([...at(), 'get', 'k', '--consistency', 'most'])).stderr, /--consistency must be one of one, quorum, all, got "most"/);
});

test('--ttl and --timeout: a bare number is seconds; compound durations work', async (t) => {
  t.is((await shoal([...at(), 'put', 'ttl10', 'v', '--ttl', '10'])).code, 0);
  const get = JSON.parse((await shoal([...at(), 'get', 'ttl10', '--json'])).stdout) as { expiresAtMs: number };
  const left = get.expiresAtMs - Date.now();
  t.true(left > 5_000 && left <= 10_000, `--ttl 10 is ten seconds, ${left} ms left`);
  t.is((await shoal([...at(), 'put', 'ttl2h', 'v', '--ttl', '2h30m'])).code, 0);
  const long = JSON.parse((await shoal([...at(), 'get', 'ttl2h', '--json'])).stdout) as { expiresAtMs: number };
  t.true(Math.abs(long.expiresAtMs - Date.now() - 9_000_000) < 60_000);
  const bad = await shoal([...at(), 'put', 'k', 'v', '--ttl', '1h30']);
  t.is(bad.code, 2);
});

test('--config and SHOAL_CONFIG: addresses tried in turn and the cluster name from a cluster file; --addr wins', async (t) => {
  const [dead] = await freePorts(1);
  const file = join(tmp.dir, 'cluster.json');
  writeFileSync(file, JSON.stringify({ cluster: 'dev', nodes: [
    { id: 'x1', gossip: `127.0.0.1:${dead}`, rpc: `127.0.0.1:${dead}` },
    { id: 'x2', gossip: node.addresses.gossip, rpc: node.addresses.rpc },
  ] }));
  const viaFlag = await shoal(['health', '--config', file, '--timeout', '30']);
  t.is(viaFlag.code, 0, viaFlag.stderr);
  const viaEnv = await shoal(['health', '--timeout', '30'], { SHOAL_CONFIG: file });
  t.is(viaEnv.code, 0, viaEnv.stderr);
  const otherName = join(tmp.dir, 'other.json');
  writeFileSync(otherName, JSON.stringify({ cluster: 'prod', nodes: [{ id: 'x2', gossip: node.addresses.gossip, rpc: node.addresses.rpc }] }));
  const wrong = await shoal(['health', '--config', otherName, '--timeout', '30']);
  t.is(wrong.code, 3, 'the cluster name comes from the file');
  t.regex(wrong.stderr, /cluster name mismatch/);
  const flagWins = await shoal(['health', '--addr', `127.0.0.1:${dead}`, '--timeout', '5'], { SHOAL_CONFIG: file });
  t.is(flagWins.code, 3);
  const leave = await shoal(['leave', '--timeout', '30'], { SHOAL_CONFIG: file });
  t.is(leave.code, 2, 'leave never picks "whichever node answers first"');
  t.regex(leave.stderr, /^shoal: leave acts on one node: name it with --addr HOST:PORT/);
  const missing = await shoal(['health', '--config', join(tmp.dir, 'nope.json')]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /^shoal: --config: invalid cluster file .*nope\.json: no such file\n$/);
});

test('pointed at an HTTP port, the CLI says it is not a Shoal RPC port', async (t) => {
  const r = await shoal(['get', 'k', '--addr', node.addresses.metrics ?? '', '--timeout', '10']);
  t.is(r.code, 3);
  t.regex(r.stderr, /this is not a Shoal RPC port \(it answered like HTTP/);
  t.notRegex(r.stderr, /bytes exceeds/);
});

test('a misspelled SHOAL_ variable: a warning from client commands, an error for a node setting', async (t) => {
  const r = await shoal([...at(), 'health'], { SHOAL_ADR: '127.0.0.1:1' });
  t.is(r.code, 0);
  t.regex(r.stderr, /^shoal: warning: SHOAL_ADR is not a Shoal variable \(did you mean SHOAL_ADDR\?\)\n$/);
  const err = t.throws(() => loadConfig({ env: { SHOAL_STORAGE_FSYNCC: 'none' } }));
  t.true(err instanceof ShoalError && err.code === 'CONFIG');
  t.regex(err.message, /SHOAL_STORAGE_FSYNCC is not a Shoal variable \(did you mean SHOAL_STORAGE_FSYNC\?\)/);
  t.notThrows(() => loadConfig({ env: { SHOAL_BENCH_MS: '5', SHOAL_STORAGE_FSYNC: 'none', SHOAL_ADDR: 'x:1' } }), 'tool and client variables are fine');
});

test('--version, -v and completion', async (t) => {
  const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  t.is((await shoal(['--version'])).stdout, `${version}\n`);
  t.is((await shoal(['-v'])).stdout, `${version}\n`);
  const completion = await shoal(['completion']);
  t.is(completion.code, 0);
  t.regex(completion.stdout, /shoal completion >> ~\/\.bashrc|compgen|compdef/);
});

test('file-system errors on the data dir are explained in plain words', (t) => {
  const dir = '/srv/shoal/n1';
  const raw = (code: string, path: string) => Object.assign(new Error(`${code}: raw, open '${path}'`), { code, path });
  const cases: Array<[string, string, RegExp]> = [
    ['EROFS', `${dir}/LOCK`, /read-only file system/],
    ['EACCES', `${dir}/wal`, /no permission to write/],
    ['ENOENT', dir, /cannot be created or was removed/],
    ['EEXIST', dir, /is a file, not a directory/],
    ['ENOTDIR', `${dir}/x`, /a part of the data dir's path .* is a file/],
  ];
  for (const [code, path, message] of cases) {
    const e = dataDirError(dir, raw(code, path));
    t.true(e instanceof ShoalError && e.code === 'CONFIG', code);
    t.regex((e as Error).message, message);
  }
  const elsewhere = raw('EROFS', '/etc/other');
  t.is(dataDirError(dir, elsewhere), elsewhere, 'errors about other paths pass through');
});

test('a cluster file with TLS settings (shoal local --tls-dir) gives the CLI its CA and, with mutual TLS, its client certificate', (t) => {
  const nodes = [{ id: 'a', gossip: '127.0.0.1:1', rpc: '127.0.0.1:2' }, { id: 'b', gossip: '127.0.0.1:3', rpc: '127.0.0.1:4' }];
  t.deepEqual(fileTarget({ cluster: 'c', nodes }), { addr: '127.0.0.1:2,127.0.0.1:4', cluster: 'c' });
  const mutual = fileTarget({ nodes, config: { security: { tls: true, tlsCa: '/ca.pem', tlsCert: '/n.pem', tlsKey: '/k.pem', tlsClientAuth: true } } });
  t.deepEqual(mutual, { addr: '127.0.0.1:2,127.0.0.1:4', cluster: 'dev', tls: { ca: '/ca.pem', cert: '/n.pem', key: '/k.pem' } });
  const server = fileTarget({ nodes, config: { security: { tls: true, tlsCa: '/ca.pem', tlsCert: '/n.pem', tlsKey: '/k.pem' } } });
  t.deepEqual(server.tls, { ca: '/ca.pem' }, 'without client auth the node certificate is not presented');
  const file = join(tmp.dir, 'tls-cluster.json');
  writeFileSync(file, JSON.stringify({ nodes, config: { security: { tls: true, tlsCa: '/ca.pem' } } }));
  t.deepEqual(resolveTarget({ tls: false, addr: '127.0.0.1:9' }, { SHOAL_CONFIG: file }).tls, { ca: '/ca.pem' }, '--addr still uses the file\'s TLS');
  t.is(resolveTarget({ tls: false }, { SHOAL_CONFIG: file, SHOAL_ADDR: '127.0.0.1:9' }).tls, undefined, 'SHOAL_ADDR beats SHOAL_CONFIG entirely');
  t.is(resolveTarget({ tls: false, config: file }, { SHOAL_ADDR: '127.0.0.1:9' }).addr, '127.0.0.1:2,127.0.0.1:4', '--config beats SHOAL_ADDR');
});
