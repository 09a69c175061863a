/**
 * Pipelines against real nodes, where the fast paths run: on one node (N = 1) a GET is answered from
 * the local store at once and a SET goes straight to the local store, so a pipeline's commands finish
 * in a different order than they were sent. Replies must still come in request order, and a command
 * must see the effects of the connection's earlier commands on its key.
 */
import test from 'ava';
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { startCluster, type TestCluster } from './helpers.js';

let one: TestCluster;
let three: TestCluster;
const clients: Redis[] = [];

function client(cluster: TestCluster, node: number): Redis {
  const { host, port } = cluster.resp[node];
  const c = new Redis({ host, port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

test.before(async () => {
  one = await startCluster(1);
  three = await startCluster(3);
});

test.after.always(async () => {
  for (const c of clients) c.disconnect();
  await one?.stop();
  await three?.stop();
});

/** Writes `bytes` on a fresh connection and resolves with the first `length` bytes read back. */
function rawExchange(cluster: TestCluster, node: number, bytes: string, length: number): Promise<string> {
  const { host, port } = cluster.resp[node];
  return new Promise((resolve, reject) => {
    const s: Socket = connect({ host, port }, () => s.write(bytes));
    let text = '';
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.length >= length) {
        s.destroy();
        resolve(text);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(text));
  });
}

test('one node: 200 pipelined SET k i / GET k pairs read their own writes, replies in order (raw bytes)', async (t) => {
  await client(one, 0).set('pipe:other', 'o');
  let req = '';
  let expected = '';
  for (let i = 0; i < 200; i++) {
    const v = `v${i}`;
    req += `*3\r\n$3\r\nSET\r\n$6\r\npipe:k\r\n$${v.length}\r\n${v}\r\n*2\r\n$3\r\nGET\r\n$6\r\npipe:k\r\nGET pipe:other\r\n`;
    expected += `+OK\r\n$${v.length}\r\n${v}\r\n$1\r\no\r\n`;
  }
  t.is(await rawExchange(one, 0, req, expected.length), expected);
});

test('one node: an ioredis pipeline mixing keys, deletes and expiries sees each earlier command', async (t) => {
  const c = client(one, 0);
  const p = c.pipeline();
  const expected: unknown[] = [];
  for (let i = 0; i < 200; i++) {
    const key = `mix:${i % 7}`;
    p.set(key, `a${i}`);
    expected.push('OK');
    p.get(key);
    expected.push(`a${i}`);
    if (i % 3 === 0) {
      p.del(key);
      expected.push(1);
      p.get(key);
      expected.push(null);
      p.set(key, `b${i}`, 'PX', 60_000);
      expected.push('OK');
    }
    p.strlen(key);
    expected.push(i % 3 === 0 ? `b${i}`.length : `a${i}`.length);
    p.exists(key);
    expected.push(1);
  }
  const results = await p.exec();
  t.truthy(results);
  t.is(results?.length, expected.length);
  for (let i = 0; i < expected.length; i++) t.deepEqual(results?.[i], [null, expected[i]], `reply ${i}`);
});

test('three nodes, consistency one (reads answered by the coordinating owner at once): a pipeline reads its own writes through every node', async (t) => {
  for (let node = 0; node < 3; node++) {
    const c = client(three, node);
    t.is(await c.call('SHOAL.CONSISTENCY', 'one'), 'OK');
    const p = c.pipeline();
    for (let i = 0; i < 100; i++) {
      p.set(`c1:${i % 20}`, `n${node}:${i}`);
      p.get(`c1:${i % 20}`);
    }
    const results = await p.exec();
    for (let i = 0; i < 100; i++) {
      t.deepEqual(results?.[2 * i], [null, 'OK']);
      t.deepEqual(results?.[2 * i + 1], [null, `n${node}:${i}`], `node ${node}, read ${i}`);
    }
  }
});
