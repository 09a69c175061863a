/**
 * Seed parsing, filtering and config validation (no DNS server needed: IP literals and the system's
 * getaddrinfo for "localhost"). test/membership/seeds-dns.test.ts resolves through a real dnsmasq.
 */
import test from 'ava';
import { ShoalError } from '../../src/errors.js';
import type { SeedDns } from '../../src/membership/dns.js';
import { ownGossipAddresses, parseDnsServer, parseSeed, resolveSeeds, seedsNeedDns } from '../../src/membership/seeds.js';
import { loadConfig } from '../../src/node/config.js';
import { SimScheduler } from '../../src/sim/scheduler.js';

test('parseSeed: IPv4, bracketed IPv6, host names and srv: names', (t) => {
  t.deepEqual(parseSeed('10.0.0.1:7101'), { kind: 'address', host: '10.0.0.1', port: 7101, text: '10.0.0.1:7101' });
  t.deepEqual(parseSeed('[fd00::1]:7101'), { kind: 'address', host: 'fd00::1', port: 7101, text: '[fd00::1]:7101' });
  t.deepEqual(parseSeed('shoal-0.shoal.default.svc:7101'), { kind: 'name', host: 'shoal-0.shoal.default.svc', port: 7101, text: 'shoal-0.shoal.default.svc:7101' });
  t.deepEqual(parseSeed('srv:_shoal._udp.shoal.test'), { kind: 'srv', name: '_shoal._udp.shoal.test', text: 'srv:_shoal._udp.shoal.test' });
});

test('parseSeed: malformed seeds are CONFIG errors that name the seed', (t) => {
  for (const bad of ['10.0.0.1', '10.0.0.1:0', '10.0.0.1:70000', '[zz::1]:7101', 'srv:', 'srv:nodot', 'srv:a..b', 'bad host:7101', ':7101', 'fd00::1:7101']) {
    const err = t.throws(() => parseSeed(bad), { instanceOf: ShoalError }, bad);
    t.is(err?.code, 'CONFIG', bad);
    t.true(err?.message.includes(bad), err?.message);
  }
});

test('seedsNeedDns is true only when a seed is a name or srv:', (t) => {
  t.false(seedsNeedDns(['127.0.0.1:7101', '[::1]:7101']));
  t.false(seedsNeedDns([]));
  t.true(seedsNeedDns(['127.0.0.1:7101', 'localhost:7101']));
  t.true(seedsNeedDns(['srv:_shoal._udp.x.test']));
});

test('parseDnsServer: ip, ip:port, ipv6, [ipv6]:port; anything else is a CONFIG error', (t) => {
  t.deepEqual(parseDnsServer('127.0.0.1'), { ip: '127.0.0.1', port: 53 });
  t.deepEqual(parseDnsServer('127.0.0.1:5353'), { ip: '127.0.0.1', port: 5353 });
  t.deepEqual(parseDnsServer('fd00::53'), { ip: 'fd00::53', port: 53 });
  t.deepEqual(parseDnsServer('[fd00::53]:5353'), { ip: 'fd00::53', port: 5353 });
  for (const bad of ['dns.example', '1.2.3:53', '127.0.0.1:0', '127.0.0.1:99999', '[fd00::53]']) {
    t.is(t.throws(() => parseDnsServer(bad))?.message.includes(bad), true, bad);
  }
});

test('resolveSeeds: literals pass through deduplicated in order, our own addresses are dropped', async (t) => {
  const out = await resolveSeeds(['127.0.0.2:7101', '127.0.0.1:7101', '[::1]:7101', '127.0.0.2:7101', '127.0.0.3:7101'], {
    self: ['127.0.0.1:7101', '127.0.0.3:7101'],
  });
  t.deepEqual(out, ['127.0.0.2:7101', '[::1]:7101']);
});

test('resolveSeeds: a host name resolves through the system resolver (localhost) with the seed\'s port', async (t) => {
  const out = await resolveSeeds(['localhost:7101']);
  t.true(out.length >= 1, JSON.stringify(out));
  t.true(out.every((a) => a === '127.0.0.1:7101' || a === '[::1]:7101'), JSON.stringify(out));
  t.deepEqual(await resolveSeeds(['localhost:7101'], { self: ['127.0.0.1:7101', '[::1]:7101'] }), []);
});

test('resolveSeeds: a name that does not resolve is reported and skipped, the others are returned', async (t) => {
  const errors: Array<[string, string]> = [];
  // .invalid never resolves (RFC 2606), and the server given does not exist: bounded by timeoutMs.
  const out = await resolveSeeds(['nothing.invalid:7101', '127.0.0.9:7101'], {
    dnsServers: ['127.0.0.1:9'], timeoutMs: 300, onError: (seed, err) => errors.push([seed, err.code]),
  });
  t.deepEqual(out, ['127.0.0.9:7101']);
  t.is(errors.length, 1);
  t.is(errors[0][0], 'nothing.invalid:7101');
  t.true(['UNAVAILABLE', 'TIMEOUT'].includes(errors[0][1]), errors[0][1]);
});

test('resolveSeeds: a malformed seed throws CONFIG (it is a bug in the config, not a DNS failure)', async (t) => {
  await t.throwsAsync(resolveSeeds(['nope']), { instanceOf: ShoalError, message: /host:port/ });
});

test('config: seeds accept names and srv:, dnsServers accept ip[:port]; bad ones fail naming the field', (t) => {
  const ok = loadConfig({ env: { SHOAL_SEEDS: 'srv:_shoal._udp.shoal.test,n1.shoal.test:7101,[::1]:7101', SHOAL_MEMBERSHIP_DNS_SERVERS: '127.0.0.1:5353' } });
  t.deepEqual(ok.config.membership.seeds, ['srv:_shoal._udp.shoal.test', 'n1.shoal.test:7101', '[::1]:7101']);
  t.deepEqual(ok.config.membership.dnsServers, ['127.0.0.1:5353']);
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ SHOAL_SEEDS: 'srv:x' }, /membership\.seeds\.0.*srv:NAME/],
    [{ SHOAL_SEEDS: '127.0.0.1:7101,nope' }, /membership\.seeds\.1/],
    [{ SHOAL_SEEDS: '127.0.0.1:70000' }, /membership\.seeds\.0.*65535/],
    [{ SHOAL_MEMBERSHIP_DNS_SERVERS: 'dns.example' }, /membership\.dnsServers\.0/],
    [{ SHOAL_MEMBERSHIP_DNS_SERVERS: '1.2.3:53' }, /membership\.dnsServers\.0/],
  ];
  for (const [env, message] of cases) {
    const err = t.throws(() => loadConfig({ env }), { instanceOf: ShoalError }, JSON.stringify(env));
    t.regex(err?.message ?? '', message, JSON.stringify(env));
  }
});

test('ownGossipAddresses: the advertised address, plus every interface address with the port when bound to a wildcard', (t) => {
  const interfaces = {
    lo: [{ address: '127.0.0.1', family: 'IPv4' }, { address: '::1', family: 'IPv6' }],
    eth0: [{ address: '10.1.2.3', family: 'IPv4' }],
  } as unknown as Parameters<typeof ownGossipAddresses>[3];
  t.deepEqual(ownGossipAddresses('10.1.2.3:7101', '10.1.2.3', 7101, interfaces), ['10.1.2.3:7101'], 'bound to one address: only that');
  t.deepEqual(ownGossipAddresses('10.1.2.3:7101', '0.0.0.0', 7101, interfaces), ['10.1.2.3:7101', '127.0.0.1:7101', '[::1]:7101', '10.1.2.3:7101']);
  t.true(ownGossipAddresses('0.0.0.0:7101', '::', 7101, interfaces).includes('10.1.2.3:7101'), 'no advertised host: the pod IP from DNS is still us');
});

/** A SeedDns that answers from tables and records every query; a name in `hang` never answers. */
function tableDns(hosts: Record<string, string[]>, srv: Record<string, Array<{ name: string; port: number }>>, hang = new Set<string>()) {
  const queries: string[] = [];
  const answer = <T>(query: string, key: string, value: T | undefined): Promise<T> => {
    queries.push(query);
    if (hang.has(key)) return new Promise<T>(() => {});
    return value === undefined ? Promise.reject(Object.assign(new Error(`ENOTFOUND ${key}`), { code: 'ENOTFOUND' })) : Promise.resolve(value);
  };
  const dns: SeedDns = {
    lookup: (host) => answer(`lookup ${host}`, host, hosts[host]),
    resolver: (servers) => ({
      resolve4: (host) => answer(`A ${host} @${servers.join(',')}`, host, hosts[host]?.filter((ip) => !ip.includes(':'))),
      resolve6: (host) => answer(`AAAA ${host} @${servers.join(',')}`, host, hosts[host]?.filter((ip) => ip.includes(':')) ?? []),
      resolveSrv: (name) => answer(`SRV ${name}`, name, srv[name]?.map((r) => ({ ...r, priority: 0, weight: 0 }))),
    }),
  };
  return { dns, queries };
}

test('resolveSeeds with an injected SeedDns: names and SRV go through it; ip:port seeds never ask it', async (t) => {
  const { dns, queries } = tableDns(
    { 'shoal-0.test': ['10.9.0.1'], 'shoal-1.test': ['10.9.0.2', 'fd00::2'] },
    { '_shoal._udp.test': [{ name: 'shoal-1.test.', port: 7200 }, { name: '10.9.0.3', port: 7201 }] },
  );
  t.deepEqual(await resolveSeeds(['10.9.0.7:7101', '[fd00::7]:7101'], { dns }), ['10.9.0.7:7101', '[fd00::7]:7101']);
  t.deepEqual(queries, [], 'plain seeds need no DNS');
  t.deepEqual(
    await resolveSeeds(['shoal-0.test:7101', 'srv:_shoal._udp.test', '10.9.0.7:7101'], { dns }),
    ['10.9.0.1:7101', '10.9.0.2:7200', '[fd00::2]:7200', '10.9.0.3:7201', '10.9.0.7:7101'],
  );
  // With an srv: seed a resolver exists, and host names go through it too (the system's servers).
  t.deepEqual(queries, ['A shoal-0.test @', 'AAAA shoal-0.test @', 'SRV _shoal._udp.test', 'A shoal-1.test @', 'AAAA shoal-1.test @']);
  queries.length = 0;
  t.deepEqual(await resolveSeeds(['shoal-1.test:7101'], { dns }), ['10.9.0.2:7101', '[fd00::2]:7101']);
  t.deepEqual(await resolveSeeds(['shoal-0.test:7101'], { dns, dnsServers: ['10.9.0.53'] }), ['10.9.0.1:7101']);
  t.deepEqual(queries, ['lookup shoal-1.test', 'A shoal-0.test @10.9.0.53', 'AAAA shoal-0.test @10.9.0.53'], 'getaddrinfo without servers, the resolver with them');
});

test('resolveSeeds: the per-seed bound runs on the injected clock (a DNS server that never answers, in simulated time)', async (t) => {
  const { dns } = tableDns({ 'up.test': ['10.9.0.1'] }, {}, new Set(['down.test']));
  const sched = new SimScheduler(3);
  const clock = sched.clock();
  const errors: string[] = [];
  let out: string[] | null = null;
  void resolveSeeds(['down.test:7101', 'up.test:7101'], { dns, clock, timeoutMs: 5000, onError: (seed, err) => errors.push(`${seed} ${err.code} @${sched.timeMs}`) })
    .then((found) => {
      out = found;
    });
  await sched.run({ untilMs: 4999 });
  t.is(out, null, 'still waiting before the bound');
  await sched.run({ untilMs: 60_000 });
  t.deepEqual(out, ['10.9.0.1:7101']);
  t.deepEqual(errors, ['down.test:7101 TIMEOUT @5000']);
});
