/**
 * ioredis (a client nobody here wrote) against a three-node cluster, through different nodes, in
 * RESP3 (its default, HELLO 3) and RESP2.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { Redis, ReplyError } from 'ioredis';
import { httpGet, sample } from '../node/helpers.js';
import { startCluster, type TestCluster } from './helpers.js';

let cluster: TestCluster;
const clients: Redis[] = [];

function client(node: number, protocol: 2 | 3 = 3): Redis {
  const { host, port } = cluster.resp[node];
  const c = new Redis({ host, port, protocol, lazyConnect: false, maxRetriesPerRequest: 0, enableOfflineQueue: true, retryStrategy: () => null });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

test.before(async () => {
  cluster = await startCluster(3, { 'resp.keysMax': '300' });
});

test.after.always(async () => {
  for (const c of clients) c.disconnect();
  await cluster?.stop();
});

test('binary values of every size round-trip through different nodes', async (t) => {
  const [a, b, c] = [client(0), client(1, 2), client(2)];
  const sizes = [0, 1, 100, 4096, 65_536, 512 * 1024, 1024 * 1024];
  for (const size of sizes) {
    const value = randomBytes(size);
    t.is(await a.set(`bin:${size}`, value), 'OK');
    t.true((await b.getBuffer(`bin:${size}`))?.equals(value), `${size} bytes via node 2`);
    t.true((await c.getBuffer(`bin:${size}`))?.equals(value), `${size} bytes via node 3`);
    t.is(await c.strlen(`bin:${size}`), size);
  }
  // A key of raw non-UTF-8 bytes is refused with a clear error rather than stored under a mangled name.
  await t.throwsAsync(a.set(Buffer.from([0xff, 0xfe]), 'v'), { instanceOf: ReplyError, message: /UTF-8/ });
  await t.throwsAsync(a.set('big', Buffer.alloc(1024 * 1024 + 1)), { instanceOf: ReplyError, message: /over the limit of 1048576/ });
});

test('TTLs: EX, PX, EXAT, KEEPTTL, EXPIRE conditions, PERSIST and expiry itself, seen from another node', async (t) => {
  const [a, b] = [client(0), client(1)];
  await a.set('ttl:1', 'v', 'EX', 100);
  const ttl = await b.ttl('ttl:1');
  t.true(ttl >= 99 && ttl <= 100, `ttl ${ttl}`);
  const pttl = await b.pttl('ttl:1');
  t.true(pttl > 98_000 && pttl <= 100_000, `pttl ${pttl}`);
  t.is(await b.ttl('ttl:none'), -2);
  await a.set('ttl:2', 'v');
  t.is(await b.ttl('ttl:2'), -1);
  // EXPIRE NX/XX/GT/LT against Redis's rules (no expiry counts as infinite).
  t.is(await b.expire('ttl:2', 50, 'XX'), 0);
  t.is(await b.expire('ttl:2', 50, 'GT'), 0);
  t.is(await b.expire('ttl:2', 50, 'NX'), 1);
  t.is(await b.expire('ttl:2', 40, 'GT'), 0);
  t.is(await b.expire('ttl:2', 60, 'GT'), 1);
  t.is(await b.expire('ttl:2', 70, 'LT'), 0);
  t.is(await b.expire('ttl:2', 30, 'LT'), 1);
  t.true((await a.ttl('ttl:2')) <= 30);
  await t.throwsAsync(b.call('EXPIRE', 'ttl:2', '10', 'NX', 'XX'), { instanceOf: ReplyError, message: /not compatible/ });
  t.is(await a.set('ttl:2', 'w', 'KEEPTTL'), 'OK');
  t.true((await b.ttl('ttl:2')) > 0, 'KEEPTTL kept the expiry');
  t.is(await b.persist('ttl:2'), 1);
  t.is(await a.ttl('ttl:2'), -1);
  t.is(await b.persist('ttl:2'), 0);
  await a.set('ttl:3', 'v', 'EXAT', Math.floor(Date.now() / 1000) + 1000);
  t.true((await b.ttl('ttl:3')) > 990);
  await a.call('PSETEX', 'ttl:4', '300', 'short');
  t.is(await b.get('ttl:4'), 'short');
  await new Promise((r) => setTimeout(r, 700));
  t.is(await b.get('ttl:4'), null, 'expired after its PX');
  t.is(await b.exists('ttl:4'), 0);
  await a.set('ttl:5', 'v');
  t.is(await a.pexpire('ttl:5', -1), 1, 'a past expiry deletes');
  t.is(await b.get('ttl:5'), null);
  await t.throwsAsync(a.set('ttl:6', 'v', 'EX', 0), { instanceOf: ReplyError, message: /invalid expire time in 'set' command/ });
  t.is(await a.getex('ttl:3', 'PERSIST'), 'v');
  t.is(await b.ttl('ttl:3'), -1);
});

test('pipelines keep per-connection order on a key and return replies in order', async (t) => {
  const a = client(0);
  const p = a.pipeline();
  for (let i = 0; i < 200; i++) {
    p.set(`pipe:${i % 10}`, `v${i}`);
    p.get(`pipe:${i % 10}`);
  }
  p.ping();
  const results = await p.exec();
  t.truthy(results);
  for (let i = 0; i < 200; i++) {
    t.deepEqual(results?.[2 * i], [null, 'OK']);
    t.deepEqual(results?.[2 * i + 1], [null, `v${i}`], `read ${i} sees the write just before it`);
  }
  t.deepEqual(results?.[400], [null, 'PONG']);
});

test('MSET and MGET across owners, DEL and EXISTS counts, and read-modify-write options', async (t) => {
  const [a, b, c] = [client(0), client(1), client(2, 2)];
  const pairs: string[] = [];
  for (let i = 0; i < 60; i++) pairs.push(`m:${i}`, `value-${i}`);
  t.is(await a.mset(...pairs), 'OK');
  const values = await c.mget(...Array.from({ length: 61 }, (_, i) => `m:${i}`));
  t.deepEqual(values, [...Array.from({ length: 60 }, (_, i) => `value-${i}`), null]);
  t.is(await b.exists('m:1', 'm:2', 'm:1', 'nope'), 3);
  t.is(await b.del('m:1', 'm:2', 'nope'), 2);
  t.is(await c.exists('m:1', 'm:2'), 0);
  t.is(await a.set('rmw', 'one', 'NX'), 'OK');
  t.is(await b.set('rmw', 'two', 'NX'), null);
  t.is(await c.set('rmw', 'three', 'XX', 'GET'), 'one');
  t.is(await a.set('rmw:none', 'x', 'XX'), null);
  t.is(await a.getset('rmw', 'four'), 'three');
  t.is(await b.setnx('rmw', 'five'), 0);
  t.is(await b.getdel('rmw'), 'four');
  t.is(await c.get('rmw'), null);
  t.is(await a.type('m:3'), 'string');
  t.is(await a.type('m:1'), 'none');
  t.is(await a.echo('hi'), 'hi');
});

test('SCAN through each node covers every key exactly once; KEYS and DBSIZE agree', async (t) => {
  const [a, b, c] = [client(0), client(1), client(2, 2)];
  await a.flushall().catch(() => undefined); // disabled here: refused, see the error test
  const p = a.pipeline();
  for (let i = 0; i < 400; i++) p.set(`scan:${i}`, `v${i}`);
  await p.exec();
  for (const [node, count] of [[a, 7], [b, 100], [c, 1000]] as const) {
    const seen = new Map<string, number>();
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', 'scan:*', 'COUNT', count);
      for (const k of keys) seen.set(k, (seen.get(k) ?? 0) + 1);
      cursor = next;
    } while (cursor !== '0');
    t.is(seen.size, 400, `COUNT ${count}`);
    t.true([...seen.values()].every((n) => n === 1), 'no key twice');
  }
  const streamed: string[] = await new Promise((resolve, reject) => {
    const keys: string[] = [];
    b.scanStream({ match: 'scan:1*', count: 20 })
      .on('data', (batch: string[]) => keys.push(...batch))
      .on('end', () => resolve(keys))
      .on('error', reject);
  });
  t.is(streamed.length, 111);
  const keys = await c.keys('scan:3*');
  t.is(keys.length, 111);
  const [, typed] = await a.scan('0', 'TYPE', 'hash');
  t.deepEqual(typed, []);
  const size = await b.dbsize();
  t.true(size >= 400, `dbsize ${size}`);
  await t.throwsAsync(a.keys('*'), { instanceOf: ReplyError, message: /more than 300 keys \(resp\.keysMax\)/ });
});

test('errors arrive as ioredis ReplyErrors with Redis messages', async (t) => {
  const a = client(0);
  await t.throwsAsync(a.incr('n'), { instanceOf: ReplyError, message: /^ERR INCR is not supported by Shoal: values are last-writer-wins without compare-and-set/ });
  await t.throwsAsync(a.append('n', 'x'), { instanceOf: ReplyError, message: /APPEND is not supported/ });
  await t.throwsAsync(a.call('GET'), { instanceOf: ReplyError, message: "ERR wrong number of arguments for 'get' command" });
  await t.throwsAsync(a.call('NOSUCH', 'x'), { instanceOf: ReplyError, message: /^ERR unknown command 'NOSUCH', with args beginning with: 'x'/ });
  await t.throwsAsync(a.select(1), { instanceOf: ReplyError, message: /DB index is out of range/ });
  await t.throwsAsync(a.flushall(), { instanceOf: ReplyError, message: /FLUSHALL is disabled/ });
  await t.throwsAsync(a.call('SET', 'k', 'v', 'NX', 'XX'), { instanceOf: ReplyError, message: 'ERR syntax error' });
  await t.throwsAsync(a.call('SCAN', 'x'), { instanceOf: ReplyError, message: 'ERR invalid cursor' });
  await t.throwsAsync(a.call('HELLO', '4'), { instanceOf: ReplyError, message: /^NOPROTO/ });
  await t.throwsAsync(a.call('SHOAL.CONSISTENCY', 'most'), { instanceOf: ReplyError, message: /one, quorum, all/ });
  t.is(await a.ping(), 'PONG', 'the connection is still usable');
});

test('connection commands: HELLO, CLIENT, COMMAND, INFO, CONFIG GET, TIME, SHOAL.CONSISTENCY', async (t) => {
  const a = client(1);
  const hello = (await a.call('HELLO', '3', 'SETNAME', 'tester')) as unknown[];
  t.deepEqual(hello.slice(0, 6), ['server', 'redis', 'version', '7.0.0', 'proto', 3]);
  t.is(await a.client('GETNAME'), 'tester');
  t.true(Number(await a.client('ID')) > 0);
  t.regex(String(await a.client('INFO')), /name=tester .*resp=3/);
  t.is(await a.call('COMMAND', 'COUNT'), (await a.call('COMMAND') as unknown[]).length);
  const [getInfo, missing] = (await a.call('COMMAND', 'INFO', 'get', 'nosuch')) as Array<unknown[] | null>;
  t.deepEqual(getInfo?.slice(0, 2), ['get', 2]);
  t.is(missing, null);
  const info = await a.info();
  t.regex(info, /^# Server\r\nredis_version:7\.0\.0\r\n/);
  t.regex(info, /^loading:0\r$/m);
  t.regex(info, /^members:3\r$/m);
  t.regex(info, /^shoal_write_quorum:2\r$/m);
  t.deepEqual(await a.config('GET', 'appendonly'), ['appendonly', 'no']);
  const [secs, micros] = (await a.time()) as unknown as string[];
  t.true(Math.abs(Number(secs) - Date.now() / 1000) < 5 && Number(micros) < 1_000_000);
  t.is(await a.call('SHOAL.CONSISTENCY'), 'default');
  t.is(await a.call('SHOAL.CONSISTENCY', 'all'), 'OK');
  t.is(await a.set('cons', 'v'), 'OK');
  t.is(await a.get('cons'), 'v');
  t.is(await a.call('SHOAL.CONSISTENCY'), 'all');
});

test('RESP figures are in shoal stats and in Prometheus metrics', async (t) => {
  const a = client(2, 2);
  await a.set('metrics:k', 'v');
  t.is(await a.get('metrics:k'), 'v');
  await t.throwsAsync(a.incr('metrics:k'));
  const node = cluster.nodes[2];
  const stats = node.stats() as { resp: { connections: number; commands: Record<string, number>; errors: Record<string, number> } };
  t.true(stats.resp.connections >= 1);
  t.true((stats.resp.commands.get ?? 0) >= 1);
  t.true((stats.resp.errors.ERR ?? 0) >= 1);
  const { body } = await httpGet(node.addresses.metrics ?? '', '/metrics');
  t.true((sample(body, 'shoal_resp_commands_total', { command: 'get' }) ?? 0) >= 1, body.split('\n').filter((l) => l.includes('resp')).join('\n'));
  t.true((sample(body, 'shoal_resp_errors_total', { code: 'ERR' }) ?? 0) >= 1);
  t.true((sample(body, 'shoal_resp_connections') ?? 0) >= 1);
});
