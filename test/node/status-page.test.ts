/**
 * The status page in a real browser: Debian's chromium, headless, loads GET / of a running 3-node
 * cluster (real agent processes from `shoal local`), runs its script, and the test reads the DOM it
 * built: every member with its state, then a SIGKILLed node marked dead. A screenshot is saved for
 * people to look at. Skipped, with a message, where chromium is missing.
 */
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { localCommand } from '../../src/cli/local-command.js';
import type { ClusterFile } from '../../src/node/cluster-file.js';
import { freePorts } from '../rpc/helpers.js';
import { bufferIo, tempDir } from './helpers.js';

const run = promisify(execFile);
const CHROMIUM = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync(c, ['--version']).status === 0);
if (!CHROMIUM) console.log('status page test skipped: no chromium on the PATH (Debian: apt-get install chromium)');
const maybe = CHROMIUM ? test : test.skip;

const browserFlags = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--no-first-run', '--disable-dev-shm-usage'];

async function dumpDom(url: string, profile: string): Promise<string> {
  const { stdout } = await run(CHROMIUM ?? 'chromium', [...browserFlags, `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom', url], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err as Error);
        }
      });
    }).on('error', reject);
  });
}

/** The data-* attributes of each member row the page rendered. */
function rows(dom: string): Map<string, { state: string; health: string }> {
  const out = new Map<string, { state: string; health: string }>();
  for (const m of dom.matchAll(/<tr data-member="([^"]+)" data-state="([^"]+)" data-health="([^"]+)"/g)) out.set(m[1], { state: m[2], health: m[3] });
  return out;
}

maybe('the status page shows the members and their states, the ring and the events; a killed node turns dead', async (t) => {
  t.timeout(150_000);
  const tmp = tempDir('shoal-page-');
  t.teardown(tmp.remove);
  // The screenshot outlives the test so that people can look at it.
  const shots = mkdtempSync(join(tmpdir(), 'shoal-status-page-'));
  const ports = await freePorts(9);
  const file = join(tmp.dir, 'cluster.json');
  writeFileSync(file, JSON.stringify({
    cluster: 'pagetest',
    nodes: ['n1', 'n2', 'n3'].map((id, i) => ({ id, gossip: `127.0.0.1:${ports[i]}`, rpc: `127.0.0.1:${ports[3 + i]}`, metrics: `127.0.0.1:${ports[6 + i]}` })),
    config: {
      membership: { probeIntervalMs: 200, probeTimeoutMs: 100, gossipIntervalMs: 50, leaveTimeoutMs: 100 },
      cluster: { ringSettleMs: 50 },
    },
  }));
  const stop = new AbortController();
  const b = bufferIo();
  let failure: unknown = null;
  const checks: Array<() => void> = [];
  const code = await localCommand({
    nodes: 3, dataDir: join(tmp.dir, 'data'), clusterFile: file, logLevel: 'warn', signal: stop.signal,
    onReady: (plan: ClusterFile) => {
      void (async () => {
        const page = `http://${plan.nodes[0].metrics}/`;
        const profile = join(tmp.dir, 'profile');
        // Until every node sees the others alive.
        for (let i = 0; i < 100; i++) {
          const s = (await getJson(`${page}status.json`)) as { members: Array<{ state: string }> };
          if (s.members.length === 3 && s.members.every((m) => m.state === 'alive')) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        const before = await dumpDom(page, profile);
        const pid = Number(readFileSync(join(tmp.dir, 'data', 'n3', 'LOCK'), 'utf8'));
        process.kill(pid, 'SIGKILL');
        let dead = false;
        for (let i = 0; i < 150 && !dead; i++) {
          const s = (await getJson(`${page}status.json`)) as { members: Array<{ id: string; state: string }> };
          dead = s.members.find((m) => m.id === 'n3')?.state === 'dead';
          if (!dead) await new Promise((r) => setTimeout(r, 200));
        }
        const after = await dumpDom(page, profile);
        const shot = join(shots, 'status.png');
        await run(CHROMIUM ?? 'chromium', [...browserFlags, `--user-data-dir=${profile}`, '--window-size=1200,1000', '--virtual-time-budget=5000', `--screenshot=${shot}`, page], { timeout: 60_000 });
        const phone = join(shots, 'status-phone.png');
        await run(CHROMIUM ?? 'chromium', [...browserFlags, `--user-data-dir=${profile}`, '--window-size=390,1400', '--virtual-time-budget=5000', `--screenshot=${phone}`, page], { timeout: 60_000 });
        checks.push(() => {
          const first = rows(before);
          t.deepEqual([...first.keys()], ['n1', 'n2', 'n3'], 'one row per member');
          for (const [id, row] of first) {
            t.is(row.state, 'alive', id);
            t.regex(row.health, /^(ok|syncing \d+%)$/, id);
          }
          t.regex(before, /<h1 id="title">Shoal · pagetest<\/h1>/);
          t.regex(before, /<path [^>]*data-owner="n2" data-kind="share"/, 'the ring is drawn');
          t.regex(before, /joined<\/span> n2/, 'membership events are listed');
          t.true(dead, 'n1 declared n3 dead');
          const second = rows(after);
          t.is(second.get('n3')?.state, 'dead');
          t.is(second.get('n3')?.health, 'unreachable');
          t.is(second.get('n1')?.state, 'alive');
          t.regex(after, /dead<\/span> n3 \(was (alive|suspect)\)/, 'the death is among the recent events');
          t.true(statSync(shot).size > 10_000, 'a screenshot was taken');
          t.log(`screenshots: ${shot} and ${phone}`);
        });
      })().catch((err: unknown) => {
        failure = err;
      }).finally(() => stop.abort());
    },
  }, b.io);
  if (failure) throw failure as Error;
  t.is(code, 0, b.stderr());
  t.is(checks.length, 1, 'the page was checked');
  for (const check of checks) check();
});
