/**
 * A real RpcServer on loopback, backed by a real store: every case opens a connection, sends a
 * mutated stream (hello + requests), half-closes and waits for the server to close. Checks: each
 * connection is closed by the server in bounded time, every reply is a valid frame and never an
 * INTERNAL error, and a well-behaved client keeps getting its own data back unchanged.
 */
import fs from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ShoalError } from '../../../src/errors.js';
import { RpcPool } from '../../../src/rpc/client.js';
import { FrameDecoder } from '../../../src/rpc/framing.js';
import { parseDelArgs, parseGetArgs, parsePutArgs, parseResponse } from '../../../src/rpc/protocol.js';
import { RpcServer, type RpcHandler } from '../../../src/rpc/server.js';
import { openStore } from '../../../src/storage/store.js';
import type { Store } from '../../../src/storage/types.js';
import { type FuzzTarget, InvariantError, UnexpectedError } from '../lib/harness.js';
import { mutate } from '../lib/mutate.js';
import { FUZZ_STORE_OPTIONS } from './store-fixture.js';
import { FUZZ_CLUSTER, requestStream } from './inputs.js';

const CONNECTION_CLOSE_MS_MAX = 5_000;
const KEY_BYTES_MAX = 256;
const VALUE_BYTES_MAX = 4096;

/** A one-node handler over a real store, validating arguments as the cluster layer does. */
function storeHandler(store: Store): RpcHandler {
  let ts = 1;
  return async (op, args) => {
    switch (op) {
      case 'get': {
        const entry = store.get(parseGetArgs(args, { keyBytesMax: KEY_BYTES_MAX }).key);
        return entry?.value ? { value: entry.value, version: { ts: entry.ts, node: entry.node } } : null;
      }
      case 'put': {
        const { key, value } = parsePutArgs(args, { keyBytesMax: KEY_BYTES_MAX, valueBytesMax: VALUE_BYTES_MAX });
        const version = { ts: ts++, node: 'n1' };
        await store.put(key, value, { version });
        return { version };
      }
      case 'del': {
        const version = { ts: ts++, node: 'n1' };
        await store.delete(parseDelArgs(args, { keyBytesMax: KEY_BYTES_MAX }).key, { version });
        return { version };
      }
      case 'health':
        return { ok: true, node: 'n1' };
      default:
        throw new ShoalError('BAD_REQUEST', `unknown op ${JSON.stringify(op).slice(0, 40)}`);
    }
  };
}

/** Sends `bytes`, half-closes, collects replies until the server closes the connection. */
function exchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UnexpectedError(`the server kept a connection open for ${CONNECTION_CLOSE_MS_MAX} ms after the client half-closed`));
    }, CONNECTION_CLOSE_MS_MAX);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {}); // a reset by the server is a valid way to refuse
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.end(bytes);
  });
}

export const rpcServerTarget: FuzzTarget = {
  name: 'rpc-server',
  feeds: 'mutated streams → RpcServer (loopback) + store',
  parallel: 32,
  checkEvery: 2000,
  async setup() {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-fuzz-rpc-'));
    const store = await openStore(dir, FUZZ_STORE_OPTIONS);
    const server = new RpcServer({
      host: '127.0.0.1',
      port: 0,
      nodeId: 'n1',
      clusterName: FUZZ_CLUSTER,
      handler: storeHandler(store),
      limits: { frameBytesMax: 64 * 1024, handshakeTimeoutMs: 1000, idleTimeoutMs: 2000, connectionsMax: 64 },
    });
    const { port } = await server.listen();
    const pool = new RpcPool({ clusterName: FUZZ_CLUSTER, timeoutMs: 5000 });
    const addr = `127.0.0.1:${port}`;
    // The well-behaved client's data: keys the fuzz inputs never name.
    const canary = new Map<string, Buffer>();
    for (let i = 0; i < 20; i++) {
      const value = Buffer.from(`canary value ${i}`);
      await pool.call(addr, 'put', { key: `canary/${i}`, value });
      canary.set(`canary/${i}`, value);
    }
    let round = 0;
    return {
      async runCase(rng) {
        const valid = requestStream(rng);
        const bytes = rng.chance(0.05) ? valid.bytes : mutate(rng, valid.bytes, { lengthOffsets: valid.headers });
        const reply = await exchange(port, bytes);
        const decoder = new FrameDecoder(1 << 20);
        let frames: unknown[];
        try {
          frames = decoder.push(reply);
        } catch (err) {
          throw new InvariantError(`the server sent an invalid frame: ${String(err)}`);
        }
        if (decoder.pendingBytes !== 0) throw new InvariantError('the server closed in the middle of a frame');
        let ok = false;
        for (const frame of frames) {
          const response = parseResponse(frame);
          if (response === null) throw new InvariantError(`the server sent a non-response ${JSON.stringify(frame).slice(0, 80)}`);
          if (!response.ok && response.error.code === 'INTERNAL') throw new UnexpectedError(`INTERNAL error reply: ${response.error.message}`);
          if (response.ok && response.id !== 0) ok = true;
        }
        return ok ? 'accepted' : 'rejected';
      },
      async check() {
        round += 1;
        const key = `canary/${round % 20}`;
        const value = Buffer.from(`canary value ${round}`);
        await pool.call(addr, 'put', { key, value });
        canary.set(key, value);
        for (const [k, v] of canary) {
          const got = (await pool.call(addr, 'get', { key: k })) as { value: Buffer } | null;
          if (got === null || !Buffer.from(got.value).equals(v)) throw new InvariantError(`well-behaved client's ${k} changed or vanished`);
        }
        if (server.stats().connections > 64) throw new InvariantError(`${server.stats().connections} connections open`);
      },
      async close() {
        await pool.close();
        await server.close({ drainMs: 1000 });
        await store.close();
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  },
};
