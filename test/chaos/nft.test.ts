import test from 'ava';
import { spawn } from 'node:child_process';
import { createServer, connect, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Firewall, firewallStatus } from './lib/nft.js';

const SHIM = join(dirname(fileURLToPath(import.meta.url)), 'lib', 'bind-local.mjs');
const base = `127.99.${process.pid % 250}`; // clusters use 127.100-249.x.x
const A = `${base}.11`;
const B = `${base}.12`;

function listen(host: string): Promise<{ server: Server; port: number; peers: string[] }> {
  const peers: string[] = [];
  const server = createServer((s) => {
    peers.push(s.remoteAddress ?? '');
    s.end('hi');
  });
  return new Promise((resolve) => server.listen(0, host, () => resolve({ server, port: (server.address() as { port: number }).port, peers })));
}

/** Connects from a child process whose outgoing address is `local` (through the shim); resolves 'ok' or an error string. */
function connectFromChild(local: string, host: string, port: number): Promise<string> {
  const script = `const s=require('node:net').connect({host:${JSON.stringify(host)},port:${port}});s.setTimeout(1500,()=>{console.log('timeout');process.exit(0)});s.on('data',()=>{console.log('ok');process.exit(0)});s.on('error',(e)=>{console.log(e.code);process.exit(0)});`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, NODE_OPTIONS: `--import=${pathToFileURL(SHIM).href}`, SHOAL_CHAOS_LOCAL_ADDRESS: local },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.on('exit', () => resolve(out.trim()));
  });
}

function connectHere(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.setTimeout(1500, () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('data', () => {
      s.destroy();
      resolve('ok');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

test.serial('the bind shim makes a node connect from its own loopback address', async (t) => {
  const { server, port, peers } = await listen(B);
  try {
    t.is(await connectFromChild(A, B, port), 'ok');
    t.deepEqual(peers, [A]);
  } finally {
    server.close();
  }
});

const fw = firewallStatus();
const withNft = fw.available ? test.serial : test.serial.skip;
if (!fw.available) console.log(`nft.test: partition tests skipped: ${fw.reason}`);

withNft('isolating a node cuts it off from the other nodes but not from the harness, and heals', async (t) => {
  const { server, port } = await listen(B);
  const firewall = Firewall.open();
  try {
    firewall.isolate(A, [B]);
    t.regex(firewall.listing(), /drop/);
    t.is(await connectFromChild(A, B, port), 'timeout', 'node A cannot reach node B');
    t.is(await connectHere(B, port), 'ok', 'the harness (127.0.0.1) still reaches B');
    firewall.heal();
    t.is(await connectFromChild(A, B, port), 'ok');
    firewall.oneWay(A, [B]);
    t.is(await connectFromChild(A, B, port), 'timeout');
  } finally {
    firewall.close();
    server.close();
  }
  t.is(await connectFromChild(A, B, port).catch(() => 'closed'), 'ECONNREFUSED', 'the table is gone with its rules');
});
