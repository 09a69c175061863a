/**
 * Debian's redis-cli (redis-tools) in scripted sessions against a three-node cluster: commands on
 * stdin, --pipe mass insertion, --scan, RESP3 (-3), and inline commands over a bare socket as telnet
 * or nc would send them.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startNode } from '../../src/node/node.js';
import { tempDir, testConfig } from '../node/helpers.js';
import { makeTestCerts, NO_OPENSSL } from '../security/tls-certs.js';
import { FAST, hasCommand, startCluster, type TestCluster } from './helpers.js';

const HAVE_CLI = hasCommand('redis-cli');
if (!HAVE_CLI) console.log('redis-cli not installed (apt-get install redis-tools): the redis-cli tests are skipped');
const maybe = HAVE_CLI ? test.serial : test.serial.skip;

let cluster: TestCluster;

test.before(async () => {
  if (HAVE_CLI) cluster = await startCluster(3);
});

test.after.always(async () => {
  await cluster?.stop();
});

function cli(node: number | { host: string; port: number }, args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { host, port } = typeof node === 'number' ? cluster.resp[node] : node;
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-h', host, '-p', String(port), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Sends raw bytes on a socket and collects what comes back until the server closes or `ms` pass. */
function raw(node: number, bytes: string, ms = 2000): Promise<{ text: string; closed: boolean }> {
  const { host, port } = cluster.resp[node];
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let text = '';
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed });
    }, ms);
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text, closed });
    });
    socket.write(bytes);
  });
}

maybe('a scripted session on stdin: strings, TTLs, multi-key commands and errors', async (t) => {
  const script = [
    'SET greeting "hello world"',
    'GET greeting',
    'SET counter 10 EX 100',
    'TTL counter',
    'MSET a 1 b 2 c 3',
    'MGET a b c missing',
    'DEL a b',
    'EXISTS a b c',
    'INCR counter',
    'SELECT 0',
    'PING',
    '',
  ].join('\n');
  const out = await cli(0, [], script);
  t.is(out.code, 0, out.stderr);
  const incrError = 'ERR INCR is not supported by Shoal: values are last-writer-wins without compare-and-set, so a read-modify-write could lose a concurrent update; compute the new value in the client and SET it';
  t.deepEqual(out.stdout.split('\n'), ['OK', 'hello world', 'OK', '100', 'OK', '1', '2', '3', '', '2', '1', incrError, '', 'OK', 'PONG', '']);
  // Another node sees the same data.
  const other = await cli(2, ['GET', 'greeting']);
  t.is(other.stdout, 'hello world\n');
});

maybe('--pipe mass insertion of 20 000 keys, then --scan through another node lists each once', async (t) => {
  const lines: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const key = `mass:${i}`;
    const value = `value-${i}`;
    lines.push(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`);
  }
  const piped = await cli(0, ['--pipe'], lines.join(''));
  t.is(piped.code, 0, piped.stderr);
  t.regex(piped.stdout, /errors: 0, replies: 20000/);
  const scanned = await cli(1, ['--scan', '--pattern', 'mass:*']);
  t.is(scanned.code, 0, scanned.stderr);
  const keys = scanned.stdout.trim().split('\n');
  t.is(keys.length, 20_000);
  t.is(new Set(keys).size, 20_000);
  const sample = await cli(2, ['MGET', 'mass:0', 'mass:19999']);
  t.is(sample.stdout, 'value-0\nvalue-19999\n');
  const size = await cli(2, ['DBSIZE']);
  t.true(Number(size.stdout) >= 20_000, size.stdout);
});

maybe('RESP3 with -3: HELLO answers a map, nulls and maps decode', async (t) => {
  const out = await cli(1, ['-3', '--no-raw'], 'HELLO 3\nGET nothing-here\nCONFIG GET appendonly\n');
  t.is(out.code, 0, out.stderr);
  t.regex(out.stdout, /^1# "server" => "redis"$/m);
  t.regex(out.stdout, /^3# "proto" => \(integer\) 3$/m);
  t.regex(out.stdout, /^\(nil\)$/m);
  t.regex(out.stdout, /^1# "appendonly" => "no"$/m);
});

maybe('inline commands as telnet or nc send them, and a protocol error closes the connection after an error reply', async (t) => {
  const inline = await raw(0, 'PING\r\nSET inline "a b"\r\nGET inline\r\nQUIT\r\n');
  t.is(inline.text, '+PONG\r\n+OK\r\n$3\r\na b\r\n+OK\r\n');
  t.true(inline.closed, 'QUIT closes');
  const bad = await raw(0, '*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n');
  t.is(bad.text, '+PONG\r\n-ERR Protocol error: invalid bulk length\r\n');
  t.true(bad.closed);
  const unbalanced = await raw(1, 'SET k "unbalanced\r\n');
  t.regex(unbalanced.text, /^-ERR Protocol error: unbalanced quotes/);
});

const certs = HAVE_CLI ? makeTestCerts() : null;
if (HAVE_CLI && certs === null) console.log(NO_OPENSSL);
const maybeTls = certs === null ? test.serial.skip : test.serial;

maybeTls('redis-cli --tls against a node with security.tls and mutual TLS: with a client certificate it works, without it is refused', async (t) => {
  if (certs === null) return;
  const tmp = tempDir('shoal-resp-tls-');
  t.teardown(() => {
    tmp.remove();
    certs.remove();
  });
  const node = await startNode(
    testConfig(join(tmp.dir, 'n1'), {
      'node.resp': '127.0.0.1:0',
      ...FAST,
      'security.tls': 'true',
      'security.tlsCa': certs.ca,
      'security.tlsCert': certs.node.cert,
      'security.tlsKey': certs.node.key,
      'security.tlsClientAuth': 'true',
    }),
    { processMetrics: false },
  );
  t.teardown(() => node.stop());
  const addr = { host: '127.0.0.1', port: Number(node.addresses.resp?.split(':')[1]) };
  const withCert = ['--tls', '--cacert', certs.ca, '--cert', certs.client.cert, '--key', certs.client.key];
  const set = await cli(addr, [...withCert, 'SET', 'secret', 'value']);
  t.is(set.stdout, 'OK\n', set.stderr);
  const get = await cli(addr, [...withCert, 'GET', 'secret']);
  t.is(get.stdout, 'value\n');
  const noCert = await cli(addr, ['--tls', '--cacert', certs.ca, 'GET', 'secret']);
  t.false(noCert.stdout.includes('value'), noCert.stdout);
  const plain = await cli(addr, ['GET', 'secret']);
  t.false(plain.stdout.includes('value'), plain.stdout);
});
