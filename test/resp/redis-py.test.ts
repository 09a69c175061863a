/**
 * Debian's python3-redis (redis-py, run under /usr/bin/python3) against a three-node cluster through
 * different nodes, and against a single node with a password and a small connection limit for the
 * errors that redis-py maps to its own exception types.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { SYSTEM_PYTHON, hasRedisPy, startCluster, type TestCluster } from './helpers.js';

const HAVE_PY = hasRedisPy();
if (!HAVE_PY) console.log(`redis-py not importable by ${SYSTEM_PYTHON} (apt-get install python3-redis): the redis-py tests are skipped`);
const maybe = HAVE_PY ? test.serial : test.serial.skip;

function python(script: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(SYSTEM_PYTHON, ['-c', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const CLUSTER_SCRIPT = String.raw`
import os, random, time, redis
ports = [int(p) for p in os.environ['PORTS'].split(',')]
a, b, c = [redis.Redis(host='127.0.0.1', port=p) for p in ports]

# Binary values, from empty to 1 MiB, written through one node and read through the others.
rnd = random.Random(7)
for size in [0, 1, 255, 4096, 100000, 1048576]:
    value = bytes(rnd.getrandbits(8) for _ in range(size)) if size <= 4096 else os.urandom(size)
    assert a.set('py:bin:%d' % size, value) is True
    assert b.get('py:bin:%d' % size) == value, size
    assert c.get('py:bin:%d' % size) == value, size
print('binary ok')

# TTLs.
a.set('py:ttl', 'v', ex=100)
assert 99 <= b.ttl('py:ttl') <= 100
assert b.pttl('py:ttl') > 98000
a.set('py:short', 'v', px=300)
assert c.get('py:short') == b'v'
time.sleep(0.7)
assert c.get('py:short') is None
assert c.ttl('py:short') == -2
a.set('py:p', 'v')
assert b.expire('py:p', 100) is True
assert b.persist('py:p') is True
assert c.ttl('py:p') == -1
print('ttl ok')

# Pipelines (no MULTI): replies in order, read-your-writes on one key.
pipe = b.pipeline(transaction=False)
for i in range(300):
    pipe.set('py:pipe:%d' % (i % 7), 'v%d' % i)
    pipe.get('py:pipe:%d' % (i % 7))
results = pipe.execute()
for i in range(300):
    assert results[2 * i] is True
    assert results[2 * i + 1] == ('v%d' % i).encode(), (i, results[2 * i + 1])
print('pipeline ok')

# MSET / MGET across owners.
mapping = {'py:m:%d' % i: 'x%d' % i for i in range(100)}
assert c.mset(mapping) is True
got = a.mget(['py:m:%d' % i for i in range(101)])
assert got == [('x%d' % i).encode() for i in range(100)] + [None]
assert b.delete('py:m:0', 'py:m:1', 'py:m:none') == 2
assert b.exists('py:m:0', 'py:m:2') == 1
print('multi ok')

# SCAN: every key exactly once under no writes, through each node.
for client, count in [(a, 5), (b, 50), (c, 1000)]:
    seen = {}
    for key in client.scan_iter(match='py:m:*', count=count):
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 98, (count, len(seen))
    assert set(seen.values()) == {1}
print('scan ok')

# Errors become redis-py's exception types.
try:
    a.incr('py:n')
    raise SystemExit('INCR did not fail')
except redis.exceptions.ResponseError as e:
    assert 'INCRBY is not supported by Shoal' in str(e), str(e)
try:
    a.execute_command('GET')
    raise SystemExit('GET without a key did not fail')
except redis.exceptions.ResponseError as e:
    assert str(e) == "wrong number of arguments for 'get' command", str(e)
try:
    redis.Redis(host='127.0.0.1', port=ports[0], db=3).get('x')
    raise SystemExit('db 3 did not fail')
except redis.exceptions.ResponseError as e:
    assert 'DB index is out of range' in str(e), str(e)
assert a.ping() is True
print('errors ok')
`;

const AUTH_SCRIPT = String.raw`
import os, redis
port = int(os.environ['PORT'])
try:
    redis.Redis(host='127.0.0.1', port=port).get('x')
    raise SystemExit('no NOAUTH')
except redis.exceptions.AuthenticationError as e:
    print('noauth:', e)
try:
    redis.Redis(host='127.0.0.1', port=port, password='wrong').get('x')
    raise SystemExit('wrong password accepted')
except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError) as e:
    print('wrongpass:', type(e).__name__, e)
good = redis.Redis(host='127.0.0.1', port=port, password='s3cret')
assert good.set('k', 'v') is True and good.get('k') == b'v'
print('auth ok')
held = [redis.Redis(host='127.0.0.1', port=port, password='s3cret') for _ in range(3)]
for h in held:
    h.ping()
try:
    redis.Redis(host='127.0.0.1', port=port, password='s3cret').ping()
    raise SystemExit('connection limit not enforced')
except redis.exceptions.ConnectionError as e:
    print('limit:', e)
`;

let cluster: TestCluster;

test.before(async () => {
  if (HAVE_PY) cluster = await startCluster(3);
});

test.after.always(async () => {
  await cluster?.stop();
});

maybe('redis-py through three nodes: binary values, TTLs, pipelines, MSET/MGET, SCAN exactly once, error types', async (t) => {
  const out = await python(CLUSTER_SCRIPT, { PORTS: cluster.resp.map((r) => r.port).join(',') });
  t.is(out.code, 0, out.stderr);
  t.is(out.stdout, 'binary ok\nttl ok\npipeline ok\nmulti ok\nscan ok\nerrors ok\n');
});

maybe('redis-py: NOAUTH and a wrong password are authentication errors, the connection limit a ConnectionError', async (t) => {
  const single = await startCluster(1, { 'resp.password': 's3cret', 'rpc.connectionsMax': '4' });
  t.teardown(() => single.stop());
  const out = await python(AUTH_SCRIPT, { PORT: String(single.resp[0].port) });
  t.is(out.code, 0, out.stderr);
  t.regex(out.stdout, /^noauth: Authentication required\.$/m);
  t.regex(out.stdout, /^wrongpass: \w+ .*invalid username-password pair/m);
  t.regex(out.stdout, /^auth ok$/m);
  t.regex(out.stdout, /^limit: max number of clients reached$/m);
});
