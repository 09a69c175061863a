/**
 * A member whose event loop stalls does not accuse a peer that answered in time (issue 16: a rolling
 * start of many agents on 2 cores starved the loops, and they suspected each other by the thousand).
 *
 * The peer is a real `shoal agent` in its own process, so it answers while this process is stalled.
 * Right after this process's Membership sends it a ping, a file-system callback (the poll phase, like
 * an RPC handler building a ring) busy-waits for longer than the probe period. The ack arrives during
 * the stall and waits in the socket buffer. When the loop resumes, the probe's deadline timer is due
 * before the loop reads its sockets again: judged at once, the probe fails and the peer is suspected;
 * judged after the poll phase (membership.ts schedule()), the ack is read first and nobody is.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, stat } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { unpack } from '../../src/codec.js';
import { Membership } from '../../src/membership/membership.js';
import { dgramUdp, type UdpFactory } from '../../src/membership/udp.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const HOST_A = '127.0.66.1';
const HOST_B = '127.0.66.2';
const PORT = 7946;
const PROBE_INTERVAL_MS = 300;
/** Longer than the probe period: the probe's whole deadline passes during the stall. */
const STALL_MS = 2 * PROBE_INTERVAL_MS;
const STALLS = 6;
/** Starting a tsx process on a loaded 2-core machine can take long. */
const START_MS_MAX = 90_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // the stall
  }
}

test('a stalled event loop reads the acks that arrived during the stall before it judges its probe', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-stall-'));
  let peer: ChildProcess | null = null;
  let a: Membership | null = null;
  t.teardown(async () => {
    await a?.stop().catch(() => undefined);
    peer?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SHOAL_')));
  peer = spawn(process.execPath, ['--import', 'tsx', MAIN, 'agent'], {
    cwd: REPO,
    stdio: 'ignore',
    env: {
      ...inherited, SHOAL_NODE_ID: 'b', SHOAL_DATA_DIR: join(dir, 'b'), SHOAL_CLUSTER: 'stall',
      SHOAL_NODE_GOSSIP: `${HOST_B}:${PORT}`, SHOAL_NODE_RPC: `${HOST_B}:7201`, SHOAL_NODE_METRICS: `${HOST_B}:7301`,
      SHOAL_SEEDS: `${HOST_B}:${PORT}`, SHOAL_LOG_LEVEL: 'error',
    },
  });

  // Arms a stall right after the next ping to the peer has been handed to the socket.
  let armed = false;
  let stalls = 0;
  const udp: UdpFactory = {
    async bind(host, port) {
      const endpoint = await dgramUdp.bind(host, port);
      return {
        address: () => endpoint.address(),
        onMessage: (handler) => endpoint.onMessage(handler),
        onError: (handler) => endpoint.onError(handler),
        close: () => endpoint.close(),
        send(bytes, toPort, toHost, done) {
          endpoint.send(bytes, toPort, toHost, done);
          if (!armed || toHost !== HOST_B) return;
          const packet = unpack(bytes) as { m?: Array<{ t?: string }> };
          if (!packet.m?.some((m) => m.t === 'ping')) return;
          armed = false;
          stalls += 1;
          stat(dir, () => busyWait(STALL_MS)); // runs in the poll phase, like an I/O handler's long task
        },
      };
    },
  };
  a = await Membership.start({
    id: 'a', bindHost: HOST_A, gossipPort: PORT, rpc: `${HOST_A}:7201`, seeds: [`${HOST_B}:${PORT}`],
    dataDir: join(dir, 'a'), udp, config: { probeIntervalMs: PROBE_INTERVAL_MS, probeTimeoutMs: PROBE_INTERVAL_MS / 2 },
  });
  const suspected: string[] = [];
  a.on('event', (e: { type: string; member: { id: string } }) => {
    if (e.type === 'suspect' || e.type === 'dead') suspected.push(`${e.type} ${e.member.id}`);
  });
  const bAlive = () => a?.members().some((m) => m.id === 'b' && m.state === 'alive') === true;
  const deadline = performance.now() + START_MS_MAX;
  while (!bAlive() && performance.now() < deadline) await sleep(100);
  t.true(bAlive(), 'the peer joined');
  await sleep(3 * PROBE_INTERVAL_MS); // settled: the join's own probes are done
  suspected.length = 0;

  for (let i = 0; i < STALLS; i += 1) {
    armed = true;
    await sleep(4 * PROBE_INTERVAL_MS);
  }
  t.true(stalls >= STALLS - 1, `stalls made: ${stalls}`);
  t.deepEqual(suspected, [], 'no suspicion of a peer whose ack was waiting in the socket');
  t.true(bAlive());
});
