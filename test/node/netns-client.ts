/**
 * A client that runs inside a network namespace for partition-netns.test.ts: one JSON request per
 * stdin line `{ seq, addr, op, args }`, one JSON reply per stdout line `{ seq, ok, result }` or
 * `{ seq, ok: false, code, message }`. Values travel as strings.
 */
import { createInterface } from 'node:readline';
import { ShoalClient } from '../../src/rpc/shoal-client.js';

interface Request {
  seq: number;
  addr: string;
  op: string;
  args: Record<string, unknown>;
}

const clients = new Map<string, ShoalClient>();
function client(addr: string): ShoalClient {
  let c = clients.get(addr);
  if (c === undefined) {
    c = new ShoalClient({ addresses: [addr], clusterName: 'dev', timeoutMs: 3000, pool: { connectTimeoutMs: 2000, connectionsPerAddr: 1 } });
    clients.set(addr, c);
  }
  return c;
}

async function handle(req: Request): Promise<unknown> {
  const c = client(req.addr);
  switch (req.op) {
    case 'put':
      return c.put(String(req.args.key), String(req.args.value), req.args.consistency === undefined ? {} : { consistency: req.args.consistency as 'one' });
    case 'get': {
      const got = await c.get(String(req.args.key));
      return got === null ? null : got.value.toString();
    }
    default:
      return c.call(req.op, req.args);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const req = JSON.parse(line) as Request;
  handle(req).then(
    (result) => process.stdout.write(JSON.stringify({ seq: req.seq, ok: true, result }) + '\n'),
    (err: unknown) => {
      const e = err as { code?: string; message?: string };
      process.stdout.write(JSON.stringify({ seq: req.seq, ok: false, code: e.code ?? 'ERROR', message: e.message ?? String(err) }) + '\n');
    },
  );
});
rl.on('close', () => {
  void Promise.all([...clients.values()].map((c) => c.close())).then(() => process.exit(0));
});
process.stdout.write(JSON.stringify({ seq: 0, ok: true, result: 'ready' }) + '\n');
