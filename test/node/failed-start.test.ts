/** A start that fails half-way frees everything it had opened: ports, the data-dir lock. */
import test from 'ava';
import dgram from 'node:dgram';
import net from 'node:net';
import type { ShoalError } from '../../src/errors.js';
import { startNode } from '../../src/node/node.js';
import { tempDir, testConfig } from './helpers.js';

async function freeTcpPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function canBindTcp(port: number): Promise<boolean> {
  const server = net.createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => server.close(() => resolve()));
  return ok;
}

async function canBindUdp(port: number): Promise<boolean> {
  const socket = dgram.createSocket('udp4');
  const ok = await new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind({ port, address: '127.0.0.1', exclusive: true }, () => resolve(true));
  });
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return ok;
}

test('a start that fails in the membership core (metadata over metaBytesMax) frees the rpc, gossip UDP and push-pull ports', async (t) => {
  const { dir, remove } = tempDir('shoal-failstart-');
  t.teardown(remove);
  const rpcPort = await freeTcpPort();
  const gossipPort = await freeTcpPort();
  const config = testConfig(dir, { 'node.rpc': `127.0.0.1:${rpcPort}`, 'node.gossip': `127.0.0.1:${gossipPort}`, 'metrics.enabled': 'false' });
  config.node.tags = { big: 'x'.repeat(2_000) }; // far over metaBytesMax (512)
  const err = (await t.throwsAsync(startNode(config, { processMetrics: false }))) as ShoalError;
  t.regex(err.message, /metaBytesMax/);
  t.true(await canBindUdp(gossipPort), 'the gossip UDP port is free');
  t.true(await canBindTcp(gossipPort), 'the push-pull TCP port is free');
  t.true(await canBindTcp(rpcPort), 'the rpc port is free');
  // And the data dir is not left locked: the same node starts with sane metadata.
  config.node.tags = {};
  const node = await startNode(config, { processMetrics: false });
  await node.stop();
});
