import test from 'ava';
import { join, resolve } from 'node:path';
import { defaultConfig } from '../../src/node/config.js';
import type { ShoalConfig } from '../../src/node/config-schema.js';
import { exposureWarnings, isLoopbackHost } from '../../src/node/exposure.js';

test('isLoopbackHost: 127.0.0.0/8, ::1 in any spelling, v4-mapped loopback and localhost; nothing else', (t) => {
  for (const host of ['127.0.0.1', '127.0.0.2', '127.255.255.254', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST', 'n1.localhost']) {
    t.true(isLoopbackHost(host), host);
  }
  for (const host of ['0.0.0.0', '::', '[::]', '10.0.0.11', '128.0.0.1', '126.255.255.255', '::2', '::ffff:10.0.0.1', 'n1.shoal.internal', 'localhost.example.com', '']) {
    t.false(isLoopbackHost(host), host);
  }
});

function config(set: { rpc?: string; gossip?: string; tls?: boolean; gossipKey?: string; keyringFile?: string }): ShoalConfig {
  const c = defaultConfig();
  c.node.dataDir = '/var/lib/shoal';
  if (set.rpc) c.node.rpc = set.rpc;
  if (set.gossip) c.node.gossip = set.gossip;
  c.security.tls = set.tls ?? false;
  c.security.gossipKey = set.gossipKey ?? '';
  c.security.keyringFile = set.keyringFile ?? '';
  return c;
}

const noFile = () => false;

test('loopback binds warn about nothing, with or without protection', (t) => {
  t.deepEqual(exposureWarnings(config({ rpc: '127.0.0.1:7201', gossip: '127.0.0.1:7101' }), noFile), []);
  t.deepEqual(exposureWarnings(config({ rpc: '[::1]:7201', gossip: 'localhost:7101' }), noFile), []);
});

test('an RPC port beyond loopback without TLS gets one warning; with TLS none', (t) => {
  const warnings = exposureWarnings(config({ rpc: '0.0.0.0:7201', gossip: '127.0.0.1:7101' }), noFile);
  t.is(warnings.length, 1);
  t.is(warnings[0].port, 'rpc');
  t.regex(warnings[0].message, /RPC port 0\.0\.0\.0:7201 is reachable beyond loopback without TLS.*security\.tls/);
  t.deepEqual(exposureWarnings(config({ rpc: '0.0.0.0:7201', gossip: '127.0.0.1:7101', tls: true }), noFile), []);
});

test('a gossip port beyond loopback warns unless a key is set or the keyring file exists', (t) => {
  const exposed = { rpc: '127.0.0.1:7201', gossip: '10.0.0.11:7101' };
  const warnings = exposureWarnings(config(exposed), noFile);
  t.deepEqual(warnings.map((w) => w.port), ['gossip']);
  t.regex(warnings[0].message, /gossip port 10\.0\.0\.11:7101 is reachable beyond loopback without a gossip keyring/);
  t.deepEqual(exposureWarnings(config({ ...exposed, gossipKey: 'A'.repeat(43) + '=' }), noFile), []);
  const asked: string[] = [];
  const exists = (path: string) => (asked.push(path), true);
  t.deepEqual(exposureWarnings(config(exposed), exists), []);
  t.deepEqual(asked, [join('/var/lib/shoal', 'keyring.json')]);
  asked.length = 0;
  exposureWarnings(config({ ...exposed, keyringFile: 'keys/ring.json' }), exists);
  t.deepEqual(asked, [resolve('keys/ring.json')]);
});

test('both ports exposed: two warnings, rpc first', (t) => {
  const warnings = exposureWarnings(config({ rpc: '[::]:7201', gossip: 'n1.shoal.internal:7101' }), noFile);
  t.deepEqual(warnings.map((w) => w.port), ['rpc', 'gossip']);
});
