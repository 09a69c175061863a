/**
 * `tsx bench/profile-top.ts DIR [TOP] [WINDOW_FILE]`: the functions with the most self time over the
 * .cpuprofile files in DIR (node --cpu-prof), as shares of the busy (non-idle) samples. With a window
 * file ({ pid: [msBeforeExitFrom, msBeforeExitTo] }, written by bench/cluster-cost.ts), only the samples
 * of that window count (the load phase, not start-up or shutdown). Used for docs/PERFORMANCE.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [dir, topArg, windowFile] = process.argv.slice(2);
if (dir === undefined) {
  console.error('usage: tsx bench/profile-top.ts DIR [TOP] [WINDOW_FILE]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const windows = windowFile ? (JSON.parse(readFileSync(windowFile, 'utf8')) as Record<string, [number, number]>) : null;
const self = new Map<string, number>();
let total = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  if (profile.samples.length < 50) continue; // tsx's loader thread
  let from = -Infinity;
  let to = Infinity;
  if (windows) {
    const pid = file.split('.').at(-4) ?? '';
    const w = windows[pid];
    if (w === undefined) continue;
    from = profile.endTime - w[0] * 1000;
    to = profile.endTime - w[1] * 1000;
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i];
    t += dt;
    if (t < from || t > to) continue;
    const frame = byId.get(profile.samples[i]);
    if (!frame) continue;
    const url = frame.url.split('/').at(-1) ?? '';
    const name = `${frame.functionName || '(anonymous)'}${url ? ` ${url}:${frame.lineNumber + 1}` : ''}`;
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  }
}
const idle = self.get('(idle)') ?? 0;
const busy = total - idle;
console.log(`busy ${(busy / 1e6).toFixed(2)} s of samples (idle ${(idle / 1e6).toFixed(2)} s)`);
for (const [name, us] of [...self.entries()].filter(([n]) => n !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name}`);
}
