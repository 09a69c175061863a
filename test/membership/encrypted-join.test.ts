/**
 * Encrypted membership over real sockets: members with the cluster key converge, a node with another
 * key or none cannot join (and says why), and keys rotate install → use → remove without a split.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LogFields, Logger } from '../../src/log.js';
import { Membership } from '../../src/membership/membership.js';
import { Keyring, generateKey } from '../../src/security/keyring.js';
import { loopbackHost, waitFor } from './sockets.js';

const CLUSTER = 'prod';
const config = {
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  gossipIntervalMs: 50,
  pushPullIntervalMs: 1000,
  reconnectIntervalMs: 1000,
  joinRetryInitialMs: 100,
  joinRetryMaxMs: 400,
};

function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const record = (message: string, fields?: LogFields) => void lines.push(`${message} ${JSON.stringify(fields ?? {})}`);
  const logger: Logger = { debug: record, info: record, warn: record, error: record, child: () => logger };
  return { logger, lines };
}

interface Started {
  m: Membership;
  lines: string[];
}

async function cluster(t: import('ava').ExecutionContext) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-encjoin-'));
  const running: Membership[] = [];
  t.teardown(async () => {
    await Promise.all(running.map((m) => m.stop()));
    await fs.rm(root, { recursive: true, force: true });
  });
  return async (i: number, keyring: Keyring | undefined, seeds: string[]): Promise<Started> => {
    const host = await loopbackHost(40, i);
    const { logger, lines } = recordingLogger();
    const m = await Membership.start({
      id: `n${i}`, bindHost: host, gossipPort: 0, rpc: `${host}:${9000 + i}`, seeds, dataDir: path.join(root, `n${i}`), config, logger,
      keyring, clusterName: keyring === undefined ? undefined : CLUSTER,
    });
    running.push(m);
    return { m, lines };
  };
}

const ids = (m: Membership) => m.members().map((x) => x.id).sort();
const allAlive = (ms: Membership[], n: number) => ms.every((m) => m.members().length === n && m.members().every((x) => x.state === 'alive'));

test('members with the cluster key converge; a node with another key or none cannot join and says why', async (t) => {
  const start = await cluster(t);
  const key = generateKey();
  const n1 = await start(1, new Keyring([key]), []);
  const n2 = await start(2, new Keyring([key]), [n1.m.self().gossip]);
  await waitFor('n1 and n2 converge', () => allAlive([n1.m, n2.m], 2));

  const n3 = await start(3, new Keyring([generateKey()]), [n1.m.self().gossip]);
  const n4 = await start(4, undefined, [n1.m.self().gossip]);
  await waitFor('n3 says why it cannot join', () => n3.lines.some((l) => l.includes('could not open what we sent (wrong key or cluster name?)')));
  await waitFor('n4 says why it cannot join', () => n4.lines.some((l) => l.includes('encrypts gossip and this node has no key')));
  await waitFor('several join attempts of each were refused', () => n1.m.stats().decryptFailures.tcp['unknown-key'] >= 2 && n1.m.stats().decryptFailures.tcp.unsealed >= 2);

  t.true(n3.m.joining, 'n3 is still joining');
  t.true(n4.m.joining, 'n4 is still joining');
  t.deepEqual(ids(n3.m), ['n3']);
  t.deepEqual(ids(n4.m), ['n4']);
  t.deepEqual(ids(n1.m), ['n1', 'n2'], 'n1 never heard of n3 or n4');
  t.deepEqual(ids(n2.m), ['n1', 'n2']);
  t.true(n3.lines.some((l) => l.includes('join through a seed failed')));

  // And the other way round: an encrypting node cannot join a plaintext member (n4, alone).
  const n5 = await start(5, new Keyring([key]), [n4.m.self().gossip]);
  await waitFor('n5 says why it cannot join', () => n5.lines.some((l) => l.includes('has no gossip key but this node encrypts gossip')));
  t.true(n5.m.joining);
  t.deepEqual(ids(n4.m), ['n4']);
  t.is(n1.m.stats().packetsReceived > 0, true);
  t.true(allAlive([n1.m, n2.m], 2), 'the cluster is unharmed');
});

test('keys rotate install → use → remove while three members stay converged', async (t) => {
  const start = await cluster(t);
  const oldKey = generateKey();
  const rings = [new Keyring([oldKey]), new Keyring([oldKey]), new Keyring([oldKey])];
  const n1 = await start(1, rings[0], []);
  const others = [await start(2, rings[1], [n1.m.self().gossip]), await start(3, rings[2], [n1.m.self().gossip])];
  const all = [n1.m, ...others.map((o) => o.m)];
  await waitFor('three converge', () => allAlive(all, 3));

  const newKey = generateKey();
  for (const r of rings) r.install(newKey);
  rings[0].use(newKey); // n1 seals with the new key first: the others can already open it
  const sealedBefore = rings[1].list().find((k) => k.id !== rings[1].primaryId())?.opened ?? 0;
  await waitFor('n2 opens n1\'s datagrams with the new key', () => (rings[1].list().find((k) => k.id === rings[0].primaryId())?.opened ?? 0) > sealedBefore + 5);
  for (const r of rings) r.use(newKey);
  await new Promise((resolve) => setTimeout(resolve, 300)); // datagrams sealed with the old key drain
  for (const r of rings) r.remove(oldKey);
  const failuresBefore = all.map((m) => m.stats().decryptFailures.udp.auth + m.stats().decryptFailures.udp['unknown-key']);
  await new Promise((resolve) => setTimeout(resolve, 1500)); // several probe periods and a push-pull with the new key only
  t.true(allAlive(all, 3), 'everyone alive after the rotation');
  t.deepEqual(all.map((m) => m.stats().decryptFailures.udp.auth + m.stats().decryptFailures.udp['unknown-key']), failuresBefore, 'no datagram was lost to the key change');
  t.true(all.every((m) => m.stats().syncsSent > 0));

  // A node that only has the removed key is now a stranger.
  const late = await start(4, new Keyring([oldKey]), [n1.m.self().gossip]);
  await waitFor('the old key is refused', () => late.lines.some((l) => l.includes('could not open what we sent')));
  t.true(late.m.joining);
});
