/**
 * A node killed (SIGKILL, a real process) while clients pipeline through it and through another node:
 * the client of the killed node sees errors, and no client ever reads a value that was not written to
 * that key (every GET returns the last acknowledged value or one whose write failed after it).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startNode, type Node } from '../../src/node/node.js';
import { eventually, tempDir, testClient, testConfig } from '../node/helpers.js';
import { FAST } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** What a key may hold: the value of its last acknowledged SET, or of a SET that failed after it. */
class KeyModel {
  private readonly allowed = new Map<string, Set<string>>();

  acked(key: string, value: string): void {
    this.allowed.set(key, new Set([value]));
  }

  failed(key: string, value: string): void {
    const set = this.allowed.get(key) ?? new Set<string>();
    set.add(value);
    this.allowed.set(key, set);
  }

  allows(key: string, value: string | null): boolean {
    const set = this.allowed.get(key);
    return set === undefined ? value === null : value !== null && set.has(value);
  }
}

async function connectClient(port: number): Promise<Redis> {
  const c = new Redis({ host: '127.0.0.1', port, protocol: 2, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, lazyConnect: true });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Pipelines SET k v / GET k pairs over `keys` and checks each reply against the model. */
async function pipelineRound(client: Redis, keys: string[], tag: string, model: KeyModel): Promise<{ errors: number; ok: number; wrong: string[] }> {
  const p = client.pipeline();
  const plan: Array<[string, string]> = keys.map((k, i) => [k, `${tag}-${i}`]);
  for (const [k, v] of plan) {
    p.set(k, v);
    p.get(k);
  }
  const results = (await p.exec().catch(() => null)) ?? plan.flatMap(() => [[new Error('pipeline failed'), null], [new Error('pipeline failed'), null]]);
  let errors = 0;
  let ok = 0;
  const wrong: string[] = [];
  plan.forEach(([k, v], i) => {
    const [setErr] = results[2 * i] as [Error | null, unknown];
    if (setErr) {
      errors += 1;
      model.failed(k, v);
    } else {
      model.acked(k, v);
    }
    const [getErr, got] = results[2 * i + 1] as [Error | null, string | null];
    if (getErr) errors += 1;
    else {
      ok += 1;
      if (!model.allows(k, got)) wrong.push(`${k}: got ${String(got)}`);
    }
  });
  return { errors, ok, wrong };
}

test('SIGKILL of a node during pipelines: its client sees errors, no client reads a wrong value', async (t) => {
  const tmp = tempDir('shoal-resp-kill-');
  const nodes: Node[] = [];
  t.teardown(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    tmp.remove();
  });
  for (const id of ['n1', 'n2']) {
    const seeds: Record<string, string> = nodes.length === 0 ? {} : { 'membership.seeds': nodes[0].addresses.gossip };
    // n2 stops without leaving at the end (a crash as far as the ring is concerned).
    const leave: Record<string, string> = id === 'n2' ? { 'shutdown.leave': 'false' } : {};
    nodes.push(await startNode(testConfig(join(tmp.dir, id), { 'node.id': id, 'node.resp': '127.0.0.1:0', ...FAST, ...seeds, ...leave }), { processMetrics: false }));
  }
  const sets = Object.entries({ ...FAST, 'membership.seeds': nodes[0].addresses.gossip, 'metrics.enabled': 'false' }).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', MAIN, 'agent', '--id', 'n3', '--data-dir', join(tmp.dir, 'n3'), '--rpc', '127.0.0.1:0', '--gossip', '127.0.0.1:0', '--resp', '127.0.0.1:0', '--log-format', 'json', ...sets],
    { stdio: ['ignore', 'pipe', 'pipe'], env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHOAL_'))) },
  );
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  let log = '';
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const respPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`n3 did not start: ${log}`)), 60_000);
    child.stdout.on('data', (c: Buffer) => {
      log += c.toString();
      const m = /"message":"node started".*?"resp":"127\.0\.0\.1:(\d+)"|"resp":"127\.0\.0\.1:(\d+)".*?"message":"node started"/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1] ?? m[2]));
      }
    });
  });
  const admin = testClient(nodes[0].addresses.rpc);
  t.teardown(() => admin.close());
  t.true(
    await eventually(20_000, async () => ((await admin.members()) as Array<{ state: string }>).filter((m) => m.state === 'alive').length === 3),
    'three alive members',
  );

  const viaKilled = await connectClient(respPort);
  const viaSurvivor = await connectClient(Number(nodes[0].addresses.resp?.split(':')[1]));
  t.teardown(() => {
    viaKilled.disconnect();
    viaSurvivor.disconnect();
  });
  const model = new KeyModel();
  const keysA = Array.from({ length: 400 }, (_, i) => `kill:a:${i}`);
  const keysB = Array.from({ length: 400 }, (_, i) => `kill:b:${i}`);
  // A first round while every node is up: all acknowledged.
  const warm = await pipelineRound(viaKilled, keysA, 'warm', model);
  t.is(warm.errors, 0);
  t.deepEqual(warm.wrong, []);

  // Rounds on both connections; n3 is killed while they are in flight.
  const rounds: Array<Promise<{ errors: number; ok: number; wrong: string[] }>> = [];
  for (let r = 0; r < 10; r++) {
    rounds.push(pipelineRound(viaKilled, keysA, `a${r}`, model));
    rounds.push(pipelineRound(viaSurvivor, keysB, `b${r}`, model));
  }
  // Killed once the first round through it is answered, with the later ones in flight.
  void rounds[0].then(() => child.kill('SIGKILL'));
  const outcomes = await Promise.all(rounds);
  const killedSide = outcomes.filter((_, i) => i % 2 === 0);
  const survivorSide = outcomes.filter((_, i) => i % 2 === 1);
  t.log('killed side', killedSide.map((o) => `${o.ok} ok / ${o.errors} errors`).join(', '), '; survivor side', survivorSide.map((o) => `${o.ok} ok / ${o.errors} errors`).join(', '));
  t.true(killedSide.reduce((s, o) => s + o.errors, 0) > 0, 'the client of the killed node saw errors');
  t.true(killedSide.reduce((s, o) => s + o.ok, 0) > 0, 'it had answers before the kill');
  t.deepEqual(outcomes.flatMap((o) => o.wrong), [], 'no GET returned a value that was not written to its key');
  t.true(survivorSide.reduce((s, o) => s + o.ok, 0) > 0, 'the surviving node kept answering');

  // Afterwards every key reads back a value the model allows, through the survivor.
  const reader = await connectClient(Number(nodes[1].addresses.resp?.split(':')[1]));
  t.teardown(() => reader.disconnect());
  const all = [...keysA, ...keysB];
  const values = await reader.mget(...all);
  const wrongAfter = all.filter((k, i) => !model.allows(k, values[i]));
  t.deepEqual(wrongAfter, []);

  // With a second owner gone, W=2 cannot be met: writes through n1 fail with CLUSTERDOWN, never a false OK.
  reader.disconnect();
  await nodes[1].stop();
  const err = await t.throwsAsync(viaSurvivor.set('kill:b:0', 'late'));
  t.regex(err?.message ?? '', /^CLUSTERDOWN only 1 of 2 replicas answered the write/);
  await t.throwsAsync(viaSurvivor.get('kill:b:0'), { message: /^CLUSTERDOWN / });
});
