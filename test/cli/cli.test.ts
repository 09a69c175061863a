import test from 'ava';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { membersTable, ringText } from '../../src/cli/client-commands.js';
import { startNode, type Node } from '../../src/node/node.js';
import { bufferIo, tempDir, testConfig } from '../node/helpers.js';

let node: Node;
const tmp = tempDir('shoal-cli-');

test.before(async () => {
  node = await startNode(testConfig(join(tmp.dir, 'data'), { 'storage.valueBytesMax': '1KiB' }), { processMetrics: false });
});
test.after.always(async () => {
  await node?.stop();
  tmp.remove();
});

/** Runs `shoal ARGS --addr <node>`; stdin as given (default: a terminal with nothing to read). */
async function shoal(args: string[], stdin?: string | Buffer, env: Record<string, string> = {}) {
  const b = bufferIo(stdin, env);
  // A generous timeout: the machine running the tests may be very busy.
  const code = await runCli([...args, '--addr', node.addresses.rpc, ...(args.includes('--timeout') ? [] : ['--timeout', '30s'])], b.io);
  return { code, stdout: b.stdout(), stdoutBytes: b.stdoutBytes(), stderr: b.stderr() };
}

test('put, get and del through the CLI, with exit statuses 0 and 1', async (t) => {
  const put = await shoal(['put', 'greeting', 'hello world']);
  t.is(put.code, 0, put.stderr);
  t.is(put.stdout, 'OK\n');
  const get = await shoal(['get', 'greeting']);
  t.is(get.code, 0);
  t.is(get.stdout, 'hello world'); // raw bytes, no newline added off a terminal
  const del = await shoal(['del', 'greeting']);
  t.is(del.code, 0);
  const missing = await shoal(['get', 'greeting']);
  t.is(missing.code, 1);
  t.is(missing.stdout, '', 'nothing on stdout for a missing key');
  t.regex(missing.stderr, /not found/);
  t.is((await shoal(['delete', 'never-there'])).code, 0, 'deleting a missing key is fine');
});

test('--json output for get and put', async (t) => {
  const put = await shoal(['put', 'j', 'v', '--json']);
  const version = (JSON.parse(put.stdout) as { version: { ts: number; node: string } }).version;
  t.is(version.node, 'n1');
  const get = JSON.parse((await shoal(['get', 'j', '--json'])).stdout) as Record<string, unknown>;
  t.deepEqual(get, { key: 'j', value: 'v', version });
  await shoal(['put', 'bin', '-'], Buffer.from([0xff, 0x00, 0xfe]));
  const bin = JSON.parse((await shoal(['get', 'bin', '--json'])).stdout) as Record<string, unknown>;
  t.is(bin.valueBase64, Buffer.from([0xff, 0x00, 0xfe]).toString('base64'));
});

test('put reads the value from stdin ("-" or absent with piped stdin) and from --file, byte for byte', async (t) => {
  const bytes = Buffer.from([0, 1, 2, 250, 255, 10]);
  t.is((await shoal(['put', 'dash', '-'], bytes)).code, 0);
  t.deepEqual((await shoal(['get', 'dash'])).stdoutBytes, bytes);
  t.is((await shoal(['put', 'piped'], 'from a pipe\n')).code, 0);
  t.is((await shoal(['get', 'piped'])).stdout, 'from a pipe\n');
  const file = join(tmp.dir, 'value.bin');
  writeFileSync(file, bytes);
  t.is((await shoal(['put', 'file', '--file', file])).code, 0);
  t.deepEqual((await shoal(['get', 'file'])).stdoutBytes, bytes);
});

test('put with --ttl stores an expiry; --consistency is accepted on get, put and del', async (t) => {
  t.is((await shoal(['put', 'session', 's', '--ttl', '30s', '--consistency', 'one'])).code, 0);
  const get = JSON.parse((await shoal(['get', 'session', '--json', '--consistency', 'quorum'])).stdout) as { expiresAtMs: number };
  t.true(get.expiresAtMs > Date.now() + 20_000 && get.expiresAtMs <= Date.now() + 30_000);
  t.is((await shoal(['del', 'session', '--consistency', 'all'])).code, 0);
});

test('usage mistakes exit 2 with one line and no stack trace', async (t) => {
  const cases: string[][] = [
    ['put', 'k', 'v', '--ttl', 'soon'],
    ['put', 'k', 'v', '--ttl', '0s'],
    ['get', 'k', '--consistency', 'most'],
    ['get'],
    ['frobnicate'],
    ['get', 'k', '--timeout', 'x'],
    ['put', 'k'], // no value and stdin is a terminal
    ['put', 'k', '--file', join(tmp.dir, 'missing')],
    ['get', 'k', '--bogus-flag'],
  ];
  for (const args of cases) {
    const r = await shoal(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stdout, '');
    t.regex(r.stderr, /^shoal: /);
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const noCommand = bufferIo();
  t.is(await runCli([], noCommand.io), 2);
});

test('an unreachable node exits 3; a server-side limit exits 4', async (t) => {
  const closed = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
  const b = bufferIo();
  const code = await runCli(['get', 'k', '--addr', `127.0.0.1:${closed}`, '--timeout', '2s'], b.io);
  t.is(code, 3);
  t.regex(b.stderr(), /^shoal: .*UNAVAILABLE/);
  t.notRegex(b.stderr(), /\n\s+at /);

  const big = await shoal(['put', 'big', 'x'.repeat(2000)]);
  t.is(big.code, 4);
  t.regex(big.stderr, /VALUE_TOO_LARGE/);

  const wrongCluster = await shoal(['get', 'k', '--cluster', 'other']);
  t.is(wrongCluster.code, 3);
  t.regex(wrongCluster.stderr, /BAD_HANDSHAKE|cluster/);
});

test('SHOAL_ADDR picks the node when --addr is absent', async (t) => {
  const b = bufferIo(undefined, { SHOAL_ADDR: node.addresses.rpc });
  t.is(await runCli(['health', '--timeout', '30s'], b.io), 0);
  t.regex(b.stdout(), /^ok: node n1 of cluster dev, serving/);
});

test('stats, health and members print human output, and JSON with --json', async (t) => {
  const stats = await shoal(['stats', '--full']);
  t.is(stats.code, 0);
  t.regex(stats.stdout, /^node: n1$/m);
  t.regex(stats.stdout, /^store:\n {2}keys: \d+$/m);
  t.regex((await shoal(['stats'])).stdout, /^node\s+n1 of cluster dev, serving, up /m);
  t.is(JSON.parse((await shoal(['stats', '--json'])).stdout).node, 'n1');
  const members = await shoal(['members']);
  t.is(members.code, 0);
  const [header, row] = members.stdout.trim().split('\n');
  t.regex(header, /^ID\s+GOSSIP\s+RPC\s+STATE\s+INCARNATION\s+ZONE\s+OWNS\s+HINTS$/);
  t.regex(row, new RegExp(`^n1\\s+${node.addresses.gossip}\\s+${node.addresses.rpc}\\s+alive\\s+\\d+\\s+-\\s+100\\.0%\\s+0$`));
  const json = JSON.parse((await shoal(['members', '--json'])).stdout) as Array<Record<string, unknown>>;
  t.like(json[0], { id: 'n1', state: 'alive', gossip: node.addresses.gossip, rpc: node.addresses.rpc, zone: null });
});

test('the help lists the commands and the exit statuses', async (t) => {
  const b = bufferIo();
  t.is(await runCli(['--help'], b.io), 0);
  for (const command of ['agent', 'local', 'get', 'put', 'del', 'stats', 'members', 'ring', 'leave', 'remove', 'health']) {
    t.regex(b.stdout(), new RegExp(`shoal ${command}\\b`));
  }
  t.regex(b.stdout(), /1 {2}not found/);
  t.regex(b.stdout(), /3 {2}unavailable/);
});

test('members and ring tables', (t) => {
  t.is(
    membersTable([
      { id: 'n2', gossip: '127.0.0.1:7102', rpc: '127.0.0.1:7202', state: 'suspect', incarnation: 3, zone: 'b' },
      { id: 'n1', gossip: '127.0.0.1:7101', rpc: '127.0.0.1:7201', state: 'alive', incarnation: 1 },
    ]),
    'ID  GOSSIP          RPC             STATE    INCARNATION  ZONE\n' +
      'n1  127.0.0.1:7101  127.0.0.1:7201  alive    1            -\n' +
      'n2  127.0.0.1:7102  127.0.0.1:7202  suspect  3            b\n',
  );
  t.regex(membersTable([{ id: 'n1', state: 'alive', incarnation: 2, owns: 0.334, pendingHints: 7 }]), /^n1\s+-\s+-\s+alive\s+2\s+-\s+33\.4%\s+7$/m);
  const text = ringText({ checksum: 'abc', vnodes: 256, members: [{ id: 'n2', state: 'alive', owns: 0.5 }, { id: 'n1', state: 'alive', owns: 0.5 }] });
  t.regex(text, /^checksum: abc$/m);
  t.regex(text, /^n1\s+alive\s+50\.0%$/m);
});
