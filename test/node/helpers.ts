/** Helpers shared by the node and CLI tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { CliIo } from '../../src/cli/io.js';
import { loadConfig, type ShoalConfig } from '../../src/node/config.js';
import { ShoalClient } from '../../src/rpc/shoal-client.js';

/** The value of one sample, whatever order its labels are printed in (undefined if absent). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** A client for tests: timeouts generous enough for a machine busy with other test processes. */
export function testClient(addr: string, clusterName = 'dev'): ShoalClient {
  return new ShoalClient({ addresses: [addr], clusterName, timeoutMs: 30_000, pool: { connectTimeoutMs: 30_000 } });
}

/** A fresh temp dir and its removal. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A node config on OS-chosen loopback ports with its data in `dataDir`; `set` as with --set. */
export function testConfig(dataDir: string, set: Record<string, string> = {}): ShoalConfig {
  const overrides = Object.entries({
    'node.dataDir': dataDir,
    'node.rpc': '127.0.0.1:0',
    'node.gossip': '127.0.0.1:0',
    'node.metrics': '127.0.0.1:0',
    'rpc.drainMs': '1000',
    'membership.leaveTimeoutMs': '200',
    ...set,
  }).map(([path, value]) => ({ path, value, origin: 'test' }));
  return loadConfig({ env: {}, overrides }).config;
}

/** CliIo over buffers: `stdin` is the given bytes (not a terminal), or a terminal with nothing to read. */
export function bufferIo(stdin?: Buffer | string, env: Record<string, string | undefined> = {}) {
  let out = Buffer.alloc(0);
  let err = '';
  const input = stdin === undefined ? Object.assign(new PassThrough(), { isTTY: true }) : Readable.from([Buffer.from(stdin)]);
  const io: CliIo = {
    stdout: { write: (c: string | Buffer) => (out = Buffer.concat([out, Buffer.from(c)])) },
    stderr: { write: (c: string | Buffer) => (err += c.toString()) },
    stdin: input,
    env,
  };
  return { io, stdout: () => out.toString(), stdoutBytes: () => out, stderr: () => err };
}

/** GET http://addr/path: the status and the body as text. */
export function httpGet(addr: string, path: string): Promise<{ status: number; body: string }> {
  const at = addr.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    request({ host: addr.slice(0, at), port: Number(addr.slice(at + 1)), path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });
}

/** Polls `check` every 100 ms until it returns true, for at most `ms`. */
export async function eventually(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
