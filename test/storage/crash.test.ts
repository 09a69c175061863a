import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../src/storage/store.js';
import { tempDir } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROUNDS = 3;

/** Runs the writer child, SIGKILLs it at a random moment after it started writing, returns its stdout. */
async function runAndKill(dir: string, round: number, killAfterMs: number): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fixtures', 'crash-writer.ts'), dir, String(round)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let timer: NodeJS.Timeout | null = null;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    if (timer === null && out.includes('ready\n')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  });
  const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(guard);
  if (timer) clearTimeout(timer);
  if (signal !== 'SIGKILL') throw new Error(`writer exited with code ${code} before the kill`);
  return out;
}

test('every write the child saw acknowledged survives a SIGKILL at a random moment', async (t) => {
  const dir = tempDir(t);
  const acked = new Set<string>();
  const deleted = new Set<string>();
  /** Deletes issued but not acknowledged when the child died: the key may be there or not. */
  const deleting = new Set<string>();
  let inFlightDeletesSeen = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const out = await runAndKill(dir, round, 150 + Math.floor(Math.random() * 600));
    const lines = out.split('\n');
    lines.pop(); // a line cut by the kill is not an acknowledgement
    for (const line of lines) {
      if (line === 'ready') continue;
      if (line.startsWith('~')) deleting.add(line.slice(1));
      else if (line.startsWith('-')) {
        deleted.add(line.slice(1));
        deleting.delete(line.slice(1));
      } else acked.add(line);
    }
    const store = await openStore(dir, { fsync: 'none' });
    let missing = 0;
    for (const key of acked) {
      const got = store.get(key);
      if (deleted.has(key)) {
        if (got !== undefined) missing += 1;
      } else if (deleting.has(key) && got === undefined) {
        inFlightDeletesSeen += 1; // the unacknowledged delete reached the log: allowed
      } else if (got?.value?.toString() !== `value of ${key}`) {
        missing += 1;
      }
    }
    await store.close();
    t.is(missing, 0, `round ${round}: ${missing} of ${acked.size} acknowledged writes lost`);
  }
  t.true(acked.size > 0, 'the child acknowledged writes before it was killed');
  t.log(`${acked.size} acknowledged writes, ${deleted.size} deletes checked over ${ROUNDS} kills; ${inFlightDeletesSeen} unacknowledged deletes had taken effect`);
});
