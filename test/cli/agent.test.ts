/**
 * `shoal agent` and the CLI as real processes: configuration errors, serving, graceful SIGTERM,
 * durability across a restart, the data dir lock, the metrics endpoint.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/run.js';
import { openStore } from '../../src/storage/store.js';
import { ShoalError } from '../../src/errors.js';
import { startNode } from '../../src/node/node.js';
import { bufferIo, httpGet, sample, tempDir, testConfig } from '../node/helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
/** Bounds every wait on a child process. */
const WAIT_MS = 100_000;

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function shoal(args: string[], env: Record<string, string> = {}): Run {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SHOAL_')));
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
  void exit.then(() => clearTimeout(timer));
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Starts an agent on free loopback ports with JSON logs; resolves with its addresses once it serves. */
async function agent(dataDir: string, extra: string[] = []): Promise<Run & { rpc: string; metrics: string }> {
  const run = shoal(['agent', '--data-dir', dataDir, '--rpc', '127.0.0.1:0', '--gossip', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--log-format', 'json', '--set', 'membership.leaveTimeoutMs=100', ...extra]);
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const started = run
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === 'node started');
    if (started) return Object.assign(run, { rpc: String(started.rpc), metrics: String(started.metrics) });
    const exited = await Promise.race([run.exit.then(() => true), new Promise((r) => setTimeout(() => r(false), 50))]);
    if (exited) throw new Error(`agent exited before serving: ${run.stderr()}`);
  }
  run.child.kill('SIGKILL');
  throw new Error('agent did not start in time');
}

test('a bad configuration value prints one line naming the field and exits 2', async (t) => {
  const tmp = tempDir('shoal-agent-cfg-');
  t.teardown(tmp.remove);
  // As a process once (exit status and stderr end to end)...
  const run = shoal(['agent', '--data-dir', tmp.dir, '--set', 'storage.fsync=sometimes']);
  t.is(await run.exit, 2, run.stderr());
  t.is(
    run.stderr(),
    'shoal agent: invalid configuration: storage.fsync must be one of always, interval, none; got "sometimes" (from flag --set storage.fsync)\n',
  );
  t.is(run.stdout(), '');
  // ...and in-process for the other sources.
  const env = bufferIo(undefined, { SHOAL_NODE_RPC: 'localhost' });
  t.is(await runCli(['agent', '--data-dir', tmp.dir], env.io), 2);
  t.regex(env.stderr(), /^shoal agent: invalid configuration: node\.rpc must be host:port .*\(from env SHOAL_NODE_RPC\)\n$/);
  const file = bufferIo();
  t.is(await runCli(['agent', '--config', join(tmp.dir, 'missing.json'), '--node', 'n1'], file.io), 2);
  t.regex(file.stderr(), /^shoal agent: invalid cluster file .*missing\.json: no such file\n$/);
});

test('agent serves the CLI, refuses a second process on its data dir, stops on SIGTERM with exit 0, and the data is on disk', async (t) => {
  const tmp = tempDir('shoal-agent-');
  t.teardown(tmp.remove);
  const dataDir = join(tmp.dir, 'n1');
  const first = await agent(dataDir);
  t.teardown(() => first.child.kill('SIGKILL'));

  const cli = async (args: string[]) => {
    const b = bufferIo();
    return { code: await runCli([...args, '--addr', first.rpc, '--timeout', '30s'], b.io), stdout: b.stdout() };
  };
  t.deepEqual(await cli(['put', 'durable', 'yes']), { code: 0, stdout: 'OK\n' });
  t.deepEqual(await cli(['get', 'durable']), { code: 0, stdout: 'yes' });
  t.deepEqual(await cli(['get', 'nothing']), { code: 1, stdout: '' });

  // This test process is a second process: the agent's data dir is refused to it.
  const locked = await t.throwsAsync(startNode(testConfig(dataDir), { processMetrics: false }));
  t.is((locked as ShoalError).code, 'LOCKED');
  t.regex(locked!.message, /locked by process \d+/);

  const metrics = (await httpGet(first.metrics, '/metrics')).body;
  t.is(sample(metrics, 'shoal_requests_total', { op: 'put' }), 1);
  t.is(sample(metrics, 'shoal_requests_total', { op: 'get' }), 2);
  t.is(sample(metrics, 'shoal_request_duration_seconds_count', { op: 'put' }), 1);
  t.is(sample(metrics, 'shoal_store_keys'), 1);

  first.child.kill('SIGTERM');
  t.is(await first.exit, 0, first.stderr());
  const log = first.stdout();
  t.regex(log, /"message":"received SIGTERM; stopping gracefully/);
  t.regex(log, /"message":"stopped"/);

  // The acknowledged write is on disk: the store opens (lock released) and has it.
  const store = await openStore(dataDir);
  t.is(store.get('durable')?.value?.toString(), 'yes');
  await store.close();
});
